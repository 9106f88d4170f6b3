#!/usr/bin/env python3
"""Cross-validates the recipe under an evaluation protocol.

Each fold is a normal ``train.py`` run into ``<output_folder>/<fold>/``;
finished folds are skipped and interrupted ones resume, so rerunning the
same command continues where it stopped. Then it writes, in
``<output_folder>``, ``cv_summary.json``/``.md`` and
``confusion_matrix.png``, plus ``vad_scatter.png`` for runs that predict
valence, arousal and dominance (or, for ``lowres``, ``lowres_summary.json``/
``.md`` and ``lowres_curve.png``).

> python cross_validate.py hparams/demo_grl.yaml --protocol session
> python cross_validate.py hparams/wav2vec2_grl.yaml --protocol speaker \
>     --data_folder=/path/to/IEMOCAP_full_release --folds 1,2
> python cross_validate.py hparams/demo_grl.yaml --protocol lowres \
>     --lowres_sizes 5,10 --lowres_draws 2
> python cross_validate.py hparams/demo_grl.yaml --protocol session \
>     --folds 5 --sweep lambda_max=0.03,0.1,0.3
> python cross_validate.py hparams/wav2vec2_grl.yaml --protocol \
>     speaker_kfold --corpus=crema_d --data_folder=/path/to/CREMA-D
> python cross_validate.py hparams/demo_grl.yaml --protocol cross_corpus \
>     --test_corpus crema_d,ravdess --seeds 3

``session``, ``speaker``, ``random`` and ``lowres`` use IEMOCAP's own
splits; ``speaker_kfold`` works for every corpus. ``cross_corpus`` trains
the corpus's own split once per seed and tests each run zero-shot on the
whole of every ``--test_corpus`` (``--test_data_folder`` gives their
folders, comma-separated; the demo makes its own), then writes
``cross_corpus.md`` (train corpus × test corpus) and ``cv_summary.json``,
which ``compare.py`` pairs run by run.

``--sweep KEY=V1,V2,...`` (repeatable: a grid) trains every value on every
fold with testing off (``--run_test=False``) into
``<output_folder>/sweep/<KEY-V>/``, picks the value with the best mean
validation UA (``valid_summary.json``; no test metric is computed or read
until then), writes ``sweep_summary.json``/``.md``, and only then tests
the picked value's folds and writes the usual report for them.

``--adaptation_curve`` (models with speaker normalisation) also exports
every fold and writes ``adaptation_curve.json``/``.png``: test UA against
the number of clips each test speaker's statistics come from, through the
deployed model (:mod:`speechbrain_grl.evaluation.adaptation`).

> python cross_validate.py hparams/demo_grl.yaml --protocol session \
>     --adversary=spknorm --adaptation_curve

``--jobs N`` trains N folds at once, each on cores / N threads (the first
missing fold alone, as it may build the demo's corpus); a fold's output
then goes to ``<fold>/stdout.txt``.

Any other ``--key=value`` is a hparam override passed to every fold.
"""

import argparse
import json
import os
import sys

from speechbrain_grl.dataio.iemocap import speakers
from speechbrain_grl.evaluation.adaptation import (
    KS,
    adaptation_curve,
    plot_curves,
)
from speechbrain_grl.evaluation.protocols import (
    IEMOCAP_PROTOCOLS,
    LOWRES_SIZES,
    PROTOCOL_KEYS,
    PROTOCOLS,
    ProtocolError,
    best_valid,
    make_folds,
    parse_overrides,
    parse_sweep,
    pick_by_valid,
    resolve_hparams,
    run_folds,
    select_folds,
    sweep_tag,
)
from speechbrain_grl.evaluation.report import (
    summarize_cross_corpus,
    summarize_folds,
    summarize_lowres,
    vad_scatter_from_runs,
    write_cross_corpus_report,
    write_cv_report,
    write_lowres_report,
)
from speechbrain_grl.utils.jsonio import write_json_atomic

HERE = os.path.dirname(os.path.abspath(__file__))


def _ints(text, option):
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ProtocolError(f"{option} {text}: use positive integers "
                            "like 5,10")
    return values


def main(argv):
    """Runs the folds of a protocol, then writes the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hparams_file")
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--folds", default=None,
                        help="fold numbers to run, e.g. 1,3 (default all)")
    parser.add_argument("--lowres_sizes",
                        default=",".join(map(str, LOWRES_SIZES)))
    parser.add_argument("--lowres_draws", type=int, default=5)
    parser.add_argument("--lowres_sessions", default="5",
                        help="test sessions of lowres, e.g. 1,5")
    parser.add_argument("--test_corpus", default=None,
                        help="cross_corpus: test corpora, e.g. "
                             "crema_d,ravdess")
    parser.add_argument("--seeds", type=int, default=3,
                        help="cross_corpus: runs (seeds 1..N)")
    parser.add_argument("--sweep", action="append", default=[],
                        metavar="KEY=V1,V2",
                        help="pick KEY among the values by validation UA")
    parser.add_argument("--jobs", type=int, default=1,
                        help="folds trained at once, sharing the cores "
                        "(each gets cores / jobs threads)")
    parser.add_argument("--adaptation_curve", action="store_true",
                        help="also measure test UA against the clips per "
                        "speaker of the deployed model (speaker "
                        "normalisation)")
    args, extra = parser.parse_known_args(argv)
    overrides = parse_overrides(extra)
    clash = sorted(set(overrides) & set(PROTOCOL_KEYS))
    if clash:
        raise ProtocolError(
            f"--{clash[0]} is set per fold by --protocol {args.protocol}; "
            "drop it")
    cross = []
    if args.protocol == "cross_corpus":
        if not args.test_corpus:
            raise ProtocolError("--protocol cross_corpus needs --test_corpus "
                                "(e.g. crema_d,ravdess)")
        cross = [c.strip() for c in args.test_corpus.split(",") if c.strip()]
        overrides["test_corpus"] = ",".join(cross)
    elif args.test_corpus:
        raise ProtocolError("--test_corpus applies to --protocol "
                            "cross_corpus; pass --test_corpus=NAME as a "
                            "hparam override to test other corpora")
    hparams = resolve_hparams(args.hparams_file, overrides)
    corpus = hparams.get("corpus", "iemocap")
    if args.protocol in IEMOCAP_PROTOCOLS and corpus != "iemocap":
        raise ProtocolError(
            f"--protocol {args.protocol} uses IEMOCAP's splits; use "
            f"speaker_kfold or cross_corpus with corpus {corpus}")
    output_folder = os.path.abspath(str(hparams["output_folder"]))
    os.makedirs(output_folder, exist_ok=True)
    need_probe = bool(hparams.get("probe_speakers", False))
    extra = [f"--{k}={v}" for k, v in overrides.items()
             if k != "output_folder"]
    if cross and hparams.get("test_data_folder") is not None:
        # The folders as resolved (the demo generates its corpora).
        extra = [a for a in extra if not a.startswith("--test_data_folder")]
        extra.append(f"--test_data_folder={hparams['test_data_folder']}")
    train = os.path.join(HERE, "train.py")
    folds = make_folds(args.protocol,
                       _ints(args.lowres_sizes, "--lowres_sizes"),
                       args.lowres_draws,
                       _ints(args.lowres_sessions, "--lowres_sessions"),
                       sessions=hparams.get("sessions") or (),
                       speakers=speakers(hparams.get("sessions") or ()),
                       n_folds=hparams.get("n_folds", 5),
                       seeds=args.seeds)
    if args.protocol == "lowres":
        if args.sweep:
            raise ProtocolError("--sweep does not apply to lowres")
        if args.lowres_draws < 1:
            raise ProtocolError("--lowres_draws: use at least 1")
        if args.folds:
            raise ProtocolError("--folds does not apply to lowres; use "
                                "--lowres_sizes and --lowres_draws")
        sizes = {f.name: f.overrides["train_per_class"] for f in folds}
        last = set({n: name for name, n in sizes.items()}.values())
        results = run_folds(train, args.hparams_file, folds, output_folder,
                            extra, need_probe,
                            stop=lambda f, m: _covers_all(output_folder, f,
                                                        last))
        summary = summarize_lowres(results, sizes)
        write_lowres_report(output_folder, summary)
        print(f"lowres: AUC {summary['auc']:.2f}; see "
              f"{output_folder}/lowres_summary.md")
        return
    folds = select_folds(folds, args.folds)
    if cross:
        if args.sweep:
            raise ProtocolError("--sweep does not apply to cross_corpus")
        results = run_folds(train, args.hparams_file, folds, output_folder,
                            extra, need_probe, cross=cross,
                            jobs=args.jobs)
        summary = summarize_cross_corpus(results, corpus)
        write_cross_corpus_report(output_folder, summary)
        print("cross_corpus UA: " + ", ".join(
            f"{n} {r['UA']:.2f}" for n, r in summary["table"].items())
            + f"; see {output_folder}/cross_corpus.md")
        return
    runs_folder = output_folder
    if args.sweep:  # the report goes to output_folder, the runs stay put
        runs_folder, extra = _sweep(args, folds, output_folder, extra,
                                    train, need_probe)
    results = run_folds(train, args.hparams_file, folds, runs_folder,
                        extra, need_probe, jobs=args.jobs)
    summary = summarize_folds(results, args.protocol)
    write_cv_report(output_folder, summary)
    scatter = vad_scatter_from_runs(
        [os.path.join(runs_folder, f.name) for f in folds],
        os.path.join(output_folder, "vad_scatter.png"))
    mean, std = summary["mean"], summary["std"]
    scores = []
    if mean["UA"] is not None:
        scores.append(f"UA {mean['UA']:.2f} ± {std['UA']:.2f}, "
                      f"WA {mean['WA']:.2f} ± {std['WA']:.2f}")
    if mean.get("CCC_mean") is not None:
        scores.append(f"CCC {mean['CCC_mean']:.3f} ± "
                      f"{std['CCC_mean']:.3f}")
    print(f"{args.protocol}: {', '.join(scores)}; see "
          f"{output_folder}/cv_summary.md"
          + (f" and {scatter}" if scatter else ""))
    if args.adaptation_curve:
        _adaptation_curve(folds, runs_folder, output_folder)


def _adaptation_curve(folds, runs_folder, output_folder):
    """Test UA against clips per speaker, per fold and their mean."""
    per_fold = {f.name: adaptation_curve(os.path.join(runs_folder, f.name),
                                         splits=("test",))["test"]
                for f in folds}
    mean = {k: sum(c[k] for c in per_fold.values()) / len(per_fold)
            for k in KS}
    write_json_atomic({"mean_UA": mean, "folds": per_fold},
                      os.path.join(output_folder, "adaptation_curve.json"))
    png = plot_curves({"mean over folds": mean},
                      os.path.join(output_folder, "adaptation_curve.png"))
    print("adaptation: test UA " + ", ".join(
        f"k={k} {v:.2f}" for k, v in mean.items()) + f"; see {png}")


def _sweep(args, folds, output_folder, extra, train, need_probe):
    """Trains every sweep point without testing, picks one on validation,
    writes ``sweep_summary.json``/``.md``; returns the picked point's
    folder and arguments (its folds then resume into testing)."""
    grid = parse_sweep(args.sweep)
    results, folders = {}, {}
    for point in grid:
        tag = sweep_tag(point)
        folders[tag] = os.path.join(output_folder, "sweep", tag)
        point_args = [a for a in extra
                      if a.split("=", 1)[0][2:] not in point]
        point_args += [f"--{k}={v}" for k, v in point.items()]
        print(f"sweep {tag}", flush=True)
        results[tag] = (run_folds(train, args.hparams_file, folds,
                                  folders[tag], point_args, need_probe,
                                  test=False, jobs=args.jobs), point_args)
    pick, means = pick_by_valid({t: r for t, (r, _) in results.items()})
    summary = {
        "protocol": args.protocol, "folds": [f.name for f in folds],
        "criterion": "mean over folds of the best validation UA",
        "points": {t: {"values": p, "valid_UA_mean": means[t],
                       "valid_UA": {f: best_valid(r)
                                    for f, r in results[t][0].items()}}
                   for t, p in zip(results, grid)},
        "pick": pick,
    }
    write_json_atomic(summary, os.path.join(output_folder,
                                            "sweep_summary.json"))
    lines = ["# Sweep", "", f"Protocol {args.protocol}, folds "
             f"{', '.join(summary['folds'])}; picked on validation only "
             "(test metrics are computed for the pick alone).", "",
             "| point | mean valid UA | pick |", "|---|---|---|"]
    for tag, point in summary["points"].items():
        lines.append(f"| {tag} | {point['valid_UA_mean']:.2f} | "
                     f"{'**yes**' if tag == pick else ''} |")
    with open(os.path.join(output_folder, "sweep_summary.md"), "w",
              encoding="utf-8") as fout:
        fout.write("\n".join(lines) + "\n")
    print(f"sweep: picked {pick} (mean valid UA {means[pick]:.2f}); "
          "testing it", flush=True)
    return folders[pick], results[pick][1]


def _covers_all(output_folder, fold, last):
    """True after the last fold of an N (``last``: the names of those)
    that reaches every class's size: larger N would train on the same
    full set, so they are not run."""
    if fold.name not in last:
        return False
    path = os.path.join(output_folder, fold.name, "train.json")
    with open(path, encoding="utf-8") as fin:
        entries = json.load(fin)
    counts = {}
    for e in entries.values():
        counts[e["emo"]] = counts.get(e["emo"], 0) + 1
    return fold.overrides["train_per_class"] >= max(counts.values())


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ProtocolError as err:
        sys.exit(f"cross_validate.py: error: {err}")
