#!/usr/bin/env python3
"""The from-scratch filterbank recipe against the classic baseline.

For every demo corpus (``--demo_corpus_seed``) and seed, the recipe
``hparams/ecapa_spknorm.yaml`` (SpeechBrain's ``Fbank``, sentence
``InputNormalization`` and a small ``ECAPA_TDNN``, trained from scratch)
trains ``none`` and ``spknorm`` on the weak-emotion-cue demo
(``--demo_emotion_strength=0.5``, speaker bias 0), validating on held-out
speakers, as ``benchmarks/adaptation.py`` does. Each method's setting
(``--configs``: overrides such as ``lr_ssl=0.002``) is the one with its
best mean validation UA over corpora and seeds; the test is read for
that setting only.

The classic baseline of ``benchmarks/adaptation.py`` (MFCC statistics
and a logistic regression) runs on the same splits, plain and with
per-speaker z-normalisation (each test speaker's MAP mean from all its
clips, the training speakers' pooled spread): ``none`` is paired with
the plain baseline and ``spknorm`` with the z-normalised one, per
(corpus, seed), with a 95% t interval over the pairs.

It also times training epochs of the demo's training set (the yaml's
own split; the recipe's Brain in-process, ``--threads`` CPU threads,
validation off).

Usage::

    python benchmarks/ecapa.py                       # 5 corpora x 3 seeds
    python benchmarks/ecapa.py --corpora 0 --seeds 1 --quick

Writes ``benchmarks/ecapa.json`` and ``.md`` (or ``--out``, ``--name``);
runs live in ``--workdir`` and finished ones are reused.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adaptation  # noqa: E402
import common  # noqa: E402
import evidence  # noqa: E402

ECAPA_YAML = common.RECIPE / "hparams" / "ecapa_spknorm.yaml"
FIXED = adaptation.FIXED + ["--demo_speaker_bias=0.0"]
MODES = ("none", "spknorm")


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="0,1,2,3,4")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--configs", default="lr_ssl=0.0005;lr_ssl=0.002",
                        help="settings chosen among on validation, "
                        "';'-separated, each default or key=value[:...]")
    parser.add_argument("--workdir", default="results/ecapa")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="ecapa")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads of the epoch timing")
    parser.add_argument("--epochs_timed", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs: a smoke test")
    parser.add_argument("overrides", nargs="*",
                        help="extra --key=value for every run (after --)")
    args = parser.parse_args(argv)
    args.overrides = FIXED + list(args.overrides) + (
        ["--number_of_epochs=2"] if args.quick else [])
    return args


def config_overrides(config):
    """``"lr_ssl=0.002:batch_size=8"`` → ``["--lr_ssl=0.002",
    "--batch_size=8"]``; ``default`` → ``[]``."""
    return [] if config == "default" else [
        f"--{kv}" for kv in config.split(":") if kv]


def run_folder(args, corpus, config, mode, seed):
    """Where one run lives."""
    name = config.replace(":", "_").replace("=", "-")
    return (Path(args.workdir).resolve() / f"corpus_{corpus}" / name / mode
            / f"seed_{seed}")


def train_command(args, corpus, config, mode, seed):
    """The train.py command line of one run."""
    demo = Path(args.workdir).resolve() / "demo_assets"
    return [sys.executable, "train.py", str(ECAPA_YAML),
            f"--adversary={mode}", f"--seed={seed}",
            *config_overrides(config), f"--demo_corpus_seed={corpus}",
            f"--output_folder={run_folder(args, corpus, config, mode, seed)}",
            f"--demo_folder={demo}", *args.overrides]


def train_all(args, jobs):
    """Trains what has no test metrics yet (``evidence.run_all``); the
    first run of a corpus runs alone (it builds the corpus)."""
    evidence.run_all(
        args, jobs, folder=lambda job: run_folder(args, *job),
        command_of=lambda job: train_command(args, *job),
        done=lambda job: (run_folder(args, *job)
                          / "test_metrics.json").is_file(),
        first_key=lambda job: job[0], name=args.name)


def test_ua(folder):
    """The run's test UA."""
    import json

    return json.loads((folder / "test_metrics.json").read_text())["UA"]


def epoch_seconds(args):
    """Seconds per training epoch of the demo's training set (the yaml's
    split: validation from the training speakers; strength 0.5, corpus 0,
    ``none``), the recipe's Brain in-process on ``args.threads`` threads;
    the first epoch (warm-up) is dropped."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_grl.brain import SpeakerAdversarialBrain
    from speechbrain_grl.dataio import dataio_prep
    from speechbrain_grl.dataio.prepare import prepare_corpus

    sys.path.insert(0, str(common.RECIPE))
    import train  # the recipe's own settings readers

    torch.set_num_threads(args.threads)
    out = Path(args.workdir).resolve() / "epoch_timing"
    overrides = {"output_folder": str(out), "adversary": "none",
                 "demo_folder": str(Path(args.workdir).resolve()
                                    / "demo_assets"),
                 "demo_emotion_strength": 0.5, "demo_corpus_seed": 0,
                 "number_of_epochs": args.epochs_timed + 1}
    with open(ECAPA_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    prepare_corpus(**train.prepare_hparams(hparams))
    data = dataio_prep(**train.data_hparams(hparams))
    for key in ("label_encoder", "spk_encoder", "class_counts"):
        hparams[key] = data[key]
    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"], opt_class=hparams["opt_class"],
        hparams=hparams, run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=None)
    times = []
    fit_train = brain._fit_train

    def timed(*a, **kw):
        start = time.perf_counter()
        fit_train(*a, **kw)
        times.append(time.perf_counter() - start)

    brain._fit_train = timed
    brain.fit(hparams["epoch_counter"], data["train"], None,
              train_loader_kwargs=hparams["dataloader_options"])
    return {"threads": args.threads, "train_clips": len(data["train"]),
            "seconds": [round(t, 2) for t in times],
            "median_after_first": round(statistics.median(times[1:]), 2)}


def summarise(args, jobs):
    """The report's numbers."""
    corpora, seeds = args.corpora.split(","), args.seeds.split(",")
    configs = args.configs.split(";")
    valid = {(c, k, m, s): evidence.best_valid_ua(run_folder(args, c, k, m,
                                                             s))
             for c, k, m, s in jobs}
    chosen, valid_means = {}, {}
    for mode in MODES:
        valid_means[mode] = {
            k: round(statistics.mean(valid[(c, k, mode, s)] for c in corpora
                                     for s in seeds), 2) for k in configs}
        chosen[mode] = max(configs, key=lambda k, m=mode: (
            valid_means[m][k], k == configs[0]))
    rows = []
    for c in corpora:
        for s in seeds:
            run = run_folder(args, c, chosen["none"], "none", s)
            base = adaptation.classic(run, ["all"], int(s))
            rows.append({
                "corpus": int(c), "seed": int(s),
                "none": test_ua(run),
                "spknorm": test_ua(run_folder(args, c, chosen["spknorm"],
                                              "spknorm", s)),
                "classic_plain": base["plain"],
                "classic_znorm": base["adapted"]["all"],
            })

    def paired(a, b):
        mean, ci = evidence.t_interval([r[a] - r[b] for r in rows])
        return {"mean": round(mean, 2), "ci95": [round(x, 2) for x in ci]}

    keys = ("none", "spknorm", "classic_plain", "classic_znorm")
    means = {k: round(statistics.mean(r[k] for r in rows), 2) for k in keys}
    per_corpus = {c: {k: round(statistics.mean(
        r[k] for r in rows if r["corpus"] == int(c)), 2) for k in keys}
        for c in corpora}
    return {
        "corpora": [int(c) for c in corpora],
        "seeds": [int(s) for s in seeds], "configs": configs,
        "valid_UA_mean": valid_means, "chosen": chosen,
        "test_UA_mean": means, "test_UA_per_corpus": per_corpus,
        "none_minus_classic_plain": paired("none", "classic_plain"),
        "spknorm_minus_classic_znorm": paired("spknorm", "classic_znorm"),
        "spknorm_minus_none": paired("spknorm", "none"),
        "rows": rows,
    }


def markdown(args, summary, timing):
    """The report."""
    s = summary
    ci = "{mean:+.2f} [{ci95[0]:+.2f}, {ci95[1]:+.2f}]".format
    met = {True: "met", False: "not met"}
    lines = [
        "# Filterbank ECAPA recipe vs the classic baseline", "",
        "`python benchmarks/ecapa.py " + " ".join(sys.argv[1:]) + "`", "",
        "Weak emotion cue (demo strength 0.5), speaker bias 0, validation "
        "on held-out speakers; recipe `hparams/ecapa_spknorm.yaml` from "
        f"scratch; corpora {s['corpora']}, seeds {s['seeds']}. Each "
        "method's setting is chosen on mean validation UA "
        f"(candidates {s['configs']}): {s['valid_UA_mean']}; chosen "
        f"{s['chosen']}. Paired differences per (corpus, seed), mean "
        "[95% t interval].", "",
        "| | test UA |", "|---|---|",
    ]
    names = {"none": "ECAPA `none`", "spknorm": "ECAPA `spknorm`",
             "classic_plain": "classic MFCC + LR",
             "classic_znorm": "classic MFCC + LR, per-speaker z-norm"}
    corpora = list(s["test_UA_per_corpus"])
    lines[-2:] = ["| | test UA | " + " | ".join(
        f"corpus {c}" for c in corpora) + " |",
        "|---|---|" + "---|" * len(corpora)]
    lines += [f"| {names[k]} | {v:.2f} | " + " | ".join(
        f"{s['test_UA_per_corpus'][c][k]:.2f}" for c in corpora) + " |"
        for k, v in s["test_UA_mean"].items()]
    a, b = s["none_minus_classic_plain"], s["spknorm_minus_classic_znorm"]
    lines += [
        "", "| paired difference | ΔUA | target |", "|---|---|---|",
        f"| `none` − classic plain | {ci(**a)} | ≥ 0: "
        f"{met[a['mean'] >= 0]} |",
        f"| `spknorm` − classic z-norm | {ci(**b)} | ≥ 0: "
        f"{met[b['mean'] >= 0]} |",
        f"| `spknorm` − `none` | {ci(**s['spknorm_minus_none'])} | |",
    ]
    if timing:
        lines += [
            "", f"Training epoch of the demo's training set "
            f"({timing['train_clips']} clips, {timing['threads']} threads): "
            f"{timing['median_after_first']} s (median after the first; "
            f"all: {timing['seconds']}); target ≤ 5 s: "
            f"{met[timing['median_after_first'] <= 5]}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Trains what is missing, times an epoch, writes the report."""
    args = parse_args(argv)
    jobs = [(c, k, m, s) for c in args.corpora.split(",")
            for s in args.seeds.split(",")
            for k in args.configs.split(";") for m in MODES]
    train_all(args, jobs)
    timing = epoch_seconds(args) if args.epochs_timed > 0 else None
    summary = summarise(args, jobs)
    summary["epoch_timing"] = timing
    summary["meta"] = {"machine": common.machine(),
                       "overrides": args.overrides}
    text = markdown(args, summary, timing)
    evidence.write_report(args.out, args.name, summary, text)
    print(text)


if __name__ == "__main__":
    main()
