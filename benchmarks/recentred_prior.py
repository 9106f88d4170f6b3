#!/usr/bin/env python3
"""What a prior re-centred on a deployment's unlabelled clips would give.

A test speaker sits far from the exported prior (the training speakers'
average voice) mostly by their session's shift (``voice_offsets.md``),
so a deployment that holds unlabelled clips of its speakers might
re-centre the prior on them. This measures that on the
finished runs of an ``adaptation.py`` workdir, through each run's export:
the curve of UA against k (clips per speaker) with the exported prior
and with the prior mean re-centred on the split's own clips (all
speakers, no label), each at the exported τ. Re-centred on every clip,
a speaker's prior holds their own clips too (at k = 0 as well, and a
split here has two speakers); the ``others`` row re-centres each
speaker's prior on the other speakers' clips only, none of their own:
what a deployment that knows other speakers of the same recording
condition gives a speaker it has no clip of. It is another protocol
than the issue's k = 0 (there the prior alone knows nothing of the
session): a diagnostic for the decision to build it, and it changes no
default. Validation and test are both shown. Writes
``<name>.md``/``.json``::

    python benchmarks/recentred_prior.py --workdir /work/adapt9
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402
from voice_offsets import finished_runs, none_curve, workdir_args  # noqa: E402

from speechbrain_grl.evaluation.adaptation import KS  # noqa: E402

SPLITS = ("valid", "test")
PRIORS = ("exported", "recentred", "others")


def parse_args(argv=None):
    return workdir_args(__doc__, "recentred_prior", argv)


def others_curve(clf, encoded, ks, seed):
    """``{k: UA}`` with each speaker's prior mean re-centred on the other
    speakers' usable clips of the split (``encoded``: as
    ``evaluation.adaptation._encoded``), each speaker's k clips drawn
    with ``seed`` as ``predict_speakers`` draws them."""
    from speechbrain_grl.evaluation.metrics import emotion_metrics
    from speechbrain_grl.inference.adaptation import (
        _speaker_clips,
        _window_cache,
        deployment_prior,
    )
    from speechbrain_grl.inference.predict import (
        classify_windows,
        prediction_rows,
    )

    files, speakers, emos, windows = encoded
    of_file = [speakers[f.resolve()] for f in files]
    cache = _window_cache(files, windows)
    priors = {spk: deployment_prior(clf, [f for f, s in zip(files, of_file)
                                          if s != spk], cache)
              for spk in sorted(set(of_file))}
    labels = list(clf.hparams.label_encoder.lab2ind)
    out = {}
    for k in ks:
        outputs = {}
        for spk, prior in priors.items():
            index = [i for i, s in enumerate(of_file) if s == spk]
            adapt, _ = _speaker_clips(
                clf, [files[i].resolve() for i in index],
                None if k == "all" else int(k), seed, prior, cache)
            with adapt.applied(clf):
                outputs.update(classify_windows(clf, windows, index))
        rows = prediction_rows(clf, files, windows, outputs)
        out[k] = emotion_metrics(emos, [r["label"] for r in rows],
                                 labels)["UA"]
    return out


def measure(run, seed):
    """``{prior: {split: {k: UA}}}`` of one exported run at its exported
    τ (``seed`` draws each speaker's k clips, as ``adaptation_curve``
    does); each split is encoded once for every prior and k."""
    from speechbrain_grl.evaluation.adaptation import _curve, _encoded
    from speechbrain_grl.inference.predict import load_model

    clf = load_model(Path(run) / "exported")
    out = {prior: {} for prior in PRIORS}
    for split in SPLITS:
        encoded = _encoded(clf, run, split)
        for prior in ("exported", "recentred"):
            out[prior][split] = _curve(clf, encoded, KS, seed,
                                       recenter=prior == "recentred")
        out["others"][split] = others_curve(clf, encoded, KS, seed)
    return out


def main(argv=None):
    import numpy as np

    args = parse_args(argv)
    runs = {}
    for bias, folder, s, key in finished_runs(args):
        none = none_curve(folder, bias, s)
        got = measure(evidence.run_folder(folder, bias, args.candidate, s),
                      none["seed"])
        got["none"] = {split: none["UA"][split]["0"] for split in SPLITS}
        runs[key] = got
        print(key, {p: got[p]["valid"] for p in PRIORS}, flush=True)
    summary = {}
    lines = ["# A prior re-centred on the deployment's clips", "",
             common.command("recentred_prior.py", argv), "",
             f"Candidate `{args.candidate}`; its finished runs' exports, "
             "the exported τ. ΔUA against `none` (mean over runs) by k, "
             "the clips per speaker for their statistics, with the "
             "exported prior (the training speakers' average voice) and "
             "with its mean re-centred on the split's own clips (every "
             "speaker, no label; *recentred*, as `--recenter`), or on the "
             "split's other speakers' clips, none of the speaker's own "
             "(*others*). Another protocol than the issue's "
             "k = 0; a diagnostic, no default reads it.", "",
             "| bias | split | prior | " + " | ".join(
                 f"k={k}" for k in KS) + " |",
             "|---" * (len(KS) + 3) + "|"]
    for bias in args.biases.split(","):
        rows = [r for key, r in runs.items()
                if key.startswith(f"bias_{bias}/")]
        for split in SPLITS:
            for prior in PRIORS:
                deltas = {k: float(np.mean([r[prior][split][k]
                                            - r["none"][split]
                                            for r in rows])) for k in KS}
                summary.setdefault(f"bias_{bias}", {}).setdefault(
                    split, {})[prior] = deltas
                lines.append(f"| {bias} | {split} | {prior} | " + " | ".join(
                    f"{d:+.1f}" for d in deltas.values()) + " |")
    results = {"candidate": args.candidate, "mean_delta_UA": summary,
               "runs": runs, "machine": common.machine()}
    common.write_report(args.out, args.name, results, lines)


if __name__ == "__main__":
    main()
