"""EmoDB (Berlin Database of Emotional Speech) scanning from the release
layout.

``download.zip`` (emodb.bilderbar.info) unpacks to::

    <data_folder>/
        wav/03a01Fa.wav      # 535 clips, 16 kHz mono
        erkennung.txt  erklaerung.txt  lablaut/  labsilb/  silb/

Everything but ``wav`` is ignored. A clip's name is the speaker (2
digits: 03 m, 08 f, 09 f, 10 m, 11 m, 12 m, 13 f, 14 f, 15 m, 16 f), the
text code (a01 a02 a04 a05 a07 b01 b02 b03 b09 b10), the emotion letter
(W anger, L boredom, E disgust, A fear, F happiness, T sadness, N
neutral) and a version letter (a, b, c, ...): the same speaker, text and
emotion can come in several versions, each its own clip. A speaker code
outside the ten above is read without a gender.

In the entries ``{data_root}`` stands for ``data_folder`` exactly as
passed, which may be the folder holding ``wav`` or its parent.
"""

import collections
import logging
import pathlib
import re

from speechbrain_grl.dataio.labels import EMOTIONS, LabelMap
from speechbrain_grl.dataio.manifests import (
    CLIP_COUNTERS,
    MIN_DURATION,
    PrepareError,
    audio_listing,
    clip_duration,
    find_corpus_root,
    finish_scan,
    named_clips,
)

logger = logging.getLogger(__name__)

__all__ = ["scan_emodb", "emodb_files"]

AUDIO_DIR = "wav"
#: Ends the error when no folder holds the audio folder.
_ROOT_NOTE = "(unpacked from download.zip)"
#: The speakers' genders (EmoDB documentation).
GENDERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M",
           "12": "M", "13": "F", "14": "F", "15": "M", "16": "F"}
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09",
         "b10")
COUNTERS = CLIP_COUNTERS + ("junk_files", "malformed_name", "duplicate_id")
_NAME_RE = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})"
                      r"(?P<emo>[A-Z])(?P<version>[a-z])$")


def scan_emodb(data_folder, mapping=None, emotions=EMOTIONS,
               min_duration=MIN_DURATION) -> tuple[dict, dict]:
    """Collect the labelled clips of an EmoDB copy.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The folder that holds ``wav`` (as ``download.zip`` unpacks), or
        the folder that contains it.
    mapping : dict, optional
        Emotion letter to class (see :class:`LabelMap`); default N F W T
        to ``neu hap ang sad``; L (boredom), E (disgust) and A (fear)
        dropped.
    emotions : sequence of str
        The classes kept.
    min_duration : float
        Shorter clips (seconds) are skipped and counted.

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id", "gender", "text"}}``
        with the file stem as ``utt_id``, the 2-digit speaker as
        ``spk_id``, the text code as ``text`` and ``wav`` starting with
        ``{data_root}``.
    summary : dict
        The clip counters, ``junk_files``, ``malformed_name``,
        ``duplicate_id``, the label counts, ``kept``, ``per_class`` and
        ``per_speaker``.

    Raises
    ------
    PrepareError
        If the folder does not exist or holds no EmoDB clips.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_emodb_corpus
    >>> root = make_emodb_corpus(getfixture("tmp_path"), n_speakers=2)
    >>> entries, summary = scan_emodb(root)
    >>> summary["per_class"], summary["dropped_codes"]
    ({'neu': 4, 'hap': 4, 'ang': 4, 'sad': 4}, {'A': 4, 'E': 4, 'L': 4})
    >>> sorted({(e["spk_id"], e["gender"]) for e in entries.values()})
    [('03', 'M'), ('08', 'F')]
    """
    labels = LabelMap("emodb", mapping, emotions)
    base = pathlib.Path(data_folder)
    root = find_corpus_root(base, AUDIO_DIR, "EmoDB", _ROOT_NOTE)
    prefix = "{data_root}" + ("" if root == base else f"/{root.name}")
    audio_dir = root / AUDIO_DIR
    counts = collections.Counter({k: 0 for k in COUNTERS})
    entries, parsed = {}, 0
    for utt, name, size, match in named_clips(
            audio_dir, counts, _NAME_RE,
            "<speaker><text><emotion><version>.wav"):
        parsed += 1
        emo = labels(match["emo"])
        if emo is None:
            continue
        duration = clip_duration(audio_dir / name, size, counts, utt,
                                 min_duration)
        if duration is None:
            continue
        entry = {"wav": f"{prefix}/{AUDIO_DIR}/{name}", "duration": duration,
                 "emo": emo, "spk_id": match["speaker"]}
        if match["speaker"] in GENDERS:
            entry["gender"] = GENDERS[match["speaker"]]
        entry["text"] = match["text"]
        entries[utt] = entry
    if not parsed and not counts["duplicate_id"]:
        raise PrepareError(
            f"{audio_dir} holds no EmoDB clips named like 03a01Fa.wav; "
            f"point --data_folder at the EmoDB folder that holds {AUDIO_DIR}")
    return finish_scan(entries, counts, COUNTERS, labels, "EmoDB")


def emodb_files(data_folder) -> list[pathlib.Path]:
    """The files whose names and sizes fingerprint an EmoDB copy.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        As for :func:`scan_emodb`.

    Returns
    -------
    list of pathlib.Path
        The clips in ``wav`` (junk left out), sorted; the labels are in
        the names.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_emodb_corpus
    >>> root = make_emodb_corpus(getfixture("tmp_path"), n_speakers=1)
    >>> files = emodb_files(root)
    >>> len(files), files[0].relative_to(root).as_posix()
    (14, 'wav/03a01Ad.wav')
    """
    root = find_corpus_root(data_folder, AUDIO_DIR, "EmoDB", _ROOT_NOTE)
    return sorted(root / AUDIO_DIR / name for name, _ in
                  audio_listing(root / AUDIO_DIR, collections.Counter()))
