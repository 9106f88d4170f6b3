#!/usr/bin/env python3
"""The same modes in two ``adaptation.py`` workdirs, paired run by run.

Two workdirs that differ in one setting applied to every run (e.g.
``-- --augment_prob=1.0``) hold runs of the same modes, corpora, biases
and seeds. For each mode this reads every run's cached curve at the
checkpoint the recipe chose (``adaptation_curve.json``: UA by k, the
clips per speaker for its statistics, on validation and test) and
reports UA in A, UA in B and A − B per bias and k: means over corpora of
the per-corpus mean over seeds, the difference with its 95% t interval
over corpora. Nothing is trained or scored here; ``adaptation.py`` must
have run in both workdirs.

    python benchmarks/paired_runs.py --a /work/adaptA --b /work/adapt9 \\
        --modes 'none;spknorm' --name speed_perturb_paired

Writes ``<name>.md`` and ``<name>.json``.
"""

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adaptation  # noqa: E402
import common  # noqa: E402
import evidence  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--a", required=True, help="workdir A")
    parser.add_argument("--b", required=True, help="workdir B")
    parser.add_argument("--a_label", default="A")
    parser.add_argument("--b_label", default="B")
    parser.add_argument("--modes", required=True,
                        help="';'-separated modes, named as in both")
    parser.add_argument("--corpora", default="0,1,2,3,4")
    parser.add_argument("--biases", default="0.9,0.0")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="paired_runs")
    return parser.parse_args(argv)


def curve(workdir, corpus, bias, mode, seed):
    """A run's cached ``{split: {k: UA}}``; a one-line exit if absent."""
    folder = evidence.run_folder(Path(workdir) / f"corpus_{corpus}", bias,
                                 mode, seed)
    path = folder / "adaptation_curve.json"
    if not path.is_file():
        sys.exit(f"paired_runs.py: {path} is missing; run adaptation.py "
                 f"with --workdir {workdir} for {mode} first")
    return json.loads(path.read_text())["UA"]


def compare(args):
    """``{mode: {bias: {split: {k: {a, b, delta, ci95}}}}}``."""
    corpora, seeds = args.corpora.split(","), args.seeds.split(",")
    out = {}
    for mode in args.modes.split(";"):
        for bias in args.biases.split(","):
            runs = {(c, s): (curve(args.a, c, bias, mode, s),
                             curve(args.b, c, bias, mode, s))
                    for c in corpora for s in seeds}
            for split in ("valid", "test"):
                ks = list(runs[(corpora[0], seeds[0])][0][split])
                cell = {}
                for k in ks:
                    per = {side: [statistics.mean(
                        runs[(c, s)][side][split][k] for s in seeds)
                        for c in corpora] for side in (0, 1)}
                    mean, ci = adaptation.interval(
                        [a - b for a, b in zip(per[0], per[1])])
                    cell[k] = {"a": round(statistics.mean(per[0]), 2),
                               "b": round(statistics.mean(per[1]), 2),
                               "delta": mean, "ci95": ci}
                out.setdefault(mode, {}).setdefault(bias, {})[split] = cell
    return out


def markdown(args, result):
    lines = ["# Paired runs: two workdirs, the same modes", "",
             common.command("paired_runs.py"), "",
             f"A = {args.a_label} (`{args.a}`), B = {args.b_label} "
             f"(`{args.b}`); corpora {args.corpora}, seeds {args.seeds}. "
             "UA at the checkpoint the recipe chose, by k (clips per "
             "speaker for its statistics; flat for `none`), mean over "
             "corpora of the per-corpus mean over seeds; A − B [95% t "
             "interval over corpora].", ""]
    for mode, biases in result.items():
        for bias, splits in biases.items():
            for split, cell in splits.items():
                ks = list(cell)
                lines += [f"## `{mode}`, bias {bias}, {split}", "",
                          "| | " + " | ".join(f"k={k}" for k in ks) + " |",
                          "|---|" + "---|" * len(ks),
                          f"| {args.a_label} | " + " | ".join(
                              f"{cell[k]['a']:.1f}" for k in ks) + " |",
                          f"| {args.b_label} | " + " | ".join(
                              f"{cell[k]['b']:.1f}" for k in ks) + " |",
                          "| A − B | " + " | ".join(
                              f"{cell[k]['delta']:+.1f} "
                              f"[{cell[k]['ci95'][0]:+.1f}, "
                              f"{cell[k]['ci95'][1]:+.1f}]" for k in ks)
                          + " |", ""]
    return lines


def main(argv=None):
    args = parse_args(argv)
    result = compare(args)
    common.write_report(args.out, args.name,
                        {**result, "meta": {"a": args.a, "b": args.b}},
                        markdown(args, result))


if __name__ == "__main__":
    main()
