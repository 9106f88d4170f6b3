#!/usr/bin/env python3
"""Speaker adaptation through the deployed model: UA against clips per speaker.

For every corpus (``--demo_corpus_seed``), speaker bias and seed, the demo
recipe trains ``none`` and per-speaker normalisation (``spknorm``, one or
more configurations) on the weak-emotion-cue demo
(``--demo_emotion_strength=0.5``), validating on held-out speakers. Each
run is exported (:func:`speechbrain_grl.inference.export.export_model`)
and its validation and test speakers are classified through
:func:`speechbrain_grl.inference.adaptation.predict_speakers` (what
``speechbrain-grl-predict --speakers`` runs), each speaker's statistics
from k of their clips, k in ``--ks`` (0: the prior alone; all: every clip).
``none`` has no statistics: one UA for every k.

It reports ΔUA against ``none`` on the same runs, per k: the mean over
corpora of the per-corpus mean over seeds, with a 95% t interval over
corpora. With several spknorm configurations (``--candidates``), the one
with the best mean validation UA over k is reported (per bias), and
every candidate's validation curve is shown.

A classic baseline runs on the same splits: MFCC statistics (torchaudio,
mean and standard deviation over frames) and a scikit-learn logistic
regression, plain and with the same adaptation (each test speaker's MAP
mean from the same k clips, the pooled within-speaker spread of the
training speakers): :func:`speechbrain_grl.evaluation.classic.
adaptation_baseline`, the other benchmarks' classic rows.

Usage::

    python benchmarks/adaptation.py                     # 5 corpora x 5 seeds
    python benchmarks/adaptation.py --corpora 0 --seeds 1 --quick
    python benchmarks/adaptation.py --no-rotate_test_session \
        --no-unbiased_valid                             # the session-5 form

By default (``--rotate_test_session``) seed s tests on session
((s - 1) mod 5) + 1 (IEMOCAP's leave-one-session-out protocol, one fold
per seed): every corpus's 10 speakers are test speakers once, instead of
session 5's two. By default (``--unbiased_valid``) the validation session
(the one after the test session) has no favourite emotion either, as the
test session has none: validation then reads the distribution the model
is tested on, not the training speakers' shortcut.

Writes ``benchmarks/adaptation.json``, ``.md`` and ``.png`` (or ``--out``,
``--name``); runs live in ``--workdir`` and finished ones are reused.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402

from speechbrain_grl.dataio.iemocap import (  # noqa: E402
    valid_session_after,
)
from speechbrain_grl.evaluation.adaptation import (  # noqa: E402
    KS,
    adaptation_curve,
    plot_curves,
    tau_curves,
)

FIXED = ["--demo_emotion_strength=0.5", "--valid_from=held_out_speakers",
         "--probe_speakers=False"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="0,1,2,3,4")
    parser.add_argument("--biases", default="0.9,0.0")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--ks", default=",".join(KS))
    parser.add_argument("--candidates", default="spknorm",
                        help="spknorm configurations, ';'-separated, "
                        "each mode[:key=value...] (evidence.py's form)")
    parser.add_argument("--taus", default="0.5,1,2,5,10,auto",
                        help="prior strengths (clips; auto: each run's "
                        "empirical Bayes) chosen among on validation, for "
                        "the chosen configuration")
    parser.add_argument("--workdir", default="results/adaptation")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="adaptation")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rotate_test_session", default=True,
                        action=argparse.BooleanOptionalAction,
                        help="seed s tests on session ((s - 1) mod 5) + "
                        "1 (leave one session out), not session 5")
    parser.add_argument("--unbiased_valid", default=True,
                        action=argparse.BooleanOptionalAction,
                        help="the validation session without favourite "
                        "emotions, like the test session")
    parser.add_argument("--classic_balance", default="cells",
                        choices=("cells", "plain"),
                        help="the classic baseline's training speaker "
                        "means: balanced over their emotions as the "
                        "model's (cells), or plain (the reports before "
                        "December 4)")
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs: a smoke test")
    parser.add_argument("overrides", nargs="*",
                        help="extra --key=value for every run (after --)")
    args = parser.parse_args(argv)
    args.overrides = FIXED + list(args.overrides) + (
        ["--number_of_epochs=2"] if args.quick else [])
    return args


def run_folder(args, corpus, bias, mode, seed):
    return evidence.run_folder(Path(args.workdir) / f"corpus_{corpus}",
                               bias, mode, seed)


def test_session(args, seed):
    """The run's test session: 5, or with ``--rotate_test_session`` one
    per seed (leave one session out)."""
    return (int(seed) - 1) % 5 + 1 if args.rotate_test_session else 5


def unbiased_sessions(args, seed):
    """The sessions without favourite emotions: the test session, and
    with ``--unbiased_valid`` the validation session, the one after it
    (``valid_from=held_out_speakers`` of a session split)."""
    test = test_session(args, seed)
    return ([test, valid_session_after(test)] if args.unbiased_valid
            else [test])


def train_command(args, corpus, bias, mode, seed):
    name, extra = evidence.split_mode(mode)
    demo = Path(args.workdir).resolve() / "demo_assets"
    sessions = ",".join(map(str, unbiased_sessions(args, seed)))
    return [sys.executable, "train.py", str(common.DEMO_YAML),
            f"--adversary={name}", f"--seed={seed}", *extra,
            f"--test_session={test_session(args, seed)}",
            f"--demo_unbiased_sessions=[{sessions}]",
            f"--demo_speaker_bias={bias}", f"--demo_corpus_seed={corpus}",
            f"--output_folder={run_folder(args, corpus, bias, mode, seed)}",
            f"--demo_folder={demo}", *args.overrides]


def train_all(args, jobs):
    """Trains what has no test metrics yet (``evidence.run_all``, one
    thread per run); the first run of each corpus setting (corpus, bias
    and unbiased sessions) builds that corpus."""
    evidence.run_all(
        args, jobs, folder=lambda job: run_folder(args, *job),
        command_of=lambda job: train_command(args, *job),
        done=lambda job: (run_folder(args, *job)
                          / "test_metrics.json").is_file(),
        first_key=lambda job: (*job[:2],
                               *unbiased_sessions(args, job[3])),
        name="adaptation")


def classic(run, ks, seed, tau, balance="plain"):
    """The classic baseline (MFCC statistics + logistic regression) on a
    run's splits: test UA plain (one value) and with per-speaker
    adaptation with the prior strength chosen for the model (per k;
    :func:`speechbrain_grl.evaluation.classic.adaptation_baseline`;
    ``balance``: how a training speaker's mean weighs their emotions)."""
    from speechbrain_grl.evaluation.classic import (
        adaptation_baseline,
        run_split,
    )

    return adaptation_baseline(run_split(run, "train"),
                               run_split(run, "test"), ks, seed, tau,
                               balance=balance)


def classic_folds(args, corpus, bias, ks, tau):
    """:func:`classic` on a corpus's first seed's splits or, with
    ``--rotate_test_session``, the mean over its seeds' test sessions."""
    seeds = (args.seeds.split(",") if args.rotate_test_session
             else args.seeds.split(",")[:1])
    tau = tau if tau == "auto" else float(tau)
    folds = [classic(run_folder(args, corpus, bias, "none", s), ks, 0, tau,
                     balance=args.classic_balance) for s in seeds]
    return {"plain": sum(f["plain"] for f in folds) / len(folds),
            "adapted": {k: sum(f["adapted"][k] for f in folds) / len(folds)
                        for k in ks},
            "tau": sum(f["tau"] for f in folds) / len(folds)}


def interval(values):
    mean, ci = evidence.t_interval(values)
    return round(mean, 2), [round(c, 2) for c in ci]


def validation_score(args, results, mode):
    """Mean validation ΔUA of ``mode`` against ``none`` over biases,
    corpora, seeds and ks: what a configuration is chosen by."""
    deltas = [results[(c, b, mode, s)]["valid"][k]
              - results[(c, b, "none", s)]["valid"][k]
              for b in args.biases.split(",")
              for c in args.corpora.split(",")
              for s in args.seeds.split(",") for k in args.ks.split(",")]
    return sum(deltas) / len(deltas)


def run_taus(run, names):
    """``{name: prior strength}`` for a run: numbers as given; ``auto``,
    the run's empirical-Bayes strength (``SpeakerNorm.empirical_tau`` of
    its exported checkpoint)."""
    from speechbrain_grl.inference.export import trained_speaker_norm

    return {n: (trained_speaker_norm(run).empirical_tau() if n == "auto"
                else float(n)) for n in names}


def choose_tau(args, jobs):
    """The prior strength with the best mean validation UA over the
    chosen configuration's runs and ks (:func:`tau_curves`), its value
    per run, and every strength's curves per run (``{job: {split:
    {name: {k: UA}}}}``, the test curves for the report only)."""
    names = args.taus.split(",")
    ks = args.ks.split(",")
    score = dict.fromkeys(names, 0.0)
    values, curves = {}, {}
    for job in jobs:
        values[job] = run_taus(run_folder(args, *job), names)
        curves[job] = {split: tau_curves(run_folder(args, *job),
                                         values[job], ks, int(job[3]),
                                         split=split)
                       for split in ("valid", "test")}
        for name in names:
            score[name] += sum(curves[job]["valid"][name][k]
                               for k in ks) / (len(ks) * len(jobs))
    best = max(names, key=lambda n: round(score[n], 6))
    return best, {n: round(v, 2) for n, v in score.items()}, {
        job: values[job][best] for job in jobs}, curves


def tau_table(args, results, curves, bias):
    """``{split: {tau: {k: ΔUA}}}``: each prior strength's UA minus
    ``none``'s on the same runs, mean over corpora of the per-corpus
    mean over seeds."""
    corpora, seeds = args.corpora.split(","), args.seeds.split(",")
    mode = next(iter(curves))[2]
    out = {}
    for split in ("valid", "test"):
        out[split] = {}
        for name in args.taus.split(","):
            out[split][name] = {k: round(sum(
                sum(curves[(c, bias, mode, s)][split][name][k]
                    - results[(c, bias, "none", s)][split][k]
                    for s in seeds) / len(seeds) for c in corpora)
                / len(corpora), 2) for k in args.ks.split(",")}
    return out


def summarise(args, results, classic_res, chosen, choice):
    """The report's numbers: per bias, the chosen configuration's ΔUA
    curve, the candidates' validation curves, the classic rows."""
    ks = args.ks.split(",")
    corpora = args.corpora.split(",")
    seeds = args.seeds.split(",")
    cands = args.candidates.split(";")
    out = {}
    for bias in args.biases.split(","):
        def per_corpus(mode, split, k, bias=bias):
            return [sum(results[(c, bias, mode, s)][split][k]
                        - results[(c, bias, "none", s)][split][k]
                        for s in seeds) / len(seeds) for c in corpora]

        none_ua = [results[(c, bias, "none", s)]["test"][ks[0]]
                   for c in corpora for s in seeds]
        curve = {}
        for k in ks:
            mean, ci = interval(per_corpus(chosen, "test", k))
            curve[k] = {"delta_UA_mean": mean, "delta_UA_ci95": ci}
        classic_curve = {}
        for k in ks:
            d = [classic_res[(c, bias)]["adapted"][k]
                 - classic_res[(c, bias)]["plain"] for c in corpora]
            classic_curve[k] = {"delta_UA_mean": interval(d)[0],
                                "delta_UA_ci95": interval(d)[1]}
        out[f"bias_{bias}"] = {
            "curve": curve,
            "none_UA_mean": round(sum(none_ua) / len(none_ua), 2),
            "seeds": [int(s) for s in seeds],
            "corpora": [int(c) for c in corpora],
            "chosen": chosen,
            **choice,
            "candidates_valid_curve": {
                m: {k: interval(per_corpus(m, "valid", k))[0] for k in ks}
                for m in cands},
            "classic": {
                "balance": args.classic_balance,
                "tau_mean": round(sum(classic_res[(c, bias)]["tau"]
                                      for c in corpora) / len(corpora), 3),
                "plain_UA_mean": round(sum(
                    classic_res[(c, bias)]["plain"] for c in corpora)
                    / len(corpora), 2),
                "adapted_minus_plain": classic_curve,
                "plain_minus_none": interval(
                    [classic_res[(c, bias)]["plain"]
                     - sum(results[(c, bias, "none", s)]["test"][ks[0]]
                           for s in seeds) / len(seeds)
                     for c in corpora]),
            },
        }
    return out


def markdown(args, summary):
    ks = args.ks.split(",")
    lines = ["# Speaker adaptation through the deployed model", "",
             "`python benchmarks/adaptation.py " + " ".join(
                 sys.argv[1:]) + "`", "",
             "Weak emotion cue (demo strength 0.5), validation on held-out "
             "speakers, probes off, "
             + ("seed s tests on session s (leave one session out: every "
                "speaker is a test speaker once)"
                if args.rotate_test_session else "test session 5")
             + (", the validation session (the next one) as unbiased as "
                "the test session. " if args.unbiased_valid else ". ")
             + "ΔUA against `none` on the same runs "
             "(exported model, `predict_speakers`), mean over corpora of "
             "the per-corpus mean over seeds, [95% t interval over "
             "corpora]. k: clips per speaker for its statistics (0: the "
             "prior alone).", ""]
    for bias, res in summary.items():
        lines += [f"## {bias.replace('_', ' ')}", "",
                  f"`none` test UA {res['none_UA_mean']}; chosen on "
                  f"validation (both biases): `{res['chosen']}`, prior "
                  f"worth τ = {res['tau']} clips (per run: "
                  f"{res['tau_per_run']}; validation UA by τ: "
                  f"{res['tau_validation_UA']}); corpora {res['corpora']}, "
                  f"seeds {res['seeds']}.", "",
                  "| | " + " | ".join(f"k={k}" for k in ks) + " |",
                  "|---|" + "---|" * len(ks),
                  "| spknorm − none (test) | " + " | ".join(
                      f"{res['curve'][k]['delta_UA_mean']:+.1f} "
                      f"[{res['curve'][k]['delta_UA_ci95'][0]:+.1f}, "
                      f"{res['curve'][k]['delta_UA_ci95'][1]:+.1f}]"
                      for k in ks) + " |"]
        for m, curve in res["candidates_valid_curve"].items():
            lines.append(f"| `{m}` − none (validation) | " + " | ".join(
                f"{curve[k]:+.1f}" for k in ks) + " |")
        cl = res["classic"]
        lines.append("| classic z-norm − plain (test) | " + " | ".join(
            f"{cl['adapted_minus_plain'][k]['delta_UA_mean']:+.1f}"
            for k in ks) + " |")
        if "tau_curves" in res:
            lines += ["", f"`{res['chosen']}` − none by prior worth τ "
                      "(validation chooses τ; test shown, not read):", "",
                      "| τ | split | " + " | ".join(f"k={k}" for k in ks)
                      + " |", "|---|---|" + "---|" * len(ks)]
            for split in ("valid", "test"):
                for name, curve in res["tau_curves"][split].items():
                    lines.append(f"| {name} | {split} | " + " | ".join(
                        f"{curve[k]:+.1f}" for k in ks) + " |")
        lines += ["", f"Classic baseline (MFCC statistics + logistic "
                  f"regression, adapted with the same τ: mean "
                  f"{cl['tau_mean']:g} clips, training speaker means "
                  + ("balanced over their emotions as the model's"
                     if cl.get("balance") == "cells" else "plain")
                  + f") plain test UA "
                  f"{cl['plain_UA_mean']}; "
                  f"plain − `none` {cl['plain_minus_none'][0]:+.1f} "
                  f"[{cl['plain_minus_none'][1][0]:+.1f}, "
                  f"{cl['plain_minus_none'][1][1]:+.1f}].", ""]
    return "\n".join(lines) + "\n"


def plot(args, summary, path):
    """ΔUA against k per bias, with the 95% interval shaded."""
    plot_curves({f"spknorm, {bias}": {
        k: (c["delta_UA_mean"], *c["delta_UA_ci95"])
        for k, c in res["curve"].items()} for bias, res in summary.items()},
        path, ylabel="ΔUA vs none (points)")


def main(argv=None):
    args = parse_args(argv)
    ks = args.ks.split(",")
    modes = ["none"] + args.candidates.split(";")
    jobs = [(c, b, m, s) for b in args.biases.split(",")
            for c in args.corpora.split(",") for s in args.seeds.split(",")
            for m in modes]
    train_all(args, jobs)
    results = {j: adaptation_curve(run_folder(args, *j), ks, int(j[3]))
               for j in jobs}
    cands = args.candidates.split(";")
    scores = {m: validation_score(args, results, m) for m in cands}
    chosen = max(cands, key=lambda m: scores[m])
    mine = [j for j in jobs if j[2] == chosen]
    tau, tau_scores, tau_values, curves = choose_tau(args, mine)
    results.update({j: adaptation_curve(run_folder(args, *j), ks, int(j[3]),
                                        tau=tau_values[j]) for j in mine})
    spread = sorted(tau_values.values())
    choice = {"validation_mean_delta": {m: round(v, 2)
                                        for m, v in scores.items()},
              "tau": tau, "tau_validation_UA": tau_scores,
              "tau_per_run": {"min": round(spread[0], 3),
                              "median": round(spread[len(spread) // 2], 3),
                              "max": round(spread[-1], 3)}}
    classic_res = {(c, b): classic_folds(args, c, b, ks, tau)
                   for c in args.corpora.split(",")
                   for b in args.biases.split(",")}
    summary = summarise(args, results, classic_res, chosen, choice)
    for bias in args.biases.split(","):
        summary[f"bias_{bias}"]["tau_curves"] = tau_table(
            args, results, curves, bias)
    summary["meta"] = {"machine": common.machine(), "ks": ks,
                       "overrides": args.overrides}
    evidence.write_report(args.out, args.name, summary,
                          markdown(args, {k: v for k, v in summary.items()
                                          if k != "meta"}))
    plot(args, {k: v for k, v in summary.items() if k != "meta"},
         Path(args.out) / f"{args.name}.png")
    print(markdown(args, {k: v for k, v in summary.items() if k != "meta"}))


if __name__ == "__main__":
    main()
