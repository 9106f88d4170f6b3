"""Speaker-independent splits that work for any corpus.

- :func:`speaker_kfold`: k folds grouped by speaker (scikit-learn's
  ``StratifiedGroupKFold``, stratified by emotion); fold k tests one
  group of speakers and validates on the next group
  (``held_out_speakers``) or on held-out utterances of the training
  speakers (``training_speakers``).
- :func:`official_split`: a corpus's own split column (MSP-Podcast's
  ``Split_Set``).
- :func:`stratified_holdout`: hold out a fraction of utterances,
  stratified by nested keys (emotion, then speaker).

Speakers named ``Unknown`` cannot be kept apart from anyone, so they are
never put in validation or test (see each function).
"""

import collections
import logging

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from speechbrain_grl.dataio.manifests import SPLITS, PrepareError

logger = logging.getLogger(__name__)

__all__ = ["VALID_FROM", "UNKNOWN_SPEAKER", "stratified_holdout",
           "speaker_kfold", "official_split", "check_classes"]

VALID_FROM = ("held_out_speakers", "training_speakers")
#: The speaker id of clips whose speaker the corpus does not know.
UNKNOWN_SPEAKER = "Unknown"


def _allocate(sizes, total):
    """Split ``total`` over groups of ``sizes`` by largest remainder."""
    sizes = np.asarray(sizes, dtype=float)
    exact = sizes * total / max(sizes.sum(), 1)
    counts = np.floor(exact).astype(int)
    order = np.argsort(counts - exact, kind="stable")
    counts[order[:max(total - counts.sum(), 0)]] += 1
    return np.minimum(counts, sizes.astype(int))


def _pick(groups, total, rng):
    """Pick ``total`` ids from nested ``{key part: ... [ids]}`` groups."""
    if isinstance(groups, list):
        return [groups[i] for i in rng.permutation(len(groups))[:total]]
    names = sorted(groups)
    sizes = [len(_flat(groups[n])) for n in names]
    picked = []
    for name, n in zip(names, _allocate(sizes, total)):
        picked += _pick(groups[name], int(n), rng)
    return picked


def _flat(groups):
    """All ids in nested groups."""
    if isinstance(groups, list):
        return groups
    return [u for g in groups.values() for u in _flat(g)]


def stratified_holdout(ids, key, frac, rng):
    """Return ``(held, rest)``: ``frac`` of ``ids`` held out, stratified.

    ``key(utt)`` is a tuple; the quota is spread over its first part
    (e.g. emotion) by largest remainder, then over the next part (e.g.
    speaker) within each, so every first-level stratum gets its share.

    Example
    -------
    >>> import numpy as np
    >>> ids = [f"{e}{i}" for e in "ab" for i in range(10)]
    >>> held, rest = stratified_holdout(ids, lambda u: (u[0],), 0.2,
    ...                                 np.random.default_rng(0))
    >>> sorted(u[0] for u in held), len(rest)
    (['a', 'a', 'b', 'b'], 16)
    """
    tree = {}
    for utt in sorted(ids):
        *parts, last = key(utt)
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
        node.setdefault(last, []).append(utt)
    held = set(_pick(tree, round(len(ids) * frac), rng))
    return ([u for u in sorted(ids) if u in held],
            [u for u in sorted(ids) if u not in held])


def check_classes(out, classes, hint, error=PrepareError):
    """Raise ``error`` if a split lacks one of ``classes``; ``hint`` ends
    the message (what to try instead)."""
    for name, entries in out.items():
        found = {e["emo"] for e in entries.values()}
        for emo in classes:
            if emo not in found:
                raise error(
                    f"split {name!r} has no {emo!r} utterances{hint}")


def speaker_kfold(entries, fold=1, n_folds=5, valid_from=None,
                  valid_ratio=0.2, seed=1234, classes=None):
    """Split entries into speaker-disjoint train, valid and test.

    The speakers are dealt into ``n_folds`` groups by
    ``StratifiedGroupKFold`` (grouped by speaker, stratified by emotion,
    shuffled with ``seed``). Fold ``k`` tests group ``k``.

    Parameters
    ----------
    entries : dict
        ``{utt_id: {"emo", "spk_id", ...}}``. Clips of the speaker
        ``Unknown`` are left out (logged with a count): they could be
        anyone, so no split could keep them apart.
    fold : int
        1 to ``n_folds``.
    n_folds : int
        Number of speaker groups (at least 3 with held-out validation).
    valid_from : str, optional
        ``"held_out_speakers"`` (default): validation is speaker group
        ``k + 1`` (cyclically), which trains nothing.
        ``"training_speakers"``: ``valid_ratio`` of the training
        speakers' utterances, stratified by emotion and speaker.
    valid_ratio : float
        See ``valid_from``.
    seed : int
        The same seed gives the same folds.
    classes : sequence of str, optional
        The classes every split must hold (default: every class found;
        pass the target classes when other clips are kept for
        dimensional work).

    Returns
    -------
    dict
        ``{"train": {...}, "valid": {...}, "test": {...}}``.

    Raises
    ------
    PrepareError
        On a bad option, too few speakers, or a split without a class.

    Example
    -------
    >>> entries = {f"s{s}_{i}": {"emo": "ab"[i % 2], "spk_id": f"s{s}"}
    ...            for s in range(6) for i in range(4)}
    >>> out = speaker_kfold(entries, fold=1, n_folds=3)
    >>> {k: len({e["spk_id"] for e in v.values()}) for k, v in out.items()}
    {'train': 2, 'valid': 2, 'test': 2}
    """
    if valid_from is None:
        valid_from = VALID_FROM[0]
    if valid_from not in VALID_FROM:
        raise PrepareError(f"valid_from={valid_from!r} is unknown; use "
                           f"{' or '.join(VALID_FROM)}")
    if not 0.0 < valid_ratio < 1.0:
        raise PrepareError(f"valid_ratio={valid_ratio}: use a value in (0, 1)")
    held_out = valid_from == "held_out_speakers"
    if int(n_folds) < (3 if held_out else 2):
        raise PrepareError(
            f"n_folds={n_folds}: use 3 or more with held-out validation "
            "speakers (2 or more with valid_from=training_speakers)")
    if not 1 <= int(fold) <= int(n_folds):
        raise PrepareError(f"fold={fold}: use 1 to n_folds={n_folds}")
    unknown = [u for u, e in entries.items()
               if e["spk_id"] == UNKNOWN_SPEAKER]
    if unknown:
        logger.info("speaker_kfold leaves out %d clips of unknown speakers",
                    len(unknown))
    ids = sorted(u for u, e in entries.items()
                 if e["spk_id"] != UNKNOWN_SPEAKER)
    speakers = sorted({entries[u]["spk_id"] for u in ids})
    if len(speakers) < int(n_folds):
        raise PrepareError(
            f"speaker_kfold needs at least n_folds={n_folds} speakers, the "
            f"corpus has {len(speakers)}; pass a smaller --n_folds")
    y = [entries[u]["emo"] for u in ids]
    groups = [entries[u]["spk_id"] for u in ids]
    kfold = StratifiedGroupKFold(n_splits=int(n_folds), shuffle=True,
                                 random_state=int(seed))
    parts = [test for _, test in kfold.split(np.zeros(len(ids)), y, groups)]
    test = [ids[i] for i in parts[int(fold) - 1]]
    if held_out:
        valid = [ids[i] for i in parts[int(fold) % int(n_folds)]]
        train = sorted(set(ids) - set(test) - set(valid))
    else:
        rest = sorted(set(ids) - set(test))
        valid, train = stratified_holdout(
            rest, lambda u: (entries[u]["emo"], entries[u]["spk_id"]),
            valid_ratio, np.random.default_rng(int(seed)))
    out = {name: {u: entries[u] for u in sorted(part)}
           for name, part in zip(SPLITS, (train, valid, test))}
    counts = collections.Counter(entries[u]["spk_id"] for u in valid)
    single = sorted(s for s, n in counts.items() if n < 2)
    if single:
        logger.warning("validation speakers with a single clip: %s (the "
                       "speaker probe needs two or more)", single)
    wanted = sorted(set(y) if classes is None else set(classes) & set(y))
    check_classes(out, wanted, "; try another --seed, fold or --n_folds")
    return out


def official_split(entries, train=("Train",), valid=("Development",),
                   test=("Test1",), field="split_set"):
    """Split entries by a corpus's own split column.

    Clips of unknown speakers are dropped from train and valid (the
    speaker adversary and model selection need true speakers) and kept in
    test, which stays the released test set.

    Example
    -------
    >>> entries = {
    ...     "a": {"emo": "neu", "spk_id": "1", "split_set": "Train"},
    ...     "b": {"emo": "neu", "spk_id": "Unknown", "split_set": "Train"},
    ...     "c": {"emo": "neu", "spk_id": "2", "split_set": "Development"},
    ...     "d": {"emo": "neu", "spk_id": "Unknown", "split_set": "Test1"}}
    >>> {k: sorted(v) for k, v in official_split(entries).items()}
    {'train': ['a'], 'valid': ['c'], 'test': ['d']}
    """
    sets = {"train": set(train), "valid": set(valid), "test": set(test)}
    out = {name: {} for name in SPLITS}
    dropped = 0
    for utt, entry in sorted(entries.items()):
        for name in SPLITS:
            if entry.get(field) in sets[name]:
                if (name != "test"
                        and entry["spk_id"] == UNKNOWN_SPEAKER):
                    dropped += 1
                else:
                    out[name][utt] = entry
    if dropped:
        logger.info("official split: %d clips of unknown speakers left out "
                    "of train and valid", dropped)
    check_classes(out, sorted({e["emo"] for e in entries.values()}),
                  f"; check the {field} column")
    return out
