"""UA against the number of clips a deployed model adapts from.

A run is exported (:func:`~speechbrain_grl.inference.export.export_model`)
and the speakers of its validation and test manifests are classified
through :func:`~speechbrain_grl.inference.adaptation.predict_speakers`,
each speaker's statistics from k of their own clips (``"0"``: the prior
alone, ``"all"``: every clip): what a deployment that sees k clips of a
new speaker gets. A model without speaker normalisation has one UA for
every k. ``cross_validate.py --adaptation_curve`` and
``benchmarks/adaptation.py`` draw it.
"""

import json
from pathlib import Path

__all__ = ["KS", "adaptation_curve", "manifest_files", "plot_curves",
           "tau_curves"]

#: Clips per speaker measured by default.
KS = ("0", "1", "3", "5", "10", "all")


def manifest_files(run, split):
    """``(files, speakers, emotions)`` of a run's manifest ``split``
    (``train``, ``valid``, ``test``), the audio paths resolved with the
    run's prepared data folder."""
    run = Path(run)
    man = json.loads((run / f"{split}.json").read_text(encoding="utf-8"))
    root = json.loads((run / "prepare_opts.json").read_text(
        encoding="utf-8"))["data_folder"]
    entries = list(man.values())
    return ([Path(e["wav"].replace("{data_root}", root)) for e in entries],
            [e["spk_id"] for e in entries], [e["emo"] for e in entries])


def adaptation_curve(run, ks=KS, seed=0, splits=("valid", "test"),
                     tau=None, checkpoint="best"):
    """``{split: {k: UA}}`` of a finished run, through its exported model.

    The export goes to ``<run>/exported`` and the result is cached in
    ``<run>/adaptation_curve.json`` (reused when it holds the same ks and
    seed); ``checkpoint="latest"`` exports the last finished epoch
    instead, to ``<run>/exported_latest``, cached in
    ``adaptation_curve_latest.json``. Each speaker's k clips are drawn
    with ``seed``; files are classified one at a time and whole (as the
    recipe's test pass), each encoded once for all k.
    ``tau`` overrides the exported prior's worth in clips.
    """
    from speechbrain_grl.inference.export import export_model
    from speechbrain_grl.inference.predict import load_model

    run = Path(run)
    ks = [str(k) for k in ks]
    tag = "" if checkpoint == "best" else f"_{checkpoint}"
    cache = run / (f"adaptation_curve{tag}.json" if tau is None
                   else f"adaptation_curve{tag}_tau{tau:g}.json")
    if cache.is_file():
        old = json.loads(cache.read_text(encoding="utf-8"))
        if "UA" not in old:  # {split: {k: UA}}, written without the seed
            old = {"ks": ks, "seed": seed, "UA": old}
        if old.get("ks") == ks and old.get("seed") == seed and all(
                set(ks) <= set(old["UA"].get(s, {})) for s in splits):
            return {s: old["UA"][s] for s in splits}
    clf = load_model(export_model(run, run / f"exported{tag}",
                                  overwrite=True, checkpoint=checkpoint))
    if tau is not None:
        clf.hparams.speaker_prior_tau = float(tau)
    out = {}
    for split in splits:
        encoded = _encoded(clf, run, split)  # once for every k
        out[split] = _curve(clf, encoded, ks, seed)
    cache.write_text(json.dumps({"ks": ks, "seed": seed, "UA": out},
                                indent=1), encoding="utf-8")
    return out


#: How curves classify: files whole and one at a time, as the recipe's
#: test pass.
OPTIONS = dict(window_seconds=40.0, batch_seconds=0.0, progress=False)


def _encoded(clf, run, split):
    """A run's ``split`` encoded once: ``(files, {path: speaker},
    emotions, windows)``."""
    from speechbrain_grl.inference.predict import encode_windows

    files, spks, emos = manifest_files(run, split)
    return (files, {f.resolve(): s for f, s in zip(files, spks)}, emos,
            encode_windows(clf, files, **OPTIONS))


def _curve(clf, encoded, ks, seed, recenter=False):
    """``{k: UA}`` of encoded files (:func:`_encoded`) through
    ``predict_speakers``, each speaker's statistics from k of their clips
    drawn with ``seed``; a model without speaker normalisation is
    classified once, the same at every k."""
    from speechbrain_grl.evaluation.metrics import emotion_metrics
    from speechbrain_grl.inference.adaptation import (
        normalised,
        predict_speakers,
    )
    from speechbrain_grl.inference.predict import (
        classify_windows,
        prediction_rows,
    )

    files, speakers, emos, windows = encoded
    labels = list(clf.hparams.label_encoder.lab2ind)
    out = {}
    for k in ks:
        if normalised(clf):
            rows = predict_speakers(
                clf, files, speakers, None if k == "all" else int(k), seed,
                recenter=recenter, windows=windows, **OPTIONS)
        elif k == ks[0]:  # predict, from the same windows
            rows = prediction_rows(clf, files, windows,
                                   classify_windows(clf, windows))
        out[k] = emotion_metrics(emos, [r["label"] for r in rows],
                                 labels)["UA"]
    return out


def tau_curves(run, taus, ks=KS, seed=0, split="valid", recenter=False):
    """``{tau: {k: UA}}`` on a run's ``split`` for several prior strengths
    at once: each clip is encoded once and every (tau, k) is read from it
    by :func:`~speechbrain_grl.inference.adaptation.predict_speakers`, as
    :func:`adaptation_curve` reads each k. ``taus``: numbers (keyed
    ``str(tau)``), or a dict ``{name: tau}``. ``recenter``: the prior
    mean is the split's own (the mean of all its clips, unlabelled: a
    deployment's average voice) instead of the exported one. The run must
    have been exported by it."""
    from speechbrain_grl.inference.predict import load_model

    clf = load_model(Path(run) / "exported")
    encoded = _encoded(clf, run, split)
    if not isinstance(taus, dict):
        taus = {str(tau): tau for tau in taus}
    out = {}
    for name, tau in taus.items():
        clf.hparams.speaker_prior_tau = float(tau)
        out[name] = _curve(clf, encoded, ks, seed, recenter)
    return out


def plot_curves(curves, path, ylabel="UA (%)"):
    """Draws ``{name: {k: value}}`` (or ``{name: {k: (value, lo, hi)}}``,
    with a shaded interval) against k into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ks = list(curve)
        vals = [curve[k] if not isinstance(curve[k], (list, tuple))
                else curve[k][0] for k in ks]
        line, = ax.plot(ks, vals, marker="o", label=name)
        if isinstance(curve[ks[0]], (list, tuple)):
            ax.fill_between(ks, [curve[k][1] for k in ks],
                            [curve[k][2] for k in ks], alpha=0.15,
                            color=line.get_color())
    ax.set_xlabel("clips per speaker (k)")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)
