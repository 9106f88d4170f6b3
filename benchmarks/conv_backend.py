#!/usr/bin/env python3
"""oneDNN (mkldnn) against PyTorch's own convolutions on the CPU.

The demo's profile (``recipe_speed.md``) spends most of a training step
in the backward pass of the encoder's first convolutions. This measures
one encoder step, the training step (forward and backward of the mean
output, with the convolutional front end trained and frozen) and the
evaluation forward of one clip, with
``torch.backends.mkldnn`` on and off, interleaved over ``--rounds``, for
the tiny random wav2vec2 of the demo and the base-sized one (random
weights, :mod:`speechbrain_grl.testing.tiny_ssl`). Reported: the median
milliseconds and the ratio off / on (below 1: PyTorch's own kernels are
faster).

    python benchmarks/conv_backend.py

Writes ``benchmarks/conv_backend.md`` and ``conv_backend.json``.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SECONDS = common.STEP_SECONDS
PHASES = ("train", "train_frozen", "eval")


def timed(fn, reps):
    """Seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def measure(size, batch, reps, rounds, folder):
    """``{phase: {"on": ms, "off": ms, "ratio": off/on}}`` for one size."""
    import torch
    from transformers import Wav2Vec2Model

    source = str(common.make_encoder(folder, size))
    model = Wav2Vec2Model.from_pretrained(source)
    frozen = Wav2Vec2Model.from_pretrained(source)
    frozen.feature_extractor._freeze_parameters()
    # As the Brain runs them (nnet/front_end.py): no waveform gradient.
    model.feature_extractor._requires_grad = False
    wav = torch.randn(batch, int(SECONDS * 16000))

    def step(net):
        net.train()
        net.zero_grad()
        net(wav).last_hidden_state.mean(1).sum().backward()

    @torch.no_grad()
    def evaluate():
        model.eval()
        model(wav[:1])

    fns = dict(zip(PHASES, (lambda: step(model), lambda: step(frozen),
                            evaluate)))
    times = {p: {"on": [], "off": []} for p in PHASES}
    for r in range(rounds):
        order = ("on", "off") if r % 2 == 0 else ("off", "on")
        for phase, fn in fns.items():
            for setting in order:
                torch.backends.mkldnn.enabled = setting == "on"
                times[phase][setting].append(timed(fn, reps))
    torch.backends.mkldnn.enabled = True
    out = {}
    for phase, t in times.items():
        on, off = statistics.median(t["on"]), statistics.median(t["off"])
        out[phase] = {"on_ms": round(on * 1e3, 2),
                      "off_ms": round(off * 1e3, 2),
                      "ratio": round(off / on, 3)}
    return out


def main(argv=None):
    args = common.step_args(__doc__, 3, argv)
    results = common.per_size(measure, args)
    table = [
        "| encoder | batch | phase | mkldnn on (ms) | off (ms) | off / on |",
        "|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        for phase in PHASES:
            p = r[phase]
            table.append(f"| {size} | {1 if phase == 'eval' else r['batch']}"
                         f" | {phase} | {p['on_ms']} | {p['off_ms']} | "
                         f"{p['ratio']} |")
    common.write_step_report(
        args, "conv_backend",
        "oneDNN against PyTorch's own convolutions (CPU)",
        f"wav2vec2 with random weights, {SECONDS:g} s clips; train: "
        "forward and backward of a batch, train_frozen: the same with "
        "the convolutional front end frozen (`freeze_feature_extractor`);"
        " both without the waveform's gradient, as the Brain runs them "
        "(nnet/front_end.py); eval: one clip without gradients.", table,
        results)


if __name__ == "__main__":
    main()
