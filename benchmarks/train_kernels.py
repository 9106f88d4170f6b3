#!/usr/bin/env python3
"""The demo's test UA with the recipe's CPU training kernels (PyTorch's
own convolutions, Adam fused) and with another kernel, paired over
seeds.

Two kernels compute the same thing and round differently, so a run's
numbers move in the last digits; a training that amplifies them (an
adversary) may end elsewhere. This runs the demo recipe (``--utts``
clips per speaker, 40 by default, 16 epochs, probes off) for each of
``--modes`` and ``--seeds``, once per kernel, interleaved, and reports
the test UA of each and the paired difference (the recipe's − the
other's) with its 95% t interval over seeds, and the wall time of each.
``--against``: ``onednn`` patches ``SpeakerAdversarialBrain.
_training_kernels`` back to no context (oneDNN, PyTorch's CPU default);
``nnpack`` turns NNPACK back on inside it (the recipe before NNPACK was
turned off: PyTorch picks NNPACK for batches of 16 clips or more once
oneDNN is off); ``adam_loop`` builds every Adam with ``fused=False``
(torch's CPU default, one tensor at a time: the recipe before the
Brain's ``fused_optimizers`` covered the CPU).

    python benchmarks/train_kernels.py [--seeds 5] [--utts 40] \\
        [--against onednn|nnpack|adam_loop] [--workdir W]

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

#: Runs train.py with the Brain's training-step kernels set to the one
#: named (``pytorch``: the recipe's own) and every ``fit_batch`` timed:
#: ``[clips, seconds]`` per step, written to the file named second.
DRIVER = """
import atexit, contextlib, json, runpy, sys, time, torch
import speechbrain_grl.brain as b
kernel, out = sys.argv.pop(1), sys.argv.pop(1)
brain = b.SpeakerAdversarialBrain
own = brain._training_kernels
@contextlib.contextmanager
def nnpack(self):
    with own(self), torch.backends.nnpack.flags(True):
        yield
if kernel == "onednn":
    brain._training_kernels = lambda self: contextlib.nullcontext()
elif kernel == "nnpack":
    brain._training_kernels = nnpack
elif kernel == "adam_loop":
    adam = torch.optim.Adam.__init__
    def loop(self, params, *args, **kwargs):
        adam(self, params, *args, **dict(kwargs, fused=False))
    torch.optim.Adam.__init__ = loop
fit = brain.fit_batch
steps = []
def timed(self, batch):
    start = time.perf_counter()
    loss = fit(self, batch)
    steps.append([len(batch.id), time.perf_counter() - start])
    return loss
brain.fit_batch = timed
atexit.register(lambda: open(out, "w").write(json.dumps(steps)))
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path("train.py", run_name="__main__")
"""
NAMES = {"onednn": "oneDNN's convolutions",
         "nnpack": "NNPACK's convolutions",
         "adam_loop": "Adam's per-tensor loop",
         "pytorch": "the recipe's kernels"}
#: Short names for the table columns.
COLUMNS = {"onednn": "oneDNN", "nnpack": "NNPACK", "adam_loop": "Adam loop",
           "pytorch": "recipe"}
#: PyTorch picks NNPACK for a convolution from this many clips a batch.
NNPACK_BATCH = 16


def step_summary(steps):
    """Training-step seconds in all, and the median step (ms) of batches
    below and from :data:`NNPACK_BATCH` clips."""
    def median_ms(times):
        return round(statistics.median(times) * 1e3, 1) if times else None

    return {"steps_s": round(sum(t for _, t in steps), 2),
            "small_ms": median_ms([t for n, t in steps
                                   if n < NNPACK_BATCH]),
            "large_ms": median_ms([t for n, t in steps
                                   if n >= NNPACK_BATCH]),
            "large_batches": sum(n >= NNPACK_BATCH for n, _ in steps),
            "batches": len(steps)}


def median_of(runs, key):
    """The median of ``key`` over runs that have it, or None."""
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def run(kernel, mode, seed, work, utts):
    """One recipe run: its test UA, wall seconds and training steps."""
    folder = work / f"{mode}_{seed}_{kernel}"
    steps_file = work / f"{mode}_{seed}_{kernel}_steps.json"
    args = [str(common.DEMO_YAML), f"--seed={seed}", f"--adversary={mode}",
            f"--demo_utts_per_speaker={utts}",
            f"--output_folder={folder}", f"--demo_folder={work / 'assets'}",
            "--probe_speakers=False"]
    cmd = [sys.executable, "-c", DRIVER, kernel, str(steps_file), *args]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=common.RECIPE, check=True, capture_output=True,
                   env=child_env(cpu_cores()))
    seconds = time.perf_counter() - start
    metrics = json.loads((folder / "test_metrics.json").read_text())
    steps = step_summary(json.loads(steps_file.read_text()))
    return metrics["UA"], seconds, steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="none,grl")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--utts", type=int, default=40,
                        help="demo clips per speaker (10 speakers)")
    parser.add_argument("--against", default="onednn",
                        choices=("nnpack", "onednn", "adam_loop"))
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
                ua, seconds, steps = run(kernel, mode, seed, work,
                                         args.utts)
                results.setdefault(mode, {}).setdefault(kernel, []).append(
                    {"seed": seed, "UA": ua, "seconds": seconds, **steps})
                print(mode, seed, kernel, round(ua, 2), round(seconds, 1),
                      steps, flush=True)
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
                r["seconds"] for r in v) for k, v in by_kernel.items()},
            "steps": {k: {key: median_of(v, key) for key in (
                "steps_s", "small_ms", "large_ms", "large_batches",
                "batches")} for k, v in by_kernel.items()},
            "steps_ratio": [round(b["steps_s"] / a["steps_s"], 3)
                            for a, b in zip(by_kernel[args.against],
                                            by_kernel["pytorch"])]}
    folder = Path(args.out)
    (folder / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    m = out["machine"]
    other, col = NAMES[args.against], COLUMNS[args.against]
    lines = [
        f"# Training kernels: {other} against the recipe's",
        "", common.command("train_kernels.py", argv), "",
        f"The demo recipe ({10 * args.utts} clips, 16 epochs, probes "
        f"off), seeds 1-"
        f"{args.seeds}, each run once with {other} in the CPU training "
        "steps and once with the recipe's own kernels (PyTorch's "
        "convolutions, Adam fused), interleaved. Machine: "
        f"{common.cpu_text(m)}, {m['cores']} cores, torch {m['torch']}.", "",
        f"| mode | test UA, {col} | test UA, recipe | Δ UA (95% CI) "
        f"| seeds identical | run s, {col} | run s, recipe |",
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
    lines += [
        "", "Training steps (each `fit_batch` timed in the run; medians "
        f"over seeds): PyTorch picks NNPACK from {NNPACK_BATCH} clips a "
        "batch once oneDNN is off. *ratio*: the recipe's training-step "
        "seconds over the other's, per seed.", "",
        "| mode | kernel | training steps s | step ms, < "
        f"{NNPACK_BATCH} clips | step ms, ≥ {NNPACK_BATCH} clips | "
        f"batches ≥ {NNPACK_BATCH} clips (of all) | ratio |",
        "|---|---|---|---|---|---|---|"]
    for mode, r in out["modes"].items():
        for kernel in (args.against, "pytorch"):
            st = r["steps"][kernel]
            ratio = (", ".join(f"{x:.3f}" for x in r["steps_ratio"])
                     if kernel == "pytorch" else "")
            lines.append(
                f"| {mode} | {COLUMNS[kernel]} | {st['steps_s']:.1f} | "
                f"{st['small_ms']} | {st['large_ms']} | "
                f"{st['large_batches']:g} ({st['batches']:g}) | {ratio} |")
    (folder / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
