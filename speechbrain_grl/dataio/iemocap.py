"""IEMOCAP data preparation from the original release layout.

Reads ``Session{n}/dialog/EmoEvaluation/*.txt`` label files, finds each
utterance under ``Session{n}/sentences/wav/<dialog>/<utt>.wav``, reads
its duration from the wav header (audio is never copied) and writes
SpeechBrain JSON manifests for train, valid and test.

Each entry also holds ``"vad"``: the turn's valence, activation (arousal)
and dominance, the ``[V, A, D]`` that ends its line in the label file
(annotators' means on IEMOCAP's 1 to 5 scale), normalised to [0, 1] (see
:mod:`speechbrain_grl.dataio.dimensions`).

In the manifests ``{data_root}`` stands for ``data_folder`` exactly as
passed to :func:`prepare_iemocap`, so recipes can use
``replacements={"data_root": data_folder}``.
"""

import collections
import hashlib
import logging
import os
import pathlib
import re

import numpy as np

from speechbrain_grl.dataio.dimensions import VAD_SCALES, normalise_vad
from speechbrain_grl.dataio.manifests import (
    MIN_DURATION,
    SPLITS,
    PrepareError,
    clip_duration,
    load_manifests,
    prepare_manifests,
)
from speechbrain_grl.dataio.splits import (
    VALID_FROM,
    check_classes,
    stratified_holdout,
)

logger = logging.getLogger(__name__)

EMOTIONS = ("neu", "hap", "ang", "sad")
IEMOCAP_CODES = frozenset(
    ["neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth",
     "xxx"])
RELEASE = "IEMOCAP_full_release"
SKIP_COUNTERS = ("missing_wav", "unreadable_wav", "empty_wav",
                 "too_short_wav", "unknown_label", "duplicate_id",
                 "dropped_label", "malformed_id", "unparsed_label_line",
                 "junk_files", "non_utf8_files")
_LABEL_RE = re.compile(
    r"^\[\s*[\d.]+\s*-\s*[\d.]+\s*\]\s+(?P<utt>\S+)\s+(?P<code>\S+)\s+"
    r"\[(?P<vad>[^\]]*)")
_UTT_RE = re.compile(r"^Ses(?P<ses>\d{2})[FM]_\S+_(?P<gender>[FM])\d+$")
_LABEL_FILE_RE = re.compile(r"^Ses\d{2}[FM]_\S+\.txt$")


class IEMOCAPError(PrepareError):
    """A one-line problem with the data or options, saying what to do."""


def speaker_of(utt_id: str) -> str:
    """Return the true speaker of an utterance id.

    The speaker is the session plus the gender letter that starts the
    last part of the id, not the dialog prefix.

    Parameters
    ----------
    utt_id : str
        An IEMOCAP utterance id such as ``Ses01F_impro01_M003``.

    Returns
    -------
    str
        The speaker, e.g. ``Ses01M``.

    Raises
    ------
    IEMOCAPError
        If the id is not an IEMOCAP utterance id.

    Example
    -------
    >>> speaker_of("Ses01F_impro01_M003")
    'Ses01M'
    >>> speaker_of("Ses05M_script02_2_F010")
    'Ses05F'
    """
    match = _UTT_RE.match(utt_id)
    if match is None:
        raise IEMOCAPError(
            f"malformed IEMOCAP utterance id {utt_id!r}: expected "
            "'SesNN<F|M>_<dialog>_<F|M>NNN'; fix or remove that label line")
    return f"Ses{match['ses']}{match['gender']}"


def speakers(sessions=(1, 2, 3, 4, 5)) -> list[str]:
    """The speakers of IEMOCAP sessions: one female, one male each.

    Example
    -------
    >>> speakers([1, 2])
    ['Ses01F', 'Ses01M', 'Ses02F', 'Ses02M']
    """
    return [f"Ses{int(s):02d}{g}" for s in sorted(sessions) for g in "FM"]


def _vad_values(text):
    """Return the numbers of a ``[V, A, D]`` body as floats, None for
    each part that is not one."""
    out = []
    for part in text.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            out.append(None)
    return out


def parse_label_line(line) -> tuple[str, str, list] | None:
    """Parse one turn line of an EmoEvaluation file.

    A turn line reads ``[START - END]<TAB>utt_id<TAB>code<TAB>[V, A, D]``
    where V, A and D are the valence, activation (arousal) and dominance,
    the annotators' means on IEMOCAP's 1 to 5 scale. Extra spaces or tabs
    anywhere are tolerated.

    Parameters
    ----------
    line : str
        One line of a label file.

    Returns
    -------
    tuple or None
        ``(utt_id, code, [v, a, d])`` with the code lower-cased and the
        values as floats (None for a part that is not a number; fewer or
        more than three if the bracket holds that many), or None if the
        line is not a turn line.

    Example
    -------
    >>> parse_label_line("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t"
    ...                  "[2.5000, 2.5000, 2.5000]")
    ('Ses01F_impro01_F000', 'neu', [2.5, 2.5, 2.5])
    >>> parse_label_line("[ 1.0 - 2.0 ]  Ses01F_impro01_M001  Ang  "
    ...                  "[ 1.5 ,4.0,  4.5 ]")
    ('Ses01F_impro01_M001', 'ang', [1.5, 4.0, 4.5])
    >>> parse_label_line("C-E1:\tNeutral;\t()") is None
    True
    """
    match = _LABEL_RE.match(line)
    if match is None:
        return None
    return (match["utt"], match["code"].lower(),
            _vad_values(match["vad"]))


def _read_label_file(path):
    """Return ``([(utt_id, code, raw vad)], is_utf8, unparsed)`` for one
    label file; ``unparsed`` counts turn lines (starting with ``[``) that
    do not parse."""
    raw = pathlib.Path(path).read_bytes()
    try:
        text, is_utf8 = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8; decoding it as latin-1", path)
        text, is_utf8 = raw.decode("latin-1"), False
    pairs, unparsed = [], 0
    for line in text.splitlines():
        parsed = parse_label_line(line)
        if parsed:
            pairs.append(parsed)
        elif line.lstrip().startswith("["):
            logger.warning("%s: cannot parse the turn line %r", path,
                           line[:80])
            unparsed += 1
    return pairs, is_utf8, unparsed


def parse_label_file(path, with_vad=False) -> list[tuple]:
    """Parse one EmoEvaluation file into ``(utt_id, code)`` pairs.

    Only turn lines such as ``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000
    <TAB>neu<TAB>[2.5, 2.5, 2.5]`` are kept; headers, annotator lines and
    blank lines are ignored. A non-UTF-8 file is decoded as latin-1 with
    a warning.

    Parameters
    ----------
    path : str or pathlib.Path
        The label file.
    with_vad : bool
        Also return each turn's raw ``[V, A, D]`` (see
        :func:`parse_label_line`).

    Returns
    -------
    list of tuple
        ``(utt_id, code)`` pairs in file order, codes lower-cased, or
        ``(utt_id, code, [v, a, d])`` with ``with_vad``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "Ses01F_impro01.txt"
    >>> _ = p.write_text("% header\\n\\n[6.29 - 8.23]\\tSes01F_impro01_F000"
    ...                  "\\tneu\\t[2.5, 2.5, 2.5]\\nC-E1:\\tNeutral;\\t()\\n")
    >>> parse_label_file(p)
    [('Ses01F_impro01_F000', 'neu')]
    >>> parse_label_file(p, with_vad=True)
    [('Ses01F_impro01_F000', 'neu', [2.5, 2.5, 2.5])]
    """
    turns = _read_label_file(path)[0]
    return turns if with_vad else [(utt, code) for utt, code, _ in turns]


def _find_root(data_folder):
    """Return the release root, accepting its parent folder too."""
    folder = pathlib.Path(data_folder)
    if not folder.is_dir():
        raise IEMOCAPError(
            f"data_folder {folder} does not exist; pass "
            "--data_folder=/path/to/IEMOCAP_full_release")
    for root in (folder, folder / RELEASE):
        if any(root.glob("Session*/dialog/EmoEvaluation")):
            return root
    raise IEMOCAPError(
        f"data_folder {folder} is not an IEMOCAP release: expected "
        "Session1..5/dialog/EmoEvaluation; point --data_folder at "
        "IEMOCAP_full_release")


def _label_files(root, sessions):
    """Return ``({session: [label files]}, junk count)``; check sessions."""
    files, junk = {}, 0
    for s in sessions:
        emo_dir = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        if not emo_dir.is_dir():
            raise IEMOCAPError(
                f"session {s} is missing: {emo_dir} does not exist; pass "
                "sessions: [..] to run on a subset")
        names = sorted(os.scandir(emo_dir), key=lambda e: e.name)
        files[s] = [pathlib.Path(e.path) for e in names
                    if e.is_file() and _LABEL_FILE_RE.match(e.name)]
        junk += len(names) - len(files[s])
    return files, junk


def _wav_listing(wav_dir, summary):
    """Return ``{file name: size}`` of one dialog wav folder."""
    try:
        items = list(os.scandir(wav_dir))
    except OSError:
        return {}
    summary["junk_files"] += sum(e.name.startswith("._") for e in items)
    return {e.name: e.stat().st_size for e in items if e.is_file()}


def scan_corpus(data_folder, sessions=(1, 2, 3, 4, 5), emotions=EMOTIONS,
                merge=None, min_duration=MIN_DURATION,
                keep_all_emotions=False) -> tuple[dict, dict]:
    """Collect the labelled utterances of an IEMOCAP release.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        ``IEMOCAP_full_release`` or the folder that contains it.
    sessions : sequence of int
        Sessions to read.
    emotions : sequence of str
        Classes to keep (after merging).
    merge : dict, optional
        Code mapping applied first; default ``{"exc": "hap"}``.
    min_duration : float
        Shorter clips (seconds) are dropped and counted.
    keep_all_emotions : bool
        Also keep the utterances whose (merged) code is outside
        ``emotions`` (e.g. ``fru``, ``xxx``, ``oth``), with that code as
        their ``emo``, for dimensional work on every utterance; they are
        then not counted as ``dropped_label``.

    Returns
    -------
    entries : dict
        ``{utt_id: {"wav", "duration", "emo", "spk_id", "session",
        "vad"}}``; ``wav`` starts with ``{data_root}`` (``data_folder``
        as passed); ``vad`` is the turn's ``[V, A, D]`` normalised from
        1..5 to [0, 1]. A turn whose V/A/D is missing, not a number or
        outside 1..5 is logged with its label file, counted as
        ``bad_vad`` and kept without ``vad``: the training code decides
        what to do with it.
    summary : dict
        ``label_files``, the skip counters in ``SKIP_COUNTERS``,
        ``bad_vad``, ``kept``, ``per_class`` (only the ``emotions``),
        ``other_classes`` (``{code: n}`` of the codes kept by
        ``keep_all_emotions``, else empty), ``per_session``,
        ``per_speaker`` and ``vad_scale`` (``[1.0, 5.0]``).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_grl.testing.demo_corpus import make_demo_corpus
    >>> tmp = tempfile.mkdtemp()
    >>> _ = make_demo_corpus(tmp, n_sessions=1, utts_per_speaker=20)
    >>> entries, summary = scan_corpus(tmp, sessions=[1])
    >>> summary["per_class"]
    {'neu': 8, 'hap': 8, 'ang': 8, 'sad': 8}
    >>> sorted(summary["per_speaker"])
    ['Ses01F', 'Ses01M']
    >>> summary["vad_scale"], summary["bad_vad"]
    ([1.0, 5.0], 0)
    >>> all(0 <= v <= 1 for e in entries.values() for v in e["vad"])
    True
    >>> _, summary = scan_corpus(tmp, sessions=[1], keep_all_emotions=True)
    >>> summary["other_classes"], summary["dropped_label"]
    ({'fru': 4, 'xxx': 4}, 0)
    """
    merge = {"exc": "hap"} if merge is None else dict(merge)
    bad = sorted(set(emotions) - IEMOCAP_CODES)
    if bad:
        raise IEMOCAPError(f"emotions: unknown IEMOCAP codes {bad}; use "
                           f"codes from {sorted(IEMOCAP_CODES)}")
    root = _find_root(data_folder)
    nested = root != pathlib.Path(data_folder)
    prefix = "{data_root}" + (f"/{RELEASE}" if nested else "")
    files, junk = _label_files(root, sorted({int(s) for s in sessions}))
    summary = collections.Counter({k: 0 for k in SKIP_COUNTERS})
    summary["junk_files"] = junk
    entries, seen, listings = {}, set(), {}
    scale = VAD_SCALES["iemocap"]
    for session, paths in files.items():
        for path in paths:
            pairs, is_utf8, unparsed = _read_label_file(path)
            summary["non_utf8_files"] += not is_utf8
            summary["unparsed_label_line"] += unparsed
            summary["label_files"] += 1
            for utt, code, raw_vad in pairs:
                if utt in seen:
                    logger.warning("duplicate id %s in %s", utt, path)
                    summary["duplicate_id"] += 1
                    continue
                seen.add(utt)
                if code not in IEMOCAP_CODES:
                    logger.warning("unknown label %r for %s in %s",
                                   code, utt, path)
                    summary["unknown_label"] += 1
                    continue
                emo = merge.get(code, code)
                if emo not in emotions and not keep_all_emotions:
                    summary["dropped_label"] += 1
                    continue
                if not _UTT_RE.match(utt):
                    logger.warning("malformed id %r in %s", utt, path)
                    summary["malformed_id"] += 1
                    continue
                dialog = utt.rsplit("_", 1)[0]
                rel = f"Session{session}/sentences/wav/{dialog}/{utt}.wav"
                if (session, dialog) not in listings:
                    listings[session, dialog] = _wav_listing(
                        root / rel.rsplit("/", 1)[0], summary)
                size = listings[session, dialog].get(f"{utt}.wav")
                duration = clip_duration(root / rel, size, summary, utt,
                                         min_duration)
                if duration is None:
                    continue
                entries[utt] = {
                    "wav": f"{prefix}/{rel}", "duration": duration,
                    "emo": emo, "spk_id": speaker_of(utt),
                    "session": session}
                vad = normalise_vad(raw_vad, scale)
                if vad is None:
                    logger.warning(
                        "%s: %s has no usable [V, A, D] %s (three numbers "
                        "in %g..%g); kept without vad", path, utt,
                        raw_vad, *scale)
                    summary["bad_vad"] += 1
                else:
                    entries[utt]["vad"] = vad
    out = {k: summary[k] for k in ("label_files",) + SKIP_COUNTERS}
    out["bad_vad"] = summary["bad_vad"]
    out["kept"] = len(entries)
    for key, field in (("per_class", "emo"), ("per_session", "session"),
                       ("per_speaker", "spk_id")):
        counts = collections.Counter(e[field] for e in entries.values())
        order = emotions if field == "emo" else sorted(counts)
        out[key] = {k: counts[k] for k in order}
        if field == "emo":
            out["other_classes"] = {k: counts[k] for k in sorted(counts)
                                    if k not in emotions}
    out["vad_scale"] = list(scale)
    return entries, out


def valid_session_after(test_session, sessions=(1, 2, 3, 4, 5)) -> int:
    """The session that validates a session split with
    ``valid_from=held_out_speakers``: the one after ``test_session``
    among ``sessions`` (sorted), wrapping round.

    Example
    -------
    >>> valid_session_after(5), valid_session_after(2, [1, 2, 4])
    (1, 4)
    """
    present = sorted(sessions)
    return present[(present.index(test_session) + 1) % len(present)]


def make_splits(entries, split="session", test_session=5, valid_ratio=0.2,
                seed=1234, test_speaker=None, valid_from=None,
                classes=None) -> dict[str, dict]:
    """Split utterance entries into train, valid and test.

    Parameters
    ----------
    entries : dict
        Entries from :func:`scan_corpus`.
    split : str
        ``"session"``: test is session ``test_session`` (speaker
        independent), valid is ``valid_ratio`` of the other speakers'
        utterances, stratified by emotion and speaker.
        ``"speaker"``: test is ``test_speaker``, valid is the other
        speaker of that session, train the rest.
        ``"random"``: speaker dependent, stratified by emotion; valid and
        test each get ``valid_ratio / 2`` (80/10/10 by default).
    test_session : int
        Test session for ``split="session"``.
    valid_ratio : float
        Held-out fraction (see ``split``).
    seed : int
        Seed; the same seed gives the same split.
    test_speaker : str, optional
        Test speaker (e.g. ``"Ses03F"``) for ``split="speaker"``.
    valid_from : str, optional
        None: ``held_out_speakers`` for ``speaker``, else
        ``training_speakers``.
        ``"training_speakers"``: validation is held-out utterances of the
        training speakers (``session``, ``random``), as above.
        ``"held_out_speakers"``: validation speakers are in neither train
        nor test, so model selection rewards what carries over to new
        speakers (at the price of fewer training speakers):
        ``session`` validates on the whole session after the test one
        (cyclically, among the prepared sessions), which trains nothing;
        ``speaker`` on the other speaker of the test session (as
        described above); ``random`` on the session ``seed`` picks, and
        splits the others at random into train and test. With
        ``"training_speakers"``, ``speaker`` validates on
        ``valid_ratio`` of the training speakers' utterances and trains
        on the other speaker of the test session too.
    classes : sequence of str, optional
        The classes every split must hold (those of them that occur in
        ``entries``); default every ``emo`` found. Pass the target
        ``emotions`` for entries scanned with ``keep_all_emotions``, whose
        other codes (``fru``, ``xxx``, ...) need not be in every split.

    Returns
    -------
    dict
        ``{"train": {...}, "valid": {...}, "test": {...}}``.

    Raises
    ------
    IEMOCAPError
        On a bad option, or if a split lacks some class.

    Example
    -------
    >>> entries = {f"Ses0{s}{g}_impro01_{g}{i:03d}": {
    ...     "emo": e, "spk_id": f"Ses0{s}{g}", "session": s}
    ...     for s in (1, 2) for g in "FM" for i, e in enumerate(EMOTIONS * 5)}
    >>> out = make_splits(entries, test_session=2)
    >>> {k: len(v) for k, v in out.items()}
    {'train': 32, 'valid': 8, 'test': 40}
    >>> entries["Ses02F_impro01_F099"] = {"emo": "fru", "spk_id": "Ses02F",
    ...                                   "session": 2}
    >>> out = make_splits(entries, test_session=2, classes=EMOTIONS)
    >>> {k: len(v) for k, v in out.items()}
    {'train': 32, 'valid': 8, 'test': 41}
    """
    if not 0.0 < valid_ratio < 1.0:
        raise IEMOCAPError(f"valid_ratio={valid_ratio}: use a value in (0, 1)")
    if valid_from is None:
        valid_from = VALID_FROM[split != "speaker"]
    if valid_from not in VALID_FROM:
        raise IEMOCAPError(
            f"valid_from={valid_from!r} is unknown; use "
            f"{' or '.join(VALID_FROM)}")
    held_out = valid_from == "held_out_speakers"
    rng = np.random.default_rng(seed)
    present = sorted({e["session"] for e in entries.values()})

    def by_emo_spk(u):
        """Stratification key: emotion and speaker."""
        return (entries[u]["emo"], entries[u]["spk_id"])

    if split == "session":
        if test_session not in present:
            raise IEMOCAPError(
                f"test_session={test_session} is not among the prepared "
                f"sessions {present}; pick one of them")
        test = [u for u, e in entries.items() if e["session"] == test_session]
        rest = [u for u in entries if entries[u]["session"] != test_session]
        if held_out:
            if len(present) < 3:
                raise IEMOCAPError(
                    "valid_from=held_out_speakers needs 3 sessions or more "
                    f"(prepared: {present}); use training_speakers")
            valid_session = valid_session_after(test_session, present)
            valid = [u for u in rest if entries[u]["session"] == valid_session]
            train = [u for u in rest if entries[u]["session"] != valid_session]
        else:
            valid, train = stratified_holdout(rest, by_emo_spk,
                                              valid_ratio, rng)
    elif split == "random" and held_out:
        if len(present) < 2:
            raise IEMOCAPError(
                "valid_from=held_out_speakers needs 2 sessions or more "
                f"(prepared: {present}); use training_speakers")
        valid_session = present[seed % len(present)]
        valid = [u for u, e in entries.items()
                 if e["session"] == valid_session]
        rest = [u for u, e in entries.items()
                if e["session"] != valid_session]
        test, train = stratified_holdout(
            rest, lambda u: (entries[u]["emo"],), valid_ratio / 2, rng)
    elif split == "speaker":
        speakers = sorted({e["spk_id"] for e in entries.values()})
        if test_speaker not in speakers:
            raise IEMOCAPError(
                f"test_speaker={test_speaker!r} is not among the speakers "
                f"{speakers}; pass one of them with split=speaker")
        other = test_speaker[:-1] + ("M" if test_speaker[-1] == "F" else "F")
        test = [u for u, e in entries.items() if e["spk_id"] == test_speaker]
        if held_out:
            valid = [u for u, e in entries.items() if e["spk_id"] == other]
            train = [u for u, e in entries.items()
                     if e["spk_id"] not in (test_speaker, other)]
        else:
            rest = [u for u, e in entries.items()
                    if e["spk_id"] != test_speaker]
            valid, train = stratified_holdout(rest, by_emo_spk,
                                              valid_ratio, rng)
    elif split == "random":
        def emo(u):
            """Stratification key: emotion."""
            return (entries[u]["emo"],)

        test, rest = stratified_holdout(entries, emo, valid_ratio / 2, rng)
        valid, train = stratified_holdout(
            rest, emo, valid_ratio / 2 / (1 - valid_ratio / 2), rng)
    else:
        raise IEMOCAPError(
            f"split={split!r} is unknown; use session, speaker or random")
    found_classes = {e["emo"] for e in entries.values()}
    classes = sorted(found_classes if classes is None
                     else found_classes & set(classes))
    out = {name: {u: entries[u] for u in sorted(ids)}
           for name, ids in zip(SPLITS, (train, valid, test))}
    check_classes(out, classes, f" (split={split}); try another split, "
                  "seed or test session", error=IEMOCAPError)
    return out


def _fingerprint(root, sessions):
    """Hash the names, sizes and mtimes of the label files, and the names
    and sizes of the wavs: manifests prepared while a wav was missing or
    broken are rewritten once the audio is fixed."""
    files, _ = _label_files(root, sessions)
    digest = hashlib.sha256()
    for s in sorted(files):
        for path in files[s]:
            st = path.stat()
            digest.update(f"{s}/{path.name}:{st.st_size}:{st.st_mtime_ns}\n"
                          .encode())
        wav_root = root / f"Session{s}" / "sentences" / "wav"
        for dirpath, _, names in sorted(os.walk(wav_root)):
            for name in sorted(names):
                if name.endswith(".wav") and not name.startswith("._"):
                    size = os.path.getsize(os.path.join(dirpath, name))
                    digest.update(f"{name}:{size}\n".encode())
    return digest.hexdigest()


def prepare_iemocap(data_folder, save_folder, split="session",
                    test_session=5, test_speaker=None, valid_ratio=0.2,
                    seed=1234, sessions=(1, 2, 3, 4, 5), emotions=EMOTIONS,
                    merge=None, skip_prep=False,
                    valid_from=None,
                    min_duration=MIN_DURATION,
                    keep_all_emotions=False) -> dict[str, dict]:
    """Prepare IEMOCAP train/valid/test JSON manifests.

    Writes ``train.json``, ``valid.json``, ``test.json``,
    ``prepare_summary.json`` (kept and skipped counts) and finally
    ``prepare_opts.json`` (options, absolute data folder, corpus
    fingerprint) to ``save_folder``, each atomically. Manifests are
    reused only if ``prepare_opts.json`` matches the current options and
    corpus; otherwise they are rewritten. See :func:`scan_corpus` and
    :func:`make_splits` for the parameters.

    Parameters
    ----------
    data_folder : str or pathlib.Path
        ``IEMOCAP_full_release`` or the folder that contains it.
    save_folder : str or pathlib.Path
        Where the manifests go (created if needed).
    split, test_session, test_speaker, valid_ratio, seed, valid_from
        Passed to :func:`make_splits`.
    sessions, emotions, merge, min_duration, keep_all_emotions
        Passed to :func:`scan_corpus`; with ``keep_all_emotions`` the
        splits need only hold the ``emotions`` classes, and the option
        enters ``prepare_opts.json`` (only when True, so manifests
        prepared without it stay valid).
    skip_prep : bool
        Only load existing manifests.

    Returns
    -------
    dict
        ``{"train": {...}, "valid": {...}, "test": {...}}``.

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain_grl.testing.demo_corpus import make_demo_corpus
    >>> tmp = tempfile.mkdtemp()
    >>> _ = make_demo_corpus(tmp, n_sessions=2, utts_per_speaker=20)
    >>> out = prepare_iemocap(tmp, tmp + "/manifests", sessions=[1, 2],
    ...                       test_session=2)
    >>> {k: len(v) for k, v in out.items()}
    {'train': 26, 'valid': 6, 'test': 32}
    >>> sorted(os.listdir(tmp + "/manifests"))  # doctest: +NORMALIZE_WHITESPACE
    ['prepare_opts.json', 'prepare_summary.json', 'test.json', 'train.json',
     'valid.json']
    """
    save_folder = pathlib.Path(save_folder)
    if skip_prep:
        missing = [n for n in SPLITS
                   if not (save_folder / f"{n}.json").is_file()]
        if missing:
            raise IEMOCAPError(
                f"skip_prep is set but {save_folder} lacks {missing}; "
                "set skip_prep: False to prepare the data")
        return load_manifests(save_folder)
    merge = {"exc": "hap"} if merge is None else dict(merge)
    sessions = sorted({int(s) for s in sessions})
    root = _find_root(data_folder)
    opts = {
        "data_folder": str(pathlib.Path(data_folder).resolve()),
        "split": split, "test_session": test_session,
        "test_speaker": test_speaker, "valid_ratio": valid_ratio,
        "valid_from": valid_from, "min_duration": min_duration,
        "seed": seed, "sessions": sessions,
        "emotions": list(emotions),
        "merge": dict(sorted(merge.items())),
        "fingerprint": _fingerprint(root, sessions),
    }
    if keep_all_emotions:  # stamps prepared without it stay valid
        opts["keep_all_emotions"] = True

    def build():
        """Scan the release and split it."""
        entries, summary = scan_corpus(data_folder, sessions, emotions,
                                       merge, min_duration,
                                       keep_all_emotions)
        logger.info("IEMOCAP kept %d utterances per class %s (other "
                    "classes %s); skipped %s; %d without usable V/A/D",
                    summary["kept"], summary["per_class"],
                    summary["other_classes"],
                    {k: summary[k] for k in SKIP_COUNTERS if summary[k]},
                    summary["bad_vad"])
        classes = emotions if keep_all_emotions else None
        return make_splits(entries, split, test_session, valid_ratio, seed,
                           test_speaker, valid_from, classes), summary

    return prepare_manifests(save_folder, opts, build, what="IEMOCAP")
