#!/usr/bin/env python3
"""Inference speed of an exported model on CPU (real-time factor).

Builds inference folders in the exported layout (random heads) around a
tiny random wav2vec2 and a wav2vec2-base-sized one, loads them with the
stock ``EncoderClassifier`` and times ``classify_batch`` on random audio,
one utterance at a time and in batches, every precision once per round
(interleaved, as ratios to fp32). RTF = compute seconds / audio
seconds (lower is faster; 0.05 = 20x faster than real time). On a shared
machine the wall-clock RTF depends on the load; "CPU s per audio s"
(process CPU time, all threads) depends less on it: on idle cores, RTF is
about that divided by the thread count.

    python benchmarks/inference.py [--threads 2] [--seconds 5] [--n 8]
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import cpu_text, machine, set_threads

from speechbrain_grl.inference.export import build_heads, fill_template
from speechbrain_grl.inference.predict import quantize_int8
from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl


def build_folder(folder, size, emb_dim=256, n_emotions=4, kind="wav2vec2"):
    """An exported-layout folder around a random SSL model."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    folder = Path(folder)
    make_tiny_ssl(folder / "ssl", kind=kind, size=size)
    config = json.loads((folder / "ssl" / "config.json").read_text())
    hidden = config["hidden_size"]
    text = fill_template(
        {"model_dir": str(folder.resolve()), "encoder_dim": hidden,
         "emb_dim": emb_dim, "n_emotions": n_emotions,
         "output_norm": False},
        "speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2",
    )
    (folder / "hyperparams.yaml").write_text(text)
    heads = build_heads(text, folder)
    for name in ("embedding_model", "classifier"):
        torch.save(heads[name].state_dict(), folder / f"{name}.ckpt")
    enc = CategoricalEncoder()
    enc.update_from_iterable(["neu", "hap", "ang", "sad"])
    enc.save(folder / "label_encoder.txt")
    return folder


def timed(clf, wavs, batch_size, precision="fp32"):
    """Wall and process CPU seconds of one pass over ``wavs`` in batches
    of ``batch_size``."""
    with torch.no_grad(), torch.autocast(
            "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(wavs), batch_size):
            clf.classify_batch(wavs[i:i + batch_size])
        return time.perf_counter() - start, time.process_time() - cpu


def interleaved(clfs, wavs, batches, repeats, audio_s):
    """Rows of RTF for every precision and batch size, timed in
    ``repeats`` rounds that each run every setting once (the order
    rotating by round), so that the machine's load hits all alike:
    best and median RTF, CPU seconds per audio second of the best, and
    the median over rounds of the time relative to fp32's in the same
    round (when fp32 is timed)."""
    settings = [(p, bs) for p in clfs for bs in batches]
    for prec, bs in settings:  # warm-up
        timed(clfs[prec], wavs[:bs], bs, prec)
    times = {key: [] for key in settings}
    for r in range(repeats):
        for prec, bs in settings[r % len(settings):] + settings[
                :r % len(settings)]:
            times[prec, bs].append(timed(clfs[prec], wavs, bs, prec))
    rows = []
    for prec, bs in settings:
        walls = [w for w, _ in times[prec, bs]]
        best = min(times[prec, bs])
        row = {"precision": prec, "batch": bs,
               "rtf": best[0] / audio_s,
               "rtf_median": statistics.median(walls) / audio_s,
               "cpu_per_audio_s": best[1] / audio_s}
        if "fp32" in clfs:
            row["vs_fp32"] = statistics.median(
                w / f for w, (f, _) in zip(walls, times["fp32", bs]))
        rows.append(row)
    return rows


def calibration(args, precision):
    """Clips for ``quantize_int8``'s convolutions: ``--n`` random ones,
    drawn apart from the timed audio, for ``int8``; None otherwise."""
    if precision != "int8":
        return None
    gen = torch.Generator().manual_seed(1)
    return list(torch.randn(args.n, int(args.seconds * 16000),
                            generator=gen) * 0.1)


def gemm_gflops(size=2048, repeats=10):
    """The machine's float32 matrix-product rate now (GFLOP/s, at the
    threads set): what a compute-bound encoder can reach at best."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def encoder_gflop(clf, seconds):
    """GFLOP of the encoder for one utterance of ``seconds`` (counted by
    torch's FlopCounterMode: matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    wav = torch.randn(1, int(seconds * 16000)) * 0.1
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        clf.mods.compute_features(wav)
    return counter.get_total_flops() / 1e9


def flop_limit(clf, seconds):
    """The fp32 RTF a compute-bound encoder would reach at the machine's
    measured matrix-product rate: its lower bound here."""
    gflop = encoder_gflop(clf, seconds)
    rate = gemm_gflops()
    return {"gflop_per_audio_s": gflop / seconds, "gemm_gflops": rate,
            "rtf_at_gemm_rate": gflop / seconds / rate}


def table(result):
    """Markdown table of a result."""
    c = result["config"]
    lines = [
        f"Stock `EncoderClassifier.classify_batch`, {c['n']} utterances of "
        f"{c['seconds']:g} s of random audio, {c['repeats']} rounds, each "
        "timing every precision and batch once (interleaved, the order "
        "rotating). RTF = wall seconds / audio seconds, best and median "
        "round (targets for the base-sized encoder on 2 cores: fp32 ≤ "
        "0.05, int8 ≤ 0.03); CPU s per audio s (of the best round) counts "
        "all threads; × fp32: the median over rounds of the time relative "
        "to fp32's in the same round.",
        "",
        "| encoder | precision | batch | RTF best | RTF median | "
        "x real time | CPU s per audio s | × fp32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        ratio = row.get("vs_fp32")
        lines.append(
            f"| {row['size']} | {row['precision']} | {row['batch']} | "
            f"{row['rtf']:.4f} | {row.get('rtf_median', row['rtf']):.4f} | "
            f"{1 / row['rtf']:.0f} | {row['cpu_per_audio_s']:.4f} | "
            f"{'—' if ratio is None else f'{ratio:.3f}'} |"
        )
    for size, lim in result.get("flop_limit", {}).items():
        lines += ["", f"`{size}` encoder: {lim['gflop_per_audio_s']:.2f} "
                  "GFLOP per audio second; float32 matrix products ran at "
                  f"{lim['gemm_gflops']:.0f} GFLOP/s in this run, so fp32 "
                  f"cannot beat RTF {lim['rtf_at_gemm_rate']:.4f} here "
                  "(RTF 0.05 needs "
                  f"{lim['gflop_per_audio_s'] / 0.05:.0f} GFLOP/s)."]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each utterance")
    parser.add_argument("--n", type=int, default=8, help="utterances")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds (each times every setting once)")
    parser.add_argument("--sizes", default="tiny,base")
    parser.add_argument("--precisions",
                        default="fp32,bf16,int8,int8_matmul,int8_torch",
                        help="bf16 = autocast; int8 = predict --precision "
                             "int8 (ONNX Runtime if installed; its "
                             "convolutions calibrated on --n other random "
                             "clips); int8_matmul = the same without "
                             "calibration (matrix products only); "
                             "int8_torch = PyTorch's dynamic quantisation")
    parser.add_argument("--workdir", default=None,
                        help="unused; accepted for run_all.py")
    parser.add_argument("--json", default=None, help="write results here")
    parser.add_argument("--md", default=None,
                        help="write the markdown table here")
    args = parser.parse_args()
    set_threads(args.threads)
    rows, limits = [], {}
    from speechbrain.inference.classifiers import EncoderClassifier

    tmp = Path(tempfile.mkdtemp(prefix="sb-grl-bench-"))
    print(f"threads={args.threads} utterances={args.n}x{args.seconds:g}s "
          f"torch={torch.__version__}")
    try:
        for size in args.sizes.split(","):
            folder = build_folder(tmp / size, size)
            clfs = {}
            for prec in args.precisions.split(","):
                clf = EncoderClassifier.from_hparams(
                    source=str(folder), savedir=str(tmp / f"{size}-sd"))
                if prec == "fp32" and size != "tiny":
                    limits[size] = flop_limit(clf, args.seconds)
                    print(f"{size:5s} fp32 FLOP limit: {limits[size]}",
                          flush=True)
                if prec.startswith("int8"):
                    quantize_int8(clf, backend="torch" if prec == "int8_torch"
                                  else "auto",
                                  calibration=calibration(args, prec))
                clfs[prec] = clf
            wavs = torch.randn(args.n, int(args.seconds * 16000)) * 0.1
            for row in interleaved(clfs, wavs, sorted({1, args.batch}),
                                   args.repeats, args.n * args.seconds):
                print(f"{size:5s} {row['precision']} batch="
                      f"{row['batch']:<3d} RTF={row['rtf']:.4f} (median "
                      f"{row['rtf_median']:.4f}), CPU s per audio s "
                      f"{row['cpu_per_audio_s']:.4f}", flush=True)
                rows.append({"size": size, **row})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    config = {k: getattr(args, k)
              for k in ("threads", "seconds", "n", "batch", "repeats")}
    result = {"benchmark": "inference", "machine": machine(),
              "config": config, "rows": rows, "flop_limit": limits}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.md:
        m = result["machine"]
        Path(args.md).write_text(
            "# CPU inference speed\n\n`python benchmarks/inference.py "
            f"--sizes {args.sizes} --precisions {args.precisions}`; "
            f"machine: {cpu_text(m)}, {args.threads} threads, torch "
            f"{torch.__version__}.\n\n" + table(result) + "\n")


if __name__ == "__main__":
    main()
