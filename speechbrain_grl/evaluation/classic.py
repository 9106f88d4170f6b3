"""The classic baseline: MFCC statistics and a linear model.

Every benchmark that trains models reports this row beside them, on the
same folds (the run's own manifests): each clip becomes the mean and
standard deviation over frames of its 20 MFCCs (``torchaudio``), and a
scikit-learn pipeline (``StandardScaler``, then
``LogisticRegression`` for emotion classes, or ``Ridge`` for valence,
arousal and dominance) is fitted on the training split and scored on
the test split, UA (%) or CCC per dimension.

Two variants:

- *plain*: the features as they are;
- *z-norm*: every speaker's features standardised with the mean and
  standard deviation of their own clips, training speakers and test
  speakers alike (the test speakers' statistics come from all their
  test clips: what a deployment that has heard each speaker gets);

and, for the adaptation benchmark, :func:`adaptation_baseline`: each
test speaker's mean from k of their clips, shrunk to the training
speakers' average (MAP, the prior worth ``tau`` clips), with the pooled
within-speaker spread of the training speakers, and each training
speaker's mean plain or balanced over their emotions
(:func:`speaker_means`).

Features are cached per wav path within a process
(:func:`mfcc_statistics`), so the variants and the splits of one corpus
share one pass over its audio.
"""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["N_MFCC", "ClassicBaseline", "Split", "adaptation_baseline",
           "evaluate", "features", "load_split", "mfcc_statistics",
           "run_split", "speaker_means", "speaker_znorm"]

#: MFCCs per frame; the features are their mean and std (2 × N_MFCC).
N_MFCC = 20
_CACHE = {}
_MFCC = {}


def mfcc_statistics(path, sample_rate=16000, n_mfcc=N_MFCC):
    """Mean and standard deviation over frames of a clip's MFCCs.

    Parameters
    ----------
    path : str or pathlib.Path
        An audio file (read at ``sample_rate`` by
        :func:`~speechbrain_grl.dataio.audio.read_audio`).
    sample_rate : int
        The rate the MFCCs are computed at.
    n_mfcc : int
        Coefficients per frame.

    Returns
    -------
    numpy.ndarray
        ``[2 * n_mfcc]``: the means, then the (unbiased) standard
        deviations. Cached per path within the process.

    Example
    -------
    >>> import soundfile as sf
    >>> wav = getfixture("tmp_path") / "a.wav"
    >>> sf.write(wav, 0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    >>> mfcc_statistics(wav).shape
    (40,)
    """
    import torchaudio

    from speechbrain_grl.dataio.audio import read_audio

    key = (str(Path(path).resolve()), int(sample_rate), int(n_mfcc))
    if key not in _CACHE:
        if key[1:] not in _MFCC:
            _MFCC[key[1:]] = torchaudio.transforms.MFCC(
                sample_rate=sample_rate, n_mfcc=n_mfcc)
        m = _MFCC[key[1:]](read_audio(str(path), sample_rate))
        _CACHE[key] = np.concatenate([m.mean(-1).numpy(),
                                      m.std(-1).numpy()])
    return _CACHE[key]


def features(files, sample_rate=16000):
    """``[len(files), 2 * N_MFCC]``: :func:`mfcc_statistics` of each."""
    return np.stack([mfcc_statistics(f, sample_rate) for f in files])


@dataclass
class Split:
    """One manifest's clips: audio paths, speakers, emotion labels and,
    where the manifest has them, ``[v, a, d]`` targets (else None)."""

    files: list
    speakers: list
    emotions: list
    vad: list = field(default=None)

    def x(self):
        """The clips' features (:func:`features`)."""
        return features(self.files)


def load_split(manifest, data_root=None):
    """A SpeechBrain manifest (json) as a :class:`Split`.

    Parameters
    ----------
    manifest : str, pathlib.Path or dict
        ``{utt_id: {"wav", "spk_id", "emo", ["vad"]}}`` or its json file.
    data_root : str, optional
        What ``{data_root}`` in ``wav`` stands for.

    Returns
    -------
    Split
        ``vad`` is None unless every entry has one.

    Example
    -------
    >>> s = load_split({"u1": {"wav": "{data_root}/a.wav", "spk_id": "A",
    ...                        "emo": "neu"}}, "/data")
    >>> s.files, s.speakers, s.emotions, s.vad
    (['/data/a.wav'], ['A'], ['neu'], None)
    """
    if not isinstance(manifest, dict):
        manifest = json.loads(Path(manifest).read_text(encoding="utf-8"))
    entries = list(manifest.values())
    files = [e["wav"] if data_root is None
             else e["wav"].replace("{data_root}", str(data_root))
             for e in entries]
    vad = [e.get("vad") for e in entries]
    return Split(files, [e["spk_id"] for e in entries],
                 [e.get("emo") for e in entries],
                 vad if vad and all(v is not None for v in vad) else None)


def run_split(run, split, manifest=None):
    """A run's manifest ``<run>/<split>.json`` (or ``manifest``, e.g.
    ``cross_corpus/emodb/all.json``) with the audio resolved by the data
    folder recorded beside it (``prepare_opts.json``)."""
    path = Path(manifest) if manifest else Path(run) / f"{split}.json"
    opts = path.parent / "prepare_opts.json"
    root = json.loads(opts.read_text(encoding="utf-8"))["data_folder"]
    return load_split(path, root)


def speaker_znorm(x, speakers, eps=1e-8):
    """Standardises each speaker's rows with their own mean and std.

    Parameters
    ----------
    x : numpy.ndarray
        ``[N, D]`` features.
    speakers : sequence of str
        The speaker of each row.
    eps : float
        Added to each std (a speaker with one clip, or a constant
        feature, keeps finite values).

    Returns
    -------
    numpy.ndarray
        ``[N, D]``; every speaker's rows have mean 0 and (population)
        std 1 per feature.

    Example
    -------
    >>> x = np.array([[1.0], [3.0], [10.0], [30.0]])
    >>> speaker_znorm(x, ["a", "a", "b", "b"]).ravel().round(3).tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    x = np.asarray(x, dtype=float)
    spk = np.asarray(list(speakers), dtype=object)
    out = np.empty_like(x)
    for s in dict.fromkeys(spk.tolist()):
        rows = spk == s
        out[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + eps)
    return out


class ClassicBaseline:
    """StandardScaler + logistic regression (or ridge), optionally on
    per-speaker z-normalised features: an estimator on feature rows.

    Parameters
    ----------
    task : str
        ``categorical`` (``LogisticRegression``, scored by UA in %) or
        ``dimensional`` (``Ridge`` on ``[v, a, d]``, scored by CCC).
    znorm : bool
        Standardise each speaker with their own statistics
        (:func:`speaker_znorm`) before the model, in ``fit`` and
        ``predict`` alike; both then need ``speakers``.
    C, alpha : float
        The logistic regression's inverse and the ridge's regularisation.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> y = ["lo", "hi"] * 20
    >>> spk = [f"s{i // 10}" for i in range(40)]
    >>> x = rng.normal(size=(40, 3)) + [[2.0 * (v == "hi")] for v in y]
    >>> x += [[5.0 * int(s[1:])] for s in spk]  # a per-speaker offset
    >>> base = ClassicBaseline(znorm=True).fit(x[:20], y[:20], spk[:20])
    >>> base.score(x[20:], y[20:], spk[20:]) > 80
    True
    """

    def __init__(self, task="categorical", znorm=False, C=1.0, alpha=1.0):
        if task not in ("categorical", "dimensional"):
            raise ValueError(f"task={task!r}: categorical or dimensional")
        self.task, self.znorm, self.C, self.alpha = task, znorm, C, alpha
        self.model = self.labels = None

    def _x(self, x, speakers):
        if not self.znorm:
            return np.asarray(x, dtype=float)
        if speakers is None:
            raise ValueError("znorm=True needs the speakers of the rows")
        return speaker_znorm(x, speakers)

    def fit(self, x, y, speakers=None):
        """Fits on ``x`` (``[N, D]``) and labels, or ``[N, 3]`` targets."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        head = (LogisticRegression(C=self.C, max_iter=2000)
                if self.task == "categorical" else Ridge(alpha=self.alpha))
        self.model = make_pipeline(StandardScaler(), head)
        if self.task == "categorical":
            self.labels = sorted(set(y))
        self.model.fit(self._x(x, speakers), y)
        return self

    def predict(self, x, speakers=None):
        """Labels (list), or ``[N, 3]`` predictions."""
        pred = self.model.predict(self._x(x, speakers))
        return list(pred) if self.task == "categorical" else pred

    def score(self, x, y, speakers=None):
        """UA (%), or :func:`~speechbrain_grl.evaluation.metrics.
        dimensional_metrics`'s dict (``CCC``, ``CCC_mean``, ...)."""
        from speechbrain_grl.evaluation.metrics import (
            dimensional_metrics,
            emotion_metrics,
        )

        pred = self.predict(x, speakers)
        if self.task == "categorical":
            return emotion_metrics(list(y), pred, self.labels)["UA"]
        return dimensional_metrics(pred, np.asarray(y, dtype=float),
                                   speakers)


def evaluate(train, test, task="categorical"):
    """The baseline's test scores on one fold, plain and z-normalised.

    Parameters
    ----------
    train, test : Split
        The fold's training and test clips (:func:`run_split`).
    task : str
        ``categorical`` (UA, %) or ``dimensional`` (the splits' ``vad``;
        :func:`~speechbrain_grl.evaluation.metrics.dimensional_metrics`).

    Returns
    -------
    dict
        ``{"plain": score, "znorm": score}``.
    """
    if task == "dimensional" and (train.vad is None or test.vad is None):
        raise ValueError("dimensional: every clip needs its [v, a, d]")
    xtr, xte = train.x(), test.x()
    ytr, yte = ((train.emotions, test.emotions) if task == "categorical"
                else (np.asarray(train.vad), np.asarray(test.vad)))
    out = {}
    for name, znorm in (("plain", False), ("znorm", True)):
        base = ClassicBaseline(task, znorm).fit(xtr, ytr, train.speakers)
        out[name] = base.score(xte, yte, test.speakers)
    return out


def speaker_means(x, speakers, emotions=None, balance="plain"):
    """Each speaker's mean feature row.

    Parameters
    ----------
    x : numpy.ndarray
        ``[N, D]`` features.
    speakers, emotions : sequence of str
        Each row's speaker and emotion (``emotions`` only for ``cells``).
    balance : str
        ``plain``: the mean of the speaker's rows; ``cells``: the mean of
        the speaker's per-emotion means, each emotion they said weighing
        the same (as :class:`~speechbrain_grl.nnet.speaker_norm.
        SpeakerNorm`'s ``balance="cells"``), so that a favourite emotion
        is not taken for the voice.

    Returns
    -------
    dict
        ``{speaker: [D] mean}``.

    Example
    -------
    >>> x = np.array([[0.0], [0.0], [0.0], [4.0]])  # three "lo", one "hi"
    >>> spk, emo = ["a"] * 4, ["lo", "lo", "lo", "hi"]
    >>> float(speaker_means(x, spk)["a"][0])
    1.0
    >>> float(speaker_means(x, spk, emo, balance="cells")["a"][0])
    2.0
    """
    if balance not in ("plain", "cells"):
        raise ValueError(f"balance must be plain or cells, not {balance!r}")
    x = np.asarray(x, dtype=float)
    spk = np.asarray(list(speakers), dtype=object)
    emo = None if emotions is None else np.asarray(list(emotions),
                                                   dtype=object)
    if balance == "cells" and emo is None:
        raise ValueError("balance='cells' needs the emotions")
    out = {}
    for s in dict.fromkeys(spk.tolist()):
        rows = spk == s
        if balance == "plain":
            out[s] = x[rows].mean(0)
        else:
            out[s] = np.mean([x[rows & (emo == e)].mean(0)
                              for e in dict.fromkeys(emo[rows].tolist())], 0)
    return out


def adaptation_baseline(train, test, ks, seed, tau=2.0, balance="plain",
                        means=None):
    """The baseline plain, and adapted to each test speaker from k clips.

    The adapted model is fitted on the training clips, each training
    speaker's mean removed (:func:`speaker_means` with ``balance``), all
    divided by the pooled within-speaker standard deviation of the
    training speakers; a test speaker's mean is the MAP mean of k of
    their clips (drawn with ``seed``; ``"all"``: every clip) with the
    training speakers' average worth ``tau`` clips.

    Parameters
    ----------
    train, test : Split
        The fold's clips.
    ks : sequence of str
        Clips per speaker (``"0"``: the prior alone; ``"all"``).
    seed : int
        Which k clips.
    tau : float or str
        The prior's worth in clips; ``"auto"``: within- over
        between-speaker variance of the training speakers, as
        :meth:`~speechbrain_grl.nnet.speaker_norm.SpeakerNorm.
        empirical_tau` computes it.
    balance : str
        How a training speaker's mean weighs their emotions
        (:func:`speaker_means`): ``cells`` is the recipe's default
        adaptation; ``plain`` (the default here, for the reports made
        with it) takes a favourite emotion for the voice.
    means : dict, optional
        ``{speaker: [D] mean}`` for every training speaker, used instead
        of :func:`speaker_means` (e.g. each speaker's true voice, known
        from elsewhere; ``balance`` is then unused).

    Returns
    -------
    dict
        ``{"plain": UA, "adapted": {k: UA}, "tau": the prior's worth}``.
    """
    from speechbrain_grl.evaluation.metrics import emotion_metrics
    from speechbrain_grl.nnet.speaker_norm import shrinkage_tau

    xtr, str_, ytr = train.x(), train.speakers, train.emotions
    xte, ste, yte = test.x(), test.speakers, test.emotions
    plain = ClassicBaseline().fit(xtr, ytr)
    out = {"plain": plain.score(xte, yte)}
    if means is None:
        means = speaker_means(xtr, str_, ytr, balance=balance)
    prior = np.mean(list(means.values()), 0)
    spread = np.sqrt(np.mean([xtr[np.array(str_) == s].var(0)
                              for s in means], 0)) + 1e-8
    if tau == "auto":
        tau = shrinkage_tau(np.var(list(means.values()), 0, ddof=1),
                            spread**2)
    xtr_n = (xtr - np.stack([means[s] for s in str_])) / spread
    adapted = ClassicBaseline().fit(xtr_n, ytr)
    out["tau"] = float(tau)
    out["adapted"] = {}
    for k in ks:
        mu = {}
        for s in set(ste):
            idx = sorted(np.flatnonzero(np.array(ste) == s).tolist())
            if k != "all" and len(idx) > int(k):
                idx = random.Random(seed).sample(idx, int(k))
            n = len(idx)
            mu[s] = (tau * prior + xte[idx].sum(0)) / (tau + n) if (
                tau + n) else prior
        xte_n = (xte - np.stack([mu[s] for s in ste])) / spread
        out["adapted"][k] = emotion_metrics(
            yte, adapted.predict(xte_n), adapted.labels)["UA"]
    return out
