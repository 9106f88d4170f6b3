"""CREMA-D scanning from the release layout.

The release (github.com/CheyneyComputerScience/CREMA-D, media through
git-lfs) holds, among other folders::

    <data_folder>/
        AudioWAV/1001_DFA_ANG_XX.wav     # 7442 clips, 16 kHz mono
        VideoDemographics.csv            # "ActorID","Age","Sex","Race",...

A clip's name is ``<actor>_<sentence>_<emotion>_<level>.wav``: the actor
id (1001 to 1091; the speaker), one of 12 sentence codes (IEO TIE IOM IWW
TAI MTI IWL ITH DFA ITS TSI WSI), the emotion (ANG DIS FEA HAP NEU SAD)
and the intensity (LO MD HI for sentence IEO, XX unspecified; one old
copy names a clip ``1040_ITH_SAD_X.wav``, which is read too). The actor's
sex comes from ``VideoDemographics.csv`` (Male/Female) when that file is
there; the gender is left out otherwise.

``1076_MTI_SAD_XX.wav`` has no sound in the release (CREMA-D issue #8):
it is skipped and counted as ``silent_wav`` when it is silent. Clips that
are git-lfs pointer files (a clone without ``git lfs pull``) are counted
as unreadable, and a folder of pointers only is an error saying so.

In the entries ``{data_root}`` stands for ``data_folder`` exactly as
passed, which may be the folder holding ``AudioWAV`` or its parent.
"""

import collections
import csv
import logging
import pathlib
import re

import numpy as np
import soundfile as sf

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

__all__ = ["scan_crema_d", "crema_d_files"]

AUDIO_DIR = "AudioWAV"
DEMOGRAPHICS = "VideoDemographics.csv"
#: Ends the error when no folder holds the audio folder.
_ROOT_NOTE = f"(and {DEMOGRAPHICS})"
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA",
             "ITS", "TSI", "WSI")
#: Clips the release ships without sound (CREMA-D issue #8).
KNOWN_SILENT = frozenset({"1076_MTI_SAD_XX"})
#: RMS (full scale 1) under which a known-silent clip is skipped.
SILENCE_RMS = 1e-4
COUNTERS = CLIP_COUNTERS + ("silent_wav", "junk_files", "malformed_name",
                            "duplicate_id")
_NAME_RE = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_"
                      r"(?P<emo>[A-Z]{3})_(?P<level>[A-Z]{1,2})$")
_LFS_MAGIC = b"version https://git-lfs"
_SEXES = {"male": "M", "m": "M", "female": "F", "f": "F"}


def _read_demographics(path):
    """Return ``{actor id: "F" | "M"}`` from ``VideoDemographics.csv``.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file; ``ActorID`` and ``Sex`` columns are read.

    Returns
    -------
    dict
        Actors whose sex is Male or Female; empty (with a warning) if the
        file cannot be read.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fin:
            rows = list(csv.DictReader(fin))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        logger.warning("cannot read %s (%s); genders are left out", path,
                       err)
        return {}
    if rows and not {"ActorID", "Sex"} <= set(rows[0]):
        logger.warning("%s has no ActorID and Sex columns; genders are left "
                       "out", path)
        return {}
    out = {}
    for row in rows:
        sex = _SEXES.get(str(row.get("Sex") or "").strip().lower())
        actor = str(row.get("ActorID") or "").strip()
        if sex and actor:
            out[actor] = sex
    return out


def _is_lfs_pointer(path, size):
    """Tell whether a small file is a git-lfs pointer, not audio.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    size : int or None
        Its size; only files under 1 kB are opened.

    Returns
    -------
    bool
        True for a git-lfs pointer.
    """
    if size is None or size >= 1024:
        return False
    try:
        with open(path, "rb") as fin:
            return fin.read(len(_LFS_MAGIC)) == _LFS_MAGIC
    except OSError:
        return False


def _is_silent(path):
    """Tell whether a clip's RMS is below :data:`SILENCE_RMS`.

    Parameters
    ----------
    path : pathlib.Path
        A readable audio file.

    Returns
    -------
    bool
        True if the clip carries no sound, or its samples cannot be read.
    """
    try:
        signal, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as err:  # LibsndfileError: RuntimeError
        logger.warning("cannot read the samples of %s (%s)", path, err)
        return True
    return float(np.sqrt(np.mean(np.square(signal)))) < SILENCE_RMS


def scan_crema_d(data_folder, mapping=None, emotions=EMOTIONS,
                 min_duration=MIN_DURATION,
                 demographics=None) -> tuple[dict, dict]:
    """Collect the labelled clips of a CREMA-D release.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The folder that holds ``AudioWAV`` (the repository clone), or the
        folder that contains it.
    mapping : dict, optional
        Emotion code to class (see :class:`LabelMap`); default NEU HAP ANG
        SAD to ``neu hap ang sad``, DIS and FEA dropped.
    emotions : sequence of str
        The classes kept.
    min_duration : float
        Shorter clips (seconds) are skipped and counted.
    demographics : str or pathlib.Path, optional
        ``VideoDemographics.csv`` to read the actors' sex from; default
        the one next to ``AudioWAV`` (genders are left out without it).

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id", "gender", "text"}}``
        with the file stem as ``utt_id``, the actor id as ``spk_id``, the
        sentence code as ``text`` and ``wav`` starting with
        ``{data_root}``.
    summary : dict
        The clip counters, ``silent_wav``, ``junk_files``,
        ``malformed_name``, ``duplicate_id``, the label counts, ``kept``,
        ``per_class`` and ``per_speaker``.

    Raises
    ------
    PrepareError
        If the folder does not exist, holds no CREMA-D clips, or only
        git-lfs pointers.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_crema_d_corpus
    >>> root = make_crema_d_corpus(getfixture("tmp_path"), n_speakers=2)
    >>> entries, summary = scan_crema_d(root)
    >>> summary["per_class"], summary["dropped_codes"]
    ({'neu': 4, 'hap': 4, 'ang': 4, 'sad': 4}, {'DIS': 4, 'FEA': 4})
    >>> summary["empty_wav"], summary["silent_wav"], summary["junk_files"]
    (1, 1, 2)
    >>> sorted({(e["spk_id"], e["gender"]) for e in entries.values()})
    [('1001', 'M'), ('1002', 'F')]
    """
    labels = LabelMap("crema_d", mapping, emotions)
    base = pathlib.Path(data_folder)
    root = find_corpus_root(base, AUDIO_DIR, "CREMA-D", _ROOT_NOTE)
    prefix = "{data_root}" + ("" if root == base else f"/{root.name}")
    csv_path = (root / DEMOGRAPHICS if demographics is None
                else pathlib.Path(demographics))
    if csv_path.is_file():
        sexes = _read_demographics(csv_path)
    else:
        if demographics is not None:
            raise PrepareError(
                f"demographics={csv_path} does not exist; pass the path of "
                f"{DEMOGRAPHICS} or leave it out")
        logger.info("no %s in %s; genders are left out", DEMOGRAPHICS, root)
        sexes = {}
    counts = collections.Counter({k: 0 for k in COUNTERS})
    audio_dir = root / AUDIO_DIR
    entries = {}
    parsed = checked = pointers = 0
    for utt, name, size, match in named_clips(
            audio_dir, counts, _NAME_RE,
            "<actor>_<sentence>_<emotion>_<level>.wav"):
        parsed += 1
        emo = labels(match["emo"])
        if emo is None:
            continue
        path = audio_dir / name
        checked += 1
        if _is_lfs_pointer(path, size):
            logger.warning("skipping %s: %s is a git-lfs pointer, not audio",
                           utt, path)
            pointers += 1
            counts["unreadable_wav"] += 1
            continue
        duration = clip_duration(path, size, counts, utt, min_duration)
        if duration is None:
            continue
        if utt in KNOWN_SILENT and _is_silent(path):
            logger.warning("skipping %s: %s has no sound (CREMA-D issue "
                           "#8)", utt, path)
            counts["silent_wav"] += 1
            continue
        entry = {"wav": f"{prefix}/{AUDIO_DIR}/{name}", "duration": duration,
                 "emo": emo, "spk_id": match["actor"]}
        if match["actor"] in sexes:
            entry["gender"] = sexes[match["actor"]]
        entry["text"] = match["sentence"]
        entries[utt] = entry
    if not parsed and not counts["duplicate_id"]:
        raise PrepareError(
            f"{audio_dir} holds no CREMA-D clips named like "
            "1001_DFA_ANG_XX.wav; point --data_folder at the CREMA-D folder "
            f"that holds {AUDIO_DIR}")
    if pointers and pointers == checked:
        raise PrepareError(
            f"the clips in {audio_dir} are git-lfs pointers, not audio; run "
            "'git lfs pull' in the CREMA-D clone, then prepare again")
    return finish_scan(entries, counts, COUNTERS, labels, "CREMA-D")


def crema_d_files(data_folder) -> list[pathlib.Path]:
    """The files whose names and sizes fingerprint a CREMA-D copy.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        As for :func:`scan_crema_d`.

    Returns
    -------
    list of pathlib.Path
        The ``AudioWAV`` clips (junk left out) and ``VideoDemographics.csv``
        if present, sorted.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_crema_d_corpus
    >>> root = make_crema_d_corpus(getfixture("tmp_path"), n_speakers=1)
    >>> [p.name for p in crema_d_files(root)][-2:]
    ['1076_MTI_SAD_XX.wav', 'VideoDemographics.csv']
    """
    root = find_corpus_root(data_folder, AUDIO_DIR, "CREMA-D", _ROOT_NOTE)
    files = [root / AUDIO_DIR / name for name, _ in
             audio_listing(root / AUDIO_DIR, collections.Counter())]
    if (root / DEMOGRAPHICS).is_file():
        files.append(root / DEMOGRAPHICS)
    return sorted(files)
