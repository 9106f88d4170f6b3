"""Tests for the CREMA-D, RAVDESS and EmoDB scanners on synthetic trees in
the release layouts (speechbrain_grl.testing.acted_corpora)."""

import hashlib
import shutil

import pytest

from speechbrain_grl.dataio.crema_d import (
    SENTENCES,
    crema_d_files,
    scan_crema_d,
)
from speechbrain_grl.dataio.emodb import TEXTS, emodb_files, scan_emodb
from speechbrain_grl.dataio.labels import EMOTIONS
from speechbrain_grl.dataio.manifests import CLIP_COUNTERS, PrepareError
from speechbrain_grl.dataio.ravdess import ravdess_files, scan_ravdess
from speechbrain_grl.testing.acted_corpora import (
    make_crema_d_corpus,
    make_emodb_corpus,
    make_ravdess_corpus,
)

FOUR = {"neu", "hap", "ang", "sad"}


def _common(summary):
    """Every scanner reports the clip counters and the label counts."""
    for key in CLIP_COUNTERS + ("junk_files", "malformed_name",
                                "duplicate_id", "dropped_label",
                                "unknown_label", "dropped_codes",
                                "unknown_codes", "kept", "per_class",
                                "per_speaker"):
        assert key in summary, key


def _speakers(entries):
    return {(e["spk_id"], e.get("gender")) for e in entries.values()}


# --------------------------------------------------------------- CREMA-D


def test_crema_d_default_tree(tmp_path):
    root = make_crema_d_corpus(tmp_path)
    entries, summary = scan_crema_d(root)
    _common(summary)
    # 6 actors x 12 clips, 2 of each of the 6 emotions per actor.
    assert summary["per_class"] == {"neu": 12, "hap": 12, "ang": 12,
                                    "sad": 12}
    assert summary["kept"] == 48 == len(entries)
    assert summary["dropped_codes"] == {"DIS": 12, "FEA": 12}
    assert summary["dropped_label"] == 24
    assert summary["unknown_label"] == 0
    # The release's broken clips of actor 1076: empty NEU, silent SAD.
    assert summary["empty_wav"] == 1 and summary["silent_wav"] == 1
    assert "1076_MTI_SAD_XX" not in entries
    assert summary["junk_files"] == 2  # ._<clip>.wav and .DS_Store
    assert summary["malformed_name"] == summary["duplicate_id"] == 0
    # Real actor ids with their VideoDemographics.csv sex.
    assert _speakers(entries) == {("1001", "M"), ("1002", "F"),
                                  ("1003", "F"), ("1004", "F"),
                                  ("1005", "M"), ("1011", "M")}
    assert summary["per_speaker"] == {a: 8 for a in ("1001", "1002", "1003",
                                                     "1004", "1005", "1011")}
    for utt, e in entries.items():
        assert e["wav"] == f"{{data_root}}/AudioWAV/{utt}.wav"
        assert e["text"] in SENTENCES and utt.split("_")[1] == e["text"]
        assert 1.0 <= e["duration"] <= 2.5
        assert (root / e["wav"].split("/", 1)[1]).is_file()
    files = crema_d_files(root)
    assert len(files) == 6 * 12 + 2 + 1
    assert files[-1].name == "VideoDemographics.csv"


def test_crema_d_oddities(tmp_path):
    root = make_crema_d_corpus(tmp_path, n_speakers=2)
    audio = root / "AudioWAV"
    clip = audio / "1001_IWL_ANG_XX.wav"
    shutil.copy(clip, audio / "1001_IWL_XYZ_XX.wav")  # unknown emotion
    shutil.copy(clip, audio / "1001_IWL_ANG.wav")  # no level: malformed
    shutil.copy(clip, audio / "take2.wav")  # malformed
    shutil.copy(clip, audio / "1001_IWL_ANG_XX.WAV")  # same id
    (audio / "notes.txt").write_text("x")  # junk
    (root / "VideoDemographics.csv").unlink()
    entries, summary = scan_crema_d(tmp_path)  # the parent folder
    assert summary["unknown_codes"] == {"XYZ": 1}
    assert summary["malformed_name"] == 2
    assert summary["duplicate_id"] == 1
    assert summary["junk_files"] == 3
    assert summary["per_class"] == {"neu": 4, "hap": 4, "ang": 4, "sad": 4}
    # Without VideoDemographics.csv the gender is left out.
    assert _speakers(entries) == {("1001", None), ("1002", None)}
    assert entries["1001_MTI_ANG_XX"]["wav"] == (
        "{data_root}/CREMA-D/AudioWAV/1001_MTI_ANG_XX.wav")


def test_crema_d_mapping_keeps_disgust(tmp_path):
    root = make_crema_d_corpus(tmp_path)
    mapping = {"NEU": "neu", "HAP": "hap", "ANG": "ang", "SAD": "sad",
               "DIS": "dis"}
    _, summary = scan_crema_d(root, mapping, EMOTIONS + ("dis",))
    assert summary["per_class"] == {"neu": 12, "hap": 12, "ang": 12,
                                    "sad": 12, "dis": 12}
    assert summary["dropped_codes"] == {"FEA": 12}


def test_crema_d_lfs_pointers(tmp_path):
    audio = tmp_path / "CREMA-D" / "AudioWAV"
    audio.mkdir(parents=True)
    for name in ("1001_DFA_ANG_XX", "1001_DFA_SAD_XX"):
        (audio / f"{name}.wav").write_text(
            "version https://git-lfs.github.com/spec/v1\n"
            "oid sha256:00\nsize 72862\n")
    with pytest.raises(PrepareError, match="git lfs pull"):
        scan_crema_d(tmp_path / "CREMA-D")


# --------------------------------------------------------------- RAVDESS


def test_ravdess_default_tree(tmp_path):
    root = make_ravdess_corpus(tmp_path)
    entries, summary = scan_ravdess(root)
    _common(summary)
    # 4 actors x 16 speech trials, 2 of each of the 8 emotions per actor.
    assert summary["per_class"] == {"neu": 8, "hap": 8, "ang": 8, "sad": 8}
    assert summary["dropped_codes"] == {"02": 8, "06": 8, "07": 8, "08": 8}
    assert summary["song_skipped"] == 4 * 12
    assert summary["junk_files"] == 2
    assert summary["non_audio_only"] == summary["actor_mismatch"] == 0
    assert _speakers(entries) == {("Actor_01", "M"), ("Actor_02", "F"),
                                  ("Actor_03", "M"), ("Actor_04", "F")}
    for utt, e in entries.items():
        fields = utt.split("-")
        assert fields[:2] == ["03", "01"] and e["text"] == fields[4]
        assert e["wav"] == f"{{data_root}}/Actor_{fields[6]}/{utt}.wav"
        assert e["text"] in ("01", "02")
        if e["emo"] == "neu":
            assert fields[3] == "01"  # no strong neutral
    assert len(ravdess_files(root)) == 4 * (16 + 12)


def test_ravdess_song_and_calm(tmp_path):
    root = make_ravdess_corpus(tmp_path)
    _, summary = scan_ravdess(root, include_song=True)
    # Song trials: 2 of each of the 6 song emotions (01..06) per actor.
    assert summary["per_class"] == {"neu": 16, "hap": 16, "ang": 16,
                                    "sad": 16}
    assert summary["dropped_codes"] == {"02": 16, "06": 16, "07": 8, "08": 8}
    assert summary["song_skipped"] == 0
    mapping = {"01": "neu", "02": "calm", "03": "hap", "04": "sad",
               "05": "ang"}
    _, summary = scan_ravdess(root, mapping, EMOTIONS + ("calm",))
    assert summary["per_class"]["calm"] == 8
    assert summary["dropped_codes"] == {"06": 8, "07": 8, "08": 8}


def test_ravdess_oddities(tmp_path):
    root = make_ravdess_corpus(tmp_path, n_speakers=2)
    actor = root / "Actor_01"
    clip = actor / "03-01-05-01-01-01-01.wav"
    shutil.copy(clip, actor / "03-01-09-01-01-01-01.wav")  # unknown emotion
    shutil.copy(clip, actor / "03-01-05-01-01-01.wav")  # six fields
    shutil.copy(clip, actor / "03-01-05-02-02-02-02.wav")  # actor 02's
    shutil.copy(clip, actor / "01-01-05-01-01-01-01.mp4")  # full-AV video
    (actor / "readme.txt").write_text("x")
    entries, summary = scan_ravdess(root)
    assert summary["unknown_codes"] == {"09": 1}
    assert summary["malformed_name"] == 1
    assert summary["actor_mismatch"] == 1
    assert entries["03-01-05-02-02-02-02"]["spk_id"] == "Actor_02"
    assert summary["non_audio_only"] == 1
    assert summary["junk_files"] == 3
    assert summary["per_class"] == {"neu": 4, "hap": 4, "ang": 5, "sad": 4}


def test_ravdess_archives_side_by_side(tmp_path):
    root = make_ravdess_corpus(tmp_path / "merged", n_speakers=2)
    parent = tmp_path / "split"
    for actor in sorted(root.glob("Actor_*")):
        for clip in actor.glob("03-*.wav"):
            archive = ("Audio_Song_Actors_01-24" if clip.name[3:5] == "02"
                       else "Audio_Speech_Actors_01-24")
            (parent / archive / actor.name).mkdir(parents=True,
                                                  exist_ok=True)
            shutil.copy(clip, parent / archive / actor.name / clip.name)
    merged, _ = scan_ravdess(root, include_song=True)
    split, summary = scan_ravdess(parent, include_song=True)
    assert set(split) == set(merged)
    assert split["03-02-01-01-01-01-02"]["wav"] == (
        "{data_root}/Audio_Song_Actors_01-24/Actor_02/"
        "03-02-01-01-01-01-02.wav")
    # The song archive alone, without include_song, is an error.
    with pytest.raises(PrepareError, match="include_song"):
        scan_ravdess(parent / "Audio_Song_Actors_01-24")
    # The same actor twice: a duplicate per clip.
    shutil.copytree(root / "Actor_01", parent / "copy" / "Actor_01")
    _, summary = scan_ravdess(parent)
    assert summary["duplicate_id"] == 16


def test_ravdess_actor_18_has_no_song(tmp_path):
    root = make_ravdess_corpus(tmp_path, n_speakers=18, utts_per_speaker=4)
    assert not list((root / "Actor_18").glob("03-02-*"))
    assert len(list((root / "Actor_17").glob("03-02-*"))) == 3


# ----------------------------------------------------------------- EmoDB


def test_emodb_default_tree(tmp_path):
    root = make_emodb_corpus(tmp_path)
    entries, summary = scan_emodb(root)
    _common(summary)
    # 4 speakers x 14 clips, 2 of each of the 7 emotions per speaker.
    assert summary["per_class"] == {"neu": 8, "hap": 8, "ang": 8, "sad": 8}
    assert summary["dropped_codes"] == {"A": 8, "E": 8, "L": 8}
    assert summary["junk_files"] == 2  # lablaut/ etc. are not looked at
    assert summary["malformed_name"] == summary["duplicate_id"] == 0
    assert _speakers(entries) == {("03", "M"), ("08", "F"), ("09", "F"),
                                  ("10", "M")}
    for utt, e in entries.items():
        assert e["wav"] == f"{{data_root}}/wav/{utt}.wav"
        assert e["text"] in TEXTS and utt[2:5] == e["text"]
    assert len(emodb_files(root)) == 4 * 14


def test_emodb_oddities(tmp_path):
    root = make_emodb_corpus(tmp_path, n_speakers=1)
    audio = root / "wav"
    clip = sorted(audio.glob("03*.wav"))[0]
    shutil.copy(clip, audio / "03a01Xa.wav")  # unknown emotion letter
    shutil.copy(clip, audio / "03a01F.wav")  # no version letter
    shutil.copy(clip, audio / "99a01Fa.wav")  # speaker without gender
    (audio / "erkennung.txt").write_text("x")  # junk in the audio folder
    entries, summary = scan_emodb(tmp_path)  # the parent folder
    assert summary["unknown_codes"] == {"X": 1}
    assert summary["malformed_name"] == 1
    assert summary["junk_files"] == 3
    assert _speakers(entries) == {("03", "M"), ("99", None)}
    assert entries["99a01Fa"]["wav"] == "{data_root}/EmoDB/wav/99a01Fa.wav"
    mapping = {"N": "neu", "F": "hap", "W": "ang", "T": "sad", "L": "bor"}
    _, summary = scan_emodb(root, mapping, EMOTIONS + ("bor",))
    assert summary["per_class"] == {"neu": 2, "hap": 3, "ang": 2, "sad": 2,
                                    "bor": 2}
    assert summary["dropped_codes"] == {"A": 2, "E": 2}


# ------------------------------------------------------- shared behaviour

SCANNERS = {"crema_d": (scan_crema_d, "AudioWAV"),
            "ravdess": (scan_ravdess, "Actor_01"),
            "emodb": (scan_emodb, "wav")}


@pytest.mark.parametrize("corpus", sorted(SCANNERS))
def test_bad_folders_are_one_line_errors(tmp_path, corpus):
    scan, audio = SCANNERS[corpus]
    missing = tmp_path / "nowhere"
    with pytest.raises(PrepareError) as err:
        scan(missing)
    message = str(err.value)
    assert "\n" not in message and str(missing) in message
    assert "does not exist" in message and "--data_folder" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PrepareError) as err:
        scan(empty)
    message = str(err.value)
    assert "\n" not in message and str(empty) in message
    assert "--data_folder" in message and audio.split("_")[0] in message
    # The audio folder itself: the error names its parent.
    (empty / audio).mkdir()
    with pytest.raises(PrepareError) as err:
        scan(empty / audio)
    assert f"at {empty}," in str(err.value)
    # An audio folder with no clip of the corpus.
    (empty / audio / "x.wav").write_bytes(b"")
    with pytest.raises(PrepareError, match="no .*clips"):
        scan(empty)


MAKERS = {"crema_d": (make_crema_d_corpus, "CREMA-D"),
          "ravdess": (make_ravdess_corpus, "RAVDESS"),
          "emodb": (make_emodb_corpus, "EmoDB")}


def _tree(root):
    return {p.relative_to(root).as_posix():
            hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("corpus", sorted(MAKERS))
def test_generators_are_deterministic_and_cached(tmp_path, corpus):
    make, name = MAKERS[corpus]
    a = make(tmp_path / "a", n_speakers=1, utts_per_speaker=8)
    b = make(tmp_path / "b", n_speakers=1, utts_per_speaker=8)
    assert a.name == name and _tree(a) == _tree(b)
    mtime = next(a.rglob("*.wav")).stat().st_mtime_ns
    assert make(tmp_path / "a", n_speakers=1, utts_per_speaker=8) == a
    assert next(a.rglob("*.wav")).stat().st_mtime_ns == mtime
    assert _tree(make(tmp_path / "a", n_speakers=1, utts_per_speaker=8,
                      seed=1)) != _tree(b)
    foreign = tmp_path / "c" / name
    foreign.mkdir(parents=True)
    with pytest.raises(ValueError, match="not made by"):
        make(tmp_path / "c")
    assert foreign.is_dir()
