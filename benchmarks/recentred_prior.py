#!/usr/bin/env python3
"""What a prior re-centred on a deployment's unlabelled clips would give.

The k = 0 loss is mostly an unseen recording session (``voice_offsets.md``):
the training speakers' average voice, the exported prior, is not the new
session's. A deployment that holds unlabelled clips of many of its
speakers could re-centre the prior on them. This measures that on the
finished runs of an ``adaptation.py`` workdir, through each run's export:
the curve of UA against k (clips per speaker) with the exported prior
and with the prior mean re-centred on the split's own clips (all
speakers, no label), each at the exported τ. It is another protocol
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
PRIORS = ("exported", "recentred")


def parse_args(argv=None):
    return workdir_args(__doc__, "recentred_prior", argv)


def measure(run, seed):
    """``{prior: {split: {k: UA}}}`` of one exported run (``seed`` draws
    each speaker's k clips, as ``adaptation_curve`` does)."""
    from speechbrain_grl.evaluation.adaptation import tau_curves
    from speechbrain_grl.inference.predict import load_model

    tau = load_model(Path(run) / "exported").hparams.speaker_prior_tau
    return {prior: {split: tau_curves(run, {"t": tau}, seed=seed,
                                      split=split,
                                      recenter=prior == "recentred")["t"]
                    for split in SPLITS}
            for prior in PRIORS}


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
             "speaker, no label). Another protocol than the issue's "
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
