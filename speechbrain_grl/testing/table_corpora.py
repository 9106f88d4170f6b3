"""Synthetic corpora labelled by a table: MSP-Podcast and a user's CSV.

:func:`make_msp_podcast_corpus` writes the MSP-Podcast release layout
(``Audios/MSP-PODCAST_XXXX_YYYY.wav`` and ``Labels/labels_consensus.csv``
with the release's columns and values, see
:mod:`speechbrain_grl.dataio.msp_podcast`): every ``EmoClass`` code (so
non-target classes exist), a few clips of ``Unknown`` speakers in Train,
Train/Development/Test1/Test2 speaker-disjoint with all four target
classes in each, VAD means consistent with the emotion, unlabelled Test3
audio and macOS junk. :func:`make_csv_corpus` writes a user's own corpus:
``clips/<speaker>/<n>.wav`` and a ``data.csv`` of relative paths with
mixed-case emotion names, a non-target one (``fear``), optional columns
partly filled and a column the scanner does not know.

Utterance ``i`` of every speaker gets the label ``MSP_CODES[i % 10]``
(``CSV_EMOTIONS[i % 8]``), so counts follow from the parameters. Voices
come from :func:`~speechbrain_grl.testing.demo_corpus.make_voice` with
indices 400+ (MSP-Podcast) and 500+ (CSV), unlike the IEMOCAP demo's.
Both are cached like :func:`~speechbrain_grl.testing.demo_corpus.
make_demo_corpus`: a parameter stamp next to the corpus folder, a marker
inside it, and a folder this module did not make is never deleted.
"""

import csv

import numpy as np

from speechbrain_grl.testing.cache import start_corpus, write_stamp
from speechbrain_grl.testing.demo_corpus import (
    make_voice,
    synthesize,
    write_wav,
)

__all__ = ["MSP_RELEASE", "MSP_CODES", "MSP_UNKNOWN_CODES", "CSV_EMOTIONS",
           "msp_podcast_speakers", "make_msp_podcast_corpus",
           "make_csv_corpus"]

#: The release folder written by :func:`make_msp_podcast_corpus`.
MSP_RELEASE = "MSP-PODCAST-Publish-1.12"
#: ``EmoClass`` of each speaker's utterance ``i`` is ``MSP_CODES[i % 10]``.
MSP_CODES = ("N", "H", "A", "S", "U", "F", "D", "C", "O", "X")
#: ``EmoClass`` of the clips whose ``SpkrID`` is ``Unknown`` (in Train).
MSP_UNKNOWN_CODES = ("N", "H", "A", "S")
#: ``emotion`` of each speaker's clip ``i`` is ``CSV_EMOTIONS[i % 8]``.
CSV_EMOTIONS = ("neutral", "happy", "Angry", "sad", "fear", "Sad",
                "NEUTRAL", "Happy")
_MSP_STAMP = "msp_podcast_corpus.json"
_CSV_FOLDER = "my_corpus"
_CSV_STAMP = "csv_corpus.json"
_MARKER = ".table_corpus"
_VERSION = 1
_N_TEST3 = 2
# EmoClass: demo style, mean (arousal, valence, dominance) on 1..7
_MSP_EMOTION = {
    "N": ("neu", (3.6, 4.2, 4.0)), "H": ("hap", (4.8, 5.8, 4.6)),
    "A": ("ang", (5.8, 2.2, 5.4)), "S": ("sad", (2.4, 2.6, 3.0)),
    "U": ("xxx", (5.4, 4.8, 4.2)), "F": ("fru", (5.0, 2.6, 2.8)),
    "D": ("fru", (4.4, 2.4, 4.6)), "C": ("fru", (3.8, 2.8, 4.8)),
    "O": ("xxx", (4.0, 3.8, 4.0)), "X": ("xxx", (4.0, 3.8, 4.0)),
}
# lower-cased CSV emotion: demo style, EmoClass whose VAD means it borrows
_CSV_STYLE = {"neutral": ("neu", "N"), "happy": ("hap", "H"),
              "angry": ("ang", "A"), "sad": ("sad", "S"),
              "fear": ("fru", "F")}
_APPLEDOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + bytes(4088)


def _check(n_speakers, utts_per_speaker, sample_rate, min_speakers):
    """Raise ValueError on parameters the generators cannot honour."""
    if int(n_speakers) < min_speakers:
        raise ValueError(f"n_speakers={n_speakers}: use >= {min_speakers}")
    if int(utts_per_speaker) < 4:
        raise ValueError(f"utts_per_speaker={utts_per_speaker}: use >= 4 "
                         "so that every speaker has the four classes")
    if int(sample_rate) < 8000:
        raise ValueError(f"sample_rate={sample_rate}: use >= 8000")


def msp_podcast_speakers(n_speakers):
    """The speakers of :func:`make_msp_podcast_corpus`, in order.

    Development and Test1 get ``max(1, n_speakers // 6)`` speakers each,
    Test2 one, Train the rest; speakers alternate Female and Male.

    Parameters
    ----------
    n_speakers : int
        Speakers with a known ``SpkrID`` (at least 4).

    Returns
    -------
    list of tuple
        ``(SpkrID, Gender, Split_Set)`` per speaker.

    Example
    -------
    >>> msp_podcast_speakers(4)  # doctest: +NORMALIZE_WHITESPACE
    [('31', 'Female', 'Train'), ('48', 'Male', 'Development'),
     ('65', 'Female', 'Test1'), ('82', 'Male', 'Test2')]
    """
    n = int(n_speakers)
    held = max(1, n // 6)
    splits = (["Train"] * (n - 2 * held - 1) + ["Development"] * held
              + ["Test1"] * held + ["Test2"])
    return [(str(31 + 17 * k), "Female" if k % 2 == 0 else "Male", split)
            for k, split in enumerate(splits)]


def _vad(rng, means):
    """Return (EmoAct, EmoVal, EmoDom) as written: means of 5 to 9 raters'
    1..7 scores around ``means``, with 6 decimals at most."""
    raters = int(rng.integers(5, 10))
    scores = np.clip(np.rint(np.asarray(means)
                             + rng.normal(0.0, 0.9, (raters, 3))), 1, 7)
    return tuple(repr(round(float(x), 6)) for x in scores.mean(axis=0))


def make_msp_podcast_corpus(folder, n_speakers=6, utts_per_speaker=10,
                            sample_rate=16000, seed=0, overwrite=False):
    """Generate (or reuse) a synthetic corpus in the MSP-Podcast layout.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; the release is written to
        ``<folder>/MSP-PODCAST-Publish-1.12`` and a parameter stamp to
        ``<folder>/msp_podcast_corpus.json``.
    n_speakers : int
        Speakers with a ``SpkrID`` (at least 4; see
        :func:`msp_podcast_speakers`); four clips of ``Unknown`` speakers
        (:data:`MSP_UNKNOWN_CODES`) are added to Train.
    utts_per_speaker : int
        Clips per speaker (at least 4); clip ``i`` is labelled
        ``MSP_CODES[i % 10]``, so 10 or more give every code.
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs.
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if a corpus with the same parameters exists.

    Returns
    -------
    pathlib.Path
        The release folder (holding ``Audios/`` and ``Labels/``).

    Raises
    ------
    ValueError
        On bad parameters, or if the release folder exists but was not
        written by this function (it is never deleted then).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.mkdtemp()
    >>> root = make_msp_podcast_corpus(tmp, n_speakers=4, utts_per_speaker=4)
    >>> lines = (root / "Labels/labels_consensus.csv").read_text().split()
    >>> lines[0]
    'FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set'
    >>> lines[1].split(",")[0], len(lines)
    ('MSP-PODCAST_0001_0001.wav', 21)
    >>> make_msp_podcast_corpus(tmp, n_speakers=4, utts_per_speaker=4) == root
    True
    """
    _check(n_speakers, utts_per_speaker, sample_rate, 4)
    params = {"n_speakers": int(n_speakers),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "version": _VERSION}
    root, stamp, reuse = start_corpus(folder, MSP_RELEASE, _MSP_STAMP,
                                      params, overwrite,
                                      "make_msp_podcast_corpus", _MARKER)
    if reuse:
        return root
    sr, n_utts = params["sample_rate"], params["utts_per_speaker"]
    audios, labels = root / "Audios", root / "Labels"
    audios.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(seed)
    speakers = msp_podcast_speakers(params["n_speakers"])
    # Train speakers share podcasts in pairs (turns interleaved); the
    # held-out speakers each have their own, as the release's partitions.
    n_train = sum(s[2] == "Train" for s in speakers)
    rows, clips = [], []
    for k, (spk, gender, split) in enumerate(speakers):
        podcast = 1 + k // 2 if k < n_train else 1 + (n_train + 1) // 2 + (
            k - n_train)
        pair = k < n_train and (k ^ 1) < n_train
        voice = make_voice(rng, 400 + k, gender[0], channel_index=400 + k)
        for i in range(n_utts):
            seg = 1 + 2 * i + k % 2 if pair else 1 + i
            code = MSP_CODES[i % len(MSP_CODES)]
            rows.append((f"MSP-PODCAST_{podcast:04d}_{seg:04d}.wav", code,
                         spk, gender, split))
            clips.append(voice)
    podcast = 1 + (n_train + 1) // 2 + len(speakers) - n_train
    for j, code in enumerate(MSP_UNKNOWN_CODES):
        gender = "F" if j % 2 == 0 else "M"
        index = 400 + len(speakers) + j
        clips.append(make_voice(rng, index, gender, channel_index=index))
        rows.append((f"MSP-PODCAST_{podcast:04d}_0001_{j + 1:04d}.wav", code,
                     "Unknown", "Unknown", "Train"))
    table = []
    for (name, code, spk, gender, split), voice in zip(rows, clips):
        style, means = _MSP_EMOTION[code]
        write_wav(audios / name, synthesize(rng, voice, style, sr), sr)
        table.append([name, code, *_vad(rng, means), spk, gender, split])
    voice = make_voice(rng, 400 + len(speakers) + len(MSP_UNKNOWN_CODES),
                       "M")
    for j in range(_N_TEST3):  # Test3: audio only, no label row
        write_wav(audios / f"MSP-PODCAST_test3_{j + 1:04d}.wav",
                  synthesize(rng, voice, "neu", sr), sr)
    (audios / f"._{rows[0][0]}").write_bytes(_APPLEDOUBLE)
    (audios / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(24))
    with open(labels / "labels_consensus.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["FileName", "EmoClass", "EmoAct", "EmoVal",
                         "EmoDom", "SpkrID", "Gender", "Split_Set"])
        writer.writerows(sorted(table))
    write_stamp(stamp, params)
    return root


def make_csv_corpus(folder, n_speakers=4, utts_per_speaker=8,
                    sample_rate=16000, seed=0, overwrite=False):
    """Generate (or reuse) a user's own corpus listed in a CSV.

    Writes ``<folder>/my_corpus/clips/spkNN/<n>.wav`` and
    ``<folder>/my_corpus/data.csv`` (with a byte-order mark, as Excel
    saves it) whose columns are ``speaker, wav, emotion, notes, gender,
    group, duration, valence, arousal, dominance``: ``wav`` relative to
    the CSV, ``emotion`` from :data:`CSV_EMOTIONS` (``fear`` is no target
    class), ``notes`` a column scanners ignore, ``gender`` written as
    ``female``/``Male``/``F``/``m``, ``group`` ``studio`` for the first
    half of the speakers and ``phone`` for the rest, ``duration`` filled
    on even clips only, VAD on a 1..5 scale.

    Parameters
    ----------
    folder : str or pathlib.Path
        Parent folder; a parameter stamp goes to
        ``<folder>/csv_corpus.json``.
    n_speakers : int
        Speakers ``spk01``, ``spk02``, ... (at least 2), alternately
        female and male.
    utts_per_speaker : int
        Clips per speaker (at least 4); clip ``i`` is labelled
        ``CSV_EMOTIONS[i % 8]``.
    sample_rate : int
        Sample rate of the 16-bit PCM mono wavs.
    seed : int
        Seed; the same parameters give byte-identical files.
    overwrite : bool
        Regenerate even if a corpus with the same parameters exists.

    Returns
    -------
    pathlib.Path
        The CSV file.

    Raises
    ------
    ValueError
        On bad parameters, or if ``my_corpus`` exists but was not written
        by this function (it is never deleted then).

    Example
    -------
    >>> import tempfile
    >>> path = make_csv_corpus(tempfile.mkdtemp(), n_speakers=2,
    ...                        utts_per_speaker=4)
    >>> lines = path.read_text(encoding="utf-8-sig").splitlines()
    >>> lines[0]
    'speaker,wav,emotion,notes,gender,group,duration,valence,arousal,dominance'
    >>> lines[1].split(",")[:3], len(lines)
    (['spk01', 'clips/spk01/1.wav', 'neutral'], 9)
    """
    _check(n_speakers, utts_per_speaker, sample_rate, 2)
    params = {"n_speakers": int(n_speakers),
              "utts_per_speaker": int(utts_per_speaker),
              "sample_rate": int(sample_rate), "seed": int(seed),
              "version": _VERSION}
    root, stamp, reuse = start_corpus(folder, _CSV_FOLDER, _CSV_STAMP,
                                      params, overwrite, "make_csv_corpus",
                                      _MARKER)
    path = root / "data.csv"
    if reuse:
        return path
    sr, n = params["sample_rate"], params["n_speakers"]
    rng = np.random.default_rng(seed)
    table = []
    for k in range(n):
        spk = f"spk{k + 1:02d}"
        voice = make_voice(rng, 500 + k, "FM"[k % 2], channel_index=500 + k)
        (root / "clips" / spk).mkdir(parents=True)
        for i in range(params["utts_per_speaker"]):
            emotion = CSV_EMOTIONS[i % len(CSV_EMOTIONS)]
            style, code = _CSV_STYLE[emotion.lower()]
            signal = synthesize(rng, voice, style, sr)
            rel = f"clips/{spk}/{i + 1}.wav"
            write_wav(root / rel, signal, sr)
            act, val, dom = _MSP_EMOTION[code][1]
            vad = [f"{1.0 + (x - 1.0) * 4.0 / 6.0 + rng.normal(0, 0.2):.2f}"
                   for x in (val, act, dom)]
            table.append([
                spk, rel, emotion, f"take {i + 1}",
                ("female", "Male", "F", "m")[k % 4],
                "studio" if k < n / 2 else "phone",
                f"{len(signal) / sr:.4f}" if i % 2 == 0 else "", *vad])
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["speaker", "wav", "emotion", "notes", "gender",
                         "group", "duration", "valence", "arousal",
                         "dominance"])
        writer.writerows(table)
    write_stamp(stamp, params)
    return path
