#!/usr/bin/env python3
"""This recipe against SpeechBrain's own IEMOCAP wav2vec2 recipe.

Both recipes train the same tiny random wav2vec2 on the same demo corpus
and split (this recipe's manifests: SpeechBrain's ``iemocap_prepare.py``
insists on IEMOCAP's 5,531 clips, so its recipe runs with ``skip_prep``
on them), for the same number of epochs, as fresh processes, interleaved
over ``--pairs`` (alternating which goes first). SpeechBrain's recipe
is ``recipes/IEMOCAP/emotion_recognition`` (``train_with_wav2vec2.py``,
``iemocap_prepare.py``, ``hparams/train_with_wav2vec2.yaml``) from a
clone of SpeechBrain's repository, given by ``--speechbrain_recipe``;
pip's speechbrain ships no recipes. This recipe runs ``--adversary=none``
with the probes off, twice: as the demo yaml sets it (the encoder's
convolutional front end trained) and with the front end frozen, as
SpeechBrain's yaml sets it (``freeze_wav2vec2_conv: True``). Both
recipes use every core (``OMP_NUM_THREADS``) and their own data-loader
settings. Reported: the wall time of each process, the ratio to
SpeechBrain's per pair, and each run's test error.

    git clone https://github.com/speechbrain/speechbrain /tmp/sb
    python benchmarks/vs_speechbrain.py \\
        --speechbrain_recipe /tmp/sb/recipes/IEMOCAP/emotion_recognition

Writes ``benchmarks/vs_speechbrain.md`` and ``vs_speechbrain.json``
(``--name``). ``--clip_seconds 2,8`` draws the demo clips' lengths from
2-8 s instead of the demo's 1-2.5 s: this recipe crops training clips to
``max_train_duration`` (3 s), SpeechBrain's trains on whole clips.
Target (issue 24): a ratio ≤ 0.5.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from speechbrain_grl.utils.threads import child_env, cpu_cores  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speechbrain_recipe", required=True,
                        help="SpeechBrain's recipes/IEMOCAP/"
                             "emotion_recognition folder")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--utts", type=int, default=40,
                        help="demo clips per speaker")
    parser.add_argument("--clip_seconds", default="1.0,2.5",
                        help="range of the demo clips' lengths (the "
                             "demo's default: 1.0,2.5)")
    parser.add_argument("--name", default="vs_speechbrain",
                        help="report name (<name>.md, <name>.json)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    args = parser.parse_args(argv)
    args.clip_seconds = [float(x) for x in args.clip_seconds.split(",")]
    return args


def corpus_overrides(args):
    """The demo corpus's size and clip lengths, as recipe overrides."""
    lo, hi = args.clip_seconds
    return [f"--demo_utts_per_speaker={args.utts}",
            f"--demo_clip_seconds=[{lo:g},{hi:g}]"]


def assets(args):
    """The demo corpus, the tiny wav2vec2 and the demo's manifests (its
    speaker-independent session split), built once."""
    folder = Path(args.workdir).resolve() / "demo_assets"
    manifests, hparams = common.demo_manifests(
        Path(args.workdir).resolve() / "manifests", corpus_overrides(args),
        folder)
    return hparams["data_folder"], hparams["ssl_hub"], manifests


def speechbrain_run(args, corpus, ssl, folder, manifests):
    """SpeechBrain's recipe on the demo's split (``skip_prep``: its own
    preparation wants IEMOCAP's 5,531 clips): command and folder."""
    recipe = Path(args.speechbrain_recipe).resolve()
    return [sys.executable, "train_with_wav2vec2.py",
            "hparams/train_with_wav2vec2.yaml", f"--data_folder={corpus}",
            f"--wav2vec2_hub={ssl}", f"--output_folder={folder}",
            f"--number_of_epochs={args.epochs}", "--encoder_dim=32",
            "--skip_prep=True",
            *[f"--{s}_annotation={manifests / f'{s}.json'}"
              for s in ("train", "valid", "test")]], recipe


def our_run(args, corpus, ssl, folder, manifests, frozen=False):
    """This recipe, the same corpus and encoder; ``frozen``: its front
    end frozen, as in SpeechBrain's yaml."""
    demo = Path(args.workdir).resolve() / "demo_assets"
    return [sys.executable, "train.py", str(common.DEMO_YAML),
            "--adversary=none", "--probe_speakers=False",
            *corpus_overrides(args),
            f"--demo_folder={demo}", f"--output_folder={folder}",
            f"--number_of_epochs={args.epochs}",
            f"--freeze_feature_extractor={frozen}"], common.RECIPE


def our_frozen_run(*args):
    """This recipe with the front end frozen (SpeechBrain's setting)."""
    return our_run(*args, frozen=True)


def timed(cmd, cwd, env, log):
    """Wall seconds of one process; exits on failure."""
    start = time.perf_counter()
    with open(log, "w") as out:
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=out,
                             stderr=subprocess.STDOUT)
    if res.returncode != 0:
        sys.exit(f"vs_speechbrain.py: {cmd[1]} failed; see {log}")
    return time.perf_counter() - start


def speechbrain_error(folder):
    """The test error rate SpeechBrain's recipe logged, or None."""
    log = (Path(folder) / "train_log.txt").read_text()
    found = re.findall(r"test error_rate: ([0-9.e+-]+)", log)
    return float(found[-1]) if found else None


def main(argv=None):
    args = parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="vs_sb_")
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus, ssl, manifests = assets(args)
    env = child_env(cpu_cores(), dict(os.environ, HF_HUB_OFFLINE="1"))
    runners = {"speechbrain": speechbrain_run, "this": our_run,
               "this_frozen": our_frozen_run}
    ours = ("this", "this_frozen")
    times = {name: [] for name in runners}
    errors = {}
    for pair in range(args.pairs):
        order = list(runners) if pair % 2 == 0 else list(runners)[::-1]
        for name in order:
            folder = work / f"{name}_{pair}"
            subprocess.run(["rm", "-rf", str(folder)], check=True)
            cmd, cwd = runners[name](args, corpus, ssl, folder, manifests)
            times[name].append(timed(cmd, cwd, env, f"{folder}.log"))
            print(name, pair, round(times[name][-1], 1), flush=True)
        errors["speechbrain"] = speechbrain_error(work / f"speechbrain_{pair}")
        for name in ours:
            metrics = json.loads((work / f"{name}_{pair}" /
                                  "test_metrics.json").read_text())
            errors[name] = round(1 - metrics["WA"] / 100, 4)
    ratios = {name: [t / s for t, s in zip(times[name], times["speechbrain"])]
              for name in ours}
    result = {
        "epochs": args.epochs, "clips": 10 * args.utts, "pairs": args.pairs,
        "clip_seconds": args.clip_seconds,
        "wall_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "ratio_per_pair": {k: [round(r, 3) for r in v]
                           for k, v in ratios.items()},
        "ratio_median": {k: round(statistics.median(v), 3)
                         for k, v in ratios.items()},
        "test_error": errors, "machine": common.machine()}
    m = result["machine"]
    median = result["ratio_median"]
    lines = [
        "# This recipe against SpeechBrain's IEMOCAP wav2vec2 recipe", "",
        common.command("vs_speechbrain.py"), "",
        f"Same tiny random wav2vec2 and demo corpus ({10 * args.utts} "
        f"clips of {args.clip_seconds[0]:g}-{args.clip_seconds[1]:g} s), "
        f"{args.epochs} epochs, whole process, {args.pairs} "
        "interleaved rounds; this recipe `--adversary=none`, probes off: "
        "*this* as the demo yaml sets it (the encoder's convolutional "
        "front end trained), *frozen* with `--freeze_feature_extractor="
        "True`, as SpeechBrain's yaml freezes it (`freeze_wav2vec2_conv`)."
        f" Machine: {common.cpu_text(m)}, {m['cores']} cores, "
        f"torch {m['torch']}. "
        "Target: ratio ≤ 0.5.", "",
        "| round | SpeechBrain s | this s | ratio | frozen s | ratio |",
        "|---|---|---|---|---|---|"]
    for i, s in enumerate(times["speechbrain"]):
        t, f = times["this"][i], times["this_frozen"][i]
        lines.append(f"| {i + 1} | {s:.1f} | {t:.1f} | {t / s:.3f} | "
                     f"{f:.1f} | {f / s:.3f} |")
    lines += ["", f"Median ratio: this {median['this']:.3f}, frozen "
              f"{median['this_frozen']:.3f}. Test error (last round, "
              f"1 - WA): SpeechBrain {errors['speechbrain']}, this "
              f"{errors['this']}, frozen {errors['this_frozen']}."]
    common.write_report(args.out, args.name, result, lines)


if __name__ == "__main__":
    main()
