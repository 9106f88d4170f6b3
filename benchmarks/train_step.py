#!/usr/bin/env python3
"""Time and memory of one optimisation step for each adversary.

One Brain (built from the demo yaml), the same fixed batches, one process:
the adversary is switched between repetitions, round-robin over the modes
(rotating which goes first), so that load from other processes on a shared
machine hits every mode alike. Peak memory is measured in a fresh
subprocess per mode (``ru_maxrss`` on CPU, ``max_memory_allocated`` on
GPU).

What is compared
----------------
- ``step``: one call of ``brain.fit_batch``. For none and grl every step
  is an emotion update. TAP/SNP alternate: an *emotion step* (the same
  work as none, plus nothing) and a *speaker step* (speaker head descent
  and the adversarial ascent), so their ``step`` median mixes both kinds.
- ``pair``: an emotion step plus the following speaker step, i.e. one full
  iteration of the paper's alternating scheme. Targets: grl step ≤ 1.05×
  the none step; tap/snp pair ≤ 2.05× the none step (two passes by
  design). An epoch costs ``mean step × batches`` in every mode, since
  TAP/SNP consume one batch per step too.

Usage::

    python benchmarks/train_step.py --size base --json out.json
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--modes", nargs="+", default=list(common.MODES),
                        choices=common.MODES)
    parser.add_argument("--reps", type=int, default=10,
                        help="timed repetitions (2 steps per mode each)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed repetitions first")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="utterances per batch (tiny 8, base 2)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="longest utterance of a batch, seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32",
                        choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--workdir", default=None,
                        help="where the random encoder is kept "
                             "(default: a temporary folder)")
    parser.add_argument("--no_memory", action="store_true",
                        help="skip the per-mode memory subprocesses")
    parser.add_argument("--quick", action="store_true",
                        help="few repetitions, for a smoke test")
    parser.add_argument("--json", default=None, help="write results here")
    parser.add_argument("--memory_mode", default=None, choices=common.MODES,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = 8 if args.size == "tiny" else 2
    if args.quick:
        args.reps, args.warmup = 2, 1
        args.batch_size, args.seconds = 4, 1.5
    return args


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run_unit(brain, mode, batches, device):
    """Two consecutive steps in ``mode``; returns their times (s).

    TAP/SNP start on an emotion step, then take a speaker step.
    """
    common.use_method(brain, mode)
    times = []
    for batch in batches:
        _sync(device)
        start = time.perf_counter()
        brain.fit_batch(batch)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _setup(args, workdir):
    common.set_threads(args.threads)
    encoder = common.make_encoder(workdir, args.size)
    hparams = common.load_hparams(encoder, args.size, workdir)
    brain = common.build_brain(hparams, args.device, args.precision)
    batches = common.fixed_batches(2, args.batch_size, args.seconds)
    return brain, batches


def measure_memory(args, workdir):
    """Runs in a fresh process: peak memory of a few steps of one mode."""
    import torch

    brain, batches = _setup(args, workdir)
    cuda = str(args.device).startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.max_memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # One unit: an emotion step (optimizer states appear) and, in
    # TAP/SNP, a speaker step.
    run_unit(brain, args.memory_mode, batches, args.device)
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kind = "cuda_max_allocated" if cuda else "cpu_maxrss"
    return {"mode": args.memory_mode, "kind": kind,
            "before_mb": before / 2**20, "peak_mb": peak / 2**20,
            "delta_mb": (peak - before) / 2**20}


def memory_all(args, workdir):
    """One fresh subprocess per mode."""
    out = {}
    for mode in args.modes:
        cmd = [sys.executable, os.path.abspath(__file__), "--size",
               args.size, "--batch_size", str(args.batch_size),
               "--seconds", str(args.seconds), "--threads",
               str(args.threads), "--device", args.device, "--precision",
               args.precision, "--workdir", workdir, "--memory_mode", mode]
        res = subprocess.run(cmd, capture_output=True, text=True,
                             check=False)
        if res.returncode != 0:
            sys.exit(f"train_step.py: memory run of {mode} failed:\n"
                     f"{res.stderr[-2000:]}")
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def time_all(args, workdir):
    """Round-robin timing of all modes on one Brain."""
    brain, batches = _setup(args, workdir)
    modes = list(args.modes)
    steps = {m: [] for m in modes}
    pairs = {m: [] for m in modes}
    kinds = {m: {"emotion": [], "speaker": []} for m in modes}
    for rep in range(args.warmup + args.reps):
        order = modes[rep % len(modes):] + modes[:rep % len(modes)]
        for mode in order:
            first, second = run_unit(brain, mode, batches, args.device)
            if rep < args.warmup:
                continue
            steps[mode] += [first, second]
            pairs[mode].append(first + second)
            kinds[mode]["emotion"].append(first)
            kinds[mode]["speaker"].append(second)
    result = {}
    for mode in modes:
        result[mode] = {
            "step": common.summary(steps[mode]),
            "mean_step": sum(steps[mode]) / len(steps[mode]),
            "pair": common.summary(pairs[mode]),
        }
        if mode in ("tap", "snp"):
            result[mode]["emotion_step"] = common.summary(
                kinds[mode]["emotion"])
            result[mode]["speaker_step"] = common.summary(
                kinds[mode]["speaker"])
    return result


def add_ratios(timing):
    """Ratios to the none step (``step``, ``mean_step``, ``pair``)."""
    if "none" not in timing:
        return
    ref = timing["none"]["step"]["median"]
    ref_mean = timing["none"]["mean_step"]
    for res in timing.values():
        res["step_ratio"] = res["step"]["median"] / ref
        res["mean_step_ratio"] = res["mean_step"] / ref_mean
        # An alternating pair is one iteration; none/grl need one step.
        one = res["pair"]["median"] if "speaker_step" in res else (
            res["step"]["median"])
        res["iteration_ratio"] = one / ref


def table(result):
    """Markdown table of a result."""
    timing, memory = result["timing"], result.get("memory") or {}
    lines = [
        "| adversary | median step (ms) | IQR (ms) | step / none | "
        "mean step / none | iteration / none step | peak mem delta (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, res in timing.items():
        mem = memory.get(mode)
        mem = f"{mem['delta_mb']:.0f} (peak {mem['peak_mb']:.0f})" if (
            mem) else "-"
        lines.append(
            f"| {mode} | {1000 * res['step']['median']:.1f} | "
            f"{1000 * res['step']['iqr']:.1f} | "
            f"{res.get('step_ratio', float('nan')):.3f} | "
            f"{res.get('mean_step_ratio', float('nan')):.3f} | "
            f"{res.get('iteration_ratio', float('nan')):.3f} | {mem} |"
        )
    for mode, res in timing.items():
        if "speaker_step" in res:
            lines.append("")
            emo, spk, pair = (1000 * res[k]["median"] for k in (
                "emotion_step", "speaker_step", "pair"))
            lines.append(
                f"{mode}: emotion step {emo:.1f} ms, speaker step "
                f"{spk:.1f} ms, pair {pair:.1f} ms (medians)"
            )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="sbgrl_bench_")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.memory_mode:
        print(json.dumps(measure_memory(args, workdir)))
        return
    start = time.perf_counter()
    result = {
        "benchmark": "train_step",
        "size": args.size,
        "config": {k: getattr(args, k) for k in (
            "batch_size", "seconds", "threads", "device", "precision",
            "reps", "warmup", "quick")},
        "timing": time_all(args, workdir),
    }
    add_ratios(result["timing"])
    if not args.no_memory:
        result["memory"] = memory_all(args, workdir)
    result["machine"] = common.machine()
    result["wall_s"] = time.perf_counter() - start
    print(f"train_step ({args.size} encoder, batch {args.batch_size} x "
          f"{args.seconds:g} s, {args.threads} threads, {args.device}, "
          f"{args.precision})")
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fout:
            json.dump(result, fout, indent=2)


if __name__ == "__main__":
    main()
