#!/usr/bin/env python3
"""What caps per-speaker normalisation on the shortcut corpora: the
classic pipeline with every held-out speaker's own mean, trained on a
bias-0.9 corpus against its bias-0 twin, scored on the same clips.

``adaptation.py``'s corpora come in twins: the same seed with speaker
bias 0.9 (each training speaker says their favourite emotion 90% of the
time) and 0 (every emotion alike). The voices are the same and so are
the held-out sessions, which are unbiased in both (leave one session
out, an unbiased validation session): only the emotions of the training
speakers' clips differ. On each twin's splits (the same as
``adaptation.py``'s runs, prepared here without training) the classic
baseline (MFCC statistics, logistic regression:
:func:`speechbrain_grl.evaluation.classic.adaptation_baseline`) is
normalised per speaker as the model is, with the pooled within-speaker
spread, and each held-out speaker's mean from all their clips (k = all,
a MAP mean with the prior worth ``--tau`` clips), four ways:

- ``plain``: trained on the bias-0.9 clips, no normalisation;
- ``biased``: trained on the bias-0.9 clips, each training speaker's
  mean balanced over the emotions they said (``cells``, as the model);
- ``biased_true_voice``: the same clips, each training speaker's mean
  the plain mean of the same speaker's clips in the bias-0 twin, where
  they say every emotion alike (the mean a balanced corpus would give);
- ``unbiased``: trained on the bias-0 twin's training clips (``cells``).

``biased`` against ``biased_true_voice`` is what the training speakers'
estimated means cost; ``biased_true_voice`` against ``unbiased`` is what
the biased training clips cost with the voice taken out exactly. UA is
the mean over corpora of the per-corpus mean over seeds, [95% t interval
over corpora] for the differences.

    python benchmarks/bias_ceiling.py [--workdir DIR] [--seeds 1,2,3,4,5]

``--workdir`` may be ``adaptation.py``'s, whose demo corpora are then
reused. Writes ``benchmarks/bias_ceiling.md`` and ``bias_ceiling.json``.
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adaptation  # noqa: E402
import common  # noqa: E402
import evidence  # noqa: E402

VARIANTS = ("plain", "biased", "biased_true_voice", "unbiased")
DIFFS = (("biased", "plain"), ("biased_true_voice", "biased"),
         ("unbiased", "biased_true_voice"), ("unbiased", "biased"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="0,1,2,3,4")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--bias", default="0.9",
                        help="the shortcut twin's speaker bias")
    parser.add_argument("--tau", type=float, default=1.0,
                        help="the prior's worth in clips (the shipped τ)")
    parser.add_argument("--utts", type=int, default=None,
                        help="demo clips per speaker (default: the demo's)")
    parser.add_argument("--workdir", default="results/bias_ceiling")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="bias_ceiling")
    return parser.parse_args(argv)


def splits(args, bias, corpus, seed):
    """``{split: Split}`` of the run ``adaptation.py`` makes of ``none``
    on this corpus, bias and seed (its manifests, prepared here)."""
    from speechbrain_grl.evaluation.classic import load_split

    work = Path(args.workdir).resolve()
    plan = adaptation.parse_args(["--workdir", str(work)])
    command = adaptation.train_command(plan, corpus, bias, "none", seed)
    overrides = [a for a in command if a.startswith("--")
                 and not a.startswith(("--output_folder", "--demo_folder"))]
    if args.utts:
        overrides.append(f"--demo_utts_per_speaker={args.utts}")
    folder = work / "bias_ceiling" / f"bias_{bias}" / (
        f"corpus_{corpus}_seed_{seed}")
    manifests, hparams = common.demo_manifests(
        folder, [*adaptation.FIXED, *overrides], work / "demo_assets")
    return {s: load_split(manifests / f"{s}.json", hparams["data_folder"])
            for s in ("train", "valid", "test")}


def fold(args, corpus, seed):
    """``{split: {variant: UA}}`` and whether the twins' held-out clips
    are the same sound (their features equal)."""
    import numpy as np

    from speechbrain_grl.evaluation.classic import (
        adaptation_baseline,
        speaker_means,
    )

    biased = splits(args, args.bias, corpus, seed)
    twin = splits(args, "0.0", corpus, seed)
    if set(biased["train"].speakers) != set(twin["train"].speakers):
        raise SystemExit("bias_ceiling.py: the twins' training speakers "
                         f"differ (corpus {corpus}, seed {seed})")
    true_voice = speaker_means(twin["train"].x(), twin["train"].speakers)
    out, same = {}, True
    for split in ("valid", "test"):
        held = biased[split]
        same = same and bool(np.array_equal(held.x(), twin[split].x()))
        runs = {
            "biased": adaptation_baseline(biased["train"], held, ["all"],
                                          seed, args.tau, "cells"),
            "biased_true_voice": adaptation_baseline(
                biased["train"], held, ["all"], seed, args.tau,
                means=true_voice),
            "unbiased": adaptation_baseline(twin["train"], held, ["all"],
                                            seed, args.tau, "cells"),
        }
        out[split] = {"plain": runs["biased"]["plain"],
                      **{name: res["adapted"]["all"]
                         for name, res in runs.items()}}
    return out, same


def summarise(args, folds):
    """Means over corpora of per-corpus means over seeds, and paired
    differences with their t intervals over corpora."""
    corpora, seeds = args.corpora.split(","), args.seeds.split(",")
    summary = {}
    for split in ("valid", "test"):
        per_corpus = {v: [statistics.mean(folds[(c, s)][0][split][v]
                                          for s in seeds) for c in corpora]
                      for v in VARIANTS}
        cell = {v: round(statistics.mean(per_corpus[v]), 2)
                for v in VARIANTS}
        cell["differences"] = {}
        for a, b in DIFFS:
            mean, ci = adaptation.interval(
                [x - y for x, y in zip(per_corpus[a], per_corpus[b])])
            cell["differences"][f"{a} - {b}"] = {"mean": mean, "ci95": ci}
        summary[split] = cell
    summary["same_held_out_clips"] = all(same for _, same in folds.values())
    summary["corpora"], summary["seeds"] = corpora, seeds
    summary["bias"], summary["tau"] = args.bias, args.tau
    return summary


def markdown(args, summary):
    lines = ["# What caps per-speaker normalisation on the shortcut "
             "corpora", "", common.command("bias_ceiling.py"), "",
             "The classic pipeline (MFCC statistics + logistic regression) "
             f"on `adaptation.py`'s splits, corpora {args.corpora}, seeds "
             f"{args.seeds}: trained on the bias-{args.bias} corpus or its "
             "bias-0 twin (the same voices and the same unbiased held-out "
             "sessions; held-out clips identical in the twins: "
             f"{summary['same_held_out_clips']}), each held-out speaker "
             "normalised with all their clips (k = all, the prior worth "
             f"τ = {args.tau:g} clips) and the pooled spread. *plain*: no "
             "normalisation; *biased*: training speakers' means balanced "
             "over the emotions they said, as the model's; "
             "*biased_true_voice*: the same clips, each training speaker's "
             "mean from their clips in the bias-0 twin; *unbiased*: "
             "trained on the twin. UA, mean over corpora of the per-corpus "
             "mean over seeds; differences [95% t interval over corpora].",
             "", "| split | " + " | ".join(VARIANTS) + " | "
             + " | ".join(f"{a} − {b}" for a, b in DIFFS) + " |",
             "|---|" + "---|" * (len(VARIANTS) + len(DIFFS))]
    for split in ("valid", "test"):
        cell = summary[split]
        diffs = [cell["differences"][f"{a} - {b}"] for a, b in DIFFS]
        lines.append(
            f"| {split} | " + " | ".join(f"{cell[v]:.1f}" for v in VARIANTS)
            + " | " + " | ".join(
                f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, "
                f"{d['ci95'][1]:+.1f}]" for d in diffs) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    folds = {}
    for c in args.corpora.split(","):
        for s in args.seeds.split(","):
            folds[(c, s)] = fold(args, c, s)
            print("corpus", c, "seed", s, folds[(c, s)][0]["test"],
                  flush=True)
    summary = summarise(args, folds)
    summary["meta"] = {"machine": common.machine()}
    text = markdown(args, summary)
    evidence.write_report(args.out, args.name, summary, text)
    print(text)


if __name__ == "__main__":
    main()
