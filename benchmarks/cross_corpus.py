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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
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


def table(result, meta):
    """The Markdown report."""
    corpora = list(next(iter(result.values())))
    lines = ["# Zero-shot cross-corpus test on the demo", "",
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
    lines += ["", "Clips per test corpus: " + ", ".join(
        f"{c} {result['none'][c]['n_utterances']}" for c in corpora)
        + f". Wall time {meta['seconds']:.0f} s on "
        f"{meta['machine']['cpu']} ({meta['machine']['cores']} cores).", ""]
    return "\n".join(lines)


def main(argv=None):
    """Runs every mode, then writes the report."""
    args = parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if modes[0] != "none":
        modes = ["none"] + [m for m in modes if m != "none"]
    start = time.time()
    summaries = {}
    for mode in modes:
        print(f"{mode}: {args.seeds} seeds", flush=True)
        summaries[mode] = run_mode(args, mode)
    result = summarise(summaries)
    meta = {"train": "iemocap layout, session 5 test", "seeds": args.seeds,
            "quick": args.quick, "seconds": time.time() - start,
            "machine": common.machine()}
    md = table(result, meta)
    name = "cross_corpus_quick" if args.quick else "cross_corpus"
    with open(os.path.join(args.out, f"{name}.json"), "w") as fout:
        json.dump({"meta": meta, "result": result}, fout, indent=2)
    with open(os.path.join(args.out, f"{name}.md"), "w") as fout:
        fout.write(md)
    print(md)


if __name__ == "__main__":
    main()
