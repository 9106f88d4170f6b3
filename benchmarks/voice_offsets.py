#!/usr/bin/env python3
"""How far a new speaker sits from the prior: a diagnostic of k = 0.

For the finished runs of an ``adaptation.py`` workdir, each run's exported
models (``none`` and a ``spknorm`` candidate) compute the pooled encoder
features of the run's test clips, in units of the model's pooled
within-speaker spread (``spknorm``: the exported prior's; ``none``: the
test speakers' own). Per run, as multiples of E, the spread of a test
speaker's emotion means around their voice (mean squared distance, summed
over dimensions):

- ``voices``: the test speakers' voices (emotion-balanced means) around
  their own average: how much the test session's two speakers differ;
- ``session shift`` (``spknorm`` only): that average's squared distance
  from the exported prior, the training speakers' average voice;
- ``prior offset``: a test speaker's squared distance from the prior, what
  the prior alone (k = 0) leaves in the features.

It reads test sets and chooses nothing. Writes ``<name>.md``/``.json``::

    python benchmarks/voice_offsets.py --workdir /work/adapt9
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import evidence  # noqa: E402

DEFAULT = ("spknorm:spk_norm_train_offsets=drawn:"
           "spk_norm_train_clips=[0,0,1,3,null]")


def workdir_args(doc, name, argv=None, extra=None):
    """The command line of a script that reads an ``adaptation.py``
    workdir's finished runs: its first docstring line, the report's
    default ``name``; ``extra(parser)`` adds the script's own options."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    if extra is not None:
        extra(parser)
    parser.add_argument("--workdir", required=True,
                        help="an adaptation.py workdir with finished runs")
    parser.add_argument("--candidate", default=DEFAULT)
    parser.add_argument("--corpora", default="0,1,2,3,4")
    parser.add_argument("--biases", default="0.9,0.0")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--out", default=str(common.REPO / "benchmarks"))
    parser.add_argument("--name", default=name)
    return parser.parse_args(argv)


def finished_runs(args):
    """``(bias, corpus folder, seed, key)`` of each run ``args`` name
    (:func:`workdir_args`), the key ``bias_<b>/corpus_<c>/seed_<s>``."""
    for bias in args.biases.split(","):
        for c in args.corpora.split(","):
            for s in args.seeds.split(","):
                yield (bias, Path(args.workdir) / f"corpus_{c}", s,
                       f"bias_{bias}/corpus_{c}/seed_{s}")


def none_curve(folder, bias, seed):
    """The ``none`` run's ``adaptation_curve.json`` (``seed``, ``UA``
    by split and k) of one of :func:`finished_runs`."""
    import json

    return json.loads((evidence.run_folder(folder, bias, "none", seed)
                       / "adaptation_curve.json").read_text())


def parse_args(argv=None):
    return workdir_args(__doc__, "voice_offsets", argv)


def geometry(x, speakers, emotions, prior=None):
    """The ratios above for one run's test features ``x`` ``[N, D]``
    (already in spread units); ``prior`` ``[D]`` or None.

    Example
    -------
    >>> import numpy as np
    >>> x = np.array([[0.0], [2.0], [10.0], [12.0]])
    >>> g = geometry(x, ["a", "a", "b", "b"], ["lo", "hi"] * 2,
    ...              prior=np.array([6.0]))
    >>> g["voices"], g["session_shift"], g["prior_offset"]
    (25.0, 0.0, 25.0)
    """
    import numpy as np

    spk, emo = np.asarray(speakers), np.asarray(emotions)
    voices, within = {}, []
    for s in dict.fromkeys(spk.tolist()):
        cells = np.stack([x[(spk == s) & (emo == e)].mean(0)
                          for e in dict.fromkeys(emo[spk == s].tolist())])
        voices[s] = cells.mean(0)
        within.append(((cells - voices[s]) ** 2).sum(1).mean())
    e = float(np.mean(within))
    v = np.stack(list(voices.values()))
    out = {"E": e, "voices": float(((v - v.mean(0)) ** 2).sum(1).mean()) / e}
    if prior is not None:
        out["session_shift"] = float(((v.mean(0) - prior) ** 2).sum()) / e
        out["prior_offset"] = float(((v - prior) ** 2).sum(1).mean()) / e
    return out


def measure(run, model=None):
    """:func:`geometry` of one run's test clips through its export
    (``model``, by default ``<run>/exported``, as ``adaptation.py``
    writes it)."""
    import numpy as np
    from speechbrain.dataio.dataio import read_audio

    from speechbrain_grl.evaluation.classic import run_split
    from speechbrain_grl.inference.adaptation import (
        normalised,
        pooled_features,
    )
    from speechbrain_grl.inference.predict import load_model

    split = run_split(run, "test")
    with tempfile.TemporaryDirectory() as tmp:
        clf = load_model(Path(model or Path(run) / "exported"),
                         savedir=tmp)
        x = np.stack([pooled_features(clf, read_audio(f)).numpy()
                      for f in split.files])
        prior = None
        if normalised(clf):
            norm = clf.mods.mean_var_norm
            spread = norm.glob_std.float().cpu().numpy()
            prior = norm.glob_mean.float().cpu().numpy() / spread
        else:
            spk = np.asarray(split.speakers)
            spread = np.sqrt(np.mean([x[spk == s].var(0)
                                      for s in set(spk)], 0)) + 1e-8
    return geometry(x / spread, split.speakers, split.emotions, prior)


def main(argv=None):
    import numpy as np

    args = parse_args(argv)
    modes = {"none": "none", "spknorm": args.candidate}
    results = {"candidate": args.candidate, "runs": {}}
    for bias, folder, s, key in finished_runs(args):
        results["runs"][key] = {
            label: measure(evidence.run_folder(folder, bias, mode, s))
            for label, mode in modes.items()}
        print(key, results["runs"][key], flush=True)
    lines = ["# How far a new speaker sits from the prior", "",
             common.command("voice_offsets.py", argv), "",
             "Test clips' pooled encoder features through each run's "
             "exported model, in its pooled-spread units; each figure is "
             "a squared distance over E, the spread of a test speaker's "
             "emotion means around their voice (see the script's "
             "docstring). Median [min, max] over runs. A diagnostic of "
             "k = 0: it reads test sets and chooses nothing.", "",
             "| bias | model | voices / E | session shift / E "
             "| prior offset / E |", "|---|---|---|---|---|"]
    summary = {}
    for bias in args.biases.split(","):
        for label in modes:
            runs = [r[label] for k, r in results["runs"].items()
                    if k.startswith(f"bias_{bias}/")]
            cells = []
            for what in ("voices", "session_shift", "prior_offset"):
                vals = [r[what] for r in runs if what in r]
                if not vals:
                    cells.append("—")
                    continue
                med = float(np.median(vals))
                summary.setdefault(f"bias_{bias}", {}).setdefault(
                    label, {})[what] = med
                cells.append(f"{med:.2f} [{min(vals):.2f}, "
                             f"{max(vals):.2f}]")
            lines.append(f"| {bias} | `{label}` | " + " | ".join(cells)
                         + " |")
    results["median"] = summary
    results["machine"] = common.machine()
    common.write_report(args.out, args.name, results, lines)


if __name__ == "__main__":
    main()
