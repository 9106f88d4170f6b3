#!/usr/bin/env python3
"""Evidence that the speaker adversary helps where speakers are a shortcut.

Trains the demo recipe (``hparams/demo_grl.yaml``) with ``none`` and every
adversary mode on the shortcut demo corpus, at a speaker bias of 0.9 (in
the training sessions each speaker says a favourite emotion 90% of the
time; the test session is unbiased) and at 0.0 (no shortcut), over paired
seeds, at the recipe's defaults. Each run is a plain ``train.py`` process
in its own folder, so the benchmark resumes: finished runs are skipped.

For every bias and mode it reports the test UA, the paired difference to
``none`` with the same seed (mean and 95% t interval over seeds), and the
speaker probe of the trained model (balanced accuracy, %) with its
relative drop against ``none``. On a shortcut corpus the emotion itself
tells the speaker apart (each speaker favours one), so the drop reads the
speaker information *beyond the emotion*: the probe's ``given_emotion``
gap, balanced accuracy of a probe on the embedding plus the emotion label
minus that of a probe on the emotion label alone (see
``speechbrain_grl.evaluation.probe``):

    probe_rel_drop = 1 - gap(mode) / gap(none)

on the means over seeds: 0 = as much speaker as the baseline keeps, 1 =
nothing beyond what the emotion gives. ``probe_mean`` and
``probe_chance`` are the plain probe (balanced accuracy against a
uniform ``DummyClassifier``), reported beside it.

A classic baseline runs on the same folds (each seed's manifests of the
``none`` run): MFCC statistics and a logistic regression
(:mod:`speechbrain_grl.evaluation.classic`), plain and with per-speaker
z-normalisation, its UA paired against ``none`` seed by seed.
``--classic_only`` recomputes just those rows for an existing report
(``<out>/<name>.json``) without its run folders: the manifests are
prepared afresh, without training, from the same corpus, bias, seeds and
overrides (the demo corpora are deterministic).

Usage::

    python benchmarks/evidence.py                  # 5 seeds, ~25 min
    python benchmarks/evidence.py --quick          # 1 seed, 2 epochs
    python benchmarks/evidence.py --workdir W -- --lambda_max=0.3
    python benchmarks/evidence.py --name evidence_norm --also_against \
        spknorm --modes grl:speaker_norm=True,tap:speaker_norm=True

Writes ``benchmarks/evidence.json`` and ``benchmarks/evidence.md`` (or
``--out``).
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

from speechbrain_grl.utils.threads import (  # noqa: E402
    child_env,
    threads_per_process,
)

# TAP on top of per-speaker normalisation: the best measured combination
# (benchmarks/evidence_norm_10_seeds.md), not a default (see the README).
MODES = ("none", "grl", "tap", "snp", "spknorm", "tap:speaker_norm=True")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--biases", default="0.9,0.0")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--hparams", default=str(common.DEMO_YAML))
    parser.add_argument("--workdir", default="results/evidence",
                        help="run folders (reused: finished runs skip)")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"),
                        help="folder of evidence.json and evidence.md")
    parser.add_argument("--name", default="evidence",
                        help="file stem of the report")
    parser.add_argument("--jobs", type=int, default=2,
                        help="train.py processes at a time (1 thread each)")
    parser.add_argument("--also_against", default=None, metavar="MODE",
                        help="pair every other mode against MODE too "
                        "(e.g. spknorm: does an adversary on top of it add "
                        "anything?)")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 2 epochs: a smoke test")
    parser.add_argument("--classic_only", action="store_true",
                        help="recompute only the classic rows of the "
                        "existing report (nothing trains)")
    parser.add_argument("overrides", nargs="*",
                        help="extra --key=value for every run (after --)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds.split(",")[0]
        args.overrides = list(args.overrides) + ["--number_of_epochs=2"]
    return args


def run_folder(workdir, bias, mode, seed):
    """Where one run lives (``grl:lambda_max=0.3`` → ``grl_lambda_max-0.3``:
    SpeechBrain's override parser reads ``=`` and ``:``)."""
    name = mode.replace(":", "_").replace("=", "-")
    return Path(workdir).resolve() / f"bias_{bias}" / name / f"seed_{seed}"


def finished(folder):
    """The run's metrics, or None if it has not finished."""
    path = folder / "test_metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    return metrics if "speaker_probe" in metrics else None


def split_mode(mode):
    """``"grl:lambda_max=0.3"`` → ``("grl", ["--lambda_max=0.3"])``: a mode
    with its own overrides (``:``-separated), for sweeps."""
    name, *extra = mode.split(":")
    return name, [f"--{kv}" for kv in extra]


def command(args, bias, mode, seed):
    """The train.py command line of one run."""
    folder = run_folder(args.workdir, bias, mode, seed)
    demo = Path(args.workdir).resolve() / "demo_assets"
    name, extra = split_mode(mode)
    return [sys.executable, "train.py", str(Path(args.hparams).resolve()),
            f"--adversary={name}", f"--seed={seed}", *extra,
            f"--demo_speaker_bias={bias}", f"--output_folder={folder}",
            f"--demo_folder={demo}", *args.overrides]


def may_start_beside(job, running, builders, very_first, first_key):
    """Whether ``job`` may start beside the ``running`` jobs: always when
    none runs; never beside ``very_first`` (it builds the tiny model), nor
    beside the running builder (the first job) of its own key, which
    builds that key's corpus.

    Example
    -------
    >>> key = lambda job: job[0]
    >>> builders = {("a", 1), ("b", 1)}
    >>> may_start_beside(("a", 2), [("b", 1)], builders, ("a", 1), key)
    True
    >>> may_start_beside(("b", 2), [("b", 1)], builders, ("a", 1), key)
    False
    >>> may_start_beside(("b", 1), [("a", 1)], builders, ("a", 1), key)
    False
    >>> may_start_beside(("a", 1), [], builders, ("a", 1), key)
    True
    """
    if not running:
        return True
    if job == very_first or very_first in running:
        return False
    return not any(r in builders and first_key(r) == first_key(job)
                   for r in running)


def run_all(args, jobs, folder=None, command_of=None, done=None,
            first_key=lambda job: job[0], name="evidence"):
    """Runs what is missing, ``args.jobs`` at a time, with progress.

    By default a job is ``(bias, mode, seed)`` in this script's layout;
    another benchmark passes how a job maps to its ``folder``, its
    ``command_of`` and whether it is ``done``, and ``first_key`` (the
    first job of each key runs alone: it builds that corpus).
    """
    from tqdm import tqdm

    folder = folder or (lambda job: run_folder(args.workdir, *job))
    command_of = command_of or (lambda job: command(args, *job))
    done = done or (lambda job: finished(folder(job)) is not None)
    todo = [j for j in jobs if not done(j)]
    # The cores are shared by the jobs run side by side (threads.py).
    env = child_env(threads_per_process(args.jobs),
                    dict(os.environ, HF_HUB_OFFLINE="1"))
    running = []
    # The first run of each key builds that corpus, and the very first run
    # the tiny model too: no run starts beside the very first, nor beside
    # the builder of its own key, so parallel runs never write the same
    # files. Runs of other keys go on beside a builder.
    builders = {}
    for job in todo:
        builders.setdefault(first_key(job), job)
    builders = set(builders.values())
    very_first = todo[0] if todo else None

    def may_start(job):
        return may_start_beside(job, [r[1] for r in running], builders,
                                very_first, first_key)

    with tqdm(total=len(jobs), initial=len(jobs) - len(todo),
              desc=f"{name} runs", unit="run") as bar:
        while todo or running:
            while len(running) < max(1, args.jobs):
                job = next((j for j in todo if may_start(j)), None)
                if job is None:
                    break
                todo.remove(job)
                folder(job).mkdir(parents=True, exist_ok=True)
                log = open(folder(job) / "stdout.txt", "w", encoding="utf-8")
                proc = subprocess.Popen(
                    command_of(job), cwd=common.RECIPE, env=env,
                    stdout=log, stderr=subprocess.STDOUT)
                running.append((proc, job, log))
            time.sleep(0.5)
            for item in list(running):
                proc, job, log = item
                if proc.poll() is None:
                    continue
                log.close()
                running.remove(item)
                bar.update(1)
                if proc.returncode != 0:
                    tail = (folder(job) / "stdout.txt").read_text()[-800:]
                    sys.exit(f"{name}.py: run {job} failed (exit "
                             f"{proc.returncode}); see {folder(job)}/"
                             f"stdout.txt\n{tail}")


def mode_list(text):
    """The comma-separated modes, ``none`` (the pairing's base) first."""
    modes = [m for m in text.split(",") if m]
    if "none" not in modes:
        modes.insert(0, "none")
    return modes


def write_report(out, name, data, markdown):
    """Writes ``<name>.json`` and ``<name>.md`` under ``out``, each
    atomically (a temporary file, then a rename)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for fname, body in ((f"{name}.json", json.dumps(data, indent=2)),
                        (f"{name}.md", markdown)):
        tmp = out / f".{fname}.tmp"
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, out / fname)


def t_interval(values, level=0.95):
    """Mean and two-sided t confidence interval of a sample."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, [math.nan, math.nan]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, [mean - half, mean + half]


def probe_value(metrics):
    """Plain balanced probe accuracy, its chance, and the given-emotion
    gap (%), NaN where the run predates them."""
    probe = metrics["speaker_probe"]
    acc = probe.get("balanced_accuracy", probe.get("accuracy"))
    given = probe.get("given_emotion") or {}
    gap = math.nan
    if given.get("balanced_accuracy") is not None:
        gap = given["balanced_accuracy"] - given["chance"]
    return acc, probe.get("chance", math.nan), gap


def best_valid_ua(folder):
    """The validation UA of the checkpoint that was tested (the best)."""
    best = -math.inf
    for line in (folder / "train_log.txt").read_text().splitlines():
        if "valid UA:" in line:
            best = max(best, float(line.split("valid UA:")[1].split(",")[0]))
    return best


def summarise(args, biases, modes, seeds):
    """The evidence dict: per bias and mode, UA, paired ΔUA, probe."""
    out = {}
    for bias in biases:
        res = {}
        base = {s: finished(run_folder(args.workdir, bias, "none", s))
                for s in seeds}
        for mode in modes:
            runs = {s: finished(run_folder(args.workdir, bias, mode, s))
                    for s in seeds}
            ua = [runs[s]["UA"] for s in seeds]
            probes = [probe_value(runs[s]) for s in seeds]
            valid = [best_valid_ua(run_folder(args.workdir, bias, mode, s))
                     for s in seeds]
            entry = {"UA_mean": sum(ua) / len(ua), "UA": ua,
                     "valid_UA": valid,
                     "valid_UA_mean": sum(valid) / len(valid),
                     "probe_mean": sum(p[0] for p in probes) / len(probes),
                     "probe_chance": sum(p[1] for p in probes) / len(probes),
                     "probe_given_emotion_gap": sum(
                         p[2] for p in probes) / len(probes),
                     "seeds": len(seeds)}
            if mode != "none":
                delta = [runs[s]["UA"] - base[s]["UA"] for s in seeds]
                mean, ci = t_interval(delta)
                entry.update(delta_UA_mean=mean, delta_UA_ci95=ci,
                             delta_UA=delta)
            ref = args.also_against
            if ref and mode not in ("none", ref):
                other = {s: finished(run_folder(args.workdir, bias, ref, s))
                         for s in seeds}
                delta = [runs[s]["UA"] - other[s]["UA"] for s in seeds]
                mean, ci = t_interval(delta)
                entry.update(also_against=ref, delta_UA_ref_mean=mean,
                             delta_UA_ref_ci95=ci, delta_UA_ref=delta)
            res[mode] = entry
        if "none" in res:
            ref = res["none"]["probe_given_emotion_gap"]
            for mode, entry in res.items():
                gap = entry["probe_given_emotion_gap"]
                entry["probe_rel_drop"] = (1.0 - gap / ref) if ref > 0 else (
                    math.nan)
        out[str(bias)] = res
    return out


CLASSIC = {"plain": "classic MFCC + LR",
           "znorm": "classic MFCC + LR, per-speaker z-norm"}


def paired(values, base):
    """A classic row: its UA per seed, and paired with ``base`` (``none``'s
    UA, same seeds) the per-seed differences, their mean and 95% t
    interval."""
    delta = [v - b for v, b in zip(values, base, strict=True)]
    mean, ci = t_interval(delta)
    return {"UA_mean": sum(values) / len(values), "UA": values,
            "delta_UA": delta, "delta_UA_mean": mean, "delta_UA_ci95": ci,
            "seeds": len(values)}


def classic_summary(evidence, seeds, folder_of):
    """``{bias: {"plain": row, "znorm": row}}``: the classic baseline on
    the folds of each bias and seed (``folder_of(bias, seed)``: a run
    folder with its manifests), paired against ``none``'s UA; a bias
    whose runs have no manifests is left out."""
    import common

    out = {}
    for bias, res in evidence.items():
        scores = [common.classic_scores(folder_of(bias, s)) for s in seeds]
        if any(s is None for s in scores) or "none" not in res:
            continue
        out[str(bias)] = {v: paired([s[v] for s in scores],
                                    res["none"]["UA"]) for v in CLASSIC}
    return out


def classic_only_folder(workdir, overrides):
    """``folder_of`` for ``--classic_only``: the manifests of the run of
    a bias and seed with ``overrides``, prepared without training."""
    import common

    return lambda bias, seed: common.classic_only_run(
        workdir, [f"--seed={seed}", f"--demo_speaker_bias={bias}",
                  *overrides])


def _ci(interval):
    return f"[{interval[0]:+.1f}, {interval[1]:+.1f}]"


def table(evidence, meta, classic=None):
    """The Markdown report (``classic``: :func:`classic_summary`)."""
    lines = [
        "# Evidence: does the adversary help where speakers are a shortcut?",
        "",
        f"`python benchmarks/evidence.py` ({meta['wall_s'] / 60:.0f} min on "
        f"{meta['machine']['cores']} cores, "
        f"{common.cpu_text(meta['machine'])}). The "
        "demo recipe at its defaults on the shortcut demo corpus: in the "
        "training sessions each speaker says a favourite emotion with "
        "probability *bias*; the test session (5) is unbiased. ΔUA is "
        "paired against `none` with the same seed (mean, 95% t interval). "
        "Probe: a fresh logistic regression on the trained embeddings of "
        "the training speakers, folds grouped by dialog, balanced accuracy "
        "(%) against a uniform guess (chance); *beyond emotion* is the "
        "balanced accuracy it gains over a probe that sees only the "
        "emotion label (on a shortcut corpus the emotion alone points to "
        "the speakers who favour it); drop = 1 − beyond(mode) / "
        "beyond(none).",
    ]
    if meta.get("overrides"):
        lines.append(f"\nExtra overrides: `{' '.join(meta['overrides'])}`.")
    ref = meta.get("also_against")
    if ref:
        lines.append(f"\nΔUA vs {ref}: the same pairing against `{ref}`.")
    for bias, res in evidence.items():
        extra = f" ΔUA vs {ref} [95% CI] |" if ref else ""
        lines += ["", f"## bias {bias}", "",
                  "| mode | valid UA | test UA | ΔUA vs none | 95% CI |"
                  f"{extra} probe | chance | beyond emotion | probe drop | "
                  "seeds |",
                  "|---|---|---|---|---|" + ("---|" if ref else "")
                  + "---|---|---|---|---|"]
        for mode, e in res.items():
            delta = ci = "—"
            if "delta_UA_mean" in e:
                delta = f"{e['delta_UA_mean']:+.1f}"
                ci = _ci(e["delta_UA_ci95"])
            vs_ref = ""
            if ref:
                vs_ref = " — |"
                if "delta_UA_ref_mean" in e:
                    vs_ref = (f" {e['delta_UA_ref_mean']:+.1f} "
                              f"{_ci(e['delta_UA_ref_ci95'])} |")
            drop = e.get("probe_rel_drop", math.nan)
            lines.append(
                f"| {mode} | {e['valid_UA_mean']:.1f} | {e['UA_mean']:.1f} | "
                f"{delta} | {ci} |{vs_ref} "
                f"{e['probe_mean']:.1f} | {e['probe_chance']:.1f} | "
                f"{e['probe_given_emotion_gap']:.1f} | "
                f"{100 * drop:.0f}% | {e['seeds']} |")
        lines += classic_rows(classic, bias, ref)
    if classic:
        lines += ["", *classic_section(meta)]
    return "\n".join(lines) + "\n"


def classic_rows(classic, bias, ref=None):
    """The Markdown rows of the classic baseline at ``bias``."""
    return [f"| {CLASSIC[variant]} | — | {e['UA_mean']:.1f} | "
            f"{e['delta_UA_mean']:+.1f} | {_ci(e['delta_UA_ci95'])} |"
            + (" — |" if ref else "") + f" — | — | — | — | {e['seeds']} |"
            for variant, e in (classic or {}).get(bias, {}).items()]


def classic_section(meta):
    """What the classic rows are (a Markdown section)."""
    return ["## Classic baseline", "",
            "Classic rows: MFCC statistics (mean and std of 20 MFCCs, "
            "torchaudio) and a scikit-learn logistic regression "
            "(`speechbrain_grl.evaluation.classic`) fitted on each seed's "
            "training split of the `none` run, tested on its test "
            "session; *per-speaker z-norm* standardises every speaker "
            "(training and test) with their own clips' statistics. ΔUA "
            "paired against `none` with the same seed."
            + (f" {meta['classic_note']}" if meta.get("classic_note")
               else "")]


def merge_markdown(text, rows, section):
    """An existing report with the classic rows put in: ``rows``
    (``{heading: [row]}``) go at the end of the first table under each
    heading, ``section`` (lines, its first a ``## `` heading) at the
    end; rows and a section of an earlier merge are replaced."""
    lines = [ln for ln in text.rstrip("\n").split("\n")
             if not ln.startswith("| classic MFCC")]
    if section[0] in lines:  # drop the old section, up to the next one
        start = lines.index(section[0])
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith("## ")), len(lines))
        lines = lines[:start] + lines[end:]
        while lines and not lines[-1].strip():
            lines.pop()
    for heading, new in rows.items():
        i = lines.index(heading)
        while not lines[i].startswith("|"):
            i += 1
        while i < len(lines) and lines[i].startswith("|"):
            i += 1
        lines[i:i] = new
    return "\n".join(lines + ["", *section]) + "\n"


CLASSIC_NOTE = ("Classic rows recomputed by `--classic_only`: the same "
                "corpus, bias, seeds and overrides, the manifests "
                "prepared afresh without training (the demo is "
                "deterministic); the `none` numbers are the report's.")


def classic_only(args):
    """Adds the classic rows to the existing ``<out>/<name>.json`` and
    its Markdown (the rest of the text kept as it is); the seeds are
    ``--seeds`` when it names n, else 1..n (n: the runs per mode)."""
    path = Path(args.out) / f"{args.name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    meta = data.pop("meta")
    data.pop("classic", None)
    if meta.get("hparams", "demo_grl.yaml") != common.DEMO_YAML.name:
        sys.exit("--classic_only prepares demo runs only")
    seeds = report_seeds(args, next(iter(data.values()))["none"]["seeds"])
    classic = classic_summary(data, seeds, classic_only_folder(
        args.workdir, meta.get("overrides") or []))
    meta["classic_note"] = CLASSIC_NOTE
    text = (Path(args.out) / f"{args.name}.md").read_text(encoding="utf-8")
    text = merge_markdown(
        text, {f"## bias {b}": classic_rows(classic, b,
                                             meta.get("also_against"))
               for b in classic}, classic_section(meta))
    write_report(args.out, args.name, dict(data, classic=classic,
                                           meta=meta), text)
    print(text)


def report_seeds(args, n):
    """The seeds of an existing report: ``--seeds`` if it names n seeds
    (the default names 1 to 5), else 1..n."""
    seeds = [int(s) for s in args.seeds.split(",")]
    return seeds if len(seeds) == n else list(range(1, n + 1))


def main(argv=None):
    args = parse_args(argv)
    if args.classic_only:
        return classic_only(args)
    start = time.perf_counter()
    biases = [float(b) for b in args.biases.split(",")]
    modes = mode_list(args.modes)
    if args.also_against and args.also_against not in modes:
        modes.insert(1, args.also_against)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(b, m, s) for s in seeds for b in biases for m in modes]
    run_all(args, jobs)
    evidence = summarise(args, biases, modes, seeds)
    classic = classic_summary(evidence, seeds, lambda b, s: run_folder(
        args.workdir, b, "none", s))
    meta = {"wall_s": time.perf_counter() - start,
            "machine": common.machine(), "overrides": args.overrides,
            "hparams": Path(args.hparams).name,
            "also_against": args.also_against}
    write_report(args.out, args.name, dict(evidence, classic=classic,
                                           meta=meta),
                 table(evidence, meta, classic))
    print(table(evidence, meta, classic))


if __name__ == "__main__":
    main()
