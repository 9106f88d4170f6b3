#!/usr/bin/env python3
"""One training epoch: dynamic batching by duration vs fixed batches of 4.

The reference setting is SpeechBrain's IEMOCAP recipe: batches of 4 in
random order (``--dynamic_batching=False --batch_size=4``). Ours groups
utterances of similar duration into batches of at most
``max_batch_length`` seconds (SpeechBrain's ``DynamicBatchSampler``).
Both run on the same corpus, model and crop (``max_train_duration``).

The demo corpus (1-2.5 s) pads little, so this benchmark synthesises a
corpus with IEMOCAP's duration profile: log-normal, median 3.5 s, clipped
to 0.6-34 s (a long tail). Settings are interleaved round-robin over the
repetitions. The padding ratio is measured on the batches the epoch
actually ran: padded samples / all samples in the batch tensors.

Usage::

    python benchmarks/epoch.py --json out.json
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

EMOTIONS = ("neu", "hap", "ang", "sad")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "base"), default="tiny")
    parser.add_argument("--adversary", default="grl", choices=common.MODES)
    parser.add_argument("--n_utts", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max_train_duration", type=float, default=12.0,
                        help="training crop, seconds (the recipes' 12)")
    parser.add_argument("--max_batch_length", type=float, nargs="+",
                        default=[80.0],
                        help="dynamic settings to try, seconds per batch")
    parser.add_argument("--num_buckets", type=int, default=20)
    parser.add_argument("--ref_batch_size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_utts, args.reps = 24, 1
    return args


def iemocap_like_durations(n, seed=0):
    """Log-normal durations, median 3.5 s, clipped to [0.6, 34] s."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(math.log(3.5), 0.65, n), 0.6, 34.0)


def make_corpus(folder, n_utts, seed=0):
    """Noise wavs with IEMOCAP-like durations and a manifest; reused."""
    import numpy as np
    import soundfile as sf

    folder = Path(folder)
    manifest = folder / f"train_{n_utts}_{seed}.json"
    if manifest.exists():
        return manifest
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    entries = {}
    for i, dur in enumerate(iemocap_like_durations(n_utts, seed)):
        name = f"utt{seed}_{i:05d}.wav"
        n = int(dur * 16000)
        sf.write(str(folder / name), 0.05 * rng.standard_normal(n), 16000,
                 subtype="PCM_16")
        entries[f"utt{i:05d}"] = {
            "wav": f"{{data_root}}/{name}", "duration": n / 16000,
            "emo": EMOTIONS[i % 4], "spk_id": f"spk{i % 10}",
        }
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, manifest)
    return manifest


def setting_overrides(args, max_len):
    if max_len is None:
        return {"dynamic_batching": False,
                "batch_size": args.ref_batch_size}
    return {"dynamic_batching": True, "max_batch_length": max_len,
            "num_buckets": args.num_buckets}


def run_epoch(args, workdir, encoder, manifest, max_len):
    """One epoch of ``brain.fit`` (no validation); time and padding."""
    from speechbrain.utils.epoch_loop import EpochCounter

    from speechbrain_grl.dataio import data_hparams, dataio_prep

    hparams = common.load_hparams(
        encoder, args.size, workdir, adversary=args.adversary,
        data_folder=str(manifest.parent), train_annotation=str(manifest),
        valid_annotation=str(manifest), test_annotation=str(manifest),
        max_train_duration=args.max_train_duration,
        **setting_overrides(args, max_len),
    )
    datasets = dataio_prep(**data_hparams(hparams))
    hparams["label_encoder"] = datasets["label_encoder"]
    hparams["spk_encoder"] = datasets["spk_encoder"]
    brain = common.build_brain(hparams, args.device)
    kwargs = hparams["dataloader_options"]
    if "train_sampler" in datasets:
        kwargs = {"batch_sampler": datasets["train_sampler"]}
    shapes = []
    fit_batch = brain.fit_batch

    def recording(batch):
        wavs, lens = batch.sig
        shapes.append((wavs.numel(), float(lens.sum()) * wavs.shape[1]))
        return fit_batch(batch)

    brain.fit_batch = recording
    start = time.perf_counter()
    brain.fit(EpochCounter(1), datasets["train"], None,
              progressbar=False, train_loader_kwargs=kwargs)
    elapsed = time.perf_counter() - start
    total = sum(s[0] for s in shapes)
    real = sum(s[1] for s in shapes)
    return {"epoch_s": elapsed, "steps": len(shapes),
            "padding_ratio": 1.0 - real / total,
            "batch_seconds": total / len(shapes) / 16000}


def label(max_len, args):
    if max_len is None:
        return f"fixed batch {args.ref_batch_size}, random order"
    return f"dynamic {max_len:g} s, {args.num_buckets} buckets"


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    workdir = args.workdir or tempfile.mkdtemp(prefix="sbgrl_bench_")
    start = time.perf_counter()
    encoder = common.make_encoder(workdir, args.size)
    manifest = make_corpus(Path(workdir) / "corpus", args.n_utts)
    settings = [None] + list(args.max_batch_length)
    runs = {label(s, args): [] for s in settings}
    for rep in range(args.reps):
        k = rep % len(settings)
        for max_len in settings[k:] + settings[:k]:
            runs[label(max_len, args)].append(
                run_epoch(args, workdir, encoder, manifest, max_len))
    ref = label(None, args)
    ref_time = common.summary([r["epoch_s"] for r in runs[ref]])["median"]
    out = {}
    for name, reps in runs.items():
        times = common.summary([r["epoch_s"] for r in reps])
        out[name] = dict(reps[0], epoch=times,
                         ratio=times["median"] / ref_time)
        out[name].pop("epoch_s")
    durations = iemocap_like_durations(args.n_utts)
    result = {
        "benchmark": "epoch", "size": args.size,
        "config": {k: getattr(args, k) for k in (
            "adversary", "n_utts", "reps", "max_train_duration",
            "num_buckets", "ref_batch_size", "threads", "device", "quick")},
        "corpus": {"n_utts": args.n_utts,
                   "hours": float(durations.sum()) / 3600,
                   "min_s": float(durations.min()),
                   "median_s": float(sorted(durations)[len(durations) // 2]),
                   "max_s": float(durations.max())},
        "settings": out, "machine": common.machine(),
        "wall_s": time.perf_counter() - start,
    }
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fout:
            json.dump(result, fout, indent=2)


def table(result):
    """Markdown table of a result."""
    c = result["corpus"]
    lines = [
        f"epoch ({result['size']} encoder, {c['n_utts']} utterances, "
        f"{c['min_s']:.1f}-{c['max_s']:.1f} s, median {c['median_s']:.1f} s"
        f", crop {result['config']['max_train_duration']:g} s)",
        "| batching | median epoch (s) | IQR (s) | epoch / reference | "
        "steps | padding ratio | mean padded batch (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in result["settings"].items():
        lines.append(
            f"| {name} | {res['epoch']['median']:.2f} | "
            f"{res['epoch']['iqr']:.2f} | {res['ratio']:.3f} | "
            f"{res['steps']} | {res['padding_ratio']:.3f} | "
            f"{res['batch_seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
