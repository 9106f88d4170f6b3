#!/usr/bin/env python3
"""Adam's update on the CPU: torch's default loop and its foreach kernel.

On the CPU, ``torch.optim.Adam`` updates one tensor at a time unless
``foreach=True``. This times ``step()`` of the demo yaml's optimizers
(the encoder's, the emotion path's, the speaker head's, as the Brain
builds them) over the trainable parameters of the tiny random wav2vec2
and a base-sized one, the same gradients for both kernels, interleaved
over ``--rounds``, and checks that after the timed steps both hold the
same parameters bit for bit. It is why the Brain keeps torch's default
on the CPU: foreach is faster on the tiny encoder's small tensors and
slower on a real encoder's.

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

KERNELS = ("loop", "foreach")


def optimizers(brain, foreach):
    """The Brain's optimizers rebuilt with ``foreach``, over a copy of
    its modules; the copy's trainable parameters."""
    modules = copy.deepcopy(brain.modules)
    groups = {
        "ssl": [p for p in modules.ssl.parameters() if p.requires_grad],
        "heads": [p for n in ("projection", "emo_head")
                  for p in modules[n].parameters()],
        "spk": list(modules.spk_head.parameters()),
    }
    opts = [brain.opt_class[name](params, foreach=foreach)
            for name, params in groups.items()]
    return opts, [p for params in groups.values() for p in params]


def measure(size, batch, reps, rounds, folder):
    """Median ms of a step of all optimizers per kernel, the ratio, the
    tensors updated and the largest parameter difference at the end."""
    import torch

    from speechbrain_grl.brain import SpeakerAdversarialBrain

    encoder = common.make_encoder(folder, size)
    hparams = common.load_hparams(encoder, size, folder)
    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"}, checkpointer=None)
    setups = {k: optimizers(brain, k == "foreach") for k in KERNELS}
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
    diff = max(float((a - b).abs().max()) for a, b in
               zip(setups["loop"][1], setups["foreach"][1]))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"tensors": len(grads),
            "loop_ms": round(med["loop"] * 1e3, 3),
            "foreach_ms": round(med["foreach"] * 1e3, 3),
            "ratio": round(med["foreach"] / med["loop"], 3),
            "max_param_diff": diff}


def main(argv=None):
    args = common.step_args(__doc__, 5, argv)
    results = common.per_size(measure, args)
    table = ["| encoder | tensors | loop (ms) | foreach (ms) | "
             "foreach / loop | max parameter difference |",
             "|---|---|---|---|---|---|"]
    for size, r in results.items():
        table.append(f"| {size} | {r['tensors']} | {r['loop_ms']} | "
                     f"{r['foreach_ms']} | {r['ratio']} | "
                     f"{r['max_param_diff']:.1e} |")
    common.write_step_report(
        args, "optimizer", "Adam on the CPU: the default loop and foreach",
        "One `step()` of the demo yaml's three Adam optimizers (the "
        "encoder's, the emotion path's, the speaker head's) over the "
        "trainable parameters of a random wav2vec2 and the demo's heads, "
        "the same gradients for both kernels; the parameter difference "
        "is taken after all timed steps (10 a round for tiny, 3 for "
        "base).", table, results)


if __name__ == "__main__":
    main()
