#!/usr/bin/env python3
"""The demo recipe end to end: wall time per run and where it goes.

Each run is a fresh ``train.py hparams/demo_grl.yaml`` process on the
1,500-clip demo corpus (``--demo_utts_per_speaker=150``), 16 epochs,
probes and test included, one per mode (``none``, ``grl``, ``spknorm``),
interleaved over ``--rounds``. The phases (data, train, valid, probe,
test, other) come from the run's ``timing.json``
(:class:`speechbrain_grl.utils.timing.PhaseTimer`); ``startup`` is the
process's wall time outside ``main`` (imports, interpreter). The corpus
and the tiny encoder are built once, by an untimed one-epoch run, before
any timed run. ``--profile`` also runs the first mode once under
cProfile and puts its top functions in the report.

    python benchmarks/recipe_speed.py --workdir /tmp/speed

Writes ``benchmarks/recipe_speed.md`` and ``recipe_speed.json``:
``{"<mode>": {"wall_s", "phases": {"<phase>": s}, "UA", ...}, "machine"}``.
Target (issue 24): ≤ 90 s per run on 2 cores, at unchanged test metrics.
"""

import argparse
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from speechbrain_grl.utils.threads import (  # noqa: E402
    child_env,
    cpu_cores,
)

PHASES = ("data", "train", "valid", "probe", "test", "other", "startup")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="none,grl,spknorm")
    parser.add_argument("--utts", type=int, default=150,
                        help="demo clips per speaker (10 speakers)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs per mode, interleaved")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: every core)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one run of the first mode")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="recipe_speed")
    parser.add_argument("overrides", nargs="*",
                        help="extra --key=value passed to every run")
    return parser.parse_args(argv)


def command(args, mode, folder, epochs=None):
    """The ``train.py`` command line of one run."""
    demo = Path(args.workdir).resolve() / "demo_assets"
    return [sys.executable, "train.py", str(common.DEMO_YAML),
            f"--adversary={mode}",
            f"--demo_utts_per_speaker={args.utts}",
            f"--number_of_epochs={epochs or args.epochs}",
            f"--demo_folder={demo}", f"--output_folder={folder}",
            *args.overrides]


def run_once(args, mode, folder, env, profile=None):
    """One fresh process; its wall time, phases and test metrics."""
    cmd = command(args, mode, folder)
    if profile:
        cmd[1:1] = ["-m", "cProfile", "-o", str(profile)]
    start = time.perf_counter()
    with open(Path(folder).with_suffix(".log"), "w") as log:
        res = subprocess.run(cmd, cwd=common.RECIPE, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"recipe_speed.py: {mode} failed (exit {res.returncode});"
                 f" see {folder}.log")
    timing = json.loads((Path(folder) / "timing.json").read_text())
    metrics = json.loads((Path(folder) / "test_metrics.json").read_text())
    phases = dict(timing["phases"])
    phases["startup"] = round(wall - timing["wall_s"], 3)
    probe = metrics.get("speaker_probe", {}).get("balanced_accuracy")
    return {"wall_s": round(wall, 3), "phases": phases,
            "UA": metrics["UA"], "probe_BA": probe}


def profile_text(path, top=25):
    """The profile's top functions by own time and by cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    lines = [ln.rstrip() for ln in out.getvalue().splitlines()
             if ln.strip() and not ln.startswith(("   Ordered", "   List"))]
    return "\n".join(lines)


def median_run(runs):
    """The per-mode median of wall time and of each phase."""
    phases = {p: round(statistics.median(r["phases"].get(p, 0.0)
                                         for r in runs), 2)
              for p in PHASES}
    return {"wall_s": round(statistics.median(r["wall_s"] for r in runs),
                            2),
            "phases": phases, "UA": runs[0]["UA"],
            "probe_BA": runs[0]["probe_BA"],
            "UA_same_every_round": len({r["UA"] for r in runs}) == 1,
            "runs": runs}


def report(args, results, threads, profile):
    """The markdown report."""
    modes = [m for m in results if m != "machine"]
    m = results["machine"]
    lines = [
        "# The demo recipe end to end", "",
        f"`python benchmarks/recipe_speed.py {' '.join(sys.argv[1:])}`", "",
        f"{10 * args.utts} demo clips ({args.utts} per speaker), "
        f"{args.epochs} epochs, probes and test included, one fresh "
        f"process per run, {args.rounds} round(s) interleaved (median). "
        f"Machine: {common.cpu_text(m)}, {m['cores']} cores, "
        f"torch {m['torch']}, "
        f"{threads} torch thread(s) per run. Target: ≤ 90 s per run.", "",
        "| mode | wall s | " + " | ".join(PHASES) + " | test UA | "
        "probe BA |",
        "|---" * (len(PHASES) + 4) + "|"]
    for mode in modes:
        r = results[mode]
        lines.append(
            f"| {mode} | {r['wall_s']:.1f} | "
            + " | ".join(f"{r['phases'][p]:.1f}" for p in PHASES)
            + f" | {r['UA']:.2f} | "
            + (f"{r['probe_BA']:.1f}" if r["probe_BA"] is not None else "-")
            + " |")
    lines += ["", "Phases (seconds): data = corpus preparation and "
              "pipelines; train, valid, test = SpeechBrain stages; probe = "
              "both speaker probes; other = model building, checkpoint "
              "saving and loading; startup = imports and interpreter, "
              "outside `main`."]
    if profile:
        lines += ["", f"## Profile of one `{modes[0]}` run (cProfile)", "",
                  "```", profile, "```"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="recipe_speed_")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    threads = args.threads or cpu_cores()
    env = child_env(threads, dict(os.environ, HF_HUB_OFFLINE="1"))
    modes = [m for m in args.modes.split(",") if m]
    # Untimed: builds the corpus and the encoder (demo_assets) once.
    warm = work / "warmup"
    subprocess.run(command(args, modes[0], warm, epochs=1)
                   + ["--probe_speakers=False", "--run_test=False"],
                   cwd=common.RECIPE, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    runs = {m: [] for m in modes}
    for rnd in range(args.rounds):
        order = modes[rnd % len(modes):] + modes[:rnd % len(modes)]
        for mode in order:
            folder = work / f"{mode}_{rnd}"
            subprocess.run(["rm", "-rf", str(folder)], check=True)
            runs[mode].append(run_once(args, mode, folder, env))
            print(mode, rnd, runs[mode][-1], flush=True)
    results = {m: median_run(r) for m, r in runs.items()}
    results["machine"] = common.machine()
    results["machine"]["torch_threads"] = threads
    profile = None
    if args.profile:
        folder = work / f"{modes[0]}_profile"
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        run_once(args, modes[0], folder, env,
                 profile=work / "profile.prof")
        profile = profile_text(work / "profile.prof")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    (out / f"{args.name}.md").write_text(
        report(args, results, threads, profile))
    print((out / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
