#!/usr/bin/env python3
"""The demo's test UA with CPU training steps on PyTorch's own
convolutions (the recipe's default) and on another kernel, paired over
seeds.

Two kernels compute the same convolutions and round differently, so a
run's numbers move in the last digits; a training that amplifies them
(an adversary) may end elsewhere. This runs the demo recipe (``--utts``
clips per speaker, 40 by default, 16 epochs, probes off) for each of
``--modes`` and ``--seeds``, once per kernel, interleaved, and reports
the test UA of each and the paired difference (PyTorch's − the other's)
with its 95% t interval over seeds, and the wall time of each.
``--against``: ``onednn`` patches ``SpeakerAdversarialBrain.
_training_kernels`` back to no context (oneDNN, PyTorch's CPU default);
``nnpack`` turns NNPACK back on inside it (the recipe before NNPACK was
turned off: PyTorch picks NNPACK for batches of 16 clips or more once
oneDNN is off).

    python benchmarks/train_kernels.py [--seeds 5] [--utts 40] \\
        [--against onednn|nnpack] [--workdir W]

Writes ``benchmarks/<name>.md`` and ``<name>.json`` (``--name``, default
``train_kernels``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from evidence import t_interval  # noqa: E402

from speechbrain_grl.utils.threads import child_env, cpu_cores  # noqa: E402

RUN = ("sys.argv = ['train.py'] + sys.argv[1:]\n"
       "runpy.run_path('train.py', run_name='__main__')\n")
#: The other kernel's patch of the Brain, run before train.py.
PATCHES = {
    "onednn": ("import contextlib, runpy, sys\n"
               "import speechbrain_grl.brain as b\n"
               "b.SpeakerAdversarialBrain._training_kernels = "
               "lambda self: contextlib.nullcontext()\n" + RUN),
    "nnpack": ("import contextlib, runpy, sys, torch\n"
               "import speechbrain_grl.brain as b\n"
               "own = b.SpeakerAdversarialBrain._training_kernels\n"
               "@contextlib.contextmanager\n"
               "def kernels(self):\n"
               "    with own(self), torch.backends.nnpack.flags(True):\n"
               "        yield\n"
               "b.SpeakerAdversarialBrain._training_kernels = kernels\n"
               + RUN)}
NAMES = {"onednn": "oneDNN", "nnpack": "NNPACK", "pytorch": "PyTorch"}


def run(kernel, mode, seed, work, utts):
    """One recipe run: its test UA and wall seconds."""
    folder = work / f"{mode}_{seed}_{kernel}"
    args = [str(common.DEMO_YAML), f"--seed={seed}", f"--adversary={mode}",
            f"--demo_utts_per_speaker={utts}",
            f"--output_folder={folder}", f"--demo_folder={work / 'assets'}",
            "--probe_speakers=False"]
    cmd = ([sys.executable, "-c", PATCHES[kernel]] if kernel in PATCHES
           else [sys.executable, "train.py"]) + args
    start = time.perf_counter()
    subprocess.run(cmd, cwd=common.RECIPE, check=True, capture_output=True,
                   env=child_env(cpu_cores()))
    seconds = time.perf_counter() - start
    metrics = json.loads((folder / "test_metrics.json").read_text())
    return metrics["UA"], seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="none,grl")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--utts", type=int, default=40,
                        help="demo clips per speaker (10 speakers)")
    parser.add_argument("--against", default="onednn",
                        choices=sorted(PATCHES))
    parser.add_argument("--name", default="train_kernels")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kernels_"))
    work = work.resolve()
    kernels = (args.against, "pytorch")
    results = {}
    for seed in range(1, args.seeds + 1):
        for mode in args.modes.split(","):
            order = kernels if seed % 2 else kernels[::-1]
            for kernel in order:
                ua, seconds = run(kernel, mode, seed, work, args.utts)
                results.setdefault(mode, {}).setdefault(kernel, []).append(
                    {"seed": seed, "UA": ua, "seconds": seconds})
                print(mode, seed, kernel, round(ua, 2), round(seconds, 1),
                      flush=True)
    out = {"machine": common.machine(), "against": args.against,
           "modes": {}}
    for mode, by_kernel in results.items():
        ua = {k: [r["UA"] for r in v] for k, v in by_kernel.items()}
        delta = [b - a for a, b in zip(ua[args.against], ua["pytorch"])]
        mean, ci = t_interval(delta)
        out["modes"][mode] = {
            "UA": ua, "delta_UA": delta, "delta_UA_mean": mean,
            "delta_UA_ci95": ci, "identical_seeds": sum(
                abs(d) < 1e-9 for d in delta),
            "seconds_median": {k: statistics.median(
                r["seconds"] for r in v) for k, v in by_kernel.items()}}
    folder = Path(args.out)
    (folder / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    m = out["machine"]
    other = NAMES[args.against]
    lines = [
        f"# Training kernels: {other}'s convolutions against PyTorch's",
        "", common.command("train_kernels.py", argv), "",
        f"The demo recipe ({10 * args.utts} clips, 16 epochs, probes "
        f"off), seeds 1-"
        f"{args.seeds}, each run once with {other}'s convolutions in the "
        "CPU training steps and once with PyTorch's own (the default), "
        f"interleaved. Machine: {m['cpu']}, {m['cores']} cores, torch "
        f"{m['torch']}.", "",
        f"| mode | test UA, {other} | test UA, PyTorch | Δ UA (95% CI) "
        f"| seeds identical | run s, {other} | run s, PyTorch |",
        "|---|---|---|---|---|---|---|"]
    for mode, r in out["modes"].items():
        lo, hi = r["delta_UA_ci95"]
        lines.append(
            f"| {mode} | {statistics.mean(r['UA'][args.against]):.2f} | "
            f"{statistics.mean(r['UA']['pytorch']):.2f} | "
            f"{r['delta_UA_mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
            f"{r['identical_seeds']} of {args.seeds} | "
            f"{r['seconds_median'][args.against]:.1f} | "
            f"{r['seconds_median']['pytorch']:.1f} |")
    (folder / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
