"""Low-resource training sets: N utterances per class, drawn by seed."""

import numpy as np

__all__ = ["subsample_per_class"]


def subsample_per_class(entries, per_class, seed=0, key="emo"):
    """Keeps at most ``per_class`` utterances of each class.

    Arguments
    ---------
    entries : dict
        Manifest entries ``{utt: {key: label, ...}}``.
    per_class : int or dict
        Utterances kept per class (all of a smaller class are kept), or
        ``{class: n}``.
    seed : int
        The draw; the same seed gives the same subset.
    key : str
        The entry field holding the class.

    Returns
    -------
    dict
        The kept entries, in the original order.

    Example
    -------
    >>> entries = {f"u{i}": {"emo": "ab"[i % 2]} for i in range(7)}
    >>> sorted(subsample_per_class(entries, 2, seed=1))
    ['u0', 'u1', 'u2', 'u5']
    >>> len(subsample_per_class(entries, 10))
    7
    >>> sorted(subsample_per_class(entries, {"a": 1, "b": 3}, seed=1))
    ['u0', 'u1', 'u3', 'u5']
    """
    quota = per_class if isinstance(per_class, dict) else None
    if quota is None and int(per_class) < 1:
        raise ValueError(f"train_per_class={per_class}: use a positive int")
    rng = np.random.default_rng(seed)
    by_class = {}
    for utt in sorted(entries):
        by_class.setdefault(entries[utt][key], []).append(utt)
    kept = set()
    for label in sorted(by_class):
        utts = by_class[label]
        n = quota.get(label, 0) if quota is not None else int(per_class)
        pick = rng.permutation(len(utts))[: int(n)]
        kept.update(utts[i] for i in pick)
    return {u: e for u, e in entries.items() if u in kept}
