"""Emotion metrics: weighted and unweighted accuracy, macro-F1, confusion.

SER papers report WA (plain accuracy) and UA (mean per-class recall). Both,
the macro-F1 and the confusion matrix come from scikit-learn.
"""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
)

__all__ = ["emotion_metrics"]


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
