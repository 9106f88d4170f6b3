"""Emotion metrics: weighted and unweighted accuracy, macro-F1, confusion;
and the dimensional ones: CCC, PCC and MAE of valence, arousal, dominance.

SER papers report WA (plain accuracy) and UA (mean per-class recall). Both,
the macro-F1 and the confusion matrix come from scikit-learn. Dimensional
SER reports the concordance correlation coefficient (CCC) per dimension;
CCC and PCC are plain numbers in [−1, 1], MAE is in the normalised [0, 1]
units of the targets.
"""

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)

__all__ = ["emotion_metrics", "ccc", "dimensional_metrics", "set_metrics",
           "logged_metrics", "DIMENSIONS"]

#: The dimensions of ``vad`` targets and predictions, in order.
DIMENSIONS = ("valence", "arousal", "dominance")


def emotion_metrics(y_true, y_pred, labels):
    """Computes WA, UA, macro-F1, per-class recall and the confusion matrix.

    Arguments
    ---------
    y_true : list of str
        Reference labels.
    y_pred : list of str
        Predicted labels.
    labels : list of str
        Every class, in the order of the confusion matrix.

    Returns
    -------
    dict
        ``WA``, ``UA``, ``macro_F1`` (in %), ``per_class_recall`` (in %,
        by label), ``confusion_matrix`` (rows: reference, columns:
        prediction), ``labels`` and ``n_utterances``.

    Example
    -------
    >>> m = emotion_metrics(["a", "a", "a", "b"], ["a", "a", "b", "b"],
    ...                     ["a", "b"])
    >>> m["WA"], round(m["UA"], 2)
    (75.0, 83.33)
    >>> m["confusion_matrix"]
    [[2, 1], [0, 1]]
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    if not y_true:
        raise ValueError("no utterances to score")
    labels = list(labels)
    recalls = recall_score(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    present = [lab in set(y_true) for lab in labels]
    return {
        "WA": 100.0 * accuracy_score(y_true, y_pred),
        "UA": 100.0 * balanced_accuracy_score(y_true, y_pred)
        if all(present)
        else 100.0 * float(np.mean(recalls[np.array(present)])),
        "macro_F1": 100.0 * f1_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0
        ),
        "per_class_recall": {
            lab: 100.0 * float(r) for lab, r in zip(labels, recalls)
        },
        "confusion_matrix": confusion_matrix(
            y_true, y_pred, labels=labels
        ).tolist(),
        "labels": labels,
        "n_utterances": len(y_true),
    }


def _moments(pred, true):
    """Means, population variances and covariance of two 1-D arrays.

    A constant array (every value equal) gets a variance and covariance
    of exactly 0, whatever the rounding of its mean.

    Arguments
    ---------
    pred, true : numpy.ndarray
        1-D float64 arrays of one length.

    Returns
    -------
    tuple of float
        ``mean_p, mean_t, var_p, var_t, cov``.

    Example
    -------
    >>> _moments(np.array([0.3, 0.3]), np.array([0.0, 1.0]))
    (0.3, 0.5, 0.0, 0.25, 0.0)
    """
    mean_p, mean_t = float(pred.mean()), float(true.mean())
    const_p = bool(np.all(pred == pred[0]))
    const_t = bool(np.all(true == true[0]))
    mean_p = float(pred[0]) if const_p else mean_p
    mean_t = float(true[0]) if const_t else mean_t
    var_p = 0.0 if const_p else float(np.var(pred))
    var_t = 0.0 if const_t else float(np.var(true))
    cov = 0.0 if const_p or const_t else float(
        np.mean((pred - mean_p) * (true - mean_t)))
    return mean_p, mean_t, var_p, var_t, cov


def _vector(x, name):
    """``x`` as a finite, non-empty 1-D float64 array.

    Arguments
    ---------
    x : array_like
        Values.
    name : str
        What ``x`` is, for the error message.

    Returns
    -------
    numpy.ndarray
        The values, flattened.

    Example
    -------
    >>> _vector([[1], [2]], "pred")
    array([1., 2.])
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name}: no values to score")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def ccc(pred, true):
    """Lin's concordance correlation coefficient of two series.

    ``2 cov / (var_p + var_t + (mean_p − mean_t)²)`` with population
    (biased) moments. A constant prediction of a varying target scores
    0.0; when both are constant the ratio is 0 / 0 and is defined as 1.0
    if they are equal (a perfect prediction) and 0.0 otherwise (the
    formula's own value, 0 / (mean_p − mean_t)²).

    Arguments
    ---------
    pred : array_like
        Predictions, one value per utterance.
    true : array_like
        Targets, as many.

    Returns
    -------
    float
        The CCC, in [−1, 1] (not rounded).

    Example
    -------
    >>> ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    >>> ccc([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    0.0
    >>> round(ccc([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), 4)  # 4/3 / (4/3 + 1)
    0.5714
    """
    pred, true = _vector(pred, "pred"), _vector(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred ({pred.size}) and true ({true.size}) differ "
                         "in length")
    mean_p, mean_t, var_p, var_t, cov = _moments(pred, true)
    denom = var_p + var_t + (mean_p - mean_t) ** 2
    if denom == 0.0:  # both constant and equal
        return 1.0
    return float(np.clip(2.0 * cov / denom, -1.0, 1.0))


def _pcc(pred, true):
    """Pearson's correlation; 0.0 when either series is constant.

    Arguments
    ---------
    pred, true : numpy.ndarray
        1-D float64 arrays of one length.

    Returns
    -------
    float
        The PCC, in [−1, 1].

    Example
    -------
    >>> _pcc(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    -1.0
    >>> _pcc(np.array([1.0, 1.0]), np.array([3.0, 2.0]))
    0.0
    """
    _, _, var_p, var_t, cov = _moments(pred, true)
    if var_p == 0.0 or var_t == 0.0:
        return 0.0
    return float(np.clip(cov / np.sqrt(var_p * var_t), -1.0, 1.0))


def _rows(x, name):
    """``x`` as a finite ``[N, 3]`` float64 array (``[N, 1, 3]`` too).

    Arguments
    ---------
    x : array_like
        Valence, arousal and dominance per utterance.
    name : str
        What ``x`` is, for the error message.

    Returns
    -------
    numpy.ndarray
        ``[N, 3]``.

    Example
    -------
    >>> _rows([[[0.1, 0.2, 0.3]]], "pred").shape
    (1, 3)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 2 or x.shape[1] != len(DIMENSIONS) or not len(x):
        raise ValueError(f"{name} has shape {x.shape}; expected [N, 3] "
                         "(valence, arousal, dominance), N > 0")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def dimensional_metrics(pred, true, speakers=None):
    """CCC, PCC and MAE per dimension, and the spread of CCC over speakers.

    Arguments
    ---------
    pred : array_like
        Predicted valence, arousal, dominance, ``[N, 3]`` (normalised to
        [0, 1]).
    true : array_like
        The targets, ``[N, 3]``.
    speakers : list of str, optional
        The speaker of each utterance, for ``CCC_speaker_std``.

    Returns
    -------
    dict
        ``CCC``, ``PCC``, ``MAE`` (``{dimension: value}``), ``CCC_mean``
        (the mean of the three CCCs), ``CCC_speaker_std`` and
        ``n_utterances``. CCC and PCC are in [−1, 1], MAE in the targets'
        [0, 1] units; all rounded to 4 decimals. ``CCC_speaker_std`` is
        ``{dimension: std}``, the population std (ddof=0) over speakers
        of each speaker's own CCC, counting the speakers with at least 2
        utterances; None without ``speakers`` or when fewer than 2
        speakers qualify.

    Example
    -------
    >>> true = np.array([[0.1, 0.2, 0.3], [0.5, 0.9, 0.4], [0.8, 0.4, 0.6],
    ...                  [0.3, 0.5, 0.5]])
    >>> m = dimensional_metrics(true, true, ["a", "a", "b", "b"])
    >>> m["CCC_mean"], m["MAE"]["valence"], m["CCC_speaker_std"]["arousal"]
    (1.0, 0.0, 0.0)
    >>> dimensional_metrics(np.full((4, 3), 0.5), true)["CCC"]
    {'valence': 0.0, 'arousal': 0.0, 'dominance': 0.0}
    """
    pred, true = _rows(pred, "pred"), _rows(true, "true")
    if pred.shape != true.shape:
        raise ValueError(f"pred {pred.shape} and true {true.shape} differ "
                         "in shape")
    cccs = [ccc(pred[:, i], true[:, i]) for i in range(len(DIMENSIONS))]
    out = {
        "CCC": {d: round(c, 4) for d, c in zip(DIMENSIONS, cccs)},
        "CCC_mean": round(float(np.mean(cccs)), 4),
        "PCC": {d: round(_pcc(pred[:, i], true[:, i]), 4)
                for i, d in enumerate(DIMENSIONS)},
        "MAE": {d: round(float(np.mean(np.abs(pred[:, i] - true[:, i]))), 4)
                for i, d in enumerate(DIMENSIONS)},
        "CCC_speaker_std": None,
        "n_utterances": len(pred),
    }
    if speakers is None:
        return out
    speakers = np.asarray(list(speakers), dtype=object)
    if len(speakers) != len(pred):
        raise ValueError(f"{len(speakers)} speakers for {len(pred)} "
                         "utterances")
    per_speaker = []
    for spk in dict.fromkeys(speakers.tolist()):
        rows = speakers == spk
        if rows.sum() >= 2:
            per_speaker.append([ccc(pred[rows, i], true[rows, i])
                                for i in range(len(DIMENSIONS))])
    if len(per_speaker) >= 2:
        std = np.std(np.asarray(per_speaker), axis=0, ddof=0)
        out["CCC_speaker_std"] = {d: round(float(s), 4)
                                  for d, s in zip(DIMENSIONS, std)}
    return out


def set_metrics(preds, task, emotions, decode):
    """The metrics of one evaluation pass.

    Arguments
    ---------
    preds : dict
        What the pass collected: ``true`` and ``logp`` (lists of
        tensors of emotion indices and log-probabilities), ``vad`` and
        ``vad_true`` (``[batch, 3]`` tensors), ``spk`` (speaker names).
    task : str
        ``categorical``: :func:`emotion_metrics`; ``dimensional``:
        :func:`dimensional_metrics`; ``both``: both, and their selection
        ``score`` (UA / 100 + mean CCC) / 2.
    emotions : list of str
        The class labels.
    decode : callable
        Emotion indices to labels.
    """
    metrics = {}
    if task != "dimensional":
        true = torch.cat(preds["true"]).cpu().tolist()
        pred = torch.cat(preds["logp"]).argmax(-1).cpu().tolist()
        metrics = emotion_metrics(decode(true), decode(pred), emotions)
    if task != "categorical":
        metrics.update(dimensional_metrics(
            torch.cat(preds["vad"]).cpu().numpy(),
            torch.cat(preds["vad_true"]).cpu().numpy(), preds["spk"]))
    if task == "both":
        metrics["score"] = round(
            (metrics["UA"] / 100.0 + metrics["CCC_mean"]) / 2.0, 4)
    return metrics


def logged_metrics(metrics):
    """What the train log shows of a pass's metrics: WA, UA, macro F1,
    score, and the mean CCC as ``CCC`` (the selection key).

    Example
    -------
    >>> logged_metrics({"UA": 50.0, "recall": {}, "CCC_mean": 0.4})
    {'UA': 50.0, 'CCC': 0.4}
    """
    stats = {k: metrics[k] for k in ("WA", "UA", "macro_F1", "score")
             if k in metrics}
    if "CCC_mean" in metrics:
        stats["CCC"] = metrics["CCC_mean"]
    return stats
