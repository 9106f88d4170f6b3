#!/usr/bin/env python3
"""A frozen front end: SpeechBrain's freeze against the complete one.

SpeechBrain's Hugging Face wrapper with ``freeze_feature_extractor:
True`` stops the front end's weights but not its backward pass
(:mod:`speechbrain_grl.nnet.front_end`). This times one training step
(forward, and backward of the mean output) of the wrapper as SpeechBrain
leaves it and after :func:`~speechbrain_grl.nnet.front_end.freeze_front_end`,
interleaved over ``--rounds``, for the demo's tiny random wav2vec2 and a
base-sized one (random weights), with the kernels of a CPU training step
(oneDNN off, as ``SpeakerAdversarialBrain.fit_batch`` runs them). It
also checks that both give the same gradient to every trained
parameter. Reported: median milliseconds, the ratio complete / wrapper's
(below 1: faster), and the largest gradient difference.

    python benchmarks/front_end.py

Writes ``benchmarks/front_end.md`` and ``front_end.json``.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SECONDS = common.STEP_SECONDS


def wrappers(source, folder):
    """SpeechBrain's wrapper twice, with the same weights: as SpeechBrain
    freezes the front end, and with the freeze completed."""
    from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2

    from speechbrain_grl.nnet.front_end import freeze_front_end

    out = {}
    for name in ("wrapper", "complete"):
        ssl = Wav2Vec2(str(source), save_path=str(Path(folder) / name),
                       freeze=False, freeze_feature_extractor=True)
        if name == "complete":
            assert freeze_front_end(ssl)
        out[name] = ssl.train()
    return out


def step(ssl, wav):
    """One training step's forward and backward; the trained gradients."""
    ssl.zero_grad()
    ssl(wav).mean(1).sum().backward()
    return [p.grad for p in ssl.parameters() if p.requires_grad]


def measure(size, batch, reps, rounds, folder):
    """Median ms of a step for each freeze, their ratio, and the largest
    difference between their gradients."""
    import torch

    torch.manual_seed(0)
    source = common.make_encoder(folder, size)
    models = wrappers(source, folder)
    wav = torch.randn(batch, int(SECONDS * 16000))
    times = {name: [] for name in models}
    with torch.backends.mkldnn.flags(
            enabled=False, deterministic=None, allow_tf32=None,
            fp32_precision=None):
        grads = []
        for model in models.values():  # the same dropout draws
            torch.manual_seed(1)
            grads.append(step(model, wav))
        diff = max(float((a - b).abs().max()) for a, b in zip(*grads))
        for r in range(rounds):
            order = list(models) if r % 2 == 0 else list(models)[::-1]
            for name in order:
                step(models[name], wav)  # warm-up
                start = time.perf_counter()
                for _ in range(reps):
                    step(models[name], wav)
                times[name].append((time.perf_counter() - start) / reps)
    wrapper = statistics.median(times["wrapper"])
    complete = statistics.median(times["complete"])
    return {"wrapper_ms": round(wrapper * 1e3, 2),
            "complete_ms": round(complete * 1e3, 2),
            "ratio": round(complete / wrapper, 3),
            "max_grad_diff": diff}


def main(argv=None):
    args = common.step_args(__doc__, 5, argv)
    results = common.per_size(measure, args)
    machine = common.machine()
    out = Path(args.out)
    (out / "front_end.json").write_text(
        json.dumps(dict(results, machine=machine), indent=2))
    lines = [
        "# A frozen front end: SpeechBrain's freeze against the complete "
        "one", "",
        common.command("front_end.py"), "",
        "SpeechBrain's wav2vec2 wrapper with `freeze_feature_extractor: "
        "True` (random weights), one training step: forward, and backward "
        f"of the mean output, {SECONDS:g} s clips, oneDNN off (a CPU "
        "training step's kernels). *wrapper*: as SpeechBrain freezes it "
        "(the front end's backward pass still runs); *complete*: after "
        "`nnet.front_end.freeze_front_end`. Median over "
        f"{args.rounds} interleaved rounds. Machine: {machine['cpu']}, "
        f"{machine['cores']} cores, torch {machine['torch']}, "
        f"{args.threads} threads.", "",
        "| encoder | batch | wrapper (ms) | complete (ms) | complete / "
        "wrapper | max gradient difference |",
        "|---|---|---|---|---|---|",
    ]
    for size, r in results.items():
        lines.append(f"| {size} | {r['batch']} | {r['wrapper_ms']} | "
                     f"{r['complete_ms']} | {r['ratio']} | "
                     f"{r['max_grad_diff']:.1e} |")
    (out / "front_end.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
