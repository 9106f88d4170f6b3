"""Synthetic acted corpora in the exact CREMA-D, RAVDESS and EmoDB release
layouts, for tests and demos (no data, no network).

Each generator writes real file names (real actor ids and speaker codes,
sentence and statement codes, every native emotion, so dropped classes
exist) with genders as in the real corpus, plus the release's clutter:
AppleDouble ``._*`` files and ``.DS_Store`` in the audio folders, EmoDB's
label folders, CREMA-D's ``VideoDemographics.csv`` and its broken clips.
Voices come from :func:`~.demo_corpus.make_voice` with speaker and
channel indices 100+ (CREMA-D), 200+ (RAVDESS) and 300+ (EmoDB), away
from the IEMOCAP demo's 0..9, and every emotion is said in the demo's
style for it (fear and disgust as ``fru``, calm, boredom and surprise as
``xxx``), so a model trained on the demo can be tried on them zero-shot.

The same parameters give byte-identical files; a corpus is reused while
the parameter stamp ``<folder>/<corpus>_corpus.json`` matches, and a
release folder this module did not write is never deleted.
"""

import csv
import io

import numpy as np

from speechbrain_grl.testing.cache import start_corpus, write_stamp
from speechbrain_grl.testing.demo_corpus import (
    make_voice,
    synthesize,
    write_wav,
)

__all__ = ["make_crema_d_corpus", "make_ravdess_corpus", "make_emodb_corpus"]

_VERSION = 1
_MARKER = ".acted_corpus"
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(4088)
_DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(24)

# CREMA-D: the Sex column of VideoDemographics.csv, actors 1001..1091.
_CREMA_SEX = ("MFFFMFFFFFMFFMMMMFMFFMMFFMMFFFMMMMMMFMMMMMFMMFFMFMMFFFFF"
              "MFMFFMFMMMMMMMMFFFFFMFFMMFMFMMMMFMF")
_CREMA_EMOS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
_CREMA_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH",
                    "DFA", "ITS", "TSI", "WSI")
_CREMA_STYLE = {"ANG": "ang", "DIS": "fru", "FEA": "fru", "HAP": "hap",
                "NEU": "neu", "SAD": "sad"}
_CREMA_LEVEL = {"LO": 0.6, "MD": 0.8, "HI": 1.0, "XX": 1.0}
# 1076_MTI_SAD_XX.wav is 82260 bytes of silence in the release.
_CREMA_SILENT_SECONDS = 41108 / 16000

_RAVDESS_STYLE = {"01": "neu", "02": "xxx", "03": "hap", "04": "sad",
                  "05": "ang", "06": "fru", "07": "fru", "08": "xxx"}
_RAVDESS_SONG_EMOS = ("01", "02", "03", "04", "05", "06")

_EMODB_SPEAKERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M",
                   "12": "M", "13": "F", "14": "F", "15": "M", "16": "F"}
_EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03",
                "b09", "b10")
_EMODB_STYLE = {"W": "ang", "L": "xxx", "E": "fru", "A": "fru", "F": "hap",
                "T": "sad", "N": "neu"}


def _check(n_speakers, max_speakers, utts, max_utts, sample_rate):
    """Validate the common generator parameters.

    Parameters
    ----------
    n_speakers, max_speakers : int
        Speakers asked for and the corpus's number of speakers.
    utts, max_utts : int
        Clips per speaker asked for and the most the layout names.
    sample_rate : int
        The sample rate asked for.

    Raises
    ------
    ValueError
        On a value out of range.
    """
    if not 1 <= int(n_speakers) <= max_speakers:
        raise ValueError(f"n_speakers={n_speakers}: use 1 to {max_speakers}")
    if not 1 <= int(utts) <= max_utts:
        raise ValueError(f"utts_per_speaker={utts}: use 1 to {max_utts}")
    if int(sample_rate) < 8000:
        raise ValueError(f"sample_rate={sample_rate}: use 8000 or more")


def _clutter(folder, first):
    """Write an AppleDouble twin of ``first`` and a ``.DS_Store``.

    Parameters
    ----------
    folder : pathlib.Path
        An audio folder.
    first : str
        A clip's file name.
    """
    (folder / f"._{first}").write_bytes(_APPLEDOUBLE)
    (folder / ".DS_Store").write_bytes(_DS_STORE)


def _crema_actors(n):
    """The first ``n`` CREMA-D actors, alternately female and male.

    Parameters
    ----------
    n : int
        How many.

    Returns
    -------
    list of tuple
        ``(actor id, "F" | "M")``.
    """
    ids = {g: [str(1001 + i) for i, s in enumerate(_CREMA_SEX) if s == g]
           for g in "FM"}
    pairs = [(a, g) for k in range(max(map(len, ids.values())))
             for g in "FM" if k < len(ids[g]) for a in [ids[g][k]]]
    return pairs[:n]


def make_crema_d_corpus(folder, n_speakers=6, utts_per_speaker=12,
                        sample_rate=16000, seed=0, overwrite=False,
                        broken_clip=True):
    """Generate (or reuse) a synthetic corpus in the CREMA-D layout.

    Writes ``<folder>/CREMA-D/AudioWAV/<actor>_<sentence>_<emo>_<level>
    .wav`` and ``VideoDemographics.csv`` (all 91 actors, the real Sex
    column; age, race and ethnicity are placeholders). Actors are the real
    ids taken alternately female and male (1002 F, 1001 M, 1003 F, 1005 M,
    ...). Clip ``k`` of an actor has emotion ``k % 6`` of ANG DIS FEA HAP
    NEU SAD and one of two sentences per six clips, so each emotion gets
    ``utts_per_speaker // 6`` clips or one more; sentence IEO has levels
    LO, MD or HI (said 0.6, 0.8 or 1 times as strongly), the others XX.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; the stamp is ``<folder>/crema_d_corpus.json``.
    n_speakers : int
        Actors, 1 to 91.
    utts_per_speaker : int
        Clips per actor, 1 to 72 (6 emotions x 12 sentences).
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs.
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if the stamp matches.
    broken_clip : bool
        Also write the release's broken clips of actor 1076 (CREMA-D
        issue #8): ``1076_MTI_SAD_XX.wav`` as 2.57 s of silence and
        ``1076_MTI_NEU_XX.wav`` as an empty (zero-byte) file.

    Returns
    -------
    pathlib.Path
        The ``CREMA-D`` folder, to pass as ``data_folder``.

    Raises
    ------
    ValueError
        On bad parameters, or if ``CREMA-D`` exists but was not written
        by this function.

    Example
    -------
    >>> root = make_crema_d_corpus(getfixture("tmp_path"), n_speakers=2)
    >>> names = sorted(p.name for p in (root / "AudioWAV").iterdir())
    >>> names[:3], len(names)
    (['.DS_Store', '._1001_IWL_ANG_XX.wav', '1001_IWL_ANG_XX.wav'], 28)
    >>> rows = (root / "VideoDemographics.csv").read_text().splitlines()
    >>> rows[0]
    '"ActorID","Age","Sex","Race","Ethnicity"'
    >>> len(rows) - 1
    91
    """
    _check(n_speakers, len(_CREMA_SEX), utts_per_speaker,
           len(_CREMA_EMOS) * len(_CREMA_SENTENCES), sample_rate)
    params = {"n_speakers": int(n_speakers),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "broken_clip": bool(broken_clip), "version": _VERSION}
    root, stamp, reuse = start_corpus(
        folder, "CREMA-D", "crema_d_corpus.json", params, overwrite,
        "make_crema_d_corpus", _MARKER)
    if reuse:
        return root
    sr = int(sample_rate)
    audio = root / "AudioWAV"
    audio.mkdir()
    names = []
    for i, (actor, gender) in enumerate(_crema_actors(int(n_speakers))):
        rng = np.random.default_rng([int(seed), 1, int(actor)])
        voice = make_voice(rng, 100 + i, gender, channel_index=100 + i)
        for k in range(int(utts_per_speaker)):
            emo = _CREMA_EMOS[k % 6]
            sentence = _CREMA_SENTENCES[(k // 6 + 5 * i) % 12]
            level = "XX"
            if sentence == "IEO" and emo != "NEU":
                level = ("LO", "MD", "HI")[(i + k // 6) % 3]
            name = f"{actor}_{sentence}_{emo}_{level}.wav"
            signal = synthesize(rng, voice, _CREMA_STYLE[emo], sr,
                                _CREMA_LEVEL[level])
            write_wav(audio / name, signal, sr)
            names.append(name)
    if broken_clip:
        silent = np.zeros(int(round(_CREMA_SILENT_SECONDS * sr)))
        write_wav(audio / "1076_MTI_SAD_XX.wav", silent, sr)
        (audio / "1076_MTI_NEU_XX.wav").write_bytes(b"")
    _clutter(audio, min(names))
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_NONNUMERIC,
                        lineterminator="\n")
    writer.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
    for i, sex in enumerate(_CREMA_SEX):
        writer.writerow([1001 + i, 20 + (i * 31 + 30) % 50,
                         "Male" if sex == "M" else "Female", "Unknown",
                         "Not Hispanic"])
    (root / "VideoDemographics.csv").write_text(text.getvalue())
    write_stamp(stamp, params)
    return root


def _ravdess_design(emotions, neutral="01"):
    """Interleave a RAVDESS actor's trials so emotions take turns.

    Parameters
    ----------
    emotions : sequence of str
        The emotion codes of the channel (speech 01..08, song 01..06).
    neutral : str
        The code said at normal intensity only.

    Returns
    -------
    list of tuple
        ``(emotion, intensity, statement, repetition)`` codes: round
        ``j`` gives each emotion its ``j``-th trial (neutral has 4, the
        others 8), so the first ``n`` trials spread evenly.
    """
    trials = {}
    for emo in emotions:
        out = []
        for rep in ("01", "02"):
            for statement in ("01", "02"):
                for intensity in ("01",) if emo == neutral else ("01", "02"):
                    out.append((emo, intensity, statement, rep))
        trials[emo] = out
    return [trials[e][j] for j in range(8) for e in emotions
            if j < len(trials[e])]


def make_ravdess_corpus(folder, n_speakers=4, utts_per_speaker=16,
                        sample_rate=16000, seed=0, overwrite=False,
                        song=True):
    """Generate (or reuse) a synthetic corpus in the RAVDESS layout.

    Writes ``<folder>/RAVDESS/Actor_NN/03-0C-EE-II-SS-RR-NN.wav``: actors
    01.. (odd male, even female), audio-only (03) speech (01) trials of
    all 8 emotions taking turns (neutral at normal intensity only), and
    with ``song`` the song (02) trials of emotions 01..06 in the same
    Actor folders, as when both archives (Audio_Speech_Actors_01-24.zip,
    Audio_Song_Actors_01-24.zip) are unzipped into one folder. Actor 18
    has no song, as in the release. Normal intensity is said 0.8 times as
    strongly as strong.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; the stamp is ``<folder>/ravdess_corpus.json``.
    n_speakers : int
        Actors, 1 to 24.
    utts_per_speaker : int
        Speech trials per actor, 1 to 60; with 16 each emotion gets 2.
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs (the release has 48 kHz).
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if the stamp matches.
    song : bool
        Also write ``min(44, utts_per_speaker * 3 // 4)`` song trials per
        actor (12, 2 per emotion, by default).

    Returns
    -------
    pathlib.Path
        The ``RAVDESS`` folder (holding ``Actor_NN``), to pass as
        ``data_folder``.

    Raises
    ------
    ValueError
        On bad parameters, or if ``RAVDESS`` exists but was not written by
        this function.

    Example
    -------
    >>> root = make_ravdess_corpus(getfixture("tmp_path"), n_speakers=2)
    >>> sorted(p.name for p in root.iterdir() if p.is_dir())
    ['Actor_01', 'Actor_02']
    >>> for name in sorted(p.name for p in (root / "Actor_02").iterdir())[:3]:
    ...     print(name)
    03-01-01-01-01-01-02.wav
    03-01-01-01-02-01-02.wav
    03-01-02-01-01-01-02.wav
    """
    _check(n_speakers, 24, utts_per_speaker, 60, sample_rate)
    params = {"n_speakers": int(n_speakers),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "song": bool(song), "version": _VERSION}
    root, stamp, reuse = start_corpus(
        folder, "RAVDESS", "ravdess_corpus.json", params, overwrite,
        "make_ravdess_corpus", _MARKER)
    if reuse:
        return root
    sr = int(sample_rate)
    speech = _ravdess_design(tuple(_RAVDESS_STYLE))
    sung = _ravdess_design(_RAVDESS_SONG_EMOS)
    n_song = min(len(sung), int(utts_per_speaker) * 3 // 4) if song else 0
    for actor in range(1, int(n_speakers) + 1):
        gender = "M" if actor % 2 else "F"
        rng = np.random.default_rng([int(seed), 2, actor])
        voice = make_voice(rng, 200 + actor, gender,
                           channel_index=200 + actor)
        audio = root / f"Actor_{actor:02d}"
        audio.mkdir()
        trials = [("01", t) for t in speech[:int(utts_per_speaker)]]
        if actor != 18:
            trials += [("02", t) for t in sung[:n_song]]
        names = []
        for channel, (emo, intensity, statement, rep) in trials:
            name = (f"03-{channel}-{emo}-{intensity}-{statement}-{rep}-"
                    f"{actor:02d}.wav")
            signal = synthesize(rng, voice, _RAVDESS_STYLE[emo], sr,
                                1.0 if intensity == "02" else 0.8)
            write_wav(audio / name, signal, sr)
            names.append(name)
        if actor == 1:
            _clutter(audio, min(names))
    write_stamp(stamp, params)
    return root


def make_emodb_corpus(folder, n_speakers=4, utts_per_speaker=14,
                      sample_rate=16000, seed=0, overwrite=False):
    """Generate (or reuse) a synthetic corpus in the EmoDB layout.

    Writes ``<folder>/EmoDB/wav/<speaker><text><emotion><version>.wav``
    as ``download.zip`` unpacks, with ``erkennung.txt``,
    ``erklaerung.txt`` and the label folders ``lablaut``, ``labsilb`` and
    ``silb`` (placeholders). Speakers are the real codes in order (03 M,
    08 F, 09 F, 10 M, 11 M, 12 M, 13 F, 14 F, 15 M, 16 F); clip ``k`` of
    a speaker has emotion ``k % 7`` of W L E A F T N, a text code that
    changes every 7 clips and a version letter a..d, so each emotion gets
    ``utts_per_speaker // 7`` clips or one more.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; the stamp is ``<folder>/emodb_corpus.json``.
    n_speakers : int
        Speakers, 1 to 10.
    utts_per_speaker : int
        Clips per speaker, 1 to 70 (7 emotions x 10 texts).
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs (the release has 16 kHz).
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if the stamp matches.

    Returns
    -------
    pathlib.Path
        The ``EmoDB`` folder (holding ``wav``), to pass as ``data_folder``.

    Raises
    ------
    ValueError
        On bad parameters, or if ``EmoDB`` exists but was not written by
        this function.

    Example
    -------
    >>> root = make_emodb_corpus(getfixture("tmp_path"), n_speakers=1)
    >>> sorted(p.name for p in root.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['.acted_corpus', 'erkennung.txt', 'erklaerung.txt', 'lablaut',
     'labsilb', 'silb', 'wav']
    >>> sorted(p.name for p in (root / "wav").glob("03*.wav"))[:3]
    ['03a01Ad.wav', '03a01Ec.wav', '03a01Fa.wav']
    """
    _check(n_speakers, len(_EMODB_SPEAKERS), utts_per_speaker,
           len(_EMODB_STYLE) * len(_EMODB_TEXTS), sample_rate)
    params = {"n_speakers": int(n_speakers),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "version": _VERSION}
    root, stamp, reuse = start_corpus(
        folder, "EmoDB", "emodb_corpus.json", params, overwrite,
        "make_emodb_corpus", _MARKER)
    if reuse:
        return root
    sr = int(sample_rate)
    audio = root / "wav"
    audio.mkdir()
    stems = []
    letters = tuple(_EMODB_STYLE)
    speakers = list(_EMODB_SPEAKERS.items())[:int(n_speakers)]
    for i, (speaker, gender) in enumerate(speakers):
        rng = np.random.default_rng([int(seed), 3, int(speaker)])
        voice = make_voice(rng, 300 + i, gender, channel_index=300 + i)
        for k in range(int(utts_per_speaker)):
            emo = letters[k % 7]
            text = _EMODB_TEXTS[(k // 7 + i) % 10]
            stem = f"{speaker}{text}{emo}{'abcd'[(k + i) % 4]}"
            signal = synthesize(rng, voice, _EMODB_STYLE[emo], sr)
            write_wav(audio / f"{stem}.wav", signal, sr)
            stems.append(stem)
    _clutter(audio, f"{min(stems)}.wav")
    rows = ["Satz\terkannt"] + [f"{s}.wav\t{90 - k % 15},0"
                                for k, s in enumerate(sorted(stems))]
    (root / "erkennung.txt").write_bytes(
        ("\r\n".join(rows) + "\r\n").encode("latin-1"))
    (root / "erklaerung.txt").write_bytes(
        "Erklärung der Dateinamen (synthetisch)\r\n".encode("latin-1"))
    for sub in ("lablaut", "labsilb", "silb"):
        (root / sub).mkdir()
        for stem in sorted(stems)[:2]:
            (root / sub / f"{stem}.lab").write_text(
                f"signal {stem}\nnfields 1\n#\n    0.100000 121 a\n")
    write_stamp(stamp, params)
    return root
