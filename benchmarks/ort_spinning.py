#!/usr/bin/env python3
"""ONNX Runtime's spinning worker threads in the int8 encoder, on or off.

Each run is a fresh process holding one int8 session (a base-sized
random wav2vec2 behind the stock ``EncoderClassifier``, as
``speechbrain-grl-predict --precision int8`` builds it) that times
``classify_batch`` on random 5 s utterances, one at a time and in
batches of 8, best of ``--repeats``. The parent alternates the two
settings over ``--pairs`` (swapping which goes first), because the
machine's speed moves between minutes; one process per setting, because
a second session's spinning workers would take the cores of the first.
Reported per pair: wall RTF and CPU seconds per audio second of each
setting, and their ratio off / on.

    python benchmarks/ort_spinning.py [--pairs 3] [--out benchmarks]

Writes ``<out>/ort_spinning.md`` and ``.json`` (``--name``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SETTINGS = ("on", "off")


def child(args):
    """One process: time the int8 encoder with spinning ``args.child``."""
    import torch
    from inference import build_folder, timed
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_grl.inference.predict import (
        OnnxInt8Encoder,
        quantize_int8,
        session_of,
    )

    common.set_threads(args.threads)
    work = Path(args.workdir)
    folder = work / "base"
    if not (folder / "hyperparams.yaml").exists():
        build_folder(folder, "base")
    clf = EncoderClassifier.from_hparams(source=str(folder),
                                         savedir=str(work / "sd"))
    onnx = work / "onnx" / "encoder_int8.onnx"
    wrapper = clf.mods["compute_features"]
    if onnx.exists():  # built by the first run, as predict builds it
        wrapper.model = OnnxInt8Encoder(None, wrapper.model.config)
    else:
        gen = torch.Generator().manual_seed(1)
        quantize_int8(clf, cache_dir=str(onnx.parent),
                      calibration=list(torch.randn(args.n, 80000,
                                                   generator=gen) * 0.1))
        wrapper.model.session = None  # the built session's workers go
    wrapper.model.session = session_of(onnx, spinning=args.child == "on")
    wavs = torch.randn(args.n, 80000) * 0.1
    audio = args.n * 5.0
    out = {}
    for bs in (1, 8):
        timed(clf, wavs[:bs], bs)  # warm-up
        best = min(timed(clf, wavs, bs) for _ in range(args.repeats))
        out[str(bs)] = {"rtf": best[0] / audio, "cpu": best[1] / audio}
    print("RESULT " + json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=8, help="utterances")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--name", default="ort_spinning")
    parser.add_argument("--child", choices=SETTINGS, default=None,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="ort_spin_")
    if args.child:
        return child(args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               HF_HUB_OFFLINE="1", PYTHONPATH=str(common.REPO))
    rounds = []
    for pair in range(args.pairs):
        order = SETTINGS if pair % 2 == 0 else SETTINGS[::-1]
        res = {}
        for setting in order:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", setting,
                 "--workdir", args.workdir, "--repeats", str(args.repeats),
                 "--n", str(args.n), "--threads", str(args.threads)],
                env=env, capture_output=True, text=True)
            lines = [x for x in proc.stdout.splitlines()
                     if x.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                sys.exit(f"ort_spinning.py: the {setting} run failed:\n"
                         f"{proc.stderr[-2000:]}")
            res[setting] = json.loads(lines[-1][7:])
            print(pair + 1, setting, res[setting], flush=True)
        rounds.append(res)
    lines = [
        "# ONNX Runtime's spinning workers in the int8 encoder", "",
        common.command("ort_spinning.py", argv) + "; machine: "
        f"{common.cpu_text(common.machine())}, {args.threads} threads.", "",
        "A base-sized random wav2vec2 in int8 (`quantize_int8` with "
        "calibrated convolutions) behind the stock `EncoderClassifier`, "
        f"{args.n} utterances of 5 s, best of {args.repeats}; one fresh "
        "process per setting, the settings alternating. RTF = wall "
        "seconds per audio second; CPU = process CPU seconds per audio "
        "second (all threads).", "",
        "| pair | batch | RTF on | RTF off | off / on | CPU on | CPU off "
        "| off / on |", "|---|---|---|---|---|---|---|---|"]
    summary = {}
    for bs in ("1", "8"):
        walls, cpus = [], []
        for i, res in enumerate(rounds, 1):
            on, off = res["on"][bs], res["off"][bs]
            walls.append(off["rtf"] / on["rtf"])
            cpus.append(off["cpu"] / on["cpu"])
            lines.append(f"| {i} | {bs} | {on['rtf']:.4f} | "
                         f"{off['rtf']:.4f} | {walls[-1]:.3f} | "
                         f"{on['cpu']:.4f} | {off['cpu']:.4f} | "
                         f"{cpus[-1]:.3f} |")
        summary[bs] = {"wall_ratio_median": statistics.median(walls),
                       "cpu_ratio_median": statistics.median(cpus)}
    lines += ["", "Median ratio off / on: " + "; ".join(
        f"batch {bs}: wall {v['wall_ratio_median']:.3f}, CPU "
        f"{v['cpu_ratio_median']:.3f}" for bs, v in summary.items()) + "."]
    results = {"rounds": rounds, "summary": summary,
               "machine": common.machine(), "args": vars(args)}
    if args.out:
        common.write_report(args.out, args.name, results, lines)
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
