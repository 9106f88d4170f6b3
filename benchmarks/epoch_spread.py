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

With ``--curves`` it also reads each candidate the way ``adaptation.py``
chooses (mean validation ΔUA against ``none`` over k and biases) at each
run's latest checkpoint, the last finished epoch, which nothing chose,
for ``none`` too (``adaptation_curve(checkpoint="latest")``, cached in
each run as ``adaptation_curve_latest.json``), beside the same score at
the checkpoints the recipe chose (``adaptation_curve.json``).

It reads validation only. Writes ``<name>.md``/``.json``::

    python benchmarks/epoch_spread.py --workdir /work/adapt9 \\
        --candidate 'none;spknorm:spk_norm_train_offsets=drawn' [--curves]

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
    >>> spread({"1": 20.0, "2": 80.0})  # one epoch in the second half
    (80.0, 80.0, 0.0)
    """
    ua = [valid_ua[k] for k in sorted(valid_ua, key=int)]
    tail = ua[len(ua) // 2:]
    return max(ua), statistics.mean(tail), (
        statistics.stdev(tail) if len(tail) > 1 else 0.0)


def parse_args(argv=None):
    args = workdir_args(__doc__, "epoch_spread", argv, lambda parser: (
        parser.add_argument("--curves", action="store_true",
                            help="also each candidate's validation curve "
                            "at the latest checkpoint")))
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
    if args.curves:
        lines += curve_lines(args, result)
    common.write_report(args.out, args.name, result, lines)


def curves(args, cand):
    """``{bias: {run key: {checkpoint: {k: validation UA}}}}`` of a
    candidate's finished runs, at the recipe's (``best``) and the latest
    checkpoint."""
    from speechbrain_grl.evaluation.adaptation import adaptation_curve

    out = {}
    for bias, folder, s, key in finished_runs(args):
        run = evidence.run_folder(folder, bias, cand, s)
        best = json.loads((run / "adaptation_curve.json").read_text())
        latest = adaptation_curve(run, best["ks"], best["seed"],
                                  splits=("valid",), checkpoint="latest")
        out.setdefault(bias, {})[key] = {"best": best["UA"]["valid"],
                                         "latest": latest["valid"]}
    return out


def curve_lines(args, result):
    """The ``--curves`` section: per candidate and checkpoint, ΔUA against
    ``none`` at the same checkpoint by bias and k (mean over corpora of
    the per-corpus mean over seeds) and its mean over k and biases (the
    score ``adaptation.py`` chooses by); stored in ``result``."""
    corpora, seeds = args.corpora.split(","), args.seeds.split(",")
    cands = [c for c in args.candidate.split(";") if c != "none"]
    none = curves(args, "none")
    lines = [
        "", "## Curves at the latest checkpoint", "",
        "Validation ΔUA against `none` by k (each speaker's statistics "
        "from k of their clips, through the exported model), mean over "
        "corpora of the per-corpus mean over seeds, at the checkpoint the "
        "recipe chose (*best*: the rule's reading) and at the last "
        "finished epoch (*latest*: nothing chosen, `none`'s too); *mean*: "
        "over k and biases, the score by which `adaptation.py` chooses.",
        ""]
    for cand in cands:
        mine = curves(args, cand)
        ks = list(next(iter(next(iter(mine.values())).values()))["best"])
        result[cand]["curves"] = {}
        lines += [f"`{cand}`:", "", "| checkpoint | bias | "
                  + " | ".join(f"k={k}" for k in ks) + " | mean |",
                  "|---|---|" + "---|" * (len(ks) + 1)]
        for ckpt in ("best", "latest"):
            total = []
            result[cand].setdefault("UA", {})[ckpt] = round(
                _mean_ua(mine, ckpt, args.biases.split(","), corpora,
                         seeds, ks), 2)
            result.setdefault("none", {}).setdefault("UA", {})[ckpt] = (
                round(_mean_ua(none, ckpt, args.biases.split(","),
                               corpora, seeds, ks), 2))
            for bias in args.biases.split(","):
                delta = {k: statistics.mean(statistics.mean(
                    mine[bias][f"bias_{bias}/corpus_{c}/seed_{s}"][ckpt][k]
                    - none[bias][f"bias_{bias}/corpus_{c}/seed_{s}"][ckpt][k]
                    for s in seeds) for c in corpora) for k in ks}
                total += delta.values()
                result[cand]["curves"].setdefault(ckpt, {})[bias] = {
                    k: round(v, 2) for k, v in delta.items()}
                lines.append(f"| {ckpt} | {bias} | " + " | ".join(
                    f"{delta[k]:+.1f}" for k in ks) + " | |")
            mean = statistics.mean(total)
            result[cand]["curves"][ckpt]["mean"] = round(mean, 2)
            lines[-1] = lines[-1][:-1] + f"{mean:+.2f} |"
        lines += ["", "Mean validation UA over k and biases (not a "
                  "difference): " + "; ".join(
                      f"{ckpt} {result[cand]['UA'][ckpt]:.2f} (`none` "
                      f"{result['none']['UA'][ckpt]:.2f})"
                      for ckpt in ("best", "latest")) + ".", ""]
    return lines


def _mean_ua(curves_, ckpt, biases, corpora, seeds, ks):
    """A candidate's validation UA at ``ckpt``: the mean over biases
    and k of the mean over corpora of the per-corpus mean over seeds.

    Example
    -------
    >>> runs = {"0.9": {"bias_0.9/corpus_0/seed_1": {"latest": {"0": 40.0,
    ...     "all": 60.0}}, "bias_0.9/corpus_0/seed_2": {"latest": {
    ...     "0": 50.0, "all": 70.0}}}}
    >>> _mean_ua(runs, "latest", ["0.9"], ["0"], ["1", "2"], ["0", "all"])
    55.0
    """
    return statistics.mean(
        statistics.mean(statistics.mean(
            curves_[bias][f"bias_{bias}/corpus_{c}/seed_{s}"][ckpt][k]
            for s in seeds) for c in corpora)
        for bias in biases for k in ks)


if __name__ == "__main__":
    main()
