#!/usr/bin/env python3
"""The front end's backward pass: as Hugging Face runs it, and lean.

A Hugging Face wav2vec2's front end marks the waveform as requiring a
gradient in training, so the backward pass computes one that nothing
reads (:mod:`speechbrain_grl.nnet.front_end`); with the front end frozen
by SpeechBrain's wrapper (``freeze_feature_extractor: True``) that is the
front end's whole backward pass. This times one training step (forward,
and backward of the mean output) of SpeechBrain's wrapper, front end
trained and frozen, as it comes and after
:func:`~speechbrain_grl.nnet.front_end.lean_front_end`, interleaved over
``--rounds``, for the demo's tiny random wav2vec2 and a base-sized one
(random weights), with the kernels of the Brain's CPU training step
(oneDNN and NNPACK off with the front end trained, on with it frozen;
NNPACK serves batches of 16 clips or more, so none here). It also
checks that both give the same gradient to every trained parameter.
Reported: median milliseconds, the ratio lean / as it comes (below 1:
faster), and the largest gradient difference.

    python benchmarks/front_end.py

Writes ``benchmarks/front_end.md`` and ``front_end.json``.
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from speechbrain_grl.nnet.front_end import convolution_kernels  # noqa: E402

SECONDS = common.STEP_SECONDS
FRONT_ENDS = ("trained", "frozen")


def wrappers(source, folder, frozen):
    """SpeechBrain's wrapper twice, with the same weights: as it comes,
    and with the lean front end."""
    from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2

    from speechbrain_grl.nnet.front_end import lean_front_end

    out = {}
    for name in ("as_is", "lean"):
        ssl = Wav2Vec2(str(source),
                       save_path=str(Path(folder) / f"{name}_{frozen}"),
                       freeze=False, freeze_feature_extractor=frozen)
        if name == "lean":
            assert lean_front_end(ssl)
        out[name] = ssl.train()
    return out


def step(ssl, wav):
    """One training step's forward and backward; the trained gradients."""
    ssl.zero_grad()
    ssl(wav).mean(1).sum().backward()
    return [p.grad for p in ssl.parameters() if p.requires_grad]


def compare(models, wav, reps, rounds):
    """Median seconds of a step of each model, and the largest difference
    between their gradients (the same dropout draws)."""
    import torch

    grads = []
    for model in models.values():
        torch.manual_seed(1)
        grads.append(step(model, wav))
    diff = max(float((a - b).abs().max()) for a, b in zip(*grads))
    times = {name: [] for name in models}
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for name in order:
            step(models[name], wav)  # warm-up
            start = time.perf_counter()
            for _ in range(reps):
                step(models[name], wav)
            times[name].append((time.perf_counter() - start) / reps)
    return {name: statistics.median(t) for name, t in times.items()}, diff


def measure(size, batch, reps, rounds, folder):
    """Per front end (trained, frozen): median ms of a step as it comes
    and lean, their ratio, and the largest gradient difference."""
    import torch

    torch.manual_seed(0)
    source = common.make_encoder(folder, size)
    wav = torch.randn(batch, int(SECONDS * 16000))
    out = {}
    for front in FRONT_ENDS:
        frozen = front == "frozen"
        models = wrappers(source, folder, frozen)
        # As SpeakerAdversarialBrain._training_kernels.
        with convolution_kernels(onednn=frozen, nnpack=frozen):
            median, diff = compare(models, wav, reps, rounds)
        out[front] = {"as_is_ms": round(median["as_is"] * 1e3, 2),
                      "lean_ms": round(median["lean"] * 1e3, 2),
                      "ratio": round(median["lean"] / median["as_is"], 3),
                      "max_grad_diff": diff}
    return out


def main(argv=None):
    args = common.step_args(__doc__, 5, argv)
    results = common.per_size(measure, args)
    table = [
        "| encoder | batch | front end | as it comes (ms) | lean (ms) | "
        "lean / as it comes | max gradient difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        for front in FRONT_ENDS:
            f = r[front]
            table.append(f"| {size} | {r['batch']} | {front} | "
                         f"{f['as_is_ms']} | {f['lean_ms']} | {f['ratio']} "
                         f"| {f['max_grad_diff']:.1e} |")
    common.write_step_report(
        args, "front_end",
        "The front end's backward pass: as it comes, and lean",
        "SpeechBrain's wav2vec2 wrapper (random weights), one training "
        "step: forward, and backward of the mean output, "
        f"{SECONDS:g} s clips. *as it comes*: the waveform is marked as "
        "requiring a gradient, so the backward pass computes one (the "
        "whole front end's backward pass when SpeechBrain's wrapper "
        "freezes it, `freeze_feature_extractor: True`); *lean*: after "
        "`nnet.front_end.lean_front_end`. Kernels as the Brain's CPU "
        "training step (oneDNN and NNPACK off with the front end trained, "
        "on with it frozen).", table, results)


if __name__ == "__main__":
    main()
