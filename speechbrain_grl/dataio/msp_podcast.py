"""MSP-Podcast scanning from the release layout.

A release (``MSP-PODCAST-Publish-1.11``, ``-1.12``, ...) holds::

    Audios/MSP-PODCAST_0001_0008.wav    one flat folder of 16 kHz wavs
    Labels/labels_consensus.csv         one row per labelled clip
    Labels/labels_detailed.csv, ...     (not read here)

``labels_consensus.csv`` has the columns ``FileName, EmoClass, EmoAct,
EmoVal, EmoDom, SpkrID, Gender, Split_Set`` in that order, e.g.
``MSP-PODCAST_0001_0008.wav,N,2.2,4.0,2.6,30,Male,Test1``:

* ``EmoClass``: the consensus primary emotion, A angry, S sad, H happy,
  U surprise, F fear, D disgust, C contempt, N neutral, O other,
  X no agreement (mapped by :class:`~speechbrain_grl.dataio.labels.LabelMap`,
  by default N/H/A/S to ``neu``/``hap``/``ang``/``sad``).
* ``EmoAct``, ``EmoVal``, ``EmoDom``: arousal, valence and dominance,
  means of the raters' 1 to 7 scores (kept as written and, normalised
  to [0, 1], as ``"vad"``; see :mod:`speechbrain_grl.dataio.dimensions`).
* ``SpkrID``: a number, or ``Unknown`` for clips (all in Train) whose
  speaker is not annotated; ``Gender``: ``Male``, ``Female`` or
  ``Unknown``.
* ``Split_Set``: the suggested, speaker-independent partition:
  ``Train``, ``Development``, ``Test1``, ``Test2`` (releases up to 1.8
  wrote ``Validation``; the file was then spelled
  ``labels_concensus.csv``, which is read too). Test3 clips
  (``MSP-PODCAST_test3_NNNN.wav``) come without labels and are counted
  as ``unlabelled_wav``.

The scan keeps the split as written (``split_set``) and leaves what to do
with it, and with clips of unknown speakers, to the split code. In the
entries ``{data_root}`` stands for the release folder as passed.
"""

import collections
import csv
import logging
import math
import pathlib

from speechbrain_grl.dataio.dimensions import VAD_SCALES, normalise_vad
from speechbrain_grl.dataio.labels import EMOTIONS, LabelMap
from speechbrain_grl.dataio.manifests import (
    CLIP_COUNTERS,
    MIN_DURATION,
    PrepareError,
    audio_listing,
    clip_duration,
    finish_scan,
)
from speechbrain_grl.dataio.splits import UNKNOWN_SPEAKER

logger = logging.getLogger(__name__)

__all__ = ["LABELS_CSV", "COLUMNS", "UNKNOWN_SPEAKER", "scan_msp_podcast",
           "msp_podcast_files"]

#: The label table, relative to the release folder.
LABELS_CSV = "Labels/labels_consensus.csv"
#: The spelling of releases up to 1.8.
_OLD_LABELS_CSV = "Labels/labels_concensus.csv"
#: The columns of the label table, in release order (all required).
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "EmoDom", "SpkrID",
           "Gender", "Split_Set")
#: ``SpkrID`` (and ``Gender``) of clips whose speaker is not annotated.
_GENDERS = {"female": "F", "male": "M"}
#: Skip counters of the summary besides :data:`CLIP_COUNTERS`.
_COUNTERS = ("junk_files", "unlabelled_wav", "duplicate_id", "bad_row",
             "unknown_speaker")


def _labels_path(data_folder):
    """Return the label table of the release ``data_folder``, or raise."""
    folder = pathlib.Path(data_folder)
    if not folder.is_dir():
        raise PrepareError(
            f"data_folder {folder} does not exist; pass --data_folder=/path/"
            "to/MSP-PODCAST-Publish-1.xx (the folder with Audios/ and "
            "Labels/)")
    for rel in (LABELS_CSV, _OLD_LABELS_CSV):
        if (folder / rel).is_file():
            return folder / rel
    raise PrepareError(
        f"{folder / LABELS_CSV} does not exist; point --data_folder at the "
        "MSP-Podcast release folder (the one holding Audios/ and Labels/) "
        "and extract Labels there")


def _read_table(path):
    """Return ``[(line, row)]`` of the label table; check its columns."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise PrepareError(
                f"{path} lacks the column(s) {missing} (it has {header}); "
                f"use the release's labels_consensus.csv, whose columns are "
                f"{list(COLUMNS)}")
        reader.fieldnames = header
        return [(reader.line_num, row) for row in reader]


def _parse_row(row):
    """Return ``(file name, VAD floats)`` of a row, or None if it does not
    parse (empty file name, a value that is not a finite number). An
    empty VAD cell is left out of the floats (the clip is kept)."""
    name = (row.get("FileName") or "").strip()
    if not name or "/" in name or "\\" in name:
        return None
    vad = {}
    for key, column in (("valence", "EmoVal"), ("arousal", "EmoAct"),
                        ("dominance", "EmoDom")):
        text = (row.get(column) or "").strip()
        if not text:
            continue
        try:
            vad[key] = float(text)
        except ValueError:
            return None
        if not math.isfinite(vad[key]):
            return None
    return name, vad


def scan_msp_podcast(data_folder, mapping=None, emotions=EMOTIONS,
                     min_duration=MIN_DURATION) -> tuple[dict, dict]:
    """Collect the labelled clips of an MSP-Podcast release.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The release folder, the one holding ``Audios/`` and ``Labels/``.
    mapping : dict, optional
        ``EmoClass`` code to class; default N/H/A/S to neu/hap/ang/sad
        (see :class:`~speechbrain_grl.dataio.labels.LabelMap`).
    emotions : sequence of str
        The classes kept.
    min_duration : float
        Shorter clips (seconds) are dropped and counted.

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id", "gender",
        "valence", "arousal", "dominance", "split_set"}}``: ``utt_id`` is
        the file name without ``.wav``, ``wav`` is
        ``{data_root}/Audios/<FileName>``, ``spk_id`` and ``split_set`` are
        ``SpkrID`` and ``Split_Set`` as written (``spk_id`` ``"Unknown"``
        for clips of unknown speakers, which are kept), ``gender`` is
        ``"F"`` or ``"M"`` (left out if unknown), the VAD values are
        ``EmoVal``, ``EmoAct`` and ``EmoDom`` as floats (an empty cell is
        left out) and ``vad`` is ``[valence, arousal, dominance]``
        normalised from 1..7 to [0, 1]. A clip with a VAD value outside
        1..7, or with an empty one, is logged with its line, counted as
        ``bad_vad`` and kept without ``vad``: the training code decides
        what to do with it.
    summary : dict
        :func:`~speechbrain_grl.dataio.manifests.summarise` of the entries
        with the counters ``missing_wav``, ``unreadable_wav``,
        ``empty_wav``, ``too_short_wav``, ``junk_files`` (hidden files in
        ``Audios/``), ``unlabelled_wav`` (wavs in ``Audios/`` without a
        row, e.g. Test3), ``duplicate_id``, ``bad_row`` (rows that do not
        parse, logged with their line), ``unknown_speaker`` (kept clips
        whose ``SpkrID`` is ``Unknown``) and the label counts of
        :meth:`LabelMap.counts`, then ``bad_vad`` and ``vad_scale``
        (``[1.0, 7.0]``).

    Raises
    ------
    PrepareError
        If the folder, its label table, one of its columns or ``Audios/``
        is missing.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_grl.testing.table_corpora import (
    ...     make_msp_podcast_corpus)
    >>> root = make_msp_podcast_corpus(tempfile.mkdtemp(), n_speakers=4,
    ...                                utts_per_speaker=5)
    >>> entries, summary = scan_msp_podcast(root)
    >>> summary["per_class"]
    {'neu': 5, 'hap': 5, 'ang': 5, 'sad': 5}
    >>> summary["unknown_speaker"], summary["dropped_codes"]
    (4, {'U': 4})
    >>> entry = entries["MSP-PODCAST_0001_0001"]
    >>> entry["wav"], entry["emo"], entry["split_set"]
    ('{data_root}/Audios/MSP-PODCAST_0001_0001.wav', 'neu', 'Train')
    >>> entry["vad"] == [round((entry[k] - 1) / 6, 6) for k in (
    ...     "valence", "arousal", "dominance")]
    True
    >>> summary["vad_scale"], summary["bad_vad"]
    ([1.0, 7.0], 0)
    """
    labels_csv = _labels_path(data_folder)
    root = labels_csv.parents[1]
    rows = _read_table(labels_csv)
    labels = LabelMap("msp_podcast", mapping, emotions)
    counters = collections.Counter(
        {k: 0 for k in CLIP_COUNTERS + _COUNTERS})
    listing = {name: size for name, size in audio_listing(
        root / "Audios", counters, suffixes=None,
        hint="extract the release's Audios next to Labels/")
        if size is not None}
    entries, seen, utts = {}, set(), set()
    scale, bad_vad = VAD_SCALES["msp_podcast"], 0
    for line, row in rows:
        parsed = _parse_row(row)
        if parsed is None:
            logger.warning("%s line %d: cannot parse the row %s; skipped",
                           labels_csv, line,
                           [row.get(c) for c in COLUMNS])
            counters["bad_row"] += 1
            continue
        name, vad = parsed
        utt = name[:-4] if name.lower().endswith(".wav") else name
        if name in seen or utt in utts:
            logger.warning("%s line %d: duplicate file %s; skipped",
                           labels_csv, line, name)
            counters["duplicate_id"] += 1
            continue
        seen.add(name)
        utts.add(utt)
        emo = labels(row["EmoClass"] or "")
        if emo is None:
            continue
        duration = clip_duration(root / "Audios" / name, listing.get(name),
                                 counters, utt, min_duration)
        if duration is None:
            continue
        spk = (row["SpkrID"] or "").strip() or UNKNOWN_SPEAKER
        entry = {"wav": f"{{data_root}}/Audios/{name}",
                 "duration": duration, "emo": emo, "spk_id": spk}
        gender = _GENDERS.get((row["Gender"] or "").strip().lower())
        if gender:
            entry["gender"] = gender
        entry.update(vad)
        normalised = normalise_vad(
            [vad.get(k) for k in ("valence", "arousal", "dominance")], scale)
        if normalised is None:
            logger.warning("%s line %d: %s has no usable EmoVal, EmoAct, "
                           "EmoDom %s (numbers in %g..%g); kept without "
                           "vad", labels_csv, line, name,
                           [row.get(c) for c in ("EmoVal", "EmoAct",
                                                 "EmoDom")], *scale)
            bad_vad += 1
        else:
            entry["vad"] = normalised
        entry["split_set"] = (row["Split_Set"] or "").strip()
        counters["unknown_speaker"] += spk == UNKNOWN_SPEAKER
        entries[utt] = entry
    counters["unlabelled_wav"] = sum(
        n.lower().endswith(".wav") and n not in seen for n in listing)
    entries, summary = finish_scan(entries, counters,
                                   CLIP_COUNTERS + _COUNTERS, labels,
                                   f"MSP-Podcast {root}")
    summary["bad_vad"] = bad_vad
    summary["vad_scale"] = list(scale)
    return entries, summary


def msp_podcast_files(data_folder) -> list[pathlib.Path]:
    """Return the files whose names and sizes fingerprint a release: its
    label table and the audio of every row (missing ones included, so
    that manifests are rewritten once they appear).

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The release folder, the one holding ``Audios/`` and ``Labels/``.

    Returns
    -------
    list of pathlib.Path
        The label table, then the audio files in row order.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_grl.testing.table_corpora import (
    ...     make_msp_podcast_corpus)
    >>> root = make_msp_podcast_corpus(tempfile.mkdtemp(), n_speakers=4,
    ...                                utts_per_speaker=4)
    >>> files = msp_podcast_files(root)
    >>> files[0].name, files[1].name, len(files)
    ('labels_consensus.csv', 'MSP-PODCAST_0001_0001.wav', 21)
    """
    labels_csv = _labels_path(data_folder)
    audio = labels_csv.parents[1] / "Audios"
    files, seen = [labels_csv], set()
    for _, row in _read_table(labels_csv):
        name = (row.get("FileName") or "").strip()
        if name and "/" not in name and name not in seen:
            seen.add(name)
            files.append(audio / name)
    return files
