#!/usr/bin/env python3
"""Batched evaluation against one clip per batch: scores and time.

wav2vec2's first convolution group-normalises over all time steps, and
SpeechBrain's wrapper standardises the padded waveform, so a plain padded
batch changes each clip's embedding with its neighbours.
:func:`speechbrain_grl.nnet.exact_padding.encode` computes both over each
clip's own samples, and the pooling over its own frames. This trains the
demo recipe once (``--utts`` clips per speaker, the 1,500-clip corpus of
``recipe_speed.py`` by default), then scores its validation set one clip
at a time (the reference) and, for each of ``--batches``, in the
recipe's duration-sorted batches, exact and plain (the encoder called as
it is), interleaved over ``--reps`` repetitions (median time). Reported:
the largest log-probability difference from the reference, the labels
that change, the UA, and the time against one clip per batch.

    python benchmarks/valid_padding.py [--workdir W] [--batches 4,8,16,32]

Writes ``benchmarks/valid_padding.md`` and ``valid_padding.json``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def evaluate(brain, dataset, batch_size):
    """Validation log-probabilities ``{id: tensor}``, UA and seconds."""
    import speechbrain as sb
    import torch

    brain.modules.eval()
    brain.on_stage_start(sb.Stage.VALID)
    loader = sb.dataio.dataloader.make_dataloader(dataset,
                                                  batch_size=batch_size)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            brain.evaluate_batch(batch, sb.Stage.VALID)
    seconds = time.perf_counter() - start
    logp = dict(zip(brain._preds["ids"],
                    torch.cat(brain._preds["logp"]).float()))
    return logp, brain.stage_metrics()["UA"], seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--batches", default="4,8,16,32")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--utts", type=int, default=150)
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="valid_pad_"))
    # grl: the mode its first numbers used
    run = common.demo_run(work, "grl", args.epochs, args.utts)
    from hyperpyyaml import load_hyperpyyaml

    import speechbrain_grl.brain as brain_module
    from speechbrain_grl.brain import SpeakerAdversarialBrain
    from speechbrain_grl.dataio import data_hparams, dataio_prep

    common.set_threads(2)
    with open(run / "hyperparams.yaml", encoding="utf-8") as fin:
        hp = load_hyperpyyaml(fin, {"skip_prep": True})
    data = dataio_prep(**data_hparams(hp))
    hp["label_encoder"] = data["label_encoder"]
    brain = SpeakerAdversarialBrain(modules=hp["modules"], hparams=hp,
                                    run_opts={"device": "cpu"},
                                    checkpointer=hp["checkpointer"])
    brain.checkpointer.recover_if_possible(max_key="UA")
    exact = brain_module.encode

    def plain(ssl, wavs, lens):
        """The encoder as it is: padding seen."""
        return ssl(wavs, lens), lens

    settings = [("single", 1, exact)] + [
        (f"{kind} {size}", size, fn) for size in map(
            int, args.batches.split(",")) for kind, fn in (
            ("exact", exact), ("plain", plain))]
    results = {name: [] for name, _, _ in settings}
    for rep in range(args.reps):
        turn = settings[rep % len(settings):] + settings[
            :rep % len(settings)]
        for name, size, fn in turn:
            brain_module.encode = fn
            try:
                results[name].append(evaluate(brain, data["valid"], size))
            finally:
                brain_module.encode = exact
    ref = results["single"][0][0]
    t_ref = statistics.median(r[2] for r in results["single"])
    out = {"n_valid": len(ref), "utts_per_speaker": args.utts,
           "machine": common.machine(), "settings": {}}
    for name, size, _ in settings:
        logp, ua, _ = results[name][0]
        seconds = statistics.median(r[2] for r in results[name])
        out["settings"][name] = {
            "batch": size, "UA": ua, "seconds": seconds,
            "time_vs_single": seconds / t_ref,
            "max_logp_diff": max(float((logp[u] - ref[u]).abs().max())
                                 for u in ref),
            "labels_changed": sum(int(logp[u].argmax() != ref[u].argmax())
                                  for u in ref)}
    out_dir = Path(args.out)
    (out_dir / "valid_padding.json").write_text(json.dumps(out, indent=1))
    lines = [
        "# Batched evaluation against one clip per batch", "",
        common.command("valid_padding.py", argv), "",
        f"The demo recipe ({args.utts} clips per speaker, {args.epochs} "
        f"epochs, grl), its {len(ref)} validation clips scored one per "
        "batch and in duration-sorted batches, exact (each clip's own "
        "waveform statistics, group-norm statistics and frames) and plain "
        f"(the encoder as it is); median of {args.reps} interleaved "
        f"repetitions. Machine: {common.cpu_text(out['machine'])}, "
        f"{out['machine']['torch_threads']} torch threads.", "",
        "| setting | UA | max Δ log p | labels changed | seconds "
        "| time vs one clip |", "|---|---|---|---|---|---|"]
    for name, row in out["settings"].items():
        lines.append(
            f"| {name} | {row['UA']:.2f} | {row['max_logp_diff']:.1e} | "
            f"{row['labels_changed']} | {row['seconds']:.2f} | "
            f"{row['time_vs_single']:.2f} |")
    (out_dir / "valid_padding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
