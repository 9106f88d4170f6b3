#!/usr/bin/env python3
"""Would another head fix k = 0? A post-hoc prior head, scored on validation.

At k = 0 (no clip of a speaker) the exported ``spknorm`` model
standardises with the prior alone, and the head it trained reads features
it met only through simulated means. This asks whether the head is what
fails there, or the encoder's features: for the finished runs of an
``adaptation.py`` workdir, a logistic regression is fitted on the run's
training clips as a deployed model sees them at k = 0 (pooled through its
export, standardised with the prior), then scored on the validation and
test clips, against the model's own head at k = 0 and against ``none``.

Heads: on the utterance embedding (``emb``, the export's projection) or on
the standardised pooled features (``pooled``); classes balanced
(``classes``) or every (speaker, emotion) cell weighing the same
(``cells``, as the recipe's loss); C = 0.1 and 1. Validation chooses;
test is printed beside it. Writes ``<name>.md``/``.json``::

    python benchmarks/prior_head.py --workdir /work/adapt9
"""

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402
from voice_offsets import finished_runs, none_curve, workdir_args  # noqa: E402

SPLITS = ("train", "valid", "test")
HEADS = tuple(f"{feat}_{weights}_C{c:g}" for feat in ("emb", "pooled")
              for weights in ("classes", "cells") for c in (0.1, 1.0))


def parse_args(argv=None):
    return workdir_args(__doc__, "prior_head", argv)


def features_at_k0(run, model):
    """Per split, the clips as the export reads them at k = 0: ``pooled``
    (standardised with the prior), ``emb`` (its projection), the export's
    own prediction ``pred``, labels ``y`` and ``speakers``."""
    import numpy as np
    import torch
    from speechbrain.dataio.dataio import read_audio

    from speechbrain_grl.evaluation.classic import run_split
    from speechbrain_grl.inference.adaptation import pooled_features
    from speechbrain_grl.inference.predict import load_model

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        clf = load_model(Path(model), savedir=tmp)
        norm = clf.mods.mean_var_norm
        prior, spread = norm.glob_mean.float(), norm.glob_std.float()
        projection = torch.nn.Sequential(
            *list(clf.mods.embedding_model.children())[1:])
        labels = clf.hparams.label_encoder.lab2ind
        for split in SPLITS:
            clips = run_split(run, split)
            pooled = (torch.stack([pooled_features(clf, read_audio(f))
                                   for f in clips.files]) - prior) / spread
            with torch.no_grad():
                emb = projection(pooled)
                pred = clf.mods.classifier(emb).argmax(-1)
            out[split] = {
                "pooled": pooled.numpy(), "emb": emb.numpy(),
                "pred": pred.numpy(), "speakers": np.asarray(clips.speakers),
                "y": np.asarray([labels[e] for e in clips.emotions])}
    return out


def cell_weights(speakers, y):
    """Each clip's weight when every (speaker, emotion) cell weighs the
    same, scaled to a mean of 1.

    Example
    -------
    >>> cell_weights(["a", "a", "b"], [0, 0, 0]).tolist()
    [0.75, 0.75, 1.5]
    """
    import numpy as np

    cells = [f"{s}\t{e}" for s, e in zip(speakers, y)]
    count = {c: cells.count(c) for c in set(cells)}
    w = np.asarray([1.0 / count[c] for c in cells])
    return w / w.mean()


def measure(run, model=None):
    """UA (%) on validation and test at k = 0 of one run's export (by
    default ``<run>/exported``): its own head (``model``) and each of
    :data:`HEADS` fitted on its training clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    data = features_at_k0(run, model or Path(run) / "exported")
    train = data["train"]
    out = {"model": {s: 100 * balanced_accuracy_score(data[s]["y"],
                                                      data[s]["pred"])
                     for s in SPLITS[1:]}}
    for head in HEADS:
        feat, weights, c = head.split("_")
        balanced = weights == "classes"
        lr = LogisticRegression(C=float(c[1:]), max_iter=2000,
                                class_weight="balanced" if balanced else None)
        lr.fit(train[feat], train["y"], sample_weight=None if balanced else
               cell_weights(train["speakers"], train["y"]))
        out[head] = {s: 100 * balanced_accuracy_score(
            data[s]["y"], lr.predict(data[s][feat])) for s in SPLITS[1:]}
    return out


def main(argv=None):
    import numpy as np

    args = parse_args(argv)
    runs = {}
    for bias, folder, s, key in finished_runs(args):
        curve = none_curve(folder, bias, s)["UA"]
        got = measure(evidence.run_folder(folder, bias, args.candidate, s))
        got["none"] = {split: curve[split]["0"]
                       for split in ("valid", "test")}
        runs[key] = got
        print(key, {k: round(v["valid"], 1) for k, v in got.items()},
              flush=True)
    summary, lines = {}, [
        "# A post-hoc prior head at k = 0", "",
        common.command("prior_head.py", argv), "",
        f"Candidate `{args.candidate}`; its finished runs' exports. Each "
        "head is a logistic regression fitted on the run's training clips "
        "as the export reads them at k = 0 (standardised with the prior): "
        "on the embedding (`emb`) or the pooled features (`pooled`), "
        "classes or (speaker, emotion) cells balanced, C. *model*: the "
        "export's own head at k = 0. ΔUA against `none`, mean over runs; "
        "validation chooses, test is shown and not read.", "",
        "| bias | split | model | " + " | ".join(HEADS) + " |",
        "|---" * (len(HEADS) + 3) + "|"]
    for bias in args.biases.split(","):
        rows = [r for k, r in runs.items() if k.startswith(f"bias_{bias}/")]
        for split in ("valid", "test"):
            deltas = {h: float(np.mean([r[h][split] - r["none"][split]
                                        for r in rows]))
                      for h in ("model",) + HEADS}
            summary.setdefault(f"bias_{bias}", {})[split] = deltas
            lines.append(f"| {bias} | {split} | " + " | ".join(
                f"{d:+.1f}" for d in deltas.values()) + " |")
    best = {b: max(HEADS, key=lambda h: v["valid"][h])
            for b, v in summary.items()}
    lines += ["", "Best head on validation, against the model's own: " +
              "; ".join(f"{b}: `{h}` {summary[b]['valid'][h]:+.1f} against "
                        f"{summary[b]['valid']['model']:+.1f}"
                        for b, h in best.items()) + "."]
    results = {"candidate": args.candidate, "mean_delta_UA": summary,
               "best_on_valid": best, "runs": runs,
               "machine": common.machine()}
    common.write_report(args.out, args.name, results, lines)


if __name__ == "__main__":
    main()
