#!/usr/bin/env python3
"""Training step time of two versions of the code, interleaved, as ratios.

Runs ``benchmarks/train_step.py`` of a *before* tree and of an *after*
tree (each imported from its own folder), alternately, ``--rounds`` times
(before, after, after, before, ... so that drifting load hits both
alike), and reports per mode the median step time of each and the ratio
after / before of the medians over rounds. Use it to check that a change
leaves training no slower, e.g. the tree of the previous commit::

    git worktree add /tmp/before HEAD~1
    python benchmarks/code_versions.py --before /tmp/before --after .

Writes ``--out`` (``.json`` and ``.md``) when given.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="the old tree")
    parser.add_argument("--after", default=".", help="the new tree")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", default=None,
                        help="report stem (writes .json and .md)")
    parser.add_argument("step_args", nargs="*",
                        help="train_step.py arguments (after --)")
    return parser.parse_args(argv)


def run_once(tree, step_args, workdir):
    """One train_step.py run of ``tree``; its ``timing``."""
    tree = Path(tree).resolve()
    out = Path(workdir) / "step.json"
    env = dict(os.environ, PYTHONPATH=str(tree), HF_HUB_OFFLINE="1")
    subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "train_step.py"),
         "--no_memory", "--json", str(out), "--workdir", str(workdir),
         *step_args], check=True, env=env, cwd=tree, capture_output=True)
    return json.loads(out.read_text())["timing"]


def compare(runs):
    """``{mode: {before_s, after_s, ratio}}`` from ``{version: [timing]}``
    (the median over rounds of each round's median step)."""
    out = {}
    for mode in runs["before"][0]:
        med = {v: statistics.median(t[mode]["step"]["median"]
                                    for t in runs[v]) for v in runs}
        out[mode] = {"before_s": round(med["before"], 5),
                     "after_s": round(med["after"], 5),
                     "ratio": round(med["after"] / med["before"], 3)}
    return out


def main(argv=None):
    args = parse_args(argv)
    runs = {"before": [], "after": []}
    order = ["before", "after"]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for version in (order if r % 2 == 0 else order[::-1]):
                tree = args.before if version == "before" else args.after
                runs[version].append(run_once(tree, args.step_args, tmp))
    table = compare(runs)
    lines = ["| mode | before (s/step) | after (s/step) | after / before |",
             "|---|---|---|---|"]
    lines += [f"| {m} | {r['before_s']:.4f} | {r['after_s']:.4f} | "
              f"{r['ratio']:.3f} |" for m, r in table.items()]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(f"{args.out}.json").write_text(json.dumps(
            {"rounds": args.rounds, "step_args": args.step_args,
             "compare": table, "runs": runs}, indent=1))
        Path(f"{args.out}.md").write_text(
            "# Training step, before vs after\n\n"
            f"`python benchmarks/code_versions.py {' '.join(sys.argv[1:])}`"
            f"\n\n{args.rounds} interleaved rounds of `train_step.py`; "
            "median over rounds of each round's median step.\n\n"
            + text + "\n")


if __name__ == "__main__":
    main()
