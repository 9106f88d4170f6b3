"""Emotion label mappings: each corpus's own codes to the common classes.

Every corpus maps its native emotion codes to the common 4-class set
(``neu``, ``hap``, ``ang``, ``sad``) by default. Codes the corpus defines
but the mapping leaves out (RAVDESS calm, CREMA-D disgust, ...) are
dropped and counted per code; codes the corpus does not define at all are
counted as unknown and logged once each. A mapping can be overridden, for
example to keep more classes: ``LabelMap("crema_d", {"DIS": "dis"},
emotions=EMOTIONS + ("dis",))``.
"""

import collections
import logging

from speechbrain_grl.utils.errors import GRLError

logger = logging.getLogger(__name__)

__all__ = ["cell_counts", "EMOTIONS", "NATIVE_CODES", "DEFAULT_MAPPINGS",
           "LabelMap", "LabelError"]

#: The common classes, in label-encoder order.
EMOTIONS = ("neu", "hap", "ang", "sad")

#: Every emotion code each corpus defines (as written in its files).
NATIVE_CODES = {
    "iemocap": ("neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea",
                "dis", "oth", "xxx"),
    # AudioWAV/<actor>_<sentence>_<EMO>_<intensity>.wav
    "crema_d": ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"),
    # Field 3 of the RAVDESS file name.
    "ravdess": ("01", "02", "03", "04", "05", "06", "07", "08"),
    # Letter 6 of the EmoDB file name (German initials).
    "emodb": ("W", "L", "E", "A", "F", "T", "N"),
    # EmoClass of Labels/labels_consensus.csv.
    "msp_podcast": ("A", "S", "H", "U", "F", "D", "C", "N", "O", "X"),
    # A user's own CSV: any name; common English names are mapped.
    "csv": None,
}

#: Default native-code to class mappings; codes left out are dropped.
DEFAULT_MAPPINGS = {
    "iemocap": {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang",
                "sad": "sad"},
    "crema_d": {"NEU": "neu", "HAP": "hap", "ANG": "ang", "SAD": "sad"},
    # 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
    # 07 disgust, 08 surprised
    "ravdess": {"01": "neu", "03": "hap", "04": "sad", "05": "ang"},
    # W anger (Wut), L boredom (Langeweile), E disgust (Ekel), A fear
    # (Angst), F happiness (Freude), T sadness (Trauer), N neutral
    "emodb": {"N": "neu", "F": "hap", "W": "ang", "T": "sad"},
    # A angry, S sad, H happy, U surprise, F fear, D disgust, C contempt,
    # N neutral, O other, X no agreement
    "msp_podcast": {"N": "neu", "H": "hap", "A": "ang", "S": "sad"},
    # Case-insensitive names (the CSV's emotion column is lower-cased).
    "csv": {"neu": "neu", "neutral": "neu", "hap": "hap", "happy": "hap",
            "happiness": "hap", "joy": "hap", "exc": "hap",
            "excited": "hap", "ang": "ang", "angry": "ang", "anger": "ang",
            "sad": "sad", "sadness": "sad"},
}


class LabelError(GRLError, ValueError):
    """A mapping that cannot work, with what to do."""


class LabelMap:
    """Map one corpus's emotion codes to classes, counting what is dropped.

    Parameters
    ----------
    corpus : str
        A key of :data:`DEFAULT_MAPPINGS`.
    mapping : dict, optional
        Native code to class; replaces the default mapping when given
        (codes are matched as written, lower-cased for ``csv``).
    emotions : sequence of str
        The classes kept; a mapped class outside them is dropped.

    Example
    -------
    >>> labels = LabelMap("ravdess")
    >>> labels("05"), labels("02"), labels("99")
    ('ang', None, None)
    >>> labels.counts()  # doctest: +NORMALIZE_WHITESPACE
    {'dropped_label': 1, 'unknown_label': 1, 'dropped_codes': {'02': 1},
     'unknown_codes': {'99': 1}}
    >>> LabelMap("crema_d", {"DIS": "dis"}, ("dis",))("DIS")
    'dis'
    """

    def __init__(self, corpus, mapping=None, emotions=EMOTIONS):
        if corpus not in DEFAULT_MAPPINGS:
            raise LabelError(
                f"corpus={corpus!r} has no label mapping; use one of "
                f"{sorted(DEFAULT_MAPPINGS)}")
        self.corpus = corpus
        self.native = NATIVE_CODES[corpus]
        self.mapping = dict(DEFAULT_MAPPINGS[corpus] if mapping is None
                            else mapping)
        if corpus == "csv":
            self.mapping = {str(k).strip().lower(): v
                            for k, v in self.mapping.items()}
        self.emotions = tuple(emotions)
        if self.native is not None:
            bad = sorted(set(self.mapping) - set(self.native))
            if bad:
                raise LabelError(
                    f"the {corpus} mapping names codes {bad} the corpus "
                    f"does not define; use codes from {list(self.native)}")
        unreachable = [e for e in self.emotions
                       if e not in set(self.mapping.values())]
        if unreachable:
            raise LabelError(
                f"emotions {unreachable} get no {corpus} code from the "
                f"mapping {self.mapping}; extend the mapping or drop them")
        self.dropped = collections.Counter()
        self.unknown = collections.Counter()

    def __call__(self, code):
        """Return the class of ``code``, or None (counted) to drop it."""
        key = str(code).strip()
        if self.corpus == "csv":
            key = key.lower()
        known = self.native is None or key in self.native
        emo = self.mapping.get(key)
        if emo is not None and emo in self.emotions:
            return emo
        if known and (self.native is not None or emo is not None):
            self.dropped[key] += 1
        elif self.corpus == "csv" and key and emo is None:
            # A user's own name outside the mapping: dropped, named once.
            if key not in self.unknown:
                logger.warning("emotion %r is not in the csv mapping; its "
                               "clips are dropped (pass a mapping to keep "
                               "them)", key)
            self.unknown[key] += 1
        else:
            if key not in self.unknown:
                logger.warning("unknown %s emotion code %r; its clips are "
                               "skipped", self.corpus, key)
            self.unknown[key] += 1
        return None

    def counts(self):
        """``{"dropped_label": n, "unknown_label": n, "dropped_codes": {..},
        "unknown_codes": {..}}`` for a preparation summary."""
        return {"dropped_label": sum(self.dropped.values()),
                "unknown_label": sum(self.unknown.values()),
                "dropped_codes": dict(sorted(self.dropped.items())),
                "unknown_codes": dict(sorted(self.unknown.items()))}


def cell_counts(entries, spk_encoder, label_encoder, n_speakers):
    """Utterances per (speaker, emotion) cell, ``[n_speakers, classes]``,
    of manifest ``entries`` (dicts with ``spk_id`` and ``emo``), indexed
    by the two label encoders."""
    import torch

    counts = torch.zeros(n_speakers, len(label_encoder))
    for entry in entries:
        counts[spk_encoder.lab2ind[entry["spk_id"]],
               label_encoder.lab2ind[entry["emo"]]] += 1
    return counts
