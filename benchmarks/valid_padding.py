#!/usr/bin/env python3
"""How much padded validation batches change the scores, and what batch 1
costs.

wav2vec2's first convolution group-normalises over all time steps,
padding included, so an utterance's embedding depends on the other
utterances of its batch (HuBERT/WavLM Large normalise per frame and do
not). This trains the demo recipe once, then evaluates its validation set
with the recipe's batches (duration-sorted, ``--batch`` utterances) and
one utterance at a time, interleaved over ``--reps`` repetitions, and
reports the largest log-probability difference, the UA of each and the
time ratio.

    python benchmarks/valid_padding.py [--workdir W] [--batch 8]
"""

import argparse
import json
import os
import subprocess
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
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="valid_pad_"))
    run = work / "run"
    if not (run / "test_metrics.json").exists():
        subprocess.run(
            [sys.executable, "train.py", str(common.DEMO_YAML),
             f"--output_folder={run}", f"--demo_folder={work / 'assets'}",
             f"--number_of_epochs={args.epochs}", "--probe_speakers=False",
             "--adversary=grl"],  # the mode its committed numbers used
            cwd=common.RECIPE, check=True, capture_output=True)
    import torch
    from hyperpyyaml import load_hyperpyyaml

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
    results = {"batched": [], "single": []}
    for rep in range(args.reps):
        order = [("batched", args.batch), ("single", 1)]
        for name, size in order[rep % 2:] + order[:rep % 2]:
            results[name].append(evaluate(brain, data["valid"], size))
    batched, single = results["batched"][0], results["single"][0]
    diff = max(float((batched[0][u] - single[0][u]).abs().max())
               for u in single[0])
    t_b = sorted(r[2] for r in results["batched"])[args.reps // 2]
    t_s = sorted(r[2] for r in results["single"])[args.reps // 2]
    out = {"n_valid": len(single[0]), "batch": args.batch,
           "UA_batched": batched[1], "UA_single": single[1],
           "max_logp_diff": diff,
           "labels_changed": sum(int(batched[0][u].argmax()
                                     != single[0][u].argmax())
                                 for u in single[0]),
           "seconds_batched": t_b, "seconds_single": t_s,
           "time_ratio_single_vs_batched": t_s / t_b,
           "torch": torch.__version__}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
