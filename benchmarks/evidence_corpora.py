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


def table(per_corpus, pooled, meta, picked=None):
    """The Markdown report."""
    corpora = list(per_corpus)
    modes = [m for m in next(iter(per_corpus.values())) if m != "none"]
    lines = [
        "# Evidence over independent shortcut corpora",
        "",
        f"`python benchmarks/evidence_corpora.py` (this invocation "
        f"{meta['wall_s'] / 60:.0f} min on "
        f"{meta['machine']['cores']} cores, {meta['machine']['cpu']}, "
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
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    corpora = [int(c) for c in args.corpora.split(",")]
    modes = evidence.mode_list(args.modes)
    seeds = [int(s) for s in args.seeds.split(",")]
    per_corpus, picked = {}, {}
    for corpus in corpora:
        sub = corpus_args(args, corpus)
        print(f"corpus {corpus}: {sub.workdir}", flush=True)
        evidence.run_all(sub, [(args.bias, m, s) for s in seeds
                               for m in modes])
        res = evidence.summarise(sub, [args.bias], modes, seeds)
        per_corpus[str(corpus)] = res[str(args.bias)]
        picked[str(corpus)] = picked_by_validation(per_corpus[str(corpus)],
                                                   modes)
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
              "picked_by_validation": picked, "meta": meta}
    text = table(per_corpus, pooled, meta, picked)
    evidence.write_report(args.out, args.name, report, text)
    print(text)


if __name__ == "__main__":
    main()
