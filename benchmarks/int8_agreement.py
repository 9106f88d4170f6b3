#!/usr/bin/env python3
"""int8 against fp32 on the demo test set: label agreement, probability
difference and RTF of ``speechbrain-grl-predict --precision int8``.

Trains the demo recipe (or reuses ``--workdir``), exports it for the stock
``EncoderClassifier``, then classifies the 64 test files one at a time
(``--batch-seconds 0``, as the recipe's test pass) in fp32 and in int8
as ``speechbrain-grl-predict --precision int8`` runs it (ONNX Runtime
when installed: matrix products in int8, and the convolutions after the
waveform's too, calibrated on the first 8 files), and in int8 without
the calibration (``int8_matmul``: matrix products only).

    python benchmarks/int8_agreement.py [--workdir W] [--epochs 16] \
        [--out benchmarks]

With ``--out`` it writes ``<out>/int8_agreement.md`` and ``.json``
(``--name``); ``--json`` writes the JSON alone (``run_all.py``).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--out", default=None,
                        help="write <out>/<name>.md and .json")
    parser.add_argument("--name", default="int8_agreement")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="int8_"))
    # grl: the mode its committed numbers used
    run, model = common.demo_run(work, "grl", args.epochs, export=True)
    common.set_threads(args.threads)
    import soundfile as sf

    from speechbrain_grl.inference.predict import (
        calibration_audio,
        load_model,
        predict,
        quantize_int8,
    )

    manifest = json.loads((run / "test.json").read_text())
    root = str(work / "assets" / "corpus" / "IEMOCAP_full_release")
    files = [Path(e["wav"].replace("{data_root}", root))
             for e in manifest.values()]
    seconds = sum(sf.info(str(f)).duration for f in files)
    rows, times = {}, {}
    for variant in VARIANTS:
        clf = load_model(model)
        if variant != "fp32":
            quantize_int8(clf, calibration=calibration_audio(files)
                          if variant == "int8" else None)
        precision = variant.split("_")[0]
        predict(clf, files[:2], batch_seconds=0, progress=False,
                precision=precision)  # warm-up
        start = time.perf_counter()
        rows[variant] = predict(clf, files, batch_seconds=0,
                                progress=False, precision=precision)
        times[variant] = time.perf_counter() - start
    labels = [k for k in rows["fp32"][0] if k.startswith("prob_")]
    agreement, diff, mean = {}, {}, {}
    for variant in VARIANTS[1:]:
        pairs = list(zip(rows["fp32"], rows[variant]))
        agreement[variant] = sum(a["label"] == b["label"]
                                 for a, b in pairs) / len(pairs)
        per_file = [max(abs(a[k] - b[k]) for k in labels)
                    for a, b in pairs]
        diff[variant] = max(per_file)
        mean[variant] = sum(per_file) / len(per_file)
    out = {
        "benchmark": "int8_agreement",
        "files": len(files), "audio_s": seconds,
        "label_agreement": agreement, "max_prob_diff": diff,
        "mean_prob_diff": mean,
        "rtf": {p: t / seconds for p, t in times.items()},
        "epochs": args.epochs, "machine": common.machine(),
    }
    if args.out:
        m = out["machine"]
        common.write_report(args.out, args.name, out, [
            "# int8 against fp32 on the demo test set", "",
            common.command("int8_agreement.py", argv) + "; machine: "
            f"{common.cpu_text(m)}, {args.threads} threads, torch "
            f"{m['torch']}.", "", table(out)])
    else:
        print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


def table(out):
    """The markdown lines of a result."""
    lines = [
        f"Demo model ({out['epochs']} epochs, tiny encoder), its "
        f"{out['files']} test files one at a time, exported and run by "
        "`speechbrain-grl-predict`:", "",
        "| precision | label agreement with fp32 | largest probability "
        "difference: max over files | mean over files | RTF |",
        "|---|---|---|---|---|",
        f"| fp32 | 100.0% | 0 | 0 | {out['rtf']['fp32']:.5f} |"]
    for variant, agree in out["label_agreement"].items():
        lines.append(f"| {variant} | {100 * agree:.1f}% | "
                     f"{out['max_prob_diff'][variant]:.4f} | "
                     f"{out['mean_prob_diff'][variant]:.4f} | "
                     f"{out['rtf'][variant]:.5f} |")
    return "\n".join(lines)


# int8: as predict runs it (convolutions calibrated on the first files);
# int8_matmul: the matrix products only (no calibration)
VARIANTS = ("fp32", "int8", "int8_matmul")


if __name__ == "__main__":
    main()
