#!/usr/bin/env python3
"""oneDNN, NNPACK and PyTorch's own convolutions on the CPU.

The demo's profile (``recipe_speed.md``) spends most of a training step
in the backward pass of the encoder's first convolutions. This measures
one encoder step, the training step (forward and backward of the mean
output, with the convolutional front end trained and frozen) and the
evaluation forward of one clip, under three kernel settings, interleaved
over ``--rounds``, for the tiny random wav2vec2 of the demo and the
base-sized one (random weights, :mod:`speechbrain_grl.testing.tiny_ssl`):

- ``on``: PyTorch's defaults, oneDNN and NNPACK enabled (PyTorch picks
  NNPACK for the front end's convolutions from 16 clips a batch);
- ``off``: oneDNN disabled, NNPACK enabled (so PyTorch's own kernels
  below 16 clips, NNPACK from 16);
- ``own``: both disabled, PyTorch's own kernels at every batch size (the
  Brain's training step when the front end trains, ``brain.py``).

The tiny encoder's training step is also measured at 16 clips
(``train_16``: the demo's dynamic batches reach it). Reported: the median
milliseconds and the ratios to ``on`` (below 1: faster than PyTorch's
defaults).

    python benchmarks/conv_backend.py

Writes ``benchmarks/conv_backend.md`` and ``conv_backend.json``.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

from speechbrain_grl.nnet.front_end import convolution_kernels  # noqa: E402

SECONDS = common.STEP_SECONDS
PHASES = ("train", "train_16", "train_frozen", "eval")
#: setting: (oneDNN enabled, NNPACK enabled)
SETTINGS = {"on": (True, True), "off": (False, True), "own": (False, False)}


def timed(fn, reps):
    """Seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def measure(size, batch, reps, rounds, folder):
    """``{phase: {"<setting>_ms": ms, "ratio": off/on, "own_ratio":
    own/on}}`` for one size (``train_16`` for the tiny encoder only)."""
    import torch
    from transformers import Wav2Vec2Model

    source = str(common.make_encoder(folder, size))
    model = Wav2Vec2Model.from_pretrained(source)
    frozen = Wav2Vec2Model.from_pretrained(source)
    frozen.feature_extractor._freeze_parameters()
    # As the Brain runs them (nnet/front_end.py): no waveform gradient.
    model.feature_extractor._requires_grad = False
    wav = torch.randn(batch, int(SECONDS * 16000))
    wav16 = torch.randn(16, int(SECONDS * 16000))

    def step(net, x=wav):
        net.train()
        net.zero_grad()
        net(x).last_hidden_state.mean(1).sum().backward()

    @torch.no_grad()
    def evaluate():
        model.eval()
        model(wav[:1])

    fns = {"train": lambda: step(model),
           "train_16": lambda: step(model, wav16),
           "train_frozen": lambda: step(frozen), "eval": evaluate}
    if size != "tiny":
        del fns["train_16"]
    times = {p: {s: [] for s in SETTINGS} for p in fns}
    for r in range(rounds):
        order = list(SETTINGS)[r % 3:] + list(SETTINGS)[:r % 3]
        for phase, fn in fns.items():
            for setting in order:
                with convolution_kernels(*SETTINGS[setting]):
                    times[phase][setting].append(timed(fn, reps))
    out = {}
    for phase, t in times.items():
        ms = {s: statistics.median(v) * 1e3 for s, v in t.items()}
        out[phase] = {f"{s}_ms": round(v, 2) for s, v in ms.items()}
        out[phase]["ratio"] = round(ms["off"] / ms["on"], 3)
        out[phase]["own_ratio"] = round(ms["own"] / ms["on"], 3)
    return out


def main(argv=None):
    args = common.step_args(__doc__, 3, argv)
    results = common.per_size(measure, args)
    table = [
        "| encoder | batch | phase | on (ms) | oneDNN off (ms) | "
        "both off (ms) | off / on | both off / on |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        for phase in PHASES:
            if phase not in r:
                continue
            p = r[phase]
            clips = {"eval": 1, "train_16": 16}.get(phase, r["batch"])
            table.append(f"| {size} | {clips} | {phase} | {p['on_ms']} | "
                         f"{p['off_ms']} | {p['own_ms']} | {p['ratio']} | "
                         f"{p['own_ratio']} |")
    common.write_step_report(
        args, "conv_backend",
        "oneDNN, NNPACK and PyTorch's own convolutions (CPU)",
        f"wav2vec2 with random weights, {SECONDS:g} s clips; train: "
        "forward and backward of a batch, train_frozen: the same with "
        "the convolutional front end frozen (`freeze_feature_extractor`);"
        " both without the waveform's gradient, as the Brain runs them "
        "(nnet/front_end.py); train_16: train at 16 clips; eval: one "
        "clip without gradients. *on*: PyTorch's defaults (oneDNN and "
        "NNPACK enabled); *oneDNN off*: NNPACK still enabled; *both off*: "
        "PyTorch's own kernels (the Brain's training step when the front "
        "end trains).", table,
        results)


if __name__ == "__main__":
    main()
