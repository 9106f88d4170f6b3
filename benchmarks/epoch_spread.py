#!/usr/bin/env python3
"""How much choosing the best validation epoch flatters each candidate.

The recipe tests (and exports) the checkpoint of the epoch with the best
validation score, so a candidate's validation score at that checkpoint is
the best of its epochs: the more its epochs vary, the more the choice
adds. For the finished runs of an ``adaptation.py`` workdir it reads each
run's ``valid_summary.json`` (the recipe's validation UA per epoch) and
reports per candidate, as means over runs: the best epoch's UA, the mean
UA of the second half of the epochs (no choice made), their gap, and the
standard deviation of the second half's epochs.

It reads validation only. Writes ``<name>.md``/``.json``::

    python benchmarks/epoch_spread.py --workdir /work/adapt9 \\
        --candidate 'none;spknorm:spk_norm_train_offsets=drawn'

``--candidate`` takes candidates separated by ``;`` (one alone is
compared with ``none``).
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402
from voice_offsets import finished_runs, workdir_args  # noqa: E402


def spread(valid_ua):
    """``(best, second-half mean, second-half sd)`` of one run's
    validation UA by epoch (``{"1": ua, ...}``).

    Example
    -------
    >>> spread({"1": 20.0, "2": 80.0, "3": 50.0, "4": 70.0})
    (80.0, 60.0, 14.142135623730951)
    """
    ua = [valid_ua[k] for k in sorted(valid_ua, key=int)]
    tail = ua[len(ua) // 2:]
    return max(ua), statistics.mean(tail), statistics.stdev(tail)


def parse_args(argv=None):
    args = workdir_args(__doc__, "epoch_spread", argv)
    if ";" not in args.candidate:
        args.candidate = f"none;{args.candidate}"
    return args


def main(argv=None):
    args = parse_args(argv)
    result, lines = {}, [
        "# How much the best validation epoch flatters each candidate", "",
        common.command("epoch_spread.py", argv), "",
        "Each run's validation UA by epoch (the recipe's own validation "
        "pass, `valid_summary.json`); means over runs. *best*: the epoch "
        "the recipe tests and exports; *2nd half*: the mean of the later "
        "half of the epochs, where no epoch is chosen; *gap*: best − 2nd "
        "half; *sd*: the spread of the 2nd half's epochs. Validation only.",
        "", "| candidate | runs | best | 2nd half | gap | sd |",
        "|---|---|---|---|---|---|"]
    for cand in args.candidate.split(";"):
        rows = []
        for bias, folder, s, _ in finished_runs(args):
            path = (evidence.run_folder(folder, bias, cand, s)
                    / "valid_summary.json")
            if path.is_file():
                rows.append(spread(json.loads(path.read_text())["valid_UA"]))
        if not rows:
            sys.exit(f"epoch_spread.py: no finished run of {cand} in "
                     f"{args.workdir}; check --candidate and --seeds")
        best, half, sd = (statistics.mean(r[i] for r in rows)
                          for i in range(3))
        result[cand] = {"runs": len(rows), "best": round(best, 2),
                        "second_half": round(half, 2),
                        "gap": round(best - half, 2), "sd": round(sd, 2)}
        lines.append(f"| `{cand}` | {len(rows)} | {best:.2f} | {half:.2f} "
                     f"| {best - half:.2f} | {sd:.2f} |")
    common.write_report(args.out, args.name, result, lines)


if __name__ == "__main__":
    main()
