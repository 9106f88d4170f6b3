#!/usr/bin/env python3
"""Reading a recipe's clips every epoch: from disk, and kept in memory.

The demo corpus (``--utts`` clips per speaker, 10 speakers; 150 gives
``recipe_speed.py``'s 1,500 clips) is read ``--epochs`` times as a
training set reads it (a random ``--crop`` s window of longer clips),
through :func:`~speechbrain_grl.dataio.audio.read_audio` (every epoch
from disk, the files in the page cache after the first) and through
:class:`~speechbrain_grl.dataio.audio.AudioCache`, interleaved over
``--rounds`` (a fresh cache each round). Reported: median seconds of all
epochs, the ratio, the memory the cache holds, and whether every signal
is the same.

    python benchmarks/audio_cache.py

Writes ``benchmarks/audio_cache.md`` and ``audio_cache.json``.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utts", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--crop", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    return parser.parse_args(argv)


def epochs(read, paths, n, crop, seed=0):
    """Seconds to read every clip ``n`` times, and the last epoch's
    signals."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(n):
        sigs = [read(p, 16000, crop, gen) for p in paths]
    return time.perf_counter() - start, sigs


def main(argv=None):
    args = parse_args(argv)
    common.set_threads(args.threads)
    import torch

    from speechbrain_grl.dataio.audio import AudioCache, read_audio
    from speechbrain_grl.testing.demo import demo_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = demo_corpus(Path(tmp) / "corpus", utts_per_speaker=args.utts)
        paths = sorted(str(p) for p in Path(root).rglob("*.wav")
                       if not p.name.startswith("._"))  # AppleDouble
        times = {"disk": [], "cache": []}
        same, nbytes = True, 0
        for r in range(args.rounds):
            order = ("disk", "cache") if r % 2 == 0 else ("cache", "disk")
            sigs = {}
            for name in order:
                cache = AudioCache()
                read = read_audio if name == "disk" else cache.read
                seconds, sigs[name] = epochs(read, paths, args.epochs,
                                             args.crop, seed=r)
                times[name].append(seconds)
                if name == "cache":
                    nbytes = cache.nbytes
            same &= all(torch.equal(a, b)
                        for a, b in zip(sigs["disk"], sigs["cache"]))
            print(r, {k: round(v[-1], 3) for k, v in times.items()},
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    host = common.machine()
    results = {"clips": len(paths), "epochs": args.epochs,
               "crop_s": args.crop, "rounds": args.rounds,
               "disk_s": round(med["disk"], 3),
               "cache_s": round(med["cache"], 3),
               "ratio": round(med["cache"] / med["disk"], 3),
               "cache_mb": round(nbytes / 2**20, 1),
               "identical": bool(same), "machine": host}
    lines = [
        "# Reading a recipe's clips every epoch: disk and memory", "",
        common.command("audio_cache.py"), "",
        f"The demo corpus, {len(paths)} clips, read {args.epochs} times "
        f"as training reads it (a random {args.crop:g} s window of longer "
        "clips); median over "
        f"{args.rounds} interleaved rounds. Machine: {common.cpu_text(host)}, "
        f"{host['cores']} cores, torch {host['torch']}, {args.threads} "
        "threads.", "",
        "| read | seconds, all epochs | ms per clip read |", "|---|---|---|",
        *(f"| {name} | {med[key]:.3f} | "
          f"{1e3 * med[key] / (len(paths) * args.epochs):.3f} |"
          for name, key in (("`read_audio` (disk)", "disk"),
                            ("`AudioCache`", "cache"))), "",
        f"Ratio cache / disk: {results['ratio']}. The cache holds "
        f"{results['cache_mb']} MB; every signal identical: "
        f"{'yes' if same else 'NO'}."]
    common.write_report(args.out, "audio_cache", results, lines)


if __name__ == "__main__":
    main()
