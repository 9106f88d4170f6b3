#!/usr/bin/env python3
"""Dimensional emotion on the demo: ``none`` against the adversaries.

Trains the demo recipe with ``--task=dimensional`` (valence, arousal and
dominance, loss 1 − CCC, checkpoints selected on mean validation CCC) for
each mode and paired seed, at the recipe's defaults, on the demo corpus
with an optional speaker shortcut (``--bias``). Reports the test CCC per
dimension and its mean, the paired difference of the mean CCC to
``none`` (same seed; mean and 95% t interval), and ``CCC_speaker_std``,
the spread over test speakers of the per-speaker CCC (lower: the model
serves every speaker alike). Runs resume: finished ones are skipped.

A classic baseline runs on the same folds: MFCC statistics and a ridge
regression on valence, arousal and dominance
(:mod:`speechbrain_grl.evaluation.classic`), plain and with per-speaker
z-normalisation, fitted on each seed's training split (the ``none``
run's manifests), its mean CCC paired against ``none`` by seed.
``--classic_only`` adds just those rows to an existing report without
its run folders (manifests prepared afresh, without training; the
reports before per-seed CCC was stored give an unpaired Δ of means).

Usage::

    python benchmarks/dimensional.py                   # 5 seeds, ~8 min
    python benchmarks/dimensional.py --seeds 1 --quick

Writes ``benchmarks/dimensional.json`` and ``benchmarks/dimensional.md``
(or ``--out``).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402
from evidence import t_interval  # noqa: E402

DIMS = ("valence", "arousal", "dominance")


def parse_args(argv=None):
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="none,grl,tap")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--bias", type=float, default=0.0,
                        help="demo speaker shortcut (0: none)")
    parser.add_argument("--workdir", default="results/dimensional")
    parser.add_argument("--out", default=os.path.dirname(
        os.path.abspath(__file__)))
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs (a smoke run, not a result)")
    parser.add_argument("--classic_only", action="store_true",
                        help="recompute only the classic rows of the "
                        "existing report (nothing trains)")
    return parser.parse_args(argv)


def run_dir(args, mode, seed):
    """Where one run lives."""
    return Path(args.workdir).resolve() / mode / f"seed_{seed}"


def run(args, mode, seed):
    """One train.py run; returns its test metrics."""
    folder = run_dir(args, mode, seed)
    path = folder / "test_metrics.json"
    if not path.is_file():
        cmd = [sys.executable, "train.py", str(common.DEMO_YAML),
               "--task=dimensional", f"--adversary={mode}",
               f"--seed={seed}", f"--demo_speaker_bias={args.bias}",
               f"--output_folder={folder}", "--probe_speakers=False",
               f"--demo_folder={Path(args.workdir).resolve() / 'assets'}"]
        if args.quick:
            cmd.append("--number_of_epochs=2")
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "stdout.txt", "w") as log:
            proc = subprocess.run(cmd, cwd=common.RECIPE, stdout=log,
                                  stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.exit(f"dimensional.py: {mode} seed {seed} failed; see "
                     f"{folder}/stdout.txt")
    return json.loads(path.read_text())


def summarise(results):
    """Per mode: mean CCC per dimension, speaker spread, paired Δ."""
    out = {}
    base = results["none"]
    for mode, runs in results.items():
        seeds = sorted(runs)
        entry = {"seeds": len(seeds)}
        for dim in DIMS:
            entry[f"CCC_{dim}"] = sum(runs[s]["CCC"][dim]
                                      for s in seeds) / len(seeds)
            spreads = [runs[s]["CCC_speaker_std"][dim] for s in seeds
                       if runs[s].get("CCC_speaker_std")]
            entry[f"speaker_std_{dim}"] = (sum(spreads) / len(spreads)
                                           if spreads else None)
        entry["CCC_mean"] = sum(runs[s]["CCC_mean"]
                                for s in seeds) / len(seeds)
        entry["CCC_mean_by_seed"] = {str(s): runs[s]["CCC_mean"]
                                     for s in seeds}
        if mode != "none":
            diffs = [runs[s]["CCC_mean"] - base[s]["CCC_mean"]
                     for s in seeds if s in base]
            entry["delta_CCC_mean"], entry["delta_CCC_ci95"] = t_interval(
                diffs)
        out[mode] = entry
    return out


def classic_summary(scores, summary):
    """The classic rows: ``scores`` is ``{seed: {"plain": metrics,
    "znorm": metrics}}`` (``dimensional_metrics``); per variant, the mean
    CCC per dimension and overall, and the Δ of the mean CCC to
    ``none``, paired by seed where the report holds ``none``'s per seed,
    else the difference of the means (``"paired": False``)."""
    out = {}
    seeds = sorted(scores, key=int)
    base = summary["none"]
    for variant in evidence.CLASSIC:
        runs = {s: scores[s][variant] for s in seeds}
        entry = {"seeds": len(seeds)}
        for dim in DIMS:
            entry[f"CCC_{dim}"] = sum(r["CCC"][dim]
                                      for r in runs.values()) / len(runs)
            spreads = [r["CCC_speaker_std"][dim] for r in runs.values()
                       if r.get("CCC_speaker_std")]
            entry[f"speaker_std_{dim}"] = (sum(spreads) / len(spreads)
                                           if spreads else None)
        by_seed = {s: r["CCC_mean"] for s, r in runs.items()}
        entry["CCC_mean"] = sum(by_seed.values()) / len(by_seed)
        entry["CCC_mean_by_seed"] = by_seed
        if set(by_seed) <= set(base.get("CCC_mean_by_seed", {})):
            entry["delta_CCC_mean"], entry["delta_CCC_ci95"] = t_interval(
                [by_seed[s] - base["CCC_mean_by_seed"][s] for s in seeds])
            entry["paired"] = True
        else:
            entry.update(delta_CCC_mean=entry["CCC_mean"]
                         - base["CCC_mean"], paired=False)
        out[variant] = entry
    return out


def classic_rows(classic):
    """The classic baseline's rows of the table."""
    lines = []
    for variant, e in (classic or {}).items():
        delta = f"{e['delta_CCC_mean']:+.3f}"
        if e["paired"]:
            lo, hi = e["delta_CCC_ci95"]
            delta += f" [{lo:+.3f}, {hi:+.3f}]"
        else:
            delta += " (unpaired)"
        spread = " / ".join("–" if e[f"speaker_std_{d}"] is None else
                            f"{e[f'speaker_std_{d}']:.3f}" for d in DIMS)
        lines.append(
            f"| {evidence.CLASSIC[variant].replace('LR', 'ridge')} | "
            f"{e['CCC_valence']:.3f} | {e['CCC_arousal']:.3f} | "
            f"{e['CCC_dominance']:.3f} | {e['CCC_mean']:.3f} | {delta} | "
            f"{spread} |")
    return lines


def classic_section(classic, meta):
    """What the classic rows are (a Markdown section)."""
    paired = all(e["paired"] for e in classic.values())
    return ["## Classic baseline", "",
            "MFCC statistics (mean and std of 20 MFCCs, torchaudio) and a "
            "scikit-learn ridge regression on valence, arousal and "
            "dominance (`speechbrain_grl.evaluation.classic`), fitted on "
            "each seed's training split (the `none` run's manifests) and "
            "tested on its test session; *per-speaker z-norm* "
            "standardises every speaker (training and test) with their "
            "own clips' statistics. "
            + ("Δ paired against `none` by seed [95% t interval]."
               if paired else
               "Δ = classic mean − `none` mean, unpaired (this report "
               "predates storing `none`'s CCC per seed), no interval.")
            + (f" {meta['classic_note']}" if meta.get("classic_note")
               else "")]


def classic_scores(folders):
    """``{seed: {"plain", "znorm"}}`` on the ``none`` runs' folds
    (``{seed: folder}``), or None without their manifests."""
    out = {}
    for seed, run in folders.items():
        scores = common.classic_scores(run, task="dimensional")
        if scores is None:
            return None
        out[str(seed)] = scores
    return out


TITLE = "# Dimensional emotion on the demo"


def classic_only(args):
    """Adds the classic rows to the existing report (its bias and seeds
    1..n) and to its Markdown, the rest of the text kept."""
    name = "dimensional_quick" if args.quick else "dimensional"
    path = Path(args.out) / f"{name}.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    result, meta = report["result"], report["meta"]
    folders = {k: common.classic_only_run(
        args.workdir, ["--task=dimensional", f"--seed={k}",
                       f"--demo_speaker_bias={meta['bias']}"])
        for k in range(1, int(meta["seeds"]) + 1)}
    classic = classic_summary(classic_scores(folders), result)
    meta["classic_note"] = evidence.CLASSIC_NOTE
    report["classic"] = classic
    text = (Path(args.out) / f"{name}.md").read_text(encoding="utf-8")
    text = evidence.merge_markdown(text, {TITLE: classic_rows(classic)},
                                   classic_section(classic, meta))
    evidence.write_report(args.out, name, report, text)
    print(text)


def table(summary, meta, classic=None):
    """The Markdown report."""
    lines = [TITLE, "",
             f"`python benchmarks/dimensional.py` ({meta['seconds']:.0f} s "
             f"on {common.cpu_text(meta['machine'])}, "
             f"{meta['machine']['cores']} "
             f"cores). Demo speaker bias {meta['bias']}, "
             f"{meta['seeds']} paired seeds"
             f"{' (QUICK: 2 epochs)' if meta['quick'] else ''}, "
             "`--task=dimensional` at the recipe's defaults; test session "
             "5. CCC in [−1, 1]; Δ = mode − none on the mean CCC, same "
             "seed, mean [95% t interval]; speaker std = spread over the "
             "test speakers of their own CCC (lower is fairer).", "",
             "| mode | CCC valence | CCC arousal | CCC dominance | mean CCC "
             "| Δ mean CCC | speaker std (V / A / D) |",
             "|---|---|---|---|---|---|---|"]
    for mode, e in summary.items():
        delta = "—"
        if "delta_CCC_mean" in e:
            lo, hi = e["delta_CCC_ci95"]
            delta = f"{e['delta_CCC_mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        spread = " / ".join("–" if e[f"speaker_std_{d}"] is None else
                            f"{e[f'speaker_std_{d}']:.3f}" for d in DIMS)
        lines.append(
            f"| {mode} | {e['CCC_valence']:.3f} | {e['CCC_arousal']:.3f} "
            f"| {e['CCC_dominance']:.3f} | {e['CCC_mean']:.3f} | {delta} "
            f"| {spread} |")
    lines += classic_rows(classic)
    if classic:
        lines += ["", *classic_section(classic, meta)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Runs every mode and seed, then writes the report."""
    args = parse_args(argv)
    if args.classic_only:
        return classic_only(args)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    modes = ["none"] + [m for m in modes if m != "none"]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    start = time.time()
    results = {}
    for mode in modes:
        results[mode] = {}
        for seed in seeds:
            print(f"{mode} seed {seed}", flush=True)
            results[mode][seed] = run(args, mode, seed)
    summary = summarise(results)
    scores = classic_scores({s: run_dir(args, "none", s) for s in seeds})
    classic = classic_summary(scores, summary) if scores else None
    meta = {"bias": args.bias, "seeds": len(seeds), "quick": args.quick,
            "seconds": time.time() - start, "machine": common.machine()}
    name = "dimensional_quick" if args.quick else "dimensional"
    with open(os.path.join(args.out, f"{name}.json"), "w") as fout:
        json.dump({"meta": meta, "result": summary, "classic": classic},
                  fout, indent=2)
    md = table(summary, meta, classic)
    with open(os.path.join(args.out, f"{name}.md"), "w") as fout:
        fout.write(md)
    print(md)


if __name__ == "__main__":
    main()
