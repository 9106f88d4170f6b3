#!/usr/bin/env python3
"""Thread settings: one run alone against two runs side by side.

Each setting runs the demo recipe (``train.py hparams/demo_grl.yaml``,
1,500 clips, 2 epochs, probes and test off) as one process alone or as
two processes at once, with a given number of torch threads per process
(``OMP_NUM_THREADS``) and OpenMP wait policy. Settings are interleaved
over ``--rounds`` (rotating order). Reported: seconds per training epoch
(``timing.json``'s ``train`` phase / epochs; the mean of the processes
when two run), the median over rounds, and the throughput of the
machine, epochs per second summed over the processes running.

    python benchmarks/threads.py --workdir /tmp/threads

Writes ``benchmarks/threads.md`` and ``threads.json``.
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

from speechbrain_grl.utils.threads import child_env  # noqa: E402

#: (name, processes, threads per process, OMP_WAIT_POLICY). The policy
#: "" leaves OpenMP's own default (spin a while, then sleep), which
#: train.py's passive default would otherwise replace.
SETTINGS = (
    ("alone, 2 threads, OpenMP's default wait", 1, 2, ""),
    ("alone, 1 thread", 1, 1, "PASSIVE"),
    ("alone, 2 threads, passive", 1, 2, "PASSIVE"),
    ("two runs, 2 threads each, OpenMP's default wait", 2, 2, ""),
    ("two runs, 2 threads each, passive", 2, 2, "PASSIVE"),
    ("two runs, 1 thread each", 2, 1, "PASSIVE"),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utts", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--adversary", default="grl")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    return parser.parse_args(argv)


def launch(args, folder, threads, policy):
    """Starts one run; returns the process."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("OMP_WAIT_POLICY", None)
    env = child_env(threads, env)
    env["OMP_WAIT_POLICY"] = policy  # only the setting's own policy
    demo = Path(args.workdir).resolve() / "demo_assets"
    cmd = [sys.executable, "train.py", str(common.DEMO_YAML),
           f"--adversary={args.adversary}",
           f"--demo_utts_per_speaker={args.utts}",
           f"--number_of_epochs={args.epochs}", "--probe_speakers=False",
           "--run_test=False", f"--demo_folder={demo}",
           f"--output_folder={folder}"]
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    log = open(f"{folder}.log", "w")
    return subprocess.Popen(cmd, cwd=common.RECIPE, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def run_setting(args, name, processes, threads, policy, rnd):
    """Seconds per training epoch of each process of one setting."""
    tag = name.replace(",", "").replace("'", "").replace(" ", "_")
    folders = [Path(args.workdir) / f"{tag}_{rnd}_{i}"
               for i in range(processes)]
    procs = [launch(args, f, threads, policy) for f in folders]
    for proc, folder in zip(procs, folders):
        if proc.wait() != 0:
            sys.exit(f"threads.py: {name} failed; see {folder}.log")
    out = []
    for folder in folders:
        timing = json.loads((folder / "timing.json").read_text())
        out.append(timing["phases"]["train"] / args.epochs)
    return out


def main(argv=None):
    args = parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="threads_")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    # Untimed: the corpus and the encoder, built once.
    run_setting(args, "warmup", 1, 1, "PASSIVE", 0)
    epochs = {s[0]: [] for s in SETTINGS}
    for rnd in range(args.rounds):
        k = rnd % len(SETTINGS)
        for name, procs, threads, policy in SETTINGS[k:] + SETTINGS[:k]:
            secs = run_setting(args, name, procs, threads, policy, rnd)
            epochs[name].append(statistics.mean(secs))
            print(name, rnd, [round(s, 2) for s in secs], flush=True)
    results = {"machine": common.machine(), "settings": {}}
    lines = ["# Threads: one run alone, two runs side by side", "",
             f"`python benchmarks/threads.py {' '.join(sys.argv[1:])}`", "",
             f"Demo recipe, {10 * args.utts} clips, `{args.adversary}`, "
             f"{args.epochs} epochs (probes and test off), {args.rounds} "
             "rounds interleaved, median. Machine: "
             f"{common.cpu_text(results['machine'])}, "
             f"{results['machine']['cores']} "
             "cores.", "",
             "| setting | s per epoch (each run) | epochs per minute "
             "(machine) |", "|---|---|---|"]
    for name, procs, threads, policy in SETTINGS:
        med = statistics.median(epochs[name])
        rate = 60.0 * procs / med
        results["settings"][name] = {
            "processes": procs, "threads": threads, "policy": policy,
            "s_per_epoch": round(med, 2), "epochs_per_min": round(rate, 2),
            "rounds": [round(x, 2) for x in epochs[name]]}
        lines.append(f"| {name} | {med:.1f} | {rate:.1f} |")
    out = Path(args.out)
    (out / "threads.json").write_text(json.dumps(results, indent=1))
    (out / "threads.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
