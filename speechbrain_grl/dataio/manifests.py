"""What every corpus preparation shares: clip checks, summaries, and
manifests written atomically and reused only while they are current.

A preparation writes ``<split>.json`` for each split (SpeechBrain JSON
manifests whose ``wav`` starts with ``{data_root}``), then
``prepare_summary.json`` (kept and skipped counts) and, last,
``prepare_opts.json`` (options plus a fingerprint of the corpus files).
Manifests are reused only when ``prepare_opts.json`` matches: changed
options, or a wav fixed since, rewrite them.
"""

import collections
import hashlib
import json
import logging
import os
import pathlib

import soundfile as sf

from speechbrain_grl.utils.errors import GRLError
from speechbrain_grl.utils.jsonio import write_json_atomic

logger = logging.getLogger(__name__)

__all__ = ["SPLITS", "MIN_DURATION", "CLIP_COUNTERS", "PrepareError",
           "find_corpus_root", "audio_listing", "named_clips",
           "clip_duration", "summarise", "finish_scan", "fingerprint",
           "load_manifests", "stale_reason", "prepare_manifests"]

SPLITS = ("train", "valid", "test")
#: Shorter clips give no encoder frame (wav2vec2's convolutions see 25 ms)
#: and crash its first layer; they are dropped and counted.
MIN_DURATION = 0.05
CLIP_COUNTERS = ("missing_wav", "unreadable_wav", "empty_wav",
                 "too_short_wav")


class PrepareError(GRLError, ValueError):
    """A one-line problem with a corpus or its options, saying what to do."""


def find_corpus_root(data_folder, audio_dir, corpus, note=""):
    """Return the folder holding ``audio_dir``: ``data_folder`` itself or
    its only subfolder that holds one.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        The folder as passed.
    audio_dir : str
        The name of the release's audio folder.
    corpus : str
        The corpus name, for the errors.
    note : str
        Ends the error when no folder holds ``audio_dir`` (e.g. how the
        release unpacks).

    Returns
    -------
    pathlib.Path
        The release folder.

    Raises
    ------
    PrepareError
        If there is no such folder, or several.

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / "EmoDB" / "wav").mkdir(parents=True)
    >>> find_corpus_root(folder, "wav", "EmoDB").name
    'EmoDB'
    >>> try:
    ...     find_corpus_root(folder / "EmoDB" / "wav", "wav", "EmoDB")
    ... except PrepareError as err:
    ...     print(str(err).split("; ")[1])  # doctest: +ELLIPSIS
    point --data_folder at .../EmoDB, the EmoDB folder that holds wav
    """
    folder = pathlib.Path(data_folder)
    if not folder.is_dir():
        raise PrepareError(
            f"data_folder {folder} does not exist; point --data_folder at "
            f"the {corpus} folder that holds {audio_dir}")
    if (folder / audio_dir).is_dir():
        return folder
    found = sorted(p for p in folder.iterdir()
                   if p.is_dir() and (p / audio_dir).is_dir())
    if len(found) == 1:
        return found[0]
    if found:
        raise PrepareError(
            f"data_folder {folder} holds several folders with a "
            f"{audio_dir} folder ({', '.join(p.name for p in found)}); "
            f"point --data_folder at the {corpus} one")
    where = f"{folder.parent}, " if folder.name == audio_dir else ""
    raise PrepareError(
        f"data_folder {folder} holds no {audio_dir} folder; point "
        f"--data_folder at {where}the {corpus} folder that holds "
        f"{audio_dir}" + (f" {note}" if note else ""))


def audio_listing(folder, counts, suffixes=(".wav",), other=None,
                  hint="check its permissions"):
    """List the audio files of a folder with their sizes, counting junk.

    Parameters
    ----------
    folder : str or pathlib.Path
        The folder; its subfolders are passed over.
    counts : collections.Counter
        Gets ``junk_files`` incremented for each hidden file (AppleDouble
        ``._*``, ``.DS_Store``) and each file not ending in ``suffixes``.
    suffixes : tuple of str or None
        The audio endings, matched case-insensitively; None keeps every
        visible file.
    other : callable, optional
        ``other(name)`` gives the counter to increment for a visible file
        not ending in ``suffixes``, instead of ``junk_files``.
    hint : str
        What to do, for the error if the folder cannot be listed.

    Returns
    -------
    list of tuple
        ``(name, size)`` sorted by name; size is None for a dangling link.

    Raises
    ------
    PrepareError
        If the folder cannot be listed.

    Example
    -------
    >>> import collections, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.WAV", "a.wav", "._a.wav", ".DS_Store", "a.txt"):
    ...     _ = (folder / name).write_bytes(b"xy")
    >>> counts = collections.Counter()
    >>> audio_listing(folder, counts), dict(counts)
    ([('a.wav', 2), ('b.WAV', 2)], {'junk_files': 3})
    """
    try:
        items = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        raise PrepareError(f"cannot list {folder} ({err}); {hint}") from err
    out = []
    for entry in items:
        if entry.is_dir():
            continue
        name = entry.name
        if name.startswith("."):
            counts["junk_files"] += 1
            continue
        if suffixes is not None and not name.lower().endswith(suffixes):
            counts["junk_files" if other is None else other(name)] += 1
            continue
        try:
            size = entry.stat().st_size
        except OSError:  # a dangling link: counted as missing
            size = None
        out.append((name, size))
    return out


def named_clips(folder, counts, name_re, form):
    """Yield the ``.wav`` clips of a folder whose names follow a pattern.

    The folder is listed with :func:`audio_listing`. A clip whose stem
    does not match ``name_re`` is logged and counted as
    ``malformed_name``; a second clip with the same stem (the ending in
    another case) is logged and counted as ``duplicate_id``.

    Parameters
    ----------
    folder : pathlib.Path
        The audio folder.
    counts : collections.Counter
        Gets ``junk_files``, ``malformed_name`` and ``duplicate_id``
        incremented.
    name_re : re.Pattern
        The pattern of a clip's stem.
    form : str
        The names' form, for the log.

    Yields
    ------
    tuple
        ``(utt, name, size, match)``: the stem, the file name, its size
        (None for a dangling link) and the stem's match, sorted by name.

    Raises
    ------
    PrepareError
        If the folder cannot be listed.

    Example
    -------
    >>> import collections, re, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a1.wav", "a1.WAV", "b.wav"):
    ...     _ = (folder / name).write_bytes(b"x")
    >>> counts = collections.Counter()
    >>> [c[:3] for c in named_clips(folder, counts, re.compile(r"a\\d"),
    ...                              "a<digit>.wav")]
    [('a1', 'a1.WAV', 1)]
    >>> dict(counts)
    {'duplicate_id': 1, 'malformed_name': 1}
    """
    seen = set()
    for name, size in audio_listing(folder, counts):
        utt = name[:-4]
        match = name_re.match(utt)
        if match is None:
            logger.warning("skipping %s: the name is not %s", folder / name,
                           form)
            counts["malformed_name"] += 1
            continue
        if utt in seen:
            logger.warning("skipping %s: duplicate id %s", folder / name,
                           utt)
            counts["duplicate_id"] += 1
            continue
        seen.add(utt)
        yield utt, name, size, match


def clip_duration(path, size, summary, utt, min_duration=MIN_DURATION):
    """Return a clip's duration in seconds, or None (counted) if unusable.

    Parameters
    ----------
    path : str or pathlib.Path
        The audio file.
    size : int or None
        Its size in bytes from a directory listing; None if missing.
    summary : collections.Counter
        Gets ``missing_wav``, ``unreadable_wav``, ``empty_wav`` or
        ``too_short_wav`` incremented for a skipped clip.
    utt : str
        The utterance id, for the log.
    min_duration : float
        Shorter clips are skipped.

    Returns
    -------
    float or None
        The duration rounded to 0.1 ms.

    Example
    -------
    >>> import collections, tempfile, numpy, soundfile
    >>> path = tempfile.mkdtemp() + "/a.wav"
    >>> soundfile.write(path, numpy.zeros(8000), 16000)
    >>> counts = collections.Counter()
    >>> clip_duration(path, 1, counts, "a")
    0.5
    >>> clip_duration(path, None, counts, "a"), dict(counts)
    (None, {'missing_wav': 1})
    """
    if size is None:
        logger.warning("skipping %s: missing audio %s", utt, path)
        summary["missing_wav"] += 1
        return None
    try:
        info = sf.info(str(path)) if size else None
    except (RuntimeError, OSError) as err:  # LibsndfileError is RuntimeError
        logger.warning("skipping %s: unreadable audio %s (%s)", utt, path,
                       err)
        summary["unreadable_wav"] += 1
        return None
    if info is None or info.frames == 0:
        logger.warning("skipping %s: empty audio %s", utt, path)
        summary["empty_wav"] += 1
        return None
    duration = info.frames / info.samplerate
    if duration < min_duration:
        logger.warning("skipping %s: %s is %.4f s, shorter than "
                       "min_duration %g s", utt, path, duration, min_duration)
        summary["too_short_wav"] += 1
        return None
    return round(duration, 4)


def summarise(entries, counters, emotions):
    """Return a preparation summary: counters plus kept per class,
    per speaker and per group.

    Example
    -------
    >>> entries = {"a": {"emo": "ang", "spk_id": "1"},
    ...            "b": {"emo": "neu", "spk_id": "2"}}
    >>> summarise(entries, {"junk_files": 3}, ("neu", "ang"))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'junk_files': 3, 'kept': 2, 'per_class': {'neu': 1, 'ang': 1},
     'per_speaker': {'1': 1, '2': 1}}
    """
    out = dict(counters)
    out["kept"] = len(entries)
    out["per_class"] = {
        e: sum(x["emo"] == e for x in entries.values()) for e in emotions}
    speakers = collections.Counter(str(x["spk_id"])
                                   for x in entries.values())
    out["per_speaker"] = dict(sorted(speakers.items()))
    groups = collections.Counter(str(x["group"]) for x in entries.values()
                                 if "group" in x)
    if groups:
        out["per_group"] = dict(sorted(groups.items()))
    return out


def finish_scan(entries, counts, counter_names, labels, what):
    """Summarise a corpus scan and log what it kept and skipped.

    Parameters
    ----------
    entries : dict
        The kept ``{utt_id: entry}``.
    counts : collections.Counter
        The scan's skip counters.
    counter_names : sequence of str
        The counters the summary reports, in order (zeros included).
    labels : speechbrain_grl.dataio.labels.LabelMap
        The scan's label map; its counts follow the counters.
    what : str
        The corpus (and where it is), to start the log line.

    Returns
    -------
    entries : dict
        ``entries`` as given.
    summary : dict
        :func:`summarise` of the entries with the counters and the label
        counts.

    Example
    -------
    >>> import collections
    >>> from speechbrain_grl.dataio.labels import LabelMap
    >>> labels = LabelMap("emodb")
    >>> labels("N"), labels("L")
    ('neu', None)
    >>> entries = {"03a01Na": {"emo": "neu", "spk_id": "03"}}
    >>> counts = collections.Counter(junk_files=2)
    >>> _, summary = finish_scan(entries, counts, ("junk_files", "bad_row"),
    ...                          labels, "EmoDB")
    >>> summary  # doctest: +NORMALIZE_WHITESPACE
    {'junk_files': 2, 'bad_row': 0, 'dropped_label': 1, 'unknown_label': 0,
     'dropped_codes': {'L': 1}, 'unknown_codes': {}, 'kept': 1,
     'per_class': {'neu': 1, 'hap': 0, 'ang': 0, 'sad': 0},
     'per_speaker': {'03': 1}}
    """
    counters = {k: counts[k] for k in counter_names}
    label_counts = labels.counts()
    summary = summarise(entries, {**counters, **label_counts},
                        labels.emotions)
    logger.info("%s: kept %d clips %s; skipped %s; dropped labels %s, "
                "unknown %s", what, summary["kept"], summary["per_class"],
                {k: v for k, v in counters.items() if v},
                label_counts["dropped_codes"], label_counts["unknown_codes"])
    return entries, summary


def fingerprint(root, paths):
    """Hash the names and sizes of ``paths`` (relative to ``root``), so
    manifests made while a file was missing or broken are rewritten once
    it is fixed.

    Example
    -------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.wav").write_bytes(b"x")
    >>> fp = fingerprint(root, [root / "a.wav"])
    >>> _ = (root / "a.wav").write_bytes(b"xy")
    >>> fingerprint(root, [root / "a.wav"]) == fp
    False
    """
    root = pathlib.Path(root)
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(p) for p in paths):
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        rel = path.relative_to(root) if path.is_relative_to(root) else path
        digest.update(f"{rel.as_posix()}:{size}\n".encode())
    return digest.hexdigest()


def load_manifests(save_folder, names=SPLITS):
    """Load the manifests ``names`` from ``save_folder``."""
    save_folder = pathlib.Path(save_folder)
    return {name: json.loads((save_folder / f"{name}.json").read_text())
            for name in names}


def stale_reason(save_folder, opts, names=SPLITS):
    """Return why existing manifests cannot be reused, or None."""
    save_folder = pathlib.Path(save_folder)
    stamp = save_folder / "prepare_opts.json"
    if not stamp.is_file():
        return "no prepare_opts.json"
    missing = [n for n in names if not (save_folder / f"{n}.json").is_file()]
    if missing:
        return f"missing {missing}"
    try:
        old = json.loads(stamp.read_text())
    except ValueError:
        return "unreadable prepare_opts.json"
    changed = sorted(k for k in opts.keys() | old.keys()
                     if old.get(k) != opts.get(k))
    return f"options changed: {changed}" if changed else None


def prepare_manifests(save_folder, opts, build, names=SPLITS,
                      skip_prep=False, what="corpus"):
    """Reuse current manifests, or build and write them atomically.

    Parameters
    ----------
    save_folder : str or pathlib.Path
        Where the manifests go (created if needed).
    opts : dict
        Options and corpus fingerprint, JSON-serialisable; stored as
        ``prepare_opts.json`` and compared on the next call.
    build : callable
        ``build() -> (splits, summary)``, ``splits`` a dict with one
        ``{utt_id: entry}`` per name in ``names``.
    names : sequence of str
        The manifest names.
    skip_prep : bool
        Only load existing manifests.
    what : str
        The corpus name, for logs and errors.

    Returns
    -------
    dict
        ``{name: {utt_id: entry}}``.

    Example
    -------
    >>> import tempfile, os
    >>> tmp = tempfile.mkdtemp()
    >>> def build():
    ...     return {"all": {"a": {"emo": "neu"}}}, {"kept": 1}
    >>> prepare_manifests(tmp, {"x": 1}, build, names=("all",))
    {'all': {'a': {'emo': 'neu'}}}
    >>> sorted(os.listdir(tmp))
    ['all.json', 'prepare_opts.json', 'prepare_summary.json']
    """
    save_folder = pathlib.Path(save_folder)
    if skip_prep:
        missing = [n for n in names
                   if not (save_folder / f"{n}.json").is_file()]
        if missing:
            raise PrepareError(
                f"skip_prep is set but {save_folder} lacks {missing}; "
                "set skip_prep: False to prepare the data")
        return load_manifests(save_folder, names)
    reason = stale_reason(save_folder, opts, names)
    if reason is None:
        logger.info("reusing %s manifests in %s", what, save_folder)
        return load_manifests(save_folder, names)
    logger.info("preparing %s manifests in %s (%s)", what, save_folder,
                reason)
    splits, summary = build()
    save_folder.mkdir(parents=True, exist_ok=True)
    (save_folder / "prepare_opts.json").unlink(missing_ok=True)
    for name in names:
        write_json_atomic(splits[name], save_folder / f"{name}.json")
    write_json_atomic(summary, save_folder / "prepare_summary.json")
    write_json_atomic(opts, save_folder / "prepare_opts.json")
    return {name: splits[name] for name in names}
