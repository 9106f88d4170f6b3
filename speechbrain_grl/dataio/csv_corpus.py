"""A user's own corpus, listed in a CSV file.

One row per clip; column names are matched case-insensitively:

* required: ``wav`` (a path, relative to the CSV's folder or absolute),
  ``emotion`` (a name such as ``happy`` or ``Angry``, matched lower-cased
  by :class:`~speechbrain_grl.dataio.labels.LabelMap`; names outside the
  mapping are dropped, counted and logged once each) and ``speaker``;
* optional: ``duration`` (seconds; the audio is then not opened, only
  checked to exist), ``group`` (e.g. a session or recording condition),
  ``gender`` (``f``/``female`` or ``m``/``male``, any case; other values
  are left out), ``valence``, ``arousal`` and ``dominance`` (numbers on
  the scale ``vad_range`` of :func:`scan_csv`, 1 to 5 by default);
* any other column is ignored.

A clip with all three of valence, arousal and dominance gets ``"vad"``,
the three normalised to [0, 1] from ``vad_range`` (see
:mod:`speechbrain_grl.dataio.dimensions`). One with some but not all of
them, or with one outside ``vad_range``, is logged with its line, counted
as ``bad_vad`` and kept without ``"vad"``: the training code decides
what to do with it.

A row that cannot be used (an empty ``wav`` or ``speaker``, a value that
is not a number) is skipped, counted as ``bad_row`` and logged with its
line in the CSV (the header is line 1). The entries' ``wav`` is the
absolute path of the clip, so no ``{data_root}`` is needed.
"""

import collections
import csv
import logging
import math
import os
import pathlib

from speechbrain_grl.dataio.dimensions import (
    DIMENSIONS,
    check_scale,
    normalise_vad,
)
from speechbrain_grl.dataio.labels import EMOTIONS, LabelMap
from speechbrain_grl.dataio.manifests import (
    CLIP_COUNTERS,
    MIN_DURATION,
    PrepareError,
    clip_duration,
    finish_scan,
)

logger = logging.getLogger(__name__)

__all__ = ["REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "scan_csv", "csv_files"]

REQUIRED_COLUMNS = ("wav", "emotion", "speaker")
OPTIONAL_COLUMNS = ("duration", "group", "valence", "arousal", "dominance",
                    "gender")
_GENDERS = {"f": "F", "female": "F", "m": "M", "male": "M"}
_COUNTERS = ("duplicate_id", "bad_row")


def _read_csv(csv_path):
    """Return ``(path, [(line, row)])`` with lower-cased column names;
    raise PrepareError for a missing file, column or row."""
    path = pathlib.Path(csv_path)
    if not path.is_file():
        raise PrepareError(
            f"csv file {path} does not exist; pass --csv_file=/path/to/your"
            ".csv with the columns wav, emotion, speaker")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = [(c or "").strip().lower() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise PrepareError(
                f"{path} has no column {', '.join(map(repr, missing))} (its "
                f"header is {reader.fieldnames or []}); the first line must "
                "name the columns wav, emotion and speaker")
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader
                if any((v or "").strip() for k, v in row.items()
                       if k is not None)]
    if not rows:
        raise PrepareError(
            f"{path} lists no clips; add one row per clip below its header")
    ignored = sorted(set(header) - set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
    if ignored:
        logger.info("%s: ignoring the columns %s", path, ignored)
    return path, rows


def _clip_path(folder, wav):
    """Return ``(absolute path, utterance id)`` of a ``wav`` cell."""
    given = pathlib.Path(os.path.expanduser(wav.replace("\\", "/")))
    path = pathlib.Path(os.path.abspath(folder / given))
    rel = (path.relative_to(folder) if path.is_relative_to(folder)
           else pathlib.PurePosixPath(*path.parts[1:]))
    utt = rel.with_suffix("").as_posix().replace("/", "_")
    return path, utt


def _number(text):
    """Return the float in ``text``, None if empty; raise ValueError if it
    is not a finite number."""
    text = (text or "").strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _parse_row(row):
    """Return the row's ``(wav, speaker, {optional fields})``, or None if
    it cannot be used."""
    wav = (row.get("wav") or "").strip()
    speaker = (row.get("speaker") or "").strip()
    if not wav or not speaker:
        return None
    extra = {}
    try:
        for key in ("duration", "valence", "arousal", "dominance"):
            value = _number(row.get(key))
            if value is not None:
                extra[key] = value
    except ValueError:
        return None
    if extra.get("duration", 1.0) <= 0:
        return None
    group = (row.get("group") or "").strip()
    if group:
        extra["group"] = group
    gender = _GENDERS.get((row.get("gender") or "").strip().lower())
    if gender:
        extra["gender"] = gender
    return wav, speaker, extra


def _given_duration(path, duration, counters, label, min_duration):
    """Check a clip whose duration the CSV gives: it must exist, be
    non-empty and long enough. Return the duration or None (counted)."""
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if not size:  # missing or empty: let clip_duration count it
        return clip_duration(path, size, counters, label, min_duration)
    if duration < min_duration:
        logger.warning("skipping %s: %s is %.4f s, shorter than "
                       "min_duration %g s", label, path, duration,
                       min_duration)
        counters["too_short_wav"] += 1
        return None
    return round(duration, 4)


def _add_vad(entry, scale, counters, label):
    """Add ``vad`` to ``entry`` if it has all three VAD values in
    ``scale``; count and log a clip with only some, or one outside."""
    given = [entry.get(k) for k in DIMENSIONS]
    if all(v is None for v in given):
        return
    vad = normalise_vad(given, scale)
    if vad is None:
        logger.warning("%s: valence, arousal, dominance %s are not three "
                       "numbers in %g..%g (vad_range); kept without vad",
                       label, given, *scale)
        counters["bad_vad"] += 1
    else:
        entry["vad"] = vad


def scan_csv(csv_path, mapping=None, emotions=EMOTIONS,
             min_duration=MIN_DURATION,
             vad_range=(1.0, 5.0)) -> tuple[dict, dict]:
    """Collect the clips a user's CSV lists.

    Parameters
    ----------
    csv_path : str or pathlib.Path
        The CSV file (see the module docstring for its columns).
    mapping : dict, optional
        Emotion name (any case) to class; default the common English
        names (``neutral``, ``happy``, ``angry``, ``sad``, ...).
    emotions : sequence of str
        The classes kept.
    min_duration : float
        Shorter clips (seconds) are dropped and counted.
    vad_range : sequence of two numbers
        The scale ``(lo, hi)`` of the ``valence``, ``arousal`` and
        ``dominance`` columns.

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id"} plus "group",
        "gender", "valence", "arousal", "dominance" where given}``, and
        ``"vad"`` (the three normalised to [0, 1]) where all three are
        given and within ``vad_range``; ``utt_id`` is the clip's path
        relative to the CSV's folder (or its absolute path), without
        extension, ``/`` replaced by ``_``; ``wav`` is the absolute path.
    summary : dict
        :func:`~speechbrain_grl.dataio.manifests.summarise` of the entries
        with the counters ``missing_wav``, ``unreadable_wav``,
        ``empty_wav``, ``too_short_wav``, ``duplicate_id``, ``bad_row`` and
        the label counts of :meth:`LabelMap.counts`, then ``bad_vad``
        (kept clips with only some VAD values or one outside
        ``vad_range``, kept without ``vad``) and, if some kept clip has a
        VAD value, ``vad_scale`` (``vad_range`` as a list).

    Raises
    ------
    PrepareError
        If the CSV is missing, lacks a required column or lists no clip,
        or ``vad_range`` is not two numbers ``lo < hi``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_grl.testing.table_corpora import make_csv_corpus
    >>> path = make_csv_corpus(tempfile.mkdtemp(), n_speakers=2,
    ...                        utts_per_speaker=8)
    >>> entries, summary = scan_csv(path)
    >>> summary["per_class"], summary["unknown_codes"]
    ({'neu': 4, 'hap': 4, 'ang': 2, 'sad': 4}, {'fear': 2})
    >>> entry = entries["clips_spk01_3"]
    >>> entry["emo"], entry["spk_id"], entry["gender"], entry["group"]
    ('ang', 'spk01', 'F', 'studio')
    >>> entry["wav"] == str(path.parent / "clips/spk01/3.wav")
    True
    >>> entry["vad"] == [round((entry[k] - 1) / 4, 6) for k in (
    ...     "valence", "arousal", "dominance")]
    True
    >>> summary["vad_scale"], summary["bad_vad"]
    ([1.0, 5.0], 0)
    """
    scale = check_scale(vad_range)
    path, rows = _read_csv(csv_path)
    folder = pathlib.Path(os.path.abspath(path.parent))
    labels = LabelMap("csv", mapping, emotions)
    counters = collections.Counter(
        {k: 0 for k in CLIP_COUNTERS + _COUNTERS})
    entries, seen, dimensional = {}, set(), False
    for line, row in rows:
        parsed = _parse_row(row)
        if parsed is None:
            logger.warning("%s line %d: cannot use the row %s (wav and "
                           "speaker must be set, duration and VAD numbers);"
                           " skipped", path, line,
                           {k: v for k, v in row.items() if k})
            counters["bad_row"] += 1
            continue
        wav, speaker, extra = parsed
        clip, utt = _clip_path(folder, wav)
        if utt in seen:
            logger.warning("%s line %d: duplicate clip %s; skipped", path,
                           line, utt)
            counters["duplicate_id"] += 1
            continue
        seen.add(utt)
        emo = labels(row.get("emotion") or "")
        if emo is None:
            continue
        label = f"{path.name} line {line} ({utt})"
        if "duration" in extra:
            duration = _given_duration(clip, extra.pop("duration"), counters,
                                       label, min_duration)
        else:
            try:
                size = clip.stat().st_size
            except OSError:
                size = None
            duration = clip_duration(clip, size, counters, label,
                                     min_duration)
        if duration is None:
            continue
        entry = {"wav": str(clip), "duration": duration, "emo": emo,
                 "spk_id": speaker, **extra}
        dimensional |= any(k in entry for k in DIMENSIONS)
        _add_vad(entry, scale, counters, label)
        entries[utt] = entry
    entries, summary = finish_scan(entries, counters,
                                   CLIP_COUNTERS + _COUNTERS, labels,
                                   str(path))
    summary["bad_vad"] = counters["bad_vad"]
    if dimensional:
        summary["vad_scale"] = list(scale)
    return entries, summary


def csv_files(csv_path) -> list[pathlib.Path]:
    """Return the files whose names and sizes fingerprint a CSV corpus: the
    CSV and every clip it lists (missing ones included).

    Parameters
    ----------
    csv_path : str or pathlib.Path
        The CSV file.

    Returns
    -------
    list of pathlib.Path
        The CSV, then the absolute clip paths in row order.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_grl.testing.table_corpora import make_csv_corpus
    >>> path = make_csv_corpus(tempfile.mkdtemp(), n_speakers=2,
    ...                        utts_per_speaker=4)
    >>> files = csv_files(path)
    >>> len(files), files[0] == path, files[1].relative_to(path.parent)
    (9, True, PosixPath('clips/spk01/1.wav'))
    """
    path, rows = _read_csv(csv_path)
    folder = pathlib.Path(os.path.abspath(path.parent))
    files, seen = [path], set()
    for _, row in rows:
        wav = (row.get("wav") or "").strip()
        if wav:
            clip = _clip_path(folder, wav)[0]
            if clip not in seen:
                seen.add(clip)
                files.append(clip)
    return files
