#!/usr/bin/env python3
"""Adam's update on the CPU: torch's default loop, foreach and fused.

On the CPU, ``torch.optim.Adam`` updates one tensor at a time unless
``foreach=True`` (the tensors in groups) or ``fused=True`` (one kernel
that updates each tensor in a single pass). This times ``step()`` of
the demo yaml's optimizers (the encoder's, the emotion path's, the
speaker head's, as the Brain builds them) over the trainable parameters
of the tiny random wav2vec2 and a base-sized one, the same gradients
for every kernel, interleaved over ``--rounds``, and reports how far
each kernel's parameters are from the loop's after the timed steps
(foreach computes the same numbers; fused rounds differently). It is
why the Brain builds Adam fused (``fused_optimizers``, on the CPU as
on CUDA): foreach is faster on the tiny encoder's small tensors and
slower on a real encoder's, fused faster on both.

    python benchmarks/optimizer.py

Writes ``benchmarks/optimizer.md`` and ``optimizer.json``.
"""

import copy
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

#: Each kernel's Adam flags.
FLAGS = {"loop": {"foreach": False, "fused": False},
         "foreach": {"foreach": True, "fused": False},
         "fused": {"foreach": False, "fused": True}}
KERNELS = tuple(FLAGS)


def optimizers(brain, kernel):
    """The Brain's optimizers rebuilt with ``kernel`` (one of
    ``KERNELS``), over a copy of its modules; the copy's trainable
    parameters."""
    modules = copy.deepcopy(brain.modules)
    groups = {
        "ssl": [p for p in modules.ssl.parameters() if p.requires_grad],
        "heads": [p for n in ("projection", "emo_head")
                  for p in modules[n].parameters()],
        "spk": list(modules.spk_head.parameters()),
    }
    opts = [brain.opt_class[name](params, **FLAGS[kernel])
            for name, params in groups.items()]
    return opts, [p for params in groups.values() for p in params]


def measure(size, batch, reps, rounds, folder):
    """Median ms of a step of all optimizers per kernel, each kernel's
    ratio to the loop, the tensors updated and each kernel's largest
    parameter difference from the loop at the end."""
    import torch

    from speechbrain_grl.brain import SpeakerAdversarialBrain

    encoder = common.make_encoder(folder, size)
    hparams = common.load_hparams(encoder, size, folder)
    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"}, checkpointer=None)
    setups = {k: optimizers(brain, k) for k in KERNELS}
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(p.shape, generator=gen) * 1e-2
             for p in setups["loop"][1]]
    for _, params in setups.values():
        for p, g in zip(params, grads):
            p.grad = g.clone()
    times = {k: [] for k in KERNELS}
    for r in range(rounds):
        order = KERNELS if r % 2 == 0 else KERNELS[::-1]
        for k in order:
            opts = setups[k][0]
            start = time.perf_counter()
            for _ in range(reps):
                for opt in opts:
                    opt.step()
            times[k].append((time.perf_counter() - start) / reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"tensors": len(grads)}
    for k in KERNELS:
        out[f"{k}_ms"] = round(med[k] * 1e3, 3)
        if k != "loop":
            out[f"{k}_ratio"] = round(med[k] / med["loop"], 3)
            out[f"{k}_max_param_diff"] = max(
                float((a - b).abs().max()) for a, b in
                zip(setups["loop"][1], setups[k][1]))
    return out


def main(argv=None):
    args = common.step_args(__doc__, 5, argv)
    results = common.per_size(measure, args)
    table = ["| encoder | tensors | loop (ms) | foreach (ms) | "
             "fused (ms) | foreach / loop | fused / loop | "
             "foreach's largest difference | fused's largest difference |",
             "|---|---|---|---|---|---|---|---|---|"]
    for size, r in results.items():
        table.append(
            f"| {size} | {r['tensors']} | {r['loop_ms']} | "
            f"{r['foreach_ms']} | {r['fused_ms']} | {r['foreach_ratio']} | "
            f"{r['fused_ratio']} | {r['foreach_max_param_diff']:.1e} | "
            f"{r['fused_max_param_diff']:.1e} |")
    common.write_step_report(
        args, "optimizer",
        "Adam on the CPU: the default loop, foreach and fused",
        "One `step()` of the demo yaml's three Adam optimizers (the "
        "encoder's, the emotion path's, the speaker head's) over the "
        "trainable parameters of a random wav2vec2 and the demo's heads, "
        "the same gradients for every kernel; each kernel's difference "
        "from the loop's parameters is taken after all timed steps (10 "
        "a round for tiny, 3 for base).", table, results)


if __name__ == "__main__":
    main()
