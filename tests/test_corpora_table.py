"""Tests for the table-labelled corpora: MSP-Podcast and a user's CSV
(scanners and synthetic generators)."""

import collections
import csv
import logging
import os

import pytest
import soundfile as sf

from speechbrain_grl.dataio.csv_corpus import csv_files, scan_csv
from speechbrain_grl.dataio.labels import EMOTIONS
from speechbrain_grl.dataio.manifests import CLIP_COUNTERS, PrepareError
from speechbrain_grl.dataio.msp_podcast import (
    COLUMNS,
    msp_podcast_files,
    scan_msp_podcast,
)
from speechbrain_grl.testing.table_corpora import (
    CSV_EMOTIONS,
    MSP_CODES,
    MSP_UNKNOWN_CODES,
    make_csv_corpus,
    make_msp_podcast_corpus,
    msp_podcast_speakers,
)

MSP_CLASS = {"N": "neu", "H": "hap", "A": "ang", "S": "sad"}
CSV_CLASS = {"neutral": "neu", "happy": "hap", "angry": "ang", "sad": "sad"}


def _rows(path):
    """The rows of a CSV as dicts (BOM eaten)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _write(path, header, rows):
    """Write a CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _one_line_error(func, *args):
    """Call ``func`` and return its PrepareError message (one line)."""
    with pytest.raises(PrepareError) as err:
        func(*args)
    message = str(err.value)
    assert "\n" not in message and message
    return message


# --------------------------------------------------------------- MSP-Podcast

def test_msp_podcast_counts_speakers_and_values(tmp_path):
    n_spk, n_utts = 6, 12
    root = make_msp_podcast_corpus(tmp_path, n_speakers=n_spk,
                                   utts_per_speaker=n_utts)
    entries, summary = scan_msp_podcast(root)
    # kept per class, derived from the generator's label cycle
    codes = [MSP_CODES[i % len(MSP_CODES)] for i in range(n_utts)] * n_spk
    codes += MSP_UNKNOWN_CODES
    expected = collections.Counter(MSP_CLASS[c] for c in codes
                                   if c in MSP_CLASS)
    assert summary["per_class"] == {e: expected[e] for e in EMOTIONS}
    assert summary["per_class"] == {"neu": 13, "hap": 13, "ang": 7,
                                    "sad": 7}
    assert summary["kept"] == len(entries) == 40
    # non-target codes dropped and counted per code, none unknown
    assert summary["dropped_codes"] == {c: n_spk for c in "CDFOUX"}
    assert summary["dropped_label"] == 6 * n_spk
    assert summary["unknown_label"] == 0
    assert summary["unknown_codes"] == {}
    for key in CLIP_COUNTERS + ("duplicate_id", "bad_row"):
        assert summary[key] == 0, key
    assert summary["junk_files"] == 2  # ._*.wav and .DS_Store
    assert summary["unlabelled_wav"] == 2  # Test3 audio
    # true speakers; Unknown speakers kept and counted
    speakers = msp_podcast_speakers(n_spk)
    kept = sum(MSP_CODES[i % len(MSP_CODES)] in MSP_CLASS
               for i in range(n_utts))
    assert kept == 6
    per_spk = {spk: kept for spk, _, _ in speakers}
    per_spk["Unknown"] = len(MSP_UNKNOWN_CODES)
    assert summary["per_speaker"] == dict(sorted(per_spk.items()))
    assert summary["unknown_speaker"] == 4
    # gender, split and VAD as written in the table
    table = {r["FileName"][:-4]: r for r in
             _rows(root / "Labels/labels_consensus.csv")}
    assert list(_rows(root / "Labels/labels_consensus.csv")[0]) == list(
        COLUMNS)
    info = {spk: (gender[0], split) for spk, gender, split in speakers}
    for utt, entry in entries.items():
        row = table[utt]
        assert entry["wav"] == f"{{data_root}}/Audios/{utt}.wav"
        assert entry["spk_id"] == row["SpkrID"]
        assert entry["split_set"] == row["Split_Set"]
        assert entry["emo"] == MSP_CLASS[row["EmoClass"]]
        assert (entry["valence"], entry["arousal"], entry["dominance"]) == (
            float(row["EmoVal"]), float(row["EmoAct"]), float(row["EmoDom"]))
        if entry["spk_id"] == "Unknown":
            assert "gender" not in entry and entry["split_set"] == "Train"
        else:
            assert (entry["gender"], entry["split_set"]) == info[
                entry["spk_id"]]
        wav = root / "Audios" / f"{utt}.wav"
        frames = sf.info(str(wav)).frames
        assert entry["duration"] == round(frames / 16000, 4)
    # Train, Development, Test1 (and Test2) are speaker-disjoint, and each
    # split has all four classes
    by_split = collections.defaultdict(set)
    classes = collections.defaultdict(set)
    for entry in entries.values():
        if entry["spk_id"] != "Unknown":
            by_split[entry["split_set"]].add(entry["spk_id"])
        classes[entry["split_set"]].add(entry["emo"])
    assert sorted(by_split) == ["Development", "Test1", "Test2", "Train"]
    names = sorted(by_split)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not by_split[a] & by_split[b], (a, b)
    assert all(classes[s] == set(EMOTIONS) for s in names)

    # VAD follows the emotion
    def mean(emo, key):
        values = [e[key] for e in entries.values() if e["emo"] == emo]
        return sum(values) / len(values)

    assert mean("ang", "arousal") > mean("neu", "arousal") > mean(
        "sad", "arousal")
    assert mean("hap", "valence") > mean("neu", "valence") > mean(
        "ang", "valence")
    # every EmoClass code is in the table
    assert {r["EmoClass"] for r in table.values()} == set(MSP_CODES)


def test_msp_podcast_skips_are_counted(tmp_path, caplog):
    root = make_msp_podcast_corpus(tmp_path, n_speakers=4,
                                   utts_per_speaker=4)
    audios, labels = root / "Audios", root / "Labels/labels_consensus.csv"
    (audios / "MSP-PODCAST_0002_0001.wav").unlink()  # Development N
    (audios / "MSP-PODCAST_0002_0002.wav").write_bytes(b"")  # H: empty
    (audios / "MSP-PODCAST_0002_0003.wav").write_bytes(b"junk" * 40)
    rows = _rows(labels)
    bad = dict(rows[0], FileName="MSP-PODCAST_0009_0001.wav", EmoVal="n/a")
    unknown = dict(rows[1], FileName="MSP-PODCAST_0009_0002.wav",
                   EmoClass="Z")
    _write(labels, COLUMNS, [list(r.values()) for r in
                             rows + [rows[2], bad, unknown]])
    with caplog.at_level(logging.WARNING):
        entries, summary = scan_msp_podcast(root)
    assert summary["missing_wav"] == 1
    assert summary["empty_wav"] == 1
    assert summary["unreadable_wav"] == 1
    assert summary["duplicate_id"] == 1
    assert summary["bad_row"] == 1
    assert summary["unknown_codes"] == {"Z": 1}
    assert summary["kept"] == 4 * 4 + 4 - 3
    line = len(rows) + 3  # header, rows, the duplicate, then the bad row
    assert any(f"line {line}" in r.getMessage() for r in caplog.records)
    # the fingerprint lists every row's audio, the missing one too
    files = msp_podcast_files(root)
    assert files[0] == labels
    assert audios / "MSP-PODCAST_0002_0001.wav" in files
    assert len(files) == 1 + len(rows) + 2
    # releases up to 1.8 spelled the table labels_concensus.csv
    labels.rename(labels.with_name("labels_concensus.csv"))
    assert scan_msp_podcast(root)[1]["kept"] == summary["kept"]


def test_msp_podcast_mapping_keeps_more_classes(tmp_path):
    root = make_msp_podcast_corpus(tmp_path, n_speakers=4,
                                   utts_per_speaker=5)
    mapping = dict(MSP_CLASS, U="sur")
    entries, summary = scan_msp_podcast(root, mapping=mapping,
                                        emotions=EMOTIONS + ("sur",))
    assert summary["per_class"] == {"neu": 5, "hap": 5, "ang": 5, "sad": 5,
                                    "sur": 4}
    assert summary["dropped_label"] == 0


def test_msp_podcast_bad_inputs(tmp_path):
    missing = tmp_path / "nowhere"
    assert str(missing) in _one_line_error(scan_msp_podcast, missing)
    empty = tmp_path / "empty"
    (empty / "Audios").mkdir(parents=True)
    message = _one_line_error(scan_msp_podcast, empty)
    assert "labels_consensus.csv" in message
    _one_line_error(msp_podcast_files, empty)
    no_audio = tmp_path / "no_audio"
    (no_audio / "Labels").mkdir(parents=True)
    _write(no_audio / "Labels/labels_consensus.csv", COLUMNS, [])
    assert "Audios" in _one_line_error(scan_msp_podcast, no_audio)
    root = make_msp_podcast_corpus(tmp_path / "c", n_speakers=4,
                                   utts_per_speaker=4)
    labels = root / "Labels/labels_consensus.csv"
    rows = _rows(labels)
    columns = [c for c in COLUMNS if c != "SpkrID"]
    _write(labels, columns, [[r[c] for c in columns] for r in rows])
    message = _one_line_error(scan_msp_podcast, root)
    assert "'SpkrID'" in message and str(labels) in message


def test_msp_podcast_generator_cache(tmp_path):
    root = make_msp_podcast_corpus(tmp_path, n_speakers=4,
                                   utts_per_speaker=4)
    wav = root / "Audios/MSP-PODCAST_0001_0001.wav"
    mtime = wav.stat().st_mtime_ns
    again = make_msp_podcast_corpus(tmp_path, n_speakers=4,
                                    utts_per_speaker=4)
    assert again == root and wav.stat().st_mtime_ns == mtime
    other = make_msp_podcast_corpus(tmp_path / "b", n_speakers=4,
                                    utts_per_speaker=4)
    assert (other / wav.relative_to(root)).read_bytes() == wav.read_bytes()
    assert (root / "Audios/._MSP-PODCAST_0001_0001.wav").is_file()
    foreign = tmp_path / "f" / root.name
    foreign.mkdir(parents=True)
    with pytest.raises(ValueError, match="not made by"):
        make_msp_podcast_corpus(tmp_path / "f", n_speakers=4,
                                utts_per_speaker=4)
    assert foreign.is_dir()


# ----------------------------------------------------------------- user CSV

def test_csv_corpus_scan(tmp_path, caplog):
    n_spk, n_utts = 4, 8
    path = make_csv_corpus(tmp_path, n_speakers=n_spk,
                           utts_per_speaker=n_utts)
    with caplog.at_level(logging.INFO):
        entries, summary = scan_csv(path)
    names = [CSV_EMOTIONS[i % len(CSV_EMOTIONS)].lower()
             for i in range(n_utts)] * n_spk
    expected = collections.Counter(CSV_CLASS[n] for n in names
                                   if n in CSV_CLASS)
    assert summary["per_class"] == {e: expected[e] for e in EMOTIONS}
    assert summary["per_class"] == {"neu": 8, "hap": 8, "ang": 4, "sad": 8}
    assert summary["unknown_codes"] == {"fear": n_spk}
    assert summary["unknown_label"] == n_spk
    assert summary["per_speaker"] == {f"spk0{k}": 7 for k in range(1, 5)}
    assert summary["per_group"] == {"phone": 14, "studio": 14}
    for key in CLIP_COUNTERS + ("duplicate_id", "bad_row"):
        assert summary[key] == 0, key
    fear = [r for r in caplog.records if r.levelno == logging.WARNING
            and "'fear'" in r.getMessage()]
    assert len(fear) == 1
    assert any("notes" in r.getMessage() for r in caplog.records)
    for row in _rows(path):
        utt = row["wav"][:-4].replace("/", "_")
        if row["emotion"] == "fear":
            assert utt not in entries
            continue
        entry = entries[utt]
        assert entry["wav"] == str(path.parent / row["wav"])
        assert os.path.isabs(entry["wav"])
        assert entry["spk_id"] == row["speaker"]
        assert entry["gender"] == row["gender"][0].upper()
        assert entry["group"] == row["group"]
        assert "notes" not in entry
        for key in ("valence", "arousal", "dominance"):
            assert entry[key] == float(row[key])
        frames = sf.info(entry["wav"]).frames
        assert entry["duration"] == pytest.approx(frames / 16000, abs=1e-4)
        if row["duration"]:
            assert entry["duration"] == float(row["duration"])
    files = csv_files(path)
    assert files[0] == path and len(files) == 1 + n_spk * n_utts
    assert files[1] == path.parent / "clips/spk01/1.wav"


def test_csv_corpus_bad_rows(tmp_path, caplog):
    path = make_csv_corpus(tmp_path, n_speakers=2, utts_per_speaker=4)
    clips = path.parent / "clips"
    lists = tmp_path / "lists"
    lists.mkdir()
    own = lists / "mine.csv"
    absolute = str(clips / "spk02" / "2.wav")
    rows = [
        ["../my_corpus/clips/spk01/1.wav", "Neutral", "a", "FEMALE", "", ""],
        [absolute, "HAPPY", "b", "x", "", "0.5"],
        ["../my_corpus/clips/spk01/9.wav", "sad", "a", "", "", ""],
        ["../my_corpus/clips/spk01/8.wav", "sad", "a", "", "1.5", ""],
        ["../my_corpus/clips/spk01/2.wav", "happy", "a", "", "", "high"],
        ["../my_corpus/clips/spk01/3.wav", "angry", "a", "", "abc", ""],
        ["../my_corpus/clips/spk01/4.wav", "sad", "", "", "", ""],
        ["../my_corpus/clips/spk01/1.wav", "sad", "a", "", "", ""],
        ["../my_corpus/clips/spk02/1.wav", "fear", "b", "", "", ""],
        ["../my_corpus/clips/spk02/3.wav", "Fear", "b", "", "", ""],
        ["../my_corpus/clips/spk02/4.wav", "bored", "b", "", "", ""],
    ]
    _write(own, ["Wav", "Emotion", "Speaker", "Gender", "duration",
                 "valence"], rows)
    with caplog.at_level(logging.WARNING):
        entries, summary = scan_csv(own)
    assert summary["missing_wav"] == 2  # with and without a duration
    assert summary["bad_row"] == 3  # valence, duration, empty speaker
    assert summary["duplicate_id"] == 1
    assert summary["unknown_codes"] == {"bored": 1, "fear": 2}
    assert summary["kept"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("line 4" in m and "9.wav" in m for m in messages)  # missing
    assert any("line 6" in m for m in messages)  # bad valence
    assert sum("'fear'" in m for m in messages) == 1
    first = entries[f"{tmp_path.as_posix().lstrip('/')}".replace("/", "_")
                    + "_my_corpus_clips_spk01_1"]
    assert first["wav"] == str(clips / "spk01" / "1.wav")
    assert (first["emo"], first["spk_id"], first["gender"]) == (
        "neu", "a", "F")
    second = [e for e in entries.values() if e["spk_id"] == "b"][0]
    assert second["wav"] == absolute and "gender" not in second
    assert second["valence"] == 0.5


def test_csv_corpus_bad_inputs(tmp_path):
    missing = tmp_path / "none.csv"
    assert str(missing) in _one_line_error(scan_csv, missing)
    no_speaker = tmp_path / "a.csv"
    _write(no_speaker, ["wav", "emotion"], [["x.wav", "sad"]])
    message = _one_line_error(scan_csv, no_speaker)
    assert "'speaker'" in message and str(no_speaker) in message
    header_only = tmp_path / "b.csv"
    _write(header_only, ["wav", "emotion", "speaker"], [])
    assert "no clips" in _one_line_error(scan_csv, header_only)
    empty = tmp_path / "c.csv"
    empty.write_text("")
    assert "'wav'" in _one_line_error(scan_csv, empty)
    _one_line_error(csv_files, header_only)


def test_csv_generator_cache(tmp_path):
    path = make_csv_corpus(tmp_path, n_speakers=2, utts_per_speaker=4)
    mtime = path.stat().st_mtime_ns
    assert make_csv_corpus(tmp_path, n_speakers=2,
                           utts_per_speaker=4) == path
    assert path.stat().st_mtime_ns == mtime
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's BOM
    other = make_csv_corpus(tmp_path / "b", n_speakers=2,
                            utts_per_speaker=4, seed=1)
    wav = "clips/spk01/1.wav"
    assert (other.parent / wav).read_bytes() != (
        path.parent / wav).read_bytes()
    again = make_csv_corpus(tmp_path, n_speakers=3, utts_per_speaker=4)
    assert len(_rows(again)) == 12
