#!/usr/bin/env python3
"""int8 against fp32 on the demo test set: label agreement, probability
difference and RTF of ``speechbrain-grl-predict --precision int8``.

Trains the demo recipe (or reuses ``--workdir``), exports it for the stock
``EncoderClassifier``, then classifies the 64 test files one at a time
(``--batch-seconds 0``, as the recipe's test pass) in fp32 and in int8
(PyTorch dynamic quantisation of the encoder's linear layers).

    python benchmarks/int8_agreement.py [--workdir W] [--epochs 16]
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
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="int8_"))
    # grl: the mode its committed numbers used
    run, model = common.demo_run(work, "grl", args.epochs, export=True)
    common.set_threads(args.threads)
    import soundfile as sf

    from speechbrain_grl.inference.predict import (
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
    for precision in ("fp32", "int8"):
        clf = load_model(model)
        if precision == "int8":
            quantize_int8(clf)
        predict(clf, files[:2], batch_seconds=0, progress=False)  # warm-up
        start = time.perf_counter()
        rows[precision] = predict(clf, files, batch_seconds=0,
                                  progress=False, precision=precision)
        times[precision] = time.perf_counter() - start
    labels = [k for k in rows["fp32"][0] if k.startswith("prob_")]
    pairs = list(zip(rows["fp32"], rows["int8"]))
    out = {
        "benchmark": "int8_agreement",
        "files": len(files), "audio_s": seconds,
        "label_agreement": sum(a["label"] == b["label"] for a, b in pairs)
        / len(pairs),
        "max_prob_diff": max(abs(a[k] - b[k]) for a, b in pairs
                             for k in labels),
        "rtf": {p: t / seconds for p, t in times.items()},
        "epochs": args.epochs, "machine": common.machine(),
    }
    print(table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


def table(out):
    """The markdown lines of a result."""
    return (
        f"Demo model ({out['epochs']} epochs, tiny encoder), its "
        f"{out['files']} test files one at a time, exported and run by "
        "`speechbrain-grl-predict`:\n\n"
        "| precision | label agreement with fp32 | max probability "
        "difference | RTF |\n|---|---|---|---|\n"
        f"| fp32 | 100.0% | 0 | {out['rtf']['fp32']:.5f} |\n"
        f"| int8 | {100 * out['label_agreement']:.1f}% | "
        f"{out['max_prob_diff']:.4f} | {out['rtf']['int8']:.5f} |")


if __name__ == "__main__":
    main()
