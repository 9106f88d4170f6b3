"""Tests for dimensional labels (valence, arousal, dominance) in the data
preparation: parsing, normalisation, ``bad_vad``, ``keep_all_emotions``
and the demo corpus's V/A/D."""

import collections
import csv
import json
import logging
import shutil

import pytest

from speechbrain_grl.dataio.csv_corpus import scan_csv
from speechbrain_grl.dataio.dimensions import (
    DIMENSIONS,
    VAD_SCALES,
    check_scale,
    denormalise_vad,
    normalise_vad,
)
from speechbrain_grl.dataio.iemocap import (
    EMOTIONS,
    IEMOCAPError,
    make_splits,
    parse_label_file,
    parse_label_line,
    prepare_iemocap,
    scan_corpus,
)
from speechbrain_grl.dataio.manifests import PrepareError
from speechbrain_grl.dataio.msp_podcast import scan_msp_podcast
from speechbrain_grl.dataio.prepare import prepare_corpus
from speechbrain_grl.testing.demo_corpus import make_demo_corpus
from speechbrain_grl.testing.table_corpora import (
    make_csv_corpus,
    make_msp_podcast_corpus,
)

RELEASE = "IEMOCAP_full_release"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A two-session demo corpus, shared (read-only) by the tests."""
    folder = tmp_path_factory.mktemp("demo")
    make_demo_corpus(folder, n_sessions=2, utts_per_speaker=20)
    return folder


@pytest.fixture
def own_demo(tmp_path):
    """A one-session demo corpus a test may modify."""
    make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=20)
    return tmp_path


# --- parsing and normalisation ---------------------------------------------

@pytest.mark.parametrize("line, expected", [
    ("[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]",
     ("Ses01F_impro01_F000", "neu", [2.5, 2.5, 2.5])),
    ("[140.2250 - 145.6000]\tSes01F_impro05_F019\tang\t"
     "[1.5000, 4.0000, 4.5000]",
     ("Ses01F_impro05_F019", "ang", [1.5, 4.0, 4.5])),
    ("[ 1.0 -2.0]   Ses01F_impro01_M001 \t Fru \t[  1.5 ,4,\t4.5  ]",
     ("Ses01F_impro01_M001", "fru", [1.5, 4.0, 4.5])),
    ("[1.0 - 2.0]\tSes01F_impro01_M002\txxx\t[2.5, , 3.0]",
     ("Ses01F_impro01_M002", "xxx", [2.5, None, 3.0])),
    ("[1.0 - 2.0]\tSes01F_impro01_M003\tsad\t[2.5, 3.0]",
     ("Ses01F_impro01_M003", "sad", [2.5, 3.0])),
    ("[1.0 - 2.0]\tSes01F_impro01_M004\tsad\t[abc, 3.0, 2.0]",
     ("Ses01F_impro01_M004", "sad", [None, 3.0, 2.0])),
])
def test_label_line_with_vad(line, expected):
    assert parse_label_line(line) == expected


@pytest.mark.parametrize("line", [
    "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", "",
    "C-E1:\tAnger;\t()", "A-E3:\tval 2; act 4; dom  4;\t()",
    "[1.0 - 2.0]\tSes01F_impro01_M001\tneu",
])
def test_other_lines_are_not_turns(line):
    assert parse_label_line(line) is None


def test_label_file_with_and_without_vad(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(
        "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        "[6.29 - 8.23]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.0000]\n"
        "C-E1:\tNeutral;\t()\nA-E1:\tval 3; act 2; dom  2;\t()\n\n"
        "[9.0 - 10.0]  Ses01F_impro01_M000  ANG  [ 1.5,4.5 , 4 ]\n")
    assert parse_label_file(path) == [("Ses01F_impro01_F000", "neu"),
                                      ("Ses01F_impro01_M000", "ang")]
    assert parse_label_file(path, with_vad=True) == [
        ("Ses01F_impro01_F000", "neu", [2.5, 2.5, 2.0]),
        ("Ses01F_impro01_M000", "ang", [1.5, 4.5, 4.0])]


def test_normalisation_round_trip():
    assert DIMENSIONS == ("valence", "arousal", "dominance")
    assert VAD_SCALES == {"iemocap": (1.0, 5.0), "msp_podcast": (1.0, 7.0)}
    assert normalise_vad([1, 3, 5], VAD_SCALES["iemocap"]) == [0.0, 0.5, 1.0]
    assert normalise_vad([1, 4, 7], VAD_SCALES["msp_podcast"]) == [
        0.0, 0.5, 1.0]
    assert normalise_vad([2.3333, 4.6667, 1.0], (1, 5)) == [
        0.333325, 0.916675, 0.0]
    for scale in ((1.0, 5.0), (1.0, 7.0), (-3, 3), (0, 100)):
        lo, hi = scale
        for raw in ([lo, hi, (lo + hi) / 2], [lo + 0.123456 * (hi - lo)] * 3):
            back = denormalise_vad(normalise_vad(raw, scale), scale)
            assert back == pytest.approx(raw, abs=(hi - lo) * 5e-7)
    assert denormalise_vad([0.0, 0.5, 1.0], (1, 7)) == [1.0, 4.0, 7.0]


@pytest.mark.parametrize("values", [
    [5.0001, 3, 3], [0.5, 3, 3], [3, None, 3], [3, 3], [3, 3, 3, 3],
    [float("nan"), 3, 3], [float("inf"), 3, 3], ["high", 3, 3], None,
])
def test_unusable_values_give_none(values):
    assert normalise_vad(values, (1.0, 5.0)) is None


@pytest.mark.parametrize("scale", [(5, 1), (1, 1), (1,), "15", (0, "x"),
                                   (0, float("inf"))])
def test_bad_scales(scale):
    with pytest.raises(PrepareError, match="lo < hi"):
        check_scale(scale)


# --- IEMOCAP ---------------------------------------------------------------

def test_iemocap_entries_have_normalised_vad(demo):
    entries, summary = scan_corpus(demo, sessions=[1, 2])
    assert summary["vad_scale"] == [1.0, 5.0]
    assert summary["bad_vad"] == 0
    assert summary["other_classes"] == {}
    raw = {}
    for path in (demo / RELEASE).glob("Session*/dialog/EmoEvaluation/*.txt"):
        for utt, _, vad in parse_label_file(path, with_vad=True):
            raw[utt] = vad
    for utt, entry in entries.items():
        assert len(entry["vad"]) == 3
        assert all(0.0 <= v <= 1.0 for v in entry["vad"])
        assert entry["vad"] == [round((x - 1) / 4, 6) for x in raw[utt]]


def test_bad_vad_is_counted_and_the_clip_kept(own_demo, caplog):
    root = own_demo / RELEASE / "Session1"
    wavs = root / "sentences/wav/Ses01F_impro01"
    source = sorted(wavs.glob("Ses01F_impro01_[FM]*.wav"))[0]
    lines = {
        "Ses01F_impro01_F950": "neu\t[5.5000, 3.0000, 3.0000]",  # > 5
        "Ses01F_impro01_F951": "ang\t[0.5000, 3.0000, 3.0000]",  # < 1
        "Ses01F_impro01_F952": "sad\t[2.0000, , 3.0000]",  # missing
        "Ses01F_impro01_F953": "hap\t[2.0000, 3.0000]",  # missing
        "Ses01F_impro01_F954": "neu\t[nan, 3.0000, 3.0000]",  # not finite
        "Ses01F_impro01_F955": "ang\t[ 2.0 ,3.0,   4.0 ]",  # fine
    }
    with open(root / "dialog/EmoEvaluation/Ses01F_impro01.txt", "a") as f:
        for i, (utt, rest) in enumerate(lines.items()):
            shutil.copy(source, wavs / f"{utt}.wav")
            f.write(f"[{100 + i}.0 - {101 + i}.0]\t{utt}\t{rest}\n")
    with caplog.at_level(logging.WARNING):
        entries, summary = scan_corpus(own_demo, sessions=[1])
    assert summary["bad_vad"] == 5
    assert summary["unparsed_label_line"] == 0
    for utt in lines:
        assert utt in entries  # kept, for the categorical task
    for utt in list(lines)[:5]:
        assert "vad" not in entries[utt]
        assert any(utt in r.getMessage() and "Ses01F_impro01.txt" in
                   r.getMessage() for r in caplog.records), utt
    assert entries["Ses01F_impro01_F955"]["vad"] == [0.25, 0.5, 0.75]
    assert sum("vad" not in e for e in entries.values()) == 5


def test_keep_all_emotions_keeps_the_other_codes(demo):
    base, base_summary = scan_corpus(demo, sessions=[1, 2])
    everything, summary = scan_corpus(demo, sessions=[1, 2],
                                      keep_all_emotions=True)
    assert summary["per_class"] == base_summary["per_class"]
    assert summary["dropped_label"] == 0
    assert base_summary["dropped_label"] == 4 * 2 * 2  # 2 fru + 2 xxx each
    assert summary["other_classes"] == {"fru": 8, "xxx": 8}
    assert summary["kept"] == base_summary["kept"] + 16
    extra = {u: e for u, e in everything.items() if u not in base}
    assert {e["emo"] for e in extra.values()} == {"fru", "xxx"}
    assert all(len(e["vad"]) == 3 for e in extra.values())
    for utt, entry in base.items():
        assert everything[utt] == entry
    # the merged code is kept
    _, merged = scan_corpus(demo, sessions=[1, 2], keep_all_emotions=True,
                            merge={"exc": "hap", "xxx": "oth"})
    assert merged["other_classes"] == {"fru": 8, "oth": 8}
    assert merged["per_class"] == base_summary["per_class"]


def test_splits_need_only_the_target_classes(demo):
    entries, _ = scan_corpus(demo, sessions=[1, 2], keep_all_emotions=True)
    # an "oth" only in the test session: every split need not have it
    entries["Ses02F_impro01_F990"] = dict(
        entries[next(u for u in entries if u.startswith("Ses02F"))],
        emo="oth")
    with pytest.raises(IEMOCAPError, match="has no 'oth'"):
        make_splits(entries, "session", test_session=2)
    out = make_splits(entries, "session", test_session=2, classes=EMOTIONS)
    for part in out.values():
        assert set(EMOTIONS) <= {e["emo"] for e in part.values()}
    assert sum(len(p) for p in out.values()) == len(entries)
    # a target class missing from a split is still an error
    no_sad = {u: e for u, e in entries.items()
              if not (e["emo"] == "sad" and e["session"] == 2)}
    with pytest.raises(IEMOCAPError, match="'test' has no 'sad'"):
        make_splits(no_sad, "session", test_session=2, classes=EMOTIONS)


def test_prepare_iemocap_keep_all_and_its_stamp(demo, tmp_path):
    kw = dict(sessions=[1, 2], test_session=2)
    out = prepare_iemocap(demo, tmp_path / "off", **kw)
    opts = json.loads((tmp_path / "off/prepare_opts.json").read_text())
    assert "keep_all_emotions" not in opts
    assert prepare_iemocap(demo, tmp_path / "off", keep_all_emotions=False,
                           **kw) == out
    everything = prepare_iemocap(demo, tmp_path / "on",
                                 keep_all_emotions=True, **kw)
    opts = json.loads((tmp_path / "on/prepare_opts.json").read_text())
    assert opts["keep_all_emotions"] is True
    summary = json.loads((tmp_path / "on/prepare_summary.json").read_text())
    assert summary["vad_scale"] == [1.0, 5.0]
    assert summary["other_classes"] == {"fru": 8, "xxx": 8}
    for name, part in everything.items():
        emos = collections.Counter(e["emo"] for e in part.values())
        assert set(EMOTIONS) <= set(emos), name
        assert all("vad" in e for e in part.values())
    assert {e["emo"] for p in everything.values()
            for e in p.values()} == set(EMOTIONS) | {"fru", "xxx"}
    # the same test set, plus the other codes
    assert set(out["test"]) < set(everything["test"])


def test_prepare_corpus_passes_keep_all_emotions(demo, tmp_path):
    out = prepare_corpus("iemocap", demo, tmp_path / "a", split="all",
                         sessions=[1, 2], keep_all_emotions=True)
    assert {e["emo"] for e in out["all"].values()} == set(EMOTIONS) | {
        "fru", "xxx"}
    off = prepare_corpus("iemocap", demo, tmp_path / "b", split="all",
                         sessions=[1, 2], keep_all_emotions=False)
    opts = json.loads((tmp_path / "b/prepare_opts.json").read_text())
    assert opts["options"] == {"sessions": [1, 2]}
    assert {e["emo"] for e in off["all"].values()} == set(EMOTIONS)
    session = prepare_corpus("iemocap", demo, tmp_path / "c",
                             sessions=[1, 2], test_session=2,
                             keep_all_emotions=True)
    assert "fru" in {e["emo"] for e in session["test"].values()}
    with pytest.raises(PrepareError, match="vad_range"):
        prepare_corpus("iemocap", demo, tmp_path / "d", vad_range=(1, 5))


# --- the demo corpus -------------------------------------------------------

def test_demo_corpus_vad_follows_the_emotion(demo):
    values = collections.defaultdict(list)
    for path in (demo / RELEASE).glob("Session*/dialog/EmoEvaluation/*.txt"):
        for _, code, vad in parse_label_file(path, with_vad=True):
            assert len(vad) == 3 and all(1.0 <= v <= 5.0 for v in vad)
            values[code].append(vad)

    def mean(code, k):
        return sum(v[k] for v in values[code]) / len(values[code])

    valence, arousal, dominance = 0, 1, 2
    assert mean("ang", arousal) > mean("neu", arousal) > mean("sad", arousal)
    assert mean("hap", valence) > mean("neu", valence) > mean("ang", valence)
    assert mean("exc", valence) > mean("fru", valence)
    assert mean("ang", dominance) > mean("neu", dominance) > mean(
        "sad", dominance)
    assert mean("ang", arousal) == pytest.approx(4.3, abs=0.15)
    assert mean("sad", valence) == pytest.approx(1.8, abs=0.15)
    # the noise is small: every anger turn is more aroused than every sad one
    assert min(v[arousal] for v in values["ang"]) > max(
        v[arousal] for v in values["sad"])


def test_demo_corpus_vad_follows_emotion_strength(tmp_path):
    make_demo_corpus(tmp_path, n_sessions=1, utts_per_speaker=20,
                     emotion_strength=0.0)
    for path in (tmp_path / RELEASE).glob(
            "Session1/dialog/EmoEvaluation/*.txt"):
        for _, _, vad in parse_label_file(path, with_vad=True):
            # every emotion at neutral's means, plus the noise
            for v, m in zip(vad, (3.0, 2.5, 2.8)):
                assert abs(v - m) <= 0.15 * 1.5 + 1e-4


# --- MSP-Podcast and CSV ---------------------------------------------------

def _read(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_msp_podcast_vad(tmp_path, caplog):
    root = make_msp_podcast_corpus(tmp_path, n_speakers=4,
                                   utts_per_speaker=5)
    entries, summary = scan_msp_podcast(root)
    assert summary["vad_scale"] == [1.0, 7.0]
    assert summary["bad_vad"] == 0
    for entry in entries.values():
        raw = [entry["valence"], entry["arousal"], entry["dominance"]]
        assert all(0.0 <= v <= 1.0 for v in entry["vad"])
        assert entry["vad"] == [round((x - 1) / 6, 6) for x in raw]
        assert denormalise_vad(entry["vad"], summary["vad_scale"]) == (
            pytest.approx(raw, abs=1e-5))
    # out of the scale, or an empty cell: kept without vad
    labels = root / "Labels/labels_consensus.csv"
    rows = _read(labels)
    audios = root / "Audios"
    extra = []
    for i, change in enumerate(({"EmoVal": "7.5"}, {"EmoAct": "0.5"},
                                {"EmoDom": ""})):
        name = f"MSP-PODCAST_0099_{i + 1:04d}.wav"
        shutil.copy(audios / rows[0]["FileName"], audios / name)
        extra.append(dict(rows[0], FileName=name, **change))
    _write(labels, rows + extra)
    with caplog.at_level(logging.WARNING):
        entries, summary = scan_msp_podcast(root)
    assert summary["bad_vad"] == 3
    assert summary["bad_row"] == 0
    for row in extra:
        entry = entries[row["FileName"][:-4]]
        assert "vad" not in entry
        assert entry["emo"] == "neu"
    assert "dominance" not in entries["MSP-PODCAST_0099_0003"]
    assert entries["MSP-PODCAST_0099_0001"]["valence"] == 7.5
    line = len(rows) + 2  # the header, then the rows
    assert any(f"line {line}" in r.getMessage() and "kept without vad" in
               r.getMessage() for r in caplog.records)


def test_csv_vad_and_vad_range(tmp_path):
    path = make_csv_corpus(tmp_path, n_speakers=2, utts_per_speaker=8)
    entries, summary = scan_csv(path)
    assert summary["vad_scale"] == [1.0, 5.0]
    assert summary["bad_vad"] == 0
    for entry in entries.values():
        raw = [entry[k] for k in DIMENSIONS]
        assert all(0.0 <= v <= 1.0 for v in entry["vad"])
        assert entry["vad"] == [round((x - 1) / 4, 6) for x in raw]
    wide, summary = scan_csv(path, vad_range=(0, 10))
    assert summary["vad_scale"] == [0.0, 10.0]
    for utt, entry in wide.items():
        assert entry["vad"] == [round(entry[k] / 10, 6) for k in DIMENSIONS]
    with pytest.raises(PrepareError, match="vad_range"):
        scan_csv(path, vad_range=(5, 1))


def test_csv_bad_vad(tmp_path, caplog):
    path = make_csv_corpus(tmp_path, n_speakers=2, utts_per_speaker=4)
    own = tmp_path / "own.csv"
    rows = [
        {"wav": "my_corpus/clips/spk01/1.wav", "emotion": "neutral",
         "speaker": "a", "valence": "2", "arousal": "3", "dominance": "4"},
        {"wav": "my_corpus/clips/spk01/2.wav", "emotion": "happy",
         "speaker": "a", "valence": "2", "arousal": "", "dominance": "4"},
        {"wav": "my_corpus/clips/spk01/3.wav", "emotion": "angry",
         "speaker": "a", "valence": "6", "arousal": "3", "dominance": "4"},
        {"wav": "my_corpus/clips/spk01/4.wav", "emotion": "sad",
         "speaker": "a", "valence": "", "arousal": "", "dominance": ""},
    ]
    _write(own, rows)
    assert path.parent == tmp_path / "my_corpus"
    with caplog.at_level(logging.WARNING):
        entries, summary = scan_csv(own)
    assert summary["kept"] == 4
    assert summary["bad_vad"] == 2
    assert summary["vad_scale"] == [1.0, 5.0]
    by_emo = {e["emo"]: e for e in entries.values()}
    assert by_emo["neu"]["vad"] == [0.25, 0.5, 0.75]
    assert "vad" not in by_emo["hap"] and "arousal" not in by_emo["hap"]
    assert "vad" not in by_emo["ang"] and by_emo["ang"]["valence"] == 6.0
    assert "vad" not in by_emo["sad"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("line 3" in m and "kept without vad" in m for m in messages)
    assert any("line 4" in m and "kept without vad" in m for m in messages)
    # no dimensional column at all: no scale, nothing counted
    plain = tmp_path / "plain.csv"
    _write(plain, [{k: r[k] for k in ("wav", "emotion", "speaker")}
                   for r in rows])
    entries, summary = scan_csv(plain)
    assert "vad_scale" not in summary and summary["bad_vad"] == 0
    assert not any("vad" in e for e in entries.values())


def test_prepare_corpus_vad_range_stamp(tmp_path):
    path = make_csv_corpus(tmp_path, n_speakers=4, utts_per_speaker=8)
    save = tmp_path / "m"
    out = prepare_corpus("csv", path, save, split="all", vad_range=(0, 10))
    opts = json.loads((save / "prepare_opts.json").read_text())
    assert opts["options"] == {"vad_range": [0.0, 10.0]}
    summary = json.loads((save / "prepare_summary.json").read_text())
    assert summary["vad_scale"] == [0.0, 10.0]
    assert all(e["vad"][0] == round(e["valence"] / 10, 6)
               for e in out["all"].values())
    mtime = (save / "all.json").stat().st_mtime_ns
    assert prepare_corpus("csv", path, save, split="all",
                          vad_range=[0, 10]) == out
    assert (save / "all.json").stat().st_mtime_ns == mtime  # reused
    with pytest.raises(PrepareError, match="keep_all_emotions"):
        prepare_corpus("csv", path, save, keep_all_emotions=True)
    with pytest.raises(PrepareError, match="vad_range"):
        prepare_corpus("csv", path, tmp_path / "n", vad_range=(3, 3))
