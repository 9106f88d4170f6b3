#!/usr/bin/env python3
"""The evidence benchmark over independent shortcut corpora.

``evidence.py`` measures every mode on one shortcut demo corpus. Which
emotion each training speaker favours, and how their voices sit against
the test speakers', decides how much the shortcut costs and what removes
it, so one corpus can mislead. This script runs ``evidence.py``'s
experiment on several corpora of the same structure, drawn with
``--demo_corpus_seed`` (other favourites, utterances, formants and
channels around the same per-session pitch layout; corpus 0 is the
default demo), and reports, per mode:

- per corpus: the test UA of ``none`` and the paired ΔUA against ``none``
  (mean over seeds, 95% t interval over seeds), and the probe drop;
- over corpora: the mean of the per-corpus ΔUA with a 95% t interval over
  corpora (the corpus is the unit a user's own corpus is one more draw
  of), and how many corpora have their seed interval above or below 0;
- *picked by validation*: what a user who trains every mode and keeps
  the one with the best validation UA (ties: the earlier mode, ``none``
  first) would gain over ``none``, seed by seed; meaningful with
  ``-- --valid_from=held_out_speakers`` (training-speaker validation
  saturates on a shortcut corpus).

A classic baseline (MFCC statistics + logistic regression, plain and
per-speaker z-norm; ``evidence.py``'s classic rows) runs on each
corpus's folds, paired against ``none`` by seed and pooled over corpora
like a mode; ``--classic_only`` recomputes just those rows for an
existing report without its run folders (``evidence.py``'s).

Runs live in ``<workdir>/corpus_<c>/`` in ``evidence.py``'s layout, so
the benchmark resumes (finished runs are skipped) and a corpus's folder
from ``evidence.py --workdir W -- --demo_corpus_seed=c`` can be reused.

Usage::

    python benchmarks/evidence_corpora.py                # 7 corpora
    python benchmarks/evidence_corpora.py --corpora 0,1 --seeds 1,2,3

Writes ``benchmarks/evidence_corpora.json`` and ``.md`` (or ``--out``).
"""

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402

MODES = ("none", "grl", "tap", "spknorm", "tap:speaker_norm=True")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default="0,1,2,3,4,5,6",
                        help="demo corpus seeds (0: the default demo)")
    parser.add_argument("--bias", type=float, default=0.9)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--hparams", default=str(common.DEMO_YAML))
    parser.add_argument("--workdir", default="results/evidence_corpora")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default="evidence_corpora")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--classic_only", action="store_true",
                        help="recompute only the classic rows of the "
                        "existing report (nothing trains)")
    parser.add_argument("overrides", nargs="*",
                        help="extra --key=value for every run (after --)")
    args = parser.parse_args(argv)
    args.also_against = None
    return args


def corpus_args(args, corpus):
    """``evidence.py``'s arguments for one corpus."""
    sub = copy.copy(args)
    sub.workdir = str(Path(args.workdir) / f"corpus_{corpus}")
    sub.overrides = list(args.overrides) + [f"--demo_corpus_seed={corpus}"]
    return sub


def pool(per_corpus, modes):
    """Per mode: ΔUA per corpus, its mean and t interval over corpora,
    corpora whose seed interval lies above / below 0, mean probe drop."""
    out = {}
    for mode in modes:
        if mode == "none":
            continue
        entries = [res[mode] for res in per_corpus.values()]
        means = [e["delta_UA_mean"] for e in entries]
        mean, ci = evidence.t_interval(means)
        drops = [e["probe_rel_drop"] for e in entries]
        out[mode] = {
            "delta_UA_by_corpus": means,
            "delta_UA_mean": mean,
            "delta_UA_ci95_over_corpora": ci,
            "corpora_above_0": sum(bool(e["delta_UA_ci95"][0] > 0)
                                   for e in entries),
            "corpora_below_0": sum(bool(e["delta_UA_ci95"][1] < 0)
                                   for e in entries),
            "probe_rel_drop_mean": sum(drops) / len(drops),
            "corpora": len(entries),
        }
    return out


def pool_classic(classic):
    """Per classic variant: ``pool``'s numbers from the per-corpus classic
    rows (``{corpus: {variant: row}}``), and the mean UA over corpora."""
    out = {}
    for variant in evidence.CLASSIC:
        entries = [c[variant] for c in classic.values()]
        means = [e["delta_UA_mean"] for e in entries]
        mean, ci = evidence.t_interval(means)
        out[variant] = {
            "UA_mean": sum(e["UA_mean"] for e in entries) / len(entries),
            "delta_UA_by_corpus": means,
            "delta_UA_mean": mean,
            "delta_UA_ci95_over_corpora": ci,
            "corpora_above_0": sum(bool(e["delta_UA_ci95"][0] > 0)
                                   for e in entries),
            "corpora_below_0": sum(bool(e["delta_UA_ci95"][1] < 0)
                                   for e in entries),
            "corpora": len(entries),
        }
    return out


def picked_by_validation(res, modes):
    """Per seed, the mode with the best validation UA (ties: the earlier
    in ``modes``) and its test UA minus ``none``'s; ``res`` is one
    corpus's ``evidence.summarise`` entry (per-seed lists)."""
    picks, deltas = [], []
    for i in range(len(res["none"]["UA"])):
        best = max(modes, key=lambda m: (res[m]["valid_UA"][i],
                                         -modes.index(m)))
        picks.append(best)
        deltas.append(res[best]["UA"][i] - res["none"]["UA"][i])
    mean, ci = evidence.t_interval(deltas)
    return {"picks": picks, "delta_UA": deltas, "delta_UA_mean": mean,
            "delta_UA_ci95": ci}


def _ci(interval):
    if any(math.isnan(v) for v in interval):
        return "—"
    return f"[{interval[0]:+.1f}, {interval[1]:+.1f}]"


def table(per_corpus, pooled, meta, picked=None, classic=None):
    """The Markdown report (``classic``: ``{"per_corpus", "over_corpora"}``
    of the classic rows)."""
    corpora = list(per_corpus)
    modes = [m for m in next(iter(per_corpus.values())) if m != "none"]
    lines = [
        "# Evidence over independent shortcut corpora",
        "",
        f"`python benchmarks/evidence_corpora.py` (this invocation "
        f"{meta['wall_s'] / 60:.0f} min on "
        f"{meta['machine']['cores']} cores, "
        f"{common.cpu_text(meta['machine'])}, "
        "reusing every finished run; a corpus from scratch trains "
        f"{len(meta.get('modes', [])) or 'its'} modes × "
        f"{meta['seeds']} seeds). The demo recipe at its defaults on "
        f"{len(corpora)} shortcut demo corpora of the same structure "
        f"(`--demo_corpus_seed`; 0 is `evidence.md`'s corpus), bias "
        f"{meta['bias']}, {meta['seeds']} paired seeds each. ΔUA is "
        "paired against `none` with the same seed; the probe drop is "
        "`evidence.md`'s (speaker information beyond emotion).",
    ]
    if meta.get("overrides"):
        lines.append(f"\nExtra overrides: `{' '.join(meta['overrides'])}`.")
    lines += ["", "## Over corpora", "",
              "| mode | mean ΔUA | 95% CI over corpora | corpora with "
              "CI > 0 | corpora with CI < 0 | mean probe drop |",
              "|---|---|---|---|---|---|"]
    for mode in modes:
        p = pooled[mode]
        lines.append(
            f"| {mode} | {p['delta_UA_mean']:+.1f} | "
            f"{_ci(p['delta_UA_ci95_over_corpora'])} | "
            f"{p['corpora_above_0']} of {p['corpora']} | "
            f"{p['corpora_below_0']} of {p['corpora']} | "
            f"{100 * p['probe_rel_drop_mean']:.0f}% |")
    lines += classic_rows(classic)
    lines += ["", "## Per corpus: ΔUA vs none [95% CI over seeds], "
              "probe drop", "",
              "| corpus | none UA | " + " | ".join(modes) + " |",
              "|---|---|" + "---|" * len(modes)]
    for corpus, res in per_corpus.items():
        cells = [f"{res[m]['delta_UA_mean']:+.1f} "
                 f"{_ci(res[m]['delta_UA_ci95'])}, "
                 f"{100 * res[m]['probe_rel_drop']:.0f}%" for m in modes]
        lines.append(f"| {corpus} | {res['none']['UA_mean']:.1f} | "
                     + " | ".join(cells) + " |")
    if picked:
        over = picked["over_corpora"]
        lines += ["", "## Picked by validation", "",
                  "Per seed, the mode with the best validation UA (ties: "
                  "`none` first), paired against `none`. Over corpora: "
                  f"{over['delta_UA_mean']:+.1f} UA "
                  f"{_ci(over['delta_UA_ci95_over_corpora'])}.", "",
                  "| corpus | ΔUA vs none | 95% CI | picks |",
                  "|---|---|---|---|"]
        for corpus, p in picked["per_corpus"].items():
            lines.append(f"| {corpus} | {p['delta_UA_mean']:+.1f} | "
                         f"{_ci(p['delta_UA_ci95'])} | "
                         f"{', '.join(p['picks'])} |")
    if classic:
        lines += ["", *classic_section(per_corpus, classic, meta)]
    return "\n".join(lines) + "\n"


def classic_rows(classic):
    """The classic baseline's rows of the over-corpora table."""
    return [f"| {evidence.CLASSIC[variant]} | {p['delta_UA_mean']:+.1f} | "
            f"{_ci(p['delta_UA_ci95_over_corpora'])} | "
            f"{p['corpora_above_0']} of {p['corpora']} | "
            f"{p['corpora_below_0']} of {p['corpora']} | — |"
            for variant, p in (classic or {}).get("over_corpora",
                                                  {}).items()]


def classic_section(per_corpus, classic, meta):
    """The classic baseline per corpus (a Markdown section)."""
    variants = list(evidence.CLASSIC)
    lines = ["## Classic baseline per corpus", "",
             "MFCC statistics (mean and std of 20 MFCCs, torchaudio) and a "
             "scikit-learn logistic regression "
             "(`speechbrain_grl.evaluation.classic`) fitted on each seed's "
             "training split of the `none` run, tested on its test "
             "session; *z-norm* standardises every speaker (training and "
             "test) with their own clips' statistics. UA, and ΔUA vs "
             "`none` paired by seed [95% CI over seeds]; the over-corpora "
             "table pools the per-corpus ΔUA as for a mode. Mean UA over "
             "corpora: " + ", ".join(
                 f"{evidence.CLASSIC[v]} "
                 f"{classic['over_corpora'][v]['UA_mean']:.1f}"
                 for v in variants) + "."
             + (f" {meta['classic_note']}" if meta.get("classic_note")
                else ""), "",
             "| corpus | none UA | " + " | ".join(
                 evidence.CLASSIC[v] for v in variants) + " |",
             "|---|---|" + "---|" * len(variants)]
    for corpus, rows in classic["per_corpus"].items():
        lines.append(
            f"| {corpus} | {per_corpus[corpus]['none']['UA_mean']:.1f} | "
            + " | ".join(f"{rows[v]['UA_mean']:.1f}, Δ "
                         f"{rows[v]['delta_UA_mean']:+.1f} "
                         f"{_ci(rows[v]['delta_UA_ci95'])}"
                         for v in variants) + " |")
    return lines


def main(argv=None):
    args = parse_args(argv)
    if args.classic_only:
        return classic_only(args)
    start = time.perf_counter()
    corpora = [int(c) for c in args.corpora.split(",")]
    modes = evidence.mode_list(args.modes)
    seeds = [int(s) for s in args.seeds.split(",")]
    per_corpus, picked, classic = {}, {}, {}
    for corpus in corpora:
        sub = corpus_args(args, corpus)
        print(f"corpus {corpus}: {sub.workdir}", flush=True)
        evidence.run_all(sub, [(args.bias, m, s) for s in seeds
                               for m in modes])
        res = evidence.summarise(sub, [args.bias], modes, seeds)
        per_corpus[str(corpus)] = res[str(args.bias)]
        picked[str(corpus)] = picked_by_validation(per_corpus[str(corpus)],
                                                   modes)
        rows = evidence.classic_summary(
            res, seeds, lambda b, s, sub=sub: evidence.run_folder(
                sub.workdir, b, "none", s))
        if rows:
            classic[str(corpus)] = rows[str(args.bias)]
    classic = classic_report(classic, corpora)
    pooled = pool(per_corpus, modes)
    means = [p["delta_UA_mean"] for p in picked.values()]
    mean, ci = evidence.t_interval(means)
    picked = {"per_corpus": picked, "over_corpora": {
        "delta_UA_mean": mean,
        "delta_UA_ci95_over_corpora": ci}}
    meta = {"wall_s": time.perf_counter() - start,
            "machine": common.machine(), "overrides": args.overrides,
            "hparams": Path(args.hparams).name, "bias": args.bias,
            "seeds": len(seeds), "corpora": corpora, "modes": modes}
    report = {"over_corpora": pooled, "per_corpus": per_corpus,
              "picked_by_validation": picked, "classic": classic,
              "meta": meta}
    text = table(per_corpus, pooled, meta, picked, classic)
    evidence.write_report(args.out, args.name, report, text)
    print(text)


def classic_report(classic, corpora):
    """The report's classic section, or None unless every corpus has
    its classic rows."""
    if len(classic) != len(corpora):
        return None
    return {"per_corpus": classic, "over_corpora": pool_classic(classic)}


def classic_only(args):
    """Adds the classic rows to the existing ``<out>/<name>.json`` (its
    corpora, bias, seeds 1..n and overrides) and its Markdown (the rest
    of the text kept as it is)."""
    import json

    path = Path(args.out) / f"{args.name}.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    meta = report["meta"]
    if meta.get("hparams", "demo_grl.yaml") != common.DEMO_YAML.name:
        sys.exit("--classic_only prepares demo runs only")
    bias = str(meta["bias"])
    classic = {}
    for corpus, res in report["per_corpus"].items():
        seeds = evidence.report_seeds(args, res["none"]["seeds"])
        print(f"corpus {corpus}: seeds {seeds}", flush=True)
        rows = evidence.classic_summary(
            {bias: res}, seeds, evidence.classic_only_folder(
                args.workdir, list(meta.get("overrides") or [])
                + [f"--demo_corpus_seed={corpus}"]))
        classic[corpus] = rows[bias]
    report["classic"] = classic_report(classic, report["per_corpus"])
    meta["classic_note"] = evidence.CLASSIC_NOTE
    text = (Path(args.out) / f"{args.name}.md").read_text(encoding="utf-8")
    text = evidence.merge_markdown(
        text, {"## Over corpora": classic_rows(report["classic"])},
        classic_section(report["per_corpus"], report["classic"], meta))
    evidence.write_report(args.out, args.name, report, text)
    print(text)


if __name__ == "__main__":
    main()
