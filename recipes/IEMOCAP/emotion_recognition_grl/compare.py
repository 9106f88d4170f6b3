#!/usr/bin/env python3
"""Compares two cross-validation runs fold by fold.

> python compare.py results/demo_none/cv results/demo_grl/cv

Prints a side-by-side Markdown table of UA, WA and the speaker-probe
accuracy with the paired per-fold differences (B − A, mean ± std), and
writes it to ``<cv_dir_B>/compare_<A>_vs_<B>.md`` (or ``--output``).
"""

import argparse
import json
import os
import re
import sys

from speechbrain_grl.evaluation.report import compare_summaries


def _load(folder):
    path = os.path.join(folder, "cv_summary.json")
    try:
        with open(path, encoding="utf-8") as fin:
            return json.load(fin)
    except OSError:
        sys.exit(f"compare.py: error: {path} not found; run "
                 "cross_validate.py into that folder first")
    except ValueError:
        sys.exit(f"compare.py: error: {path} is not valid JSON; rerun "
                 "cross_validate.py to rewrite it")


def _names(a, b):
    """Short distinct names: the folders' last parts that differ."""
    pa = os.path.abspath(a).split(os.sep)
    pb = os.path.abspath(b).split(os.sep)
    for depth in range(1, min(len(pa), len(pb)) + 1):
        na, nb = "-".join(pa[-depth:]), "-".join(pb[-depth:])
        if na != nb:
            break
    def clean(name):
        """A name safe for a file name."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "run"
    return clean(na), clean(nb)


def main(argv):
    """Compares two cross-validation folders fold by fold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cv_dir_a")
    parser.add_argument("cv_dir_b")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    name_a, name_b = _names(args.cv_dir_a, args.cv_dir_b)
    try:
        table = compare_summaries(_load(args.cv_dir_a),
                                  _load(args.cv_dir_b), name_a, name_b)
    except ValueError as err:
        sys.exit(f"compare.py: error: {err}")
    out = args.output or os.path.join(
        args.cv_dir_b, f"compare_{name_a}_vs_{name_b}.md")
    with open(out, "w", encoding="utf-8") as fout:
        fout.write(table)
    print(table)
    print(f"written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
