"""RAVDESS scanning from the release layout.

The audio-only archives (zenodo.org/record/1188976) unpack to one folder
per actor::

    Audio_Speech_Actors_01-24.zip -> Actor_01/03-01-05-01-02-01-01.wav
    Audio_Song_Actors_01-24.zip   -> Actor_01/03-02-05-01-02-01-01.wav
                                     (no song for actor 18)

A clip's name has seven two-digit fields: modality (01 full-AV, 02
video-only, 03 audio-only), vocal channel (01 speech, 02 song), emotion
(01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07
disgust, 08 surprised), intensity (01 normal, 02 strong; neutral has no
strong), statement (01 "Kids are talking by the door", 02 "Dogs are
sitting by the door"), repetition (01, 02) and actor (01 to 24; odd
actors are male, even actors female).

``data_folder`` is the folder that holds the ``Actor_NN`` folders (both
archives may be unpacked into it), or a folder whose subfolders hold
them (e.g. ``Audio_Speech_Actors_01-24`` and ``Audio_Song_Actors_01-24``
side by side: all are read). Only audio-only clips are read; others
(e.g. the ``.mp4`` of the video archives unpacked into the same folders)
are counted as ``non_audio_only``, and song clips are counted as
``song_skipped`` unless ``include_song``. The speaker is the file name's
actor, ``Actor_NN``; a file in another actor's folder is counted as
``actor_mismatch`` (and kept). In the entries ``{data_root}`` stands for
``data_folder`` exactly as passed.
"""

import collections
import logging
import os
import pathlib
import re

from speechbrain_grl.dataio.labels import EMOTIONS, LabelMap
from speechbrain_grl.dataio.manifests import (
    CLIP_COUNTERS,
    MIN_DURATION,
    PrepareError,
    audio_listing,
    clip_duration,
    finish_scan,
)

logger = logging.getLogger(__name__)

__all__ = ["scan_ravdess", "ravdess_files"]

COUNTERS = CLIP_COUNTERS + ("junk_files", "malformed_name", "duplicate_id",
                            "song_skipped", "non_audio_only",
                            "actor_mismatch")
_ACTOR_DIR_RE = re.compile(r"^Actor_(\d{2})$")
_NAME_RE = re.compile(
    r"^(?P<modality>0[123])-(?P<channel>0[12])-(?P<emo>\d{2})-"
    r"(?P<intensity>\d{2})-(?P<statement>\d{2})-(?P<rep>\d{2})-"
    r"(?P<actor>\d{2})$")


def _actor_dirs(folder):
    """List the ``Actor_NN`` folders directly under ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        A folder.

    Returns
    -------
    list of pathlib.Path
        Sorted by name; empty if there are none.
    """
    try:
        return sorted(p for p in folder.iterdir()
                      if p.is_dir() and _ACTOR_DIR_RE.match(p.name))
    except OSError:
        return []


def _find_roots(data_folder):
    """Return the folders that hold ``Actor_NN`` folders.

    Parameters
    ----------
    data_folder : pathlib.Path
        The folder as passed.

    Returns
    -------
    list of pathlib.Path
        ``[data_folder]`` if it holds ``Actor_NN`` folders, else its
        subfolders that do.

    Raises
    ------
    PrepareError
        If the folder does not exist or none is found.
    """
    folder = pathlib.Path(data_folder)
    if not folder.is_dir():
        raise PrepareError(
            f"data_folder {folder} does not exist; point --data_folder at "
            "the folder that holds the RAVDESS Actor_01..Actor_24 folders")
    if _actor_dirs(folder):
        return [folder]
    found = sorted(p for p in folder.iterdir()
                   if p.is_dir() and _actor_dirs(p))
    if found:
        return found
    where = (f"{folder.parent}, " if _ACTOR_DIR_RE.match(folder.name)
             else "")
    raise PrepareError(
        f"data_folder {folder} holds no RAVDESS Actor_NN folders; point "
        f"--data_folder at {where}the folder that holds Actor_01..Actor_24 "
        "(unpacked from Audio_Speech_Actors_01-24.zip)")


def _other_file(name):
    """Name the counter of a file that is not a ``.wav``.

    Parameters
    ----------
    name : str
        The file name.

    Returns
    -------
    str
        ``non_audio_only`` for a RAVDESS name (e.g. a video archive's
        ``.mp4``), else ``junk_files``.
    """
    match = _NAME_RE.match(os.path.splitext(name)[0])
    return "junk_files" if match is None else "non_audio_only"


def _listing(actor_dir, counts, log=True):
    """Sort the files of one ``Actor_NN`` folder.

    Parameters
    ----------
    actor_dir : pathlib.Path
        The folder.
    counts : collections.Counter
        Gets ``junk_files`` (``._*``, ``.DS_Store``, other non-audio
        files), ``malformed_name`` (a ``.wav`` whose name does not parse)
        and ``non_audio_only`` (a RAVDESS name whose modality is not 03, or
        that is not a ``.wav``) incremented.
    log : bool
        Log each malformed name.

    Returns
    -------
    list of tuple
        ``(name, size, match)`` of the audio-only ``.wav`` clips, sorted;
        size is None for a dangling link.

    Raises
    ------
    PrepareError
        If the folder cannot be listed.
    """
    out = []
    for name, size in audio_listing(actor_dir, counts, other=_other_file):
        match = _NAME_RE.match(os.path.splitext(name)[0])
        if match is None:
            if log:
                logger.warning("skipping %s: the name is not seven "
                               "two-digit fields MM-VV-EE-II-SS-RR-AA.wav",
                               actor_dir / name)
            counts["malformed_name"] += 1
        elif match["modality"] != "03":
            counts["non_audio_only"] += 1
        else:
            out.append((name, size, match))
    return out


def scan_ravdess(data_folder, mapping=None, emotions=EMOTIONS,
                 min_duration=MIN_DURATION,
                 include_song=False) -> tuple[dict, dict]:
    """Collect the labelled audio-only clips of a RAVDESS copy.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The folder that holds ``Actor_01``..``Actor_24``, or a folder
        whose subfolders hold them.
    mapping : dict, optional
        Emotion code to class (see :class:`LabelMap`); default 01 neutral,
        03 happy, 04 sad, 05 angry to ``neu hap sad ang``; calm, fearful,
        disgust and surprised dropped.
    emotions : sequence of str
        The classes kept.
    min_duration : float
        Shorter clips (seconds) are skipped and counted.
    include_song : bool
        Also read the song clips (vocal channel 02); otherwise they are
        counted as ``song_skipped``.

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id", "gender", "text"}}``
        with the file stem as ``utt_id``, ``Actor_NN`` as ``spk_id``, the
        statement code (01 or 02) as ``text`` and ``wav`` starting with
        ``{data_root}``.
    summary : dict
        The clip counters, ``junk_files``, ``malformed_name``,
        ``duplicate_id``, ``song_skipped``, ``non_audio_only``,
        ``actor_mismatch``, the label counts, ``kept``, ``per_class`` and
        ``per_speaker``.

    Raises
    ------
    PrepareError
        If the folder does not exist or holds no audio-only clips (or
        song clips only, without ``include_song``).

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_ravdess_corpus
    >>> root = make_ravdess_corpus(getfixture("tmp_path"), n_speakers=2)
    >>> entries, summary = scan_ravdess(root)
    >>> summary["per_class"], summary["dropped_codes"]["02"]
    ({'neu': 4, 'hap': 4, 'ang': 4, 'sad': 4}, 4)
    >>> summary["song_skipped"], summary["junk_files"]
    (24, 2)
    >>> sorted({(e["spk_id"], e["gender"]) for e in entries.values()})
    [('Actor_01', 'M'), ('Actor_02', 'F')]
    >>> scan_ravdess(root, include_song=True)[1]["per_class"]["neu"]
    8
    """
    labels = LabelMap("ravdess", mapping, emotions)
    base = pathlib.Path(data_folder)
    counts = collections.Counter({k: 0 for k in COUNTERS})
    entries, seen = {}, set()
    speech = song = 0
    for root in _find_roots(base):
        prefix = "{data_root}" + ("" if root == base else f"/{root.name}")
        for actor_dir in _actor_dirs(root):
            folder_actor = _ACTOR_DIR_RE.match(actor_dir.name)[1]
            for name, size, match in _listing(actor_dir, counts):
                utt = os.path.splitext(name)[0]
                path = actor_dir / name
                if match["channel"] == "02":
                    song += 1
                    if not include_song:
                        counts["song_skipped"] += 1
                        continue
                else:
                    speech += 1
                if utt in seen:
                    logger.warning("skipping %s: duplicate id %s", path, utt)
                    counts["duplicate_id"] += 1
                    continue
                seen.add(utt)
                actor = match["actor"]
                if actor != folder_actor:
                    logger.warning("%s is in %s but names actor %s; its "
                                   "speaker is Actor_%s", path,
                                   actor_dir.name, actor, actor)
                    counts["actor_mismatch"] += 1
                emo = labels(match["emo"])
                if emo is None:
                    continue
                duration = clip_duration(path, size, counts, utt,
                                         min_duration)
                if duration is None:
                    continue
                entries[utt] = {
                    "wav": f"{prefix}/{actor_dir.name}/{name}",
                    "duration": duration, "emo": emo,
                    "spk_id": f"Actor_{actor}",
                    "gender": "M" if int(actor) % 2 else "F",
                    "text": match["statement"]}
    if not speech and not (song and include_song):
        if song:
            raise PrepareError(
                f"data_folder {base} holds RAVDESS song clips only; pass "
                "include_song: True, or add Audio_Speech_Actors_01-24")
        raise PrepareError(
            f"the Actor_NN folders under {base} hold no audio-only RAVDESS "
            "clips named like 03-01-05-01-02-01-01.wav; unpack "
            "Audio_Speech_Actors_01-24.zip there")
    return finish_scan(entries, counts, COUNTERS, labels, "RAVDESS")


def ravdess_files(data_folder) -> list[pathlib.Path]:
    """The files whose names and sizes fingerprint a RAVDESS copy.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        As for :func:`scan_ravdess`.

    Returns
    -------
    list of pathlib.Path
        The audio-only clips, speech and song, of every ``Actor_NN``
        folder (junk left out), sorted.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_ravdess_corpus
    >>> root = make_ravdess_corpus(getfixture("tmp_path"), n_speakers=1)
    >>> files = ravdess_files(root)
    >>> len(files), files[0].relative_to(root).as_posix()
    (28, 'Actor_01/03-01-01-01-01-01-01.wav')
    """
    files = []
    for root in _find_roots(pathlib.Path(data_folder)):
        for actor_dir in _actor_dirs(root):
            files += [actor_dir / name for name, _, _ in
                      _listing(actor_dir, collections.Counter(), False)]
    return sorted(files)
