#!/usr/bin/env python3
"""Predicting with speaker adaptation: each file encoded once.

``predict_speakers`` (``speechbrain-grl-predict --speakers``) used to
encode every file twice: once for its speaker's statistics, once to
classify it. It now encodes each window once and reads a one-window
file's statistics from the same features; an adaptation curve (one
prediction per k) shares one encoding across every k. This times both
on a demo spknorm model (tiny encoder, ``--utts`` clips per speaker,
every split's files classified with each speaker's clips), interleaved
over ``--rounds``:

- *one prediction* (all clips): the earlier algorithm, rebuilt from
  today's pieces (each speaker's clips through ``pooled_features``, then
  ``predict`` with that speaker's mean), against ``predict_speakers``;
- *a curve* (k = 0, 1, 3, 5, 10, all): the earlier algorithm once per k
  against one ``encode_windows`` shared by the six ``predict_speakers``
  calls, as ``adaptation_curve`` now does.

It reports the median seconds, their ratio and the largest probability
difference and label agreement between the two ways. With ``--runs``,
finished runs whose ``adaptation_curve.json`` the earlier code wrote
(``benchmarks/adaptation.py``'s) get their curves recomputed in a copy
and compared.

    python benchmarks/speaker_predict.py [--workdir W] [--runs RUN...]

Writes ``benchmarks/speaker_predict.md`` and ``speaker_predict.json``.
"""

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

KS = (0, 1, 3, 5, 10, None)  # None: all clips


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None,
                        help="keeps the trained run (default: temporary)")
    parser.add_argument("--utts", type=int, default=40,
                        help="demo clips per speaker (10 speakers)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", nargs="*", default=[],
                        help="finished runs with an adaptation_curve.json "
                        "to recompute")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    return parser.parse_args(argv)


def recompute(runs, work):
    """Each run's adaptation curve recomputed in a copy (its checkpoints
    linked): ``{"runs", "max_abs_diff", "seconds"}``."""
    import json
    import shutil

    from speechbrain_grl.evaluation.adaptation import adaptation_curve

    diffs, seconds = [], []
    for n, run in enumerate(map(Path, runs)):
        old = json.loads((run / "adaptation_curve.json").read_text())
        copy = work / "curves" / str(n)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns(
            "exported", "adaptation_curve*.json", "save"))
        (copy / "save").symlink_to((run / "save").resolve())
        took, new = timed(functools.partial(
            adaptation_curve, copy, ks=old["ks"], seed=old["seed"]))
        seconds.append(took)
        diffs += [abs(new[s][k] - old["UA"][s][k]) for s in new
                  for k in new[s]]
        print(run, round(took, 2), max(diffs), flush=True)
    return {"runs": len(runs), "max_abs_diff": max(diffs),
            "seconds": seconds}


def two_passes(clf, files, speakers, k, options):
    """The earlier ``predict_speakers``: each speaker's statistics from
    their clips' own encoder pass, then ``predict`` on their files."""
    from speechbrain_grl.inference.adaptation import _speaker_clips
    from speechbrain_grl.inference.predict import predict

    clips, rows = {}, {}
    for path, spk in speakers.items():
        clips.setdefault(spk, []).append(path)
    for spk, paths in clips.items():
        adapt, _ = _speaker_clips(clf, paths, k, 0, None, {})
        mine = [f for f in files if speakers[f] == spk]
        with adapt.applied(clf):
            rows.update(zip(mine, predict(clf, mine, **options)))
    return [rows[f] for f in files]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def compare(a, b):
    """Largest probability difference and label agreement of two rows'
    lists."""
    probs = [key for key in a[0] if key.startswith("prob_")]
    return (max(abs(x[key] - y[key]) for x, y in zip(a, b) for key in probs),
            sum(x["label"] == y["label"] for x, y in zip(a, b)) / len(a))


def main(argv=None):
    args = parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="spk_predict_"))
    run, model = common.demo_run(work, "spknorm", args.epochs, args.utts,
                                 export=True)
    common.set_threads(args.threads)
    from speechbrain_grl.evaluation.adaptation import OPTIONS as options
    from speechbrain_grl.evaluation.adaptation import manifest_files
    from speechbrain_grl.inference.adaptation import predict_speakers
    from speechbrain_grl.inference.predict import encode_windows, load_model

    clf = load_model(model)
    files, speakers = [], {}
    for split in ("train", "valid", "test"):
        paths, spks, _ = manifest_files(run, split)
        files += [p.resolve() for p in paths]
        speakers.update((p.resolve(), s) for p, s in zip(paths, spks))

    def one_before():
        return two_passes(clf, files, speakers, None, options)

    def one_now():
        return predict_speakers(clf, files, speakers, **options)

    def curve_before():
        return [two_passes(clf, files, speakers, k, options) for k in KS]

    def curve_now():
        windows = encode_windows(clf, files, **options)
        return [predict_speakers(clf, files, speakers, k, windows=windows,
                                 **options) for k in KS]

    one_now()  # warm-up
    ways = {"one_before": one_before, "one_now": one_now,
            "curve_before": curve_before, "curve_now": curve_now}
    times, last = {name: [] for name in ways}, {}
    for _ in range(args.rounds):
        for name, fn in ways.items():
            seconds, last[name] = timed(fn)
            times[name].append(seconds)
        print({name: round(t[-1], 2) for name, t in times.items()},
              flush=True)
    one_diff = compare(last["one_before"], last["one_now"])
    curve_diff = [compare(a, b) for a, b in zip(last["curve_before"],
                                                last["curve_now"])]
    median = {name: statistics.median(t) for name, t in times.items()}
    host = common.machine()
    results = {
        "benchmark": "speaker_predict", "files": len(files),
        "speakers": len(set(speakers.values())), "rounds": args.rounds,
        "seconds": times, "median_s": median,
        "ratio": {"one": median["one_now"] / median["one_before"],
                  "curve": median["curve_now"] / median["curve_before"]},
        "max_prob_diff": {"one": one_diff[0],
                          "curve": max(d[0] for d in curve_diff)},
        "label_agreement": {"one": one_diff[1],
                            "curve": min(d[1] for d in curve_diff)},
        "machine": host,
    }
    if args.runs:
        results["recomputed"] = recompute(args.runs, work)
    lines = [
        "# Predicting with speaker adaptation: each file encoded once", "",
        common.command("speaker_predict.py", argv), "",
        f"A demo spknorm model ({args.epochs} epochs, tiny random "
        f"wav2vec2), its {len(files)} clips of {results['speakers']} "
        "speakers (every split) classified one at a time, each speaker's "
        "statistics from their own clips. *Before*: each speaker's clips "
        "encoded for the statistics, then again to be classified (the "
        "algorithm of commit 4431db7, rebuilt from today's pieces); "
        "*now*: `predict_speakers`, each file encoded once. A curve is "
        "k = 0, 1, 3, 5, 10, all: before, the earlier algorithm per k; "
        "now one `encode_windows` shared by the six calls "
        f"(`adaptation_curve`). Median of {args.rounds} interleaved "
        f"rounds. Machine: {common.cpu_text(host)}, {host['cores']} "
        "cores, torch "
        f"{host['torch']}, {args.threads} threads.", "",
        "| | before s | now s | ratio | max probability difference | "
        "label agreement |", "|---|---|---|---|---|---|"]
    for name in ("one", "curve"):
        lines.append(
            f"| {'one prediction' if name == 'one' else 'a curve'} | "
            f"{median[name + '_before']:.2f} | {median[name + '_now']:.2f} "
            f"| {results['ratio'][name]:.3f} | "
            f"{results['max_prob_diff'][name]:.1e} | "
            f"{100 * results['label_agreement'][name]:.1f}% |")
    if args.runs:
        got = results["recomputed"]
        lines += [
            "", f"The adaptation curves of {got['runs']} finished runs "
            "(their `adaptation_curve.json`, written by the earlier code) "
            "recomputed by today's `adaptation_curve` in a copy of each "
            "run (export included): largest |ΔUA| over splits and k "
            f"{got['max_abs_diff']:.4f}, median "
            f"{statistics.median(got['seconds']):.1f} s per run "
            f"({min(got['seconds']):.1f}–{max(got['seconds']):.1f})."]
    common.write_report(args.out, "speaker_predict", results, lines)


if __name__ == "__main__":
    main()
