"""Reports of protocol runs: fold summaries, tables, plots, comparisons.

Means are over folds; ``std`` is the sample standard deviation (ddof=1,
0 for a single fold). Accuracies are in %. The pooled confusion matrix is
the sum of the folds' count matrices. Dimensional runs (valence, arousal,
dominance) add the CCC (a plain number in [−1, 1]) per dimension, its
mean, and its std over test speakers.
"""

import json
import math
import os

import matplotlib
import numpy as np

from speechbrain_grl.evaluation.metrics import DIMENSIONS, ccc
from speechbrain_grl.utils.jsonio import write_json_atomic

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["summarize_folds", "write_cv_report", "plot_confusion",
           "summarize_cross_corpus", "write_cross_corpus_report",
           "summarize_lowres", "write_lowres_report", "compare_summaries",
           "plot_vad_scatter", "vad_scatter_from_runs", "METRICS",
           "DIM_METRICS"]

METRICS = ("WA", "UA", "macro_F1", "probe_acc", "probe_acc_before")
#: Fold-row keys of dimensional runs (present only when the folds have
#: them): the mean CCC, then CCC and its std over speakers per dimension.
DIM_METRICS = (("CCC_mean",) + tuple(f"CCC_{d}" for d in DIMENSIONS)
               + tuple(f"CCC_speaker_std_{d}" for d in DIMENSIONS))


def _mean_std(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return float(np.mean(vals)), std


def _probe_score(probe):
    """Balanced accuracy of a probe (plain accuracy in older runs)."""
    return probe.get("balanced_accuracy", probe.get("accuracy"))


def _fold_row(m):
    """One fold's row: accuracies, probe, and (dimensional runs) CCCs.

    Arguments
    ---------
    m : dict
        The fold's test metrics.

    Returns
    -------
    dict
        The ``METRICS`` and probe fields; the ``DIM_METRICS`` too when
        ``m`` has ``CCC_mean`` (None where a part is missing).

    Example
    -------
    >>> row = _fold_row({"CCC_mean": 0.5, "CCC": {"valence": 0.4}})
    >>> row["UA"], row["CCC_mean"], row["CCC_valence"], row["CCC_arousal"]
    (None, 0.5, 0.4, None)
    """
    probe = m.get("speaker_probe") or {}
    before = m.get("speaker_probe_before") or {}
    row = {"WA": m.get("WA"), "UA": m.get("UA"),
           "macro_F1": m.get("macro_F1"),
           "probe_acc": _probe_score(probe),
           "probe_acc_before": _probe_score(before),
           "probe_chance": probe.get("chance"),
           "n_speakers": probe.get("n_speakers"),
           "n_test": m.get("n_utterances")}
    if m.get("CCC_mean") is not None:
        # "CCC" is {dimension: CCC}; a scalar there (a selection key)
        # carries no per-dimension values.
        per_dim = m.get("CCC") if isinstance(m.get("CCC"), dict) else {}
        spk_std = m.get("CCC_speaker_std") or {}
        row["CCC_mean"] = m["CCC_mean"]
        for d in DIMENSIONS:
            row[f"CCC_{d}"] = per_dim.get(d)
            row[f"CCC_speaker_std_{d}"] = spk_std.get(d)
    return row


def summarize_folds(results, protocol=None):
    """Per-fold metrics, their mean ± std and the pooled confusion matrix.

    Arguments
    ---------
    results : dict
        ``{fold name: test_metrics}`` (see ``SpeakerAdversarialBrain``).
    protocol : str, optional
        Recorded as is.

    Example
    -------
    >>> m = {"WA": 50.0, "UA": 40.0, "macro_F1": 30.0, "labels": ["a", "b"],
    ...      "confusion_matrix": [[1, 1], [0, 2]],
    ...      "speaker_probe": {"accuracy": 20.0, "chance": 12.5,
    ...                        "n_speakers": 8}}
    >>> s = summarize_folds({"fold_1": m, "fold_2": dict(m, UA=60.0)})
    >>> s["mean"]["UA"], round(s["std"]["UA"], 3)
    (50.0, 14.142)
    >>> s["confusion_matrix"]
    [[2, 2], [0, 4]]

    Dimensional folds add their CCCs; without a confusion matrix in any
    fold, ``labels`` and ``confusion_matrix`` are None:

    >>> d = {"CCC_mean": 0.5, "CCC": {"valence": 0.4, "arousal": 0.6,
    ...                                "dominance": 0.5},
    ...      "CCC_speaker_std": None}
    >>> s = summarize_folds({"f1": d, "f2": dict(d, CCC_mean=0.7)})
    >>> round(s["mean"]["CCC_mean"], 3), s["mean"]["CCC_valence"]
    (0.6, 0.4)
    >>> s["mean"]["UA"], s["confusion_matrix"]
    (None, None)
    """
    if not results:
        raise ValueError("no folds to summarise")
    with_cm = [n for n, m in results.items() if "confusion_matrix" in m]
    if with_cm and len(with_cm) != len(results):
        raise ValueError(
            f"folds {', '.join(with_cm)} have a confusion matrix, "
            f"{', '.join(n for n in results if n not in with_cm)} none: "
            "summarise folds of one task")
    labels = None
    pooled = None
    for name in with_cm:
        m = results[name]
        if labels is None:
            labels = list(m["labels"])
        elif list(m["labels"]) != labels:
            raise ValueError(f"fold {name} has labels {m['labels']}, "
                             f"others {labels}")
        cm = np.asarray(m["confusion_matrix"], dtype=np.int64)
        pooled = cm if pooled is None else pooled + cm
    folds = {name: _fold_row(m) for name, m in results.items()}
    mean, std = {}, {}
    for key in METRICS + _dim_keys(folds):
        mean[key], std[key] = _mean_std([f.get(key)
                                         for f in folds.values()])
    return {"protocol": protocol, "n_folds": len(folds), "folds": folds,
            "mean": mean, "std": std, "labels": labels,
            "confusion_matrix": None if pooled is None else pooled.tolist()}


def _dim_keys(rows):
    """The ``DIM_METRICS`` that any of ``rows`` has, in order.

    Arguments
    ---------
    rows : dict
        ``{fold name: fold row}``.

    Returns
    -------
    tuple of str

    Example
    -------
    >>> _dim_keys({"f1": {"UA": 50.0}})
    ()
    >>> _dim_keys({"f1": {"CCC_mean": 0.5}})
    ('CCC_mean',)
    """
    return tuple(k for k in DIM_METRICS
                 if any(k in row for row in rows.values()))


def _fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def _dim_head(key):
    """The column title of a ``DIM_METRICS`` key.

    Arguments
    ---------
    key : str
        E.g. ``CCC_speaker_std_valence``.

    Returns
    -------
    str

    Example
    -------
    >>> _dim_head("CCC_speaker_std_valence"), _dim_head("CCC_mean")
    ('CCC spk std valence', 'CCC mean')
    """
    return key.replace("_speaker_std_", " spk std ").replace("_", " ")


def summary_markdown(summary, title="Cross-validation"):
    """The summary as a Markdown table (one row per fold, then mean ± std).

    Dimensional summaries get CCC columns (3 decimals) after the
    accuracy and probe ones.

    Arguments
    ---------
    summary : dict
        From ``summarize_folds``.
    title : str
        The heading.

    Returns
    -------
    str

    Example
    -------
    >>> d = {"CCC_mean": 0.5, "CCC": {"valence": 0.4}}
    >>> md = summary_markdown(summarize_folds({"f1": d}, "session"))
    >>> "| f1 | – | – | – | – | – | – | 0.500 | 0.400 |" in md
    True
    """
    dim = _dim_keys(summary["folds"])
    head = ["fold", "WA", "UA", "macro-F1", "probe acc", "probe acc before",
            "probe chance"] + [_dim_head(k) for k in dim]
    lines = [f"# {title} ({summary['protocol']}, {summary['n_folds']} "
             "folds)", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for name, f in summary["folds"].items():
        lines.append("| " + " | ".join(
            [name] + [_fmt(f[k]) for k in METRICS] + [_fmt(f["probe_chance"])]
            + [_fmt(f.get(k), 3) for k in dim]) + " |")
    mean, std = summary["mean"], summary["std"]
    lines.append("| **mean ± std** | " + " | ".join(
        "–" if mean[k] is None else f"{mean[k]:.2f} ± {std[k]:.2f}"
        for k in METRICS) + " | |" + "".join(
        " – |" if mean.get(k) is None else f" {mean[k]:.3f} ± {std[k]:.3f} |"
        for k in dim))
    lines += ["", "Accuracies in %; std is the sample std over folds. The "
              "speaker probe is a fresh logistic regression (5-fold CV) on "
              "frozen embeddings of the training speakers' held-out "
              "utterances."]
    if dim:
        lines += ["", "CCC: concordance correlation coefficient in "
                  "[−1, 1] (valence, arousal, dominance, and their mean); "
                  "CCC spk std: the std (ddof=0) over test speakers of "
                  "each speaker's own CCC."]
    if summary["confusion_matrix"] is None:
        return "\n".join(lines) + "\n"
    lines += ["", "Pooled confusion matrix (rows: reference, "
              "columns: prediction, counts):", "",
              "| | " + " | ".join(summary["labels"]) + " |",
              "|" + "---|" * (len(summary["labels"]) + 1)]
    for lab, row in zip(summary["labels"], summary["confusion_matrix"]):
        lines.append(f"| {lab} | " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion(cm, labels, path, title=None):
    """Saves a row-normalised (%) confusion matrix as a PNG.

    Example
    -------
    >>> p = getfixture("tmp_path") / "cm.png"
    >>> plot_confusion([[3, 1], [0, 4]], ["a", "b"], p)
    >>> p.stat().st_size > 0
    True
    """
    cm = np.asarray(cm, dtype=float)
    pct = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2,
                                    1.2 * len(labels) + 1.5))
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{pct[i, j]:.1f}", ha="center", va="center",
                    color="white" if pct[i, j] > 50 else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_cv_report(folder, summary):
    """Writes ``cv_summary.json``, ``cv_summary.md`` and (categorical
    folds) ``confusion_matrix.png`` to ``folder``."""
    write_json_atomic(summary, os.path.join(folder, "cv_summary.json"))
    with open(os.path.join(folder, "cv_summary.md"), "w",
              encoding="utf-8") as fout:
        fout.write(summary_markdown(summary))
    if summary["confusion_matrix"] is None:  # dimensional folds only
        return
    plot_confusion(
        summary["confusion_matrix"], summary["labels"],
        os.path.join(folder, "confusion_matrix.png"),
        title=f"{summary['protocol']}: pooled over {summary['n_folds']} "
              "folds (row %)")


def plot_vad_scatter(pred, true, path, title=None):
    """Saves predicted vs true valence, arousal, dominance as one PNG.

    Three panels, one per dimension, with the diagonal (a perfect
    prediction) and the dimension's CCC in its title.

    Arguments
    ---------
    pred : array_like
        Predictions, ``[N, 3]`` (normalised to [0, 1]).
    true : array_like
        Targets, ``[N, 3]``.
    path : str or os.PathLike
        The PNG to write.
    title : str, optional
        A title above the panels.

    Example
    -------
    >>> p = getfixture("tmp_path") / "vad.png"
    >>> true = np.array([[0.1, 0.2, 0.3], [0.5, 0.9, 0.4], [0.8, 0.4, 0.6]])
    >>> plot_vad_scatter(true + 0.05, true, p, title="demo")
    >>> p.stat().st_size > 0
    True
    """
    pred = np.asarray(pred, dtype=float).reshape(-1, len(DIMENSIONS))
    true = np.asarray(true, dtype=float).reshape(-1, len(DIMENSIONS))
    if pred.shape != true.shape or not len(pred):
        raise ValueError(f"pred {pred.shape} and true {true.shape}: expected "
                         "two non-empty [N, 3] arrays")
    lo = min(0.0, float(pred.min()), float(true.min()))
    hi = max(1.0, float(pred.max()), float(true.max()))
    pad = 0.03 * (hi - lo)
    lim = (lo - pad, hi + pad)
    alpha = float(np.clip(30.0 / np.sqrt(len(pred)), 0.1, 0.8))
    fig, axes = plt.subplots(1, len(DIMENSIONS), figsize=(11, 3.9))
    for i, (ax, dim) in enumerate(zip(axes, DIMENSIONS)):
        ax.scatter(true[:, i], pred[:, i], s=8, alpha=alpha, linewidths=0,
                   rasterized=True)
        ax.plot(lim, lim, color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_aspect("equal")
        ax.set_xlabel(f"true {dim}")
        ax.set_ylabel(f"predicted {dim}")
        ax.set_title(f"{dim}: CCC {ccc(pred[:, i], true[:, i]):.3f}")
    fig.suptitle(f"{title} (n = {len(pred)})" if title
                 else f"n = {len(pred)}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _read_json(path):
    """A JSON file's content.

    Arguments
    ---------
    path : str
        The file.

    Returns
    -------
    object

    Example
    -------
    >>> p = getfixture("tmp_path") / "x.json"
    >>> _ = p.write_text('{"a": 1}')
    >>> _read_json(p)
    {'a': 1}
    """
    with open(path, encoding="utf-8") as fin:
        return json.load(fin)


def vad_scatter_from_runs(run_folders, path):
    """Pools runs' test predictions of valence, arousal, dominance into
    one ``plot_vad_scatter``.

    Each folder's ``test_predictions.json`` ``"vad"`` (``{utt: [v, a,
    d]}``) is paired with the true ``vad`` of the same utterance in its
    ``test.json`` manifest; folders without ``"vad"`` predictions (or
    without ``test_predictions.json``) are skipped, and so are
    utterances whose manifest entry has no ``vad``.

    Arguments
    ---------
    run_folders : list of str
        Run (fold) folders.
    path : str or os.PathLike
        The PNG to write.

    Returns
    -------
    str or os.PathLike or None
        ``path``, or None (and nothing written) when no folder has
        ``"vad"`` predictions.

    Raises
    ------
    ValueError
        When there are ``"vad"`` predictions but no utterance of them
        has a true ``vad`` in its folder's ``test.json``.

    Example
    -------
    >>> vad_scatter_from_runs([str(getfixture("tmp_path"))], "x.png") is None
    True
    """
    pred, true, runs = [], [], []
    for folder in run_folders:
        preds_path = os.path.join(folder, "test_predictions.json")
        if not os.path.isfile(preds_path):
            continue
        vad = _read_json(preds_path).get("vad")
        if not vad:
            continue
        manifest = _read_json(os.path.join(folder, "test.json"))
        runs.append(folder)
        for utt, row in vad.items():
            target = (manifest.get(utt) or {}).get("vad")
            if target is not None:
                pred.append(row)
                true.append(target)
    if not runs:
        return None
    if not pred:
        raise ValueError(f"none of the vad predictions in {', '.join(runs)} "
                         "has a true vad in its test.json")
    plot_vad_scatter(pred, true, path, title=f"test, pooled over "
                     f"{len(runs)} run{'s' * (len(runs) > 1)}")
    return path


def summarize_lowres(results, sizes):
    """UA vs N per class (mean ± std over draws) and its area.

    ``auc`` is the trapezoid area of mean UA over log10(N), divided by the
    log10 span of N: an average UA (in %) over the log-spaced sizes (the
    UA itself when only one N ran).

    Arguments
    ---------
    results : dict
        ``{fold name: test_metrics}`` of the lowres folds.
    sizes : dict
        ``{fold name: N}``.

    Example
    -------
    >>> r = {"a": {"UA": 40.0}, "b": {"UA": 60.0}, "c": {"UA": 80.0}}
    >>> s = summarize_lowres(r, {"a": 10, "b": 10, "c": 100})
    >>> s["curve"]
    [{'n': 10, 'UA_mean': 50.0, 'UA_std': 14.142135623730951, 'draws': 2}, \
{'n': 100, 'UA_mean': 80.0, 'UA_std': 0.0, 'draws': 1}]
    >>> s["auc"]
    65.0
    """
    by_n, effective = {}, {}
    for name, m in results.items():
        by_n.setdefault(sizes[name], []).append(m["UA"])
        train = (m.get("class_counts") or {}).get("train")
        if train:  # the N each class really had (a class may be smaller)
            effective.setdefault(sizes[name], []).append(train)
    curve = []
    for n in sorted(by_n):
        mean, std = _mean_std(by_n[n])
        point = {"n": n, "UA_mean": mean, "UA_std": std,
                 "draws": len(by_n[n])}
        if n in effective:
            point["n_effective"] = {
                emo: min(c.get(emo, 0) for c in effective[n])
                for emo in effective[n][0]}
        curve.append(point)
    x = np.log10([c["n"] for c in curve])
    y = np.array([c["UA_mean"] for c in curve])
    if len(curve) > 1:
        area = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
        auc = area / float(x[-1] - x[0])
    else:
        auc = float(y[0])
    return {"protocol": "lowres", "curve": curve, "auc": auc,
            "auc_definition": "trapezoid of mean UA over log10(N) divided "
                              "by log10(N_max / N_min), in %",
            "folds": {n: _fold_row(m) for n, m in results.items()}}


def write_lowres_report(folder, summary):
    """Writes ``lowres_summary.json``, ``lowres_summary.md`` and
    ``lowres_curve.png`` to ``folder``."""
    write_json_atomic(summary, os.path.join(folder, "lowres_summary.json"))
    lines = ["# Low-resource curve (session split)", "",
             "| N per class | effective N per class (train) | runs | "
             "UA mean ± std |", "|---|---|---|---|"]
    for c in summary["curve"]:
        eff = c.get("n_effective")
        eff = ", ".join(f"{k} {v}" for k, v in eff.items()) if eff else "-"
        lines.append(f"| {c['n']} | {eff} | {c['draws']} | "
                     f"{c['UA_mean']:.2f} ± {c['UA_std']:.2f} |")
    lines += ["", f"AUC: {summary['auc']:.2f} "
              f"({summary['auc_definition']}).", ""]
    with open(os.path.join(folder, "lowres_summary.md"), "w",
              encoding="utf-8") as fout:
        fout.write("\n".join(lines))
    n = [c["n"] for c in summary["curve"]]
    y = np.array([c["UA_mean"] for c in summary["curve"]])
    e = np.array([c["UA_std"] for c in summary["curve"]])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(n, y, yerr=e, marker="o", capsize=3)
    ax.fill_between(n, y - e, y + e, alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("training utterances per class (N)")
    ax.set_ylabel("UA (%)")
    ax.set_title(f"UA vs N (AUC {summary['auc']:.1f})")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "lowres_curve.png"), dpi=120)
    plt.close(fig)


def summarize_cross_corpus(results, train_corpus):
    """The train corpus × test corpus table of a ``cross_corpus`` run.

    Arguments
    ---------
    results : dict
        ``{seed fold: test metrics}``, each with ``cross_corpus``:
        ``{test corpus: test metrics}``.
    train_corpus : str
        The corpus trained on (its own test is the first column).

    Returns
    -------
    dict
        ``table``: ``{test corpus: {"UA": mean, "UA_std", "WA",
        "WA_std", "n_utterances"}}``; ``folds``: one row per
        ``<test corpus>/<seed fold>`` (what ``compare.py`` pairs).

    Example
    -------
    >>> m = {"UA": 60.0, "WA": 61.0, "n_utterances": 10,
    ...      "cross_corpus": {"emodb": {"UA": 40.0, "WA": 41.0,
    ...                                 "n_utterances": 32}}}
    >>> s = summarize_cross_corpus({"seed_1": m, "seed_2": dict(m, UA=70.0)},
    ...                            "iemocap")
    >>> s["table"]["iemocap"]["UA"], s["table"]["emodb"]["UA"]
    (65.0, 40.0)
    >>> sorted(s["folds"])[:2]
    ['emodb/seed_1', 'emodb/seed_2']
    """
    if not results:
        raise ValueError("no runs to summarise")
    per_corpus = {train_corpus: {}}
    for fold, m in results.items():
        per_corpus[train_corpus][fold] = m
        for name, other in (m.get("cross_corpus") or {}).items():
            per_corpus.setdefault(name, {})[fold] = other
    table, folds = {}, {}
    for name, runs in per_corpus.items():
        row = {}
        for key in ("UA", "WA"):
            row[key], row[f"{key}_std"] = _mean_std(
                [r.get(key) for r in runs.values()])
        row["n_utterances"] = next(iter(runs.values())).get("n_utterances")
        table[name] = row
        for fold, r in runs.items():
            folds[f"{name}/{fold}"] = {"UA": r.get("UA"), "WA": r.get("WA"),
                                       "probe_acc": None}
    return {"protocol": "cross_corpus", "train_corpus": train_corpus,
            "n_runs": len(results), "runs": list(results),
            "adversary": next(iter(results.values())).get("adversary"),
            "table": table, "folds": folds}


def write_cross_corpus_report(folder, summary):
    """``cv_summary.json`` and ``cross_corpus.md`` (the table)."""
    write_json_atomic(summary, os.path.join(folder, "cv_summary.json"))
    names = list(summary["table"])
    lines = [f"# Zero-shot cross-corpus test ({summary['adversary']}, "
             f"{summary['n_runs']} seeds)", "",
             "| train \\ test | " + " | ".join(
                 f"{n} (in-corpus)" if n == summary["train_corpus"] else n
                 for n in names) + " |",
             "|" + "---|" * (len(names) + 1),
             f"| {summary['train_corpus']} | " + " | ".join(
                 "–" if summary["table"][n]["UA"] is None else
                 f"{summary['table'][n]['UA']:.2f} ± "
                 f"{summary['table'][n]['UA_std']:.2f}" for n in names)
             + " |", "",
             "UA in % (mean ± sample std over seeds). The in-corpus column "
             "is the corpus's own speaker-independent test; the others "
             "test the same checkpoints on the whole of another corpus, "
             "zero-shot. Clips per test corpus: " + ", ".join(
                 f"{n} {summary['table'][n]['n_utterances']}"
                 for n in names) + "."]
    with open(os.path.join(folder, "cross_corpus.md"), "w",
              encoding="utf-8") as fout:
        fout.write("\n".join(lines) + "\n")


def compare_summaries(a, b, name_a="A", name_b="B"):
    """Side-by-side table and paired per-fold differences (B − A).

    Raises
    ------
    ValueError
        If the two summaries do not cover the same folds.

    Example
    -------
    >>> row = {"WA": 50.0, "UA": 50.0, "probe_acc": 30.0}
    >>> a = {"folds": {"fold_1": row, "fold_2": row}}
    >>> b = {"folds": {"fold_1": dict(row, UA=54.0),
    ...                "fold_2": dict(row, UA=52.0)}}
    >>> compare_summaries(a, b).splitlines()[-3].split("|")[4]
    ' 3.00 ± 1.41 '
    """
    fa, fb = list(a["folds"]), list(b["folds"])
    if sorted(fa) != sorted(fb):
        raise ValueError(f"the fold sets differ: {name_a} has {sorted(fa)}, "
                         f"{name_b} has {sorted(fb)}; run the same folds")
    keys = (("UA", "UA"), ("WA", "WA"), ("probe_acc", "probe acc"))
    head = ["fold"]
    for _, label in keys:
        head += [f"{label} {name_a}", f"{label} {name_b}", "Δ"]
    lines = [f"# {name_b} vs {name_a} (paired over {len(fa)} folds, "
             f"Δ = {name_b} − {name_a})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    diffs = {k: [] for k, _ in keys}
    for fold in sorted(fa):
        cells = [fold]
        for k, _ in keys:
            va, vb = a["folds"][fold].get(k), b["folds"][fold].get(k)
            d = None if va is None or vb is None else vb - va
            if d is not None:
                diffs[k].append(d)
            cells += [_fmt(va), _fmt(vb), _fmt(d)]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**mean ± std**"]
    for k, _ in keys:
        mean, std = _mean_std(diffs[k])
        cells += ["", "", "–" if mean is None or math.isnan(mean)
                  else f"{mean:.2f} ± {std:.2f}"]
    lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Accuracies in %; std is the sample std of the paired "
              "differences.", ""]
    return "\n".join(lines)
