"""Adapting a deployed model to each speaker from a few unlabelled clips.

A model trained with per-speaker normalisation (``spknorm``, or
``speaker_norm: True`` with any adversary) is exported with its prior: the
training speakers' average voice and their pooled within-speaker spread,
held by the stock ``mean_var_norm`` module (SpeechBrain's
``InputNormalization``). Loaded as it is, it normalises every speaker with
the prior. Given clips of a speaker, the speaker's mean becomes a MAP
estimate shrunk towards the prior, worth ``speaker_prior_tau`` clips: one
clip moves it a little, many make it the speaker's own.

In Python::

    from speechbrain_grl.inference.adaptation import SpeakerAdaptation
    from speechbrain_grl.inference.predict import load_model
    clf = load_model("model_dir")
    alice = SpeakerAdaptation.from_model(clf)
    for wav in alice_clips:            # streaming: one clip at a time
        alice.partial_fit(pooled_features(clf, wav))
    with alice.applied(clf):
        out_prob, score, index, label = clf.classify_batch(wav[None])

and :func:`predict_speakers` does the same for files and a speaker map
(``speechbrain-grl-predict --speakers map.csv``). With ``recenter`` the
prior's mean becomes the average of the files being classified (every
speaker's, their own included, no label: :func:`deployment_prior`;
``benchmarks/recentred_prior.md``).
"""

import contextlib
import csv
import logging
import random
from pathlib import Path

import torch

from speechbrain_grl.dataio.audio import is_silent, read_audio
from speechbrain_grl.inference.predict import MIN_SAMPLES, SAMPLE_RATE
from speechbrain_grl.nnet.speaker_norm import map_mean
from speechbrain_grl.utils.errors import GRLError

__all__ = ["SpeakerAdaptation", "AdaptationError", "deployment_prior",
           "normalised", "pooled_features", "read_speaker_map",
           "predict_speakers"]

logger = logging.getLogger(__name__)



class AdaptationError(GRLError):
    """A speaker map or model that cannot adapt (one-line message)."""


class SpeakerAdaptation:
    """One speaker's mean: a MAP estimate updated clip by clip.

    Arguments
    ---------
    prior_mean : torch.Tensor
        The training speakers' average voice ``[dim]``.
    tau : float
        The prior's worth in clips.

    Example
    -------
    >>> alice = SpeakerAdaptation(torch.zeros(2), tau=2.0)
    >>> alice.mean_
    tensor([0., 0.])
    >>> _ = alice.partial_fit(torch.tensor([4.0, 2.0]))
    >>> _ = alice.partial_fit(torch.tensor([[2.0, 4.0]]))
    >>> alice.n_clips_, alice.mean_
    (2, tensor([1.5000, 1.5000]))
    """

    def __init__(self, prior_mean, tau):
        self.prior_mean = prior_mean.detach().float().cpu()
        self.tau = float(tau)
        self.n_clips_ = 0
        self.sum_ = torch.zeros_like(self.prior_mean)

    @classmethod
    def from_model(cls, clf, prior_mean=None):
        """A fresh estimate for a loaded model with a prior (its mean, or
        ``prior_mean``, e.g. :func:`deployment_prior`)."""
        if not normalised(clf):
            raise AdaptationError(
                "the model was trained without speaker normalisation: it "
                "has no prior to adapt; drop the speakers")
        return cls(clf.mods.mean_var_norm.glob_mean if prior_mean is None
                   else prior_mean,
                   getattr(clf.hparams, "speaker_prior_tau", 0.0))

    def partial_fit(self, pooled):
        """Adds clips: their pooled encoder features, ``[dim]`` (one) or
        ``[n, dim]`` (see :func:`pooled_features`). Returns self."""
        pooled = pooled.detach().float().cpu().reshape(-1, len(self.sum_))
        self.sum_ += pooled.sum(0)
        self.n_clips_ += len(pooled)
        return self

    @property
    def mean_(self):
        """The speaker's mean now (the prior's with no clip)."""
        return map_mean(self.prior_mean, self.sum_, self.n_clips_, self.tau)

    @contextlib.contextmanager
    def applied(self, clf):
        """Within the block, ``clf`` normalises with this speaker's mean
        (the pooled spread stays the prior's)."""
        norm = clf.mods.mean_var_norm
        saved = norm.glob_mean
        norm.glob_mean = self.mean_.to(saved.device, saved.dtype)
        try:
            yield clf
        finally:
            norm.glob_mean = saved


def normalised(clf):
    """True when a loaded model standardises with a prior (exported from a
    run with per-speaker normalisation)."""
    from speechbrain.processing.features import InputNormalization

    norm = clf.mods["mean_var_norm"] if "mean_var_norm" in clf.mods else None
    return isinstance(norm, InputNormalization) and norm.glob_mean.numel() > 0


@torch.no_grad()
def pooled_features(clf, wav):
    """A clip's pooled encoder features ``[dim]`` before normalisation:
    what a speaker's statistics are made of (the whole clip, as
    :func:`speechbrain_grl.inference.predict.pooled` encodes it)."""
    from speechbrain_grl.inference.predict import pooled

    return pooled(clf, wav.reshape(1, -1), torch.ones(1)).reshape(
        -1).float().cpu()


def read_speaker_map(path):
    """``{audio path: speaker}`` from a CSV with the columns ``path`` and
    ``speaker`` (a relative path is relative to the CSV); one-line errors
    for a missing file or column."""
    path = Path(path)
    if not path.is_file():
        raise AdaptationError(f"--speakers {path}: no such file")
    with open(path, encoding="utf-8", newline="") as fin:
        reader = csv.DictReader(fin)
        missing = [c for c in ("path", "speaker")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise AdaptationError(
                f"--speakers {path}: no column {', '.join(missing)}; the "
                "CSV needs the columns path,speaker")
        rows = list(reader)
    out = {}
    for line, row in enumerate(rows, start=2):
        wav, spk = (row["path"] or "").strip(), (row["speaker"] or "").strip()
        if not wav or not spk:
            raise AdaptationError(f"--speakers {path}, line {line}: empty "
                                  "path or speaker")
        wav = Path(wav)
        out[(wav if wav.is_absolute() else path.parent / wav).resolve()] = spk
    return out


def _usable_features(clf, path, cache):
    """A file's pooled features, or None when it cannot be read, is
    shorter than predict's shortest clip or is digital silence (counted
    by the caller, as predict counts them); ``cache`` (a dict by
    resolved path) keeps them for a second use."""
    key = Path(path).resolve()
    if key not in cache:
        try:
            wav = read_audio(str(path), SAMPLE_RATE)
        except Exception:  # noqa: BLE001 - the caller counts it
            wav = None
        cache[key] = (None if wav is None or len(wav) < MIN_SAMPLES
                      or is_silent(wav) else pooled_features(clf, wav))
    return cache[key]


def deployment_prior(clf, files, cache=None):
    """The prior mean re-centred on a deployment: the average pooled
    features of the usable ``files`` (every speaker, no label), or None
    when none is usable (``cache``: see :func:`_usable_features`)."""
    cache = {} if cache is None else cache
    feats = [f for f in (_usable_features(clf, p, cache) for p in files)
             if f is not None]
    return torch.stack(feats).mean(0) if feats else None


def _speaker_clips(clf, files, k, seed, prior_mean=None, cache=None):
    """The adaptation of one speaker from at most ``k`` usable clips of
    ``files`` (None: all): ``k`` drawn with ``seed``, the others (in a
    seeded order) standing in for unreadable and silent ones, which are
    skipped and counted."""
    adapt = SpeakerAdaptation.from_model(clf, prior_mean)
    files = sorted(files)
    if k is not None and len(files) > k:
        rng = random.Random(seed)
        first = rng.sample(files, k)
        rest = sorted(set(files) - set(first))
        rng.shuffle(rest)
        files = first + rest
    skipped, cache = 0, {} if cache is None else cache
    for path in files:
        if k is not None and adapt.n_clips_ >= k:
            break
        feats = _usable_features(clf, path, cache)
        if feats is None:  # counted, the prior stays
            skipped += 1
            continue
        adapt.partial_fit(feats)
    return adapt, skipped


def predict_speakers(clf, files, speakers, adapt_clips=None, seed=0,
                     recenter=False, windows=None, **predict_args):
    """Predictions for ``files``, each speaker's normalised with a MAP
    mean from their own clips.

    Each file is encoded once (:func:`~speechbrain_grl.inference.predict.
    encode_windows`): a file read as one window, untrimmed, gives its
    speaker's statistics from the same features it is classified with
    (in bf16 too); the statistics of longer or trimmed files, of clips
    the int8 ONNX encoder saw in a batch of several, and of a speaker's
    clips that are not being classified, are read whole and alone.

    Parameters
    ----------
    clf : speechbrain.inference.classifiers.EncoderClassifier
        A model exported with per-speaker normalisation.
    files : list of pathlib.Path
        The files to classify.
    speakers : dict
        ``{path: speaker}`` (:func:`read_speaker_map`; paths as str or
        Path): every path of a speaker is one of their clips; files
        without a speaker get the prior.
    adapt_clips : int, optional
        At most this many usable clips per speaker, in an order drawn
        with ``seed`` (None: all; 0: the prior alone).
    seed : int
        The draw's seed.
    recenter : bool
        Shrink towards the average of ``files`` (:func:`deployment_prior`)
        instead of the training speakers' average voice.
    windows : speechbrain_grl.inference.predict.Windows, optional
        ``encode_windows(clf, files, **predict_args)`` computed before,
        e.g. shared by several ``adapt_clips`` (default: computed here).
    **predict_args
        Passed to :func:`speechbrain_grl.inference.predict.predict`.

    Returns
    -------
    list of dict
        :func:`~speechbrain_grl.inference.predict.predict`'s rows in input
        order, with ``speaker`` and ``adapt_clips`` (the clips the
        statistics came from) after ``path``.
    """
    from speechbrain_grl.inference.predict import (
        classify_windows,
        encode_windows,
        prediction_rows,
    )

    files = [Path(f) for f in files]
    if windows is None:
        windows = encode_windows(clf, files, **predict_args)
    speakers = {Path(p).resolve(): s for p, s in speakers.items()}
    clips = {}
    for path, spk in speakers.items():
        clips.setdefault(spk, []).append(path)
    of_file = [speakers.get(f.resolve(), "") for f in files]
    cache, prior = _window_cache(files, windows), None  # the exported
    if recenter:
        prior = deployment_prior(clf, files, cache)
        if prior is None:
            logger.warning("--recenter: no usable file; the exported prior "
                           "stays")
    outputs, used = {}, {}
    precision = predict_args.get("precision", "fp32")
    for spk in sorted(set(of_file)):
        index = [i for i, s in enumerate(of_file) if s == spk]
        if spk:
            adapt, skipped = _speaker_clips(clf, clips[spk], adapt_clips,
                                            seed, prior, cache)
            if skipped:
                logger.warning("speaker %s: %d unreadable, too short or "
                               "silent clips left out of the statistics",
                               spk, skipped)
        else:
            adapt = SpeakerAdaptation.from_model(clf, prior)
        with adapt.applied(clf):
            outputs.update(classify_windows(clf, windows, index, precision))
        used.update(dict.fromkeys(index, adapt.n_clips_))
    rows = prediction_rows(clf, files, windows, outputs)
    return [{"path": row.pop("path"), "speaker": spk,
             "adapt_clips": used[i], **row}
            for i, (row, spk) in enumerate(zip(rows, of_file))]


def _window_cache(files, windows):
    """:func:`_usable_features`'s cache from encoded windows: the features
    of files read whole in one window, and None for files that could not
    be classified (unreadable, too short or silent)."""
    cache = {}
    for i, path in enumerate(files):
        if i in windows.whole:
            cache[path.resolve()] = windows.feats[i][0]
        elif i in windows.errors or i not in windows.feats:
            cache[path.resolve()] = None
    return cache
