#!/usr/bin/env python3
"""Zero-shot cross-corpus table of the demo: ``none`` against adversaries.

For each mode, one ``cross_validate.py --protocol cross_corpus`` run of the
demo recipe (``hparams/demo_grl.yaml``): the IEMOCAP-layout demo is
trained once per seed (its speaker-independent session split, defaults),
tested on its own test session, then zero-shot on the whole of each
second corpus the demo writes in another released layout (CREMA-D,
RAVDESS, EmoDB, MSP-Podcast: other voices, other channels, no training
clip). Reports UA per test corpus and the paired difference to ``none``
(same seed; mean and 95% t interval). Runs resume: finished seeds are
skipped.

A classic baseline runs on the same folds: MFCC statistics and a
logistic regression (:mod:`speechbrain_grl.evaluation.classic`), plain
and with per-speaker z-normalisation, fitted on each seed's training
split of the demo (the ``none`` run's manifests) and tested on the same
test sets, paired against ``none`` by seed. ``--classic_only`` adds just
those rows to an existing report without its run folders: the manifests
are prepared afresh, without training (the demo is deterministic); the
reports before per-seed UA was stored give an unpaired Δ of means.

Usage::

    python benchmarks/cross_corpus.py                 # 5 seeds, ~15 min
    python benchmarks/cross_corpus.py --seeds 1 --quick

Writes ``benchmarks/cross_corpus.json`` and ``benchmarks/cross_corpus.md``
(or ``--out``).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402
from evidence import t_interval  # noqa: E402

TEST_CORPORA = ("crema_d", "ravdess", "emodb", "msp_podcast")


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="none,grl,tap")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test_corpus", default=",".join(TEST_CORPORA))
    parser.add_argument("--workdir", default="results/cross_corpus")
    parser.add_argument("--out", default=os.path.dirname(
        os.path.abspath(__file__)))
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs (a smoke run, not a result)")
    parser.add_argument("--classic_only", action="store_true",
                        help="recompute only the classic rows of the "
                        "existing report (nothing trains)")
    return parser.parse_args(argv)


def run_mode(args, mode):
    """One cross_validate run of ``mode``; returns its cv_summary."""
    folder = os.path.abspath(os.path.join(args.workdir, mode))
    cmd = [sys.executable, "cross_validate.py", str(common.DEMO_YAML),
           "--protocol", "cross_corpus", "--test_corpus", args.test_corpus,
           "--seeds", str(args.seeds), f"--adversary={mode}",
           f"--output_folder={folder}", "--probe_speakers=False"]
    if args.quick:
        cmd.append("--number_of_epochs=2")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "stdout.txt"), "a") as log:
        proc = subprocess.run(cmd, cwd=common.RECIPE, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"cross_corpus.py: {mode} failed (exit {proc.returncode});"
                 f" see {folder}/stdout.txt")
    with open(os.path.join(folder, "cv_summary.json")) as fin:
        return json.load(fin)


def summarise(summaries):
    """Per mode and test corpus: mean UA and the paired Δ to ``none``."""
    base = summaries["none"]
    out = {}
    for mode, summary in summaries.items():
        out[mode] = {}
        for corpus in summary["table"]:
            runs = {k.split("/", 1)[1]: v["UA"]
                    for k, v in summary["folds"].items()
                    if k.split("/", 1)[0] == corpus}
            entry = {"UA_mean": summary["table"][corpus]["UA"],
                     "UA_by_seed": runs,
                     "UA_std": summary["table"][corpus]["UA_std"],
                     "n_utterances": summary["table"][corpus][
                         "n_utterances"], "seeds": len(runs)}
            if mode != "none":
                ref = {k.split("/", 1)[1]: v["UA"]
                       for k, v in base["folds"].items()
                       if k.split("/", 1)[0] == corpus}
                diffs = [runs[s] - ref[s] for s in sorted(runs) if s in ref]
                mean, ci = t_interval(diffs)
                entry.update(delta_UA_mean=mean, delta_UA_ci95=ci)
            out[mode][corpus] = entry
    return out


def classic_summary(scores, result):
    """The classic rows: ``scores`` is ``{seed fold: {test corpus:
    {"plain": UA, "znorm": UA}}}``; per variant and test corpus, the
    mean UA and the Δ to ``none``, paired by seed where the report holds
    ``none``'s UA per seed, else the difference of the means
    (``"paired": False``, no interval)."""
    out = {}
    folds = sorted(scores)
    for variant in evidence.CLASSIC:
        out[variant] = {}
        for corpus in next(iter(scores.values())):
            values = {f: scores[f][corpus][variant] for f in folds}
            mean = sum(values.values()) / len(values)
            entry = {"UA_mean": mean, "UA_by_seed": values,
                     "seeds": len(values)}
            base = result["none"][corpus]
            if set(values) <= set(base.get("UA_by_seed", {})):
                diffs = [values[f] - base["UA_by_seed"][f] for f in folds]
                entry["delta_UA_mean"], entry["delta_UA_ci95"] = (
                    t_interval(diffs))
                entry["paired"] = True
            else:
                entry.update(delta_UA_mean=mean - base["UA_mean"],
                             delta_UA_ci95=None, paired=False)
            out[variant][corpus] = entry
    return out


def classic_rows(classic, corpora):
    """The classic baseline's rows of the table."""
    lines = []
    for variant, row in (classic or {}).items():
        cells = []
        for corpus in corpora:
            e = row[corpus]
            cell = f"{e['UA_mean']:.1f} (Δ {e['delta_UA_mean']:+.1f}"
            if e["paired"]:
                lo, hi = e["delta_UA_ci95"]
                cell += f" [{lo:+.1f}, {hi:+.1f}]"
            cells.append(cell + ")")
        lines.append(f"| {evidence.CLASSIC[variant]} | "
                     + " | ".join(cells) + " |")
    return lines


def classic_section(classic, meta):
    """What the classic rows are (a Markdown section)."""
    paired = all(e["paired"] for row in classic.values()
                 for e in row.values())
    return ["## Classic baseline", "",
            "MFCC statistics (mean and std of 20 MFCCs, torchaudio) and a "
            "scikit-learn logistic regression "
            "(`speechbrain_grl.evaluation.classic`) fitted on each seed's "
            "training split of the IEMOCAP-layout demo (the `none` run's "
            "manifests), tested on its test session and on the whole of "
            "each second corpus; *per-speaker z-norm* standardises every "
            "speaker (training and test, in every corpus) with their own "
            "clips' statistics. "
            + ("Δ paired against `none` by seed [95% t interval]."
               if paired else
               "Δ = classic mean − `none` mean, unpaired (this report "
               "predates storing `none`'s UA per seed), no interval.")
            + (f" {meta['classic_note']}" if meta.get("classic_note")
               else "")]


def classic_scores(folders, test_corpora):
    """``{seed fold: {test corpus: {"plain", "znorm"}}}`` from the run
    folders of ``none`` (``{seed fold: folder}``), or None without their
    manifests."""
    out = {}
    for fold, run in folders.items():
        tests = {"iemocap": Path(run) / "test.json"}
        tests.update({c: Path(run) / "cross_corpus" / c / "all.json"
                      for c in test_corpora})
        scores = common.classic_scores(run, tests=tests)
        if scores is None:
            return None
        out[fold] = scores
    return out


def table(result, meta, classic=None):
    """The Markdown report."""
    corpora = list(next(iter(result.values())))
    lines = [TITLE, "",
             f"Trained on the IEMOCAP-layout demo ({meta['train']}), "
             f"{meta['seeds']} paired seeds, recipe defaults"
             f"{' (QUICK: 2 epochs)' if meta['quick'] else ''}; tested on "
             "its own held-out session (in-corpus) and, zero-shot, on the "
             "whole of each second corpus. UA in %; Δ = mode − none with "
             "the same seed, mean [95% t interval].", "",
             "| mode | " + " | ".join(
                 f"{c} (in-corpus)" if i == 0 else c
                 for i, c in enumerate(corpora)) + " |",
             "|" + "---|" * (len(corpora) + 1)]
    for mode, row in result.items():
        cells = []
        for corpus in corpora:
            e = row[corpus]
            cell = f"{e['UA_mean']:.1f}"
            if "delta_UA_mean" in e and not math.isnan(e["delta_UA_ci95"][0]):
                lo, hi = e["delta_UA_ci95"]
                cell += (f" (Δ {e['delta_UA_mean']:+.1f} "
                         f"[{lo:+.1f}, {hi:+.1f}])")
            cells.append(cell)
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += classic_rows(classic, corpora)
    lines += ["", "Clips per test corpus: " + ", ".join(
        f"{c} {result['none'][c]['n_utterances']}" for c in corpora)
        + f". Wall time {meta['seconds']:.0f} s on "
        f"{common.cpu_text(meta['machine'])} "
        f"({meta['machine']['cores']} cores).", ""]
    if classic:
        lines += [*classic_section(classic, meta), ""]
    return "\n".join(lines)


TITLE = "# Zero-shot cross-corpus test on the demo"


def classic_only(args):
    """Adds the classic rows to the existing report (its seeds 1..n and
    test corpora) and to its Markdown, the rest of the text kept."""
    name = "cross_corpus_quick" if args.quick else "cross_corpus"
    path = Path(args.out) / f"{name}.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    result, meta = report["result"], report["meta"]
    corpora = [c for c in result["none"] if c != "iemocap"]
    folders = {f"seed_{k}": common.classic_only_run(
        args.workdir, [f"--seed={k}", "--test_corpus=" + ",".join(corpora)])
        for k in range(1, int(meta["seeds"]) + 1)}
    classic = classic_summary(classic_scores(folders, corpora), result)
    meta["classic_note"] = evidence.CLASSIC_NOTE.replace(
        "corpus, bias, seeds", "corpora, seeds")
    report["classic"] = classic
    text = (Path(args.out) / f"{name}.md").read_text(encoding="utf-8")
    text = evidence.merge_markdown(
        text, {TITLE: classic_rows(classic, list(result["none"]))},
        classic_section(classic, meta))
    evidence.write_report(args.out, name, report, text)
    print(text)


def main(argv=None):
    """Runs every mode, then writes the report."""
    args = parse_args(argv)
    if args.classic_only:
        return classic_only(args)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if modes[0] != "none":
        modes = ["none"] + [m for m in modes if m != "none"]
    start = time.time()
    summaries = {}
    for mode in modes:
        print(f"{mode}: {args.seeds} seeds", flush=True)
        summaries[mode] = run_mode(args, mode)
    result = summarise(summaries)
    corpora = [c for c in result["none"] if c != "iemocap"]
    scores = classic_scores(
        {f"seed_{k}": os.path.join(os.path.abspath(args.workdir), "none",
                                   f"seed_{k}")
         for k in range(1, args.seeds + 1)}, corpora)
    classic = classic_summary(scores, result) if scores else None
    meta = {"train": "iemocap layout, session 5 test", "seeds": args.seeds,
            "quick": args.quick, "seconds": time.time() - start,
            "machine": common.machine()}
    md = table(result, meta, classic)
    name = "cross_corpus_quick" if args.quick else "cross_corpus"
    with open(os.path.join(args.out, f"{name}.json"), "w") as fout:
        json.dump({"meta": meta, "result": result, "classic": classic},
                  fout, indent=2)
    with open(os.path.join(args.out, f"{name}.md"), "w") as fout:
        fout.write(md)
    print(md)


if __name__ == "__main__":
    main()
