"""Tests for IEMOCAP preparation (parsing, scanning, splits, manifests)."""

import collections
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speechbrain_grl.dataio import iemocap
from speechbrain_grl.dataio.iemocap import (
    IEMOCAPError,
    make_splits,
    prepare_iemocap,
    scan_corpus,
    speaker_of,
)
from speechbrain_grl.testing.demo_corpus import make_demo_corpus

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes/IEMOCAP/emotion_recognition_grl/iemocap_prepare.py"
LABEL = "[1.0000 - 2.0000]\t{}\t{}\t[2.5000, 2.5000, 2.5000]\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    make_demo_corpus(folder, n_sessions=5, utts_per_speaker=20)
    return folder


@pytest.fixture
def small(tmp_path):
    make_demo_corpus(tmp_path, n_sessions=2, utts_per_speaker=20)
    return tmp_path


def _truth(root):
    out = {}
    for path in root.glob("Session*/dialog/EmoEvaluation/Ses*.txt"):
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith("["):
                out[line.split("\t")[1]] = (int(path.parts[-4][7:]),
                                            line.split("\t")[2])
    return out


def _emo_dir(folder, s=1):
    return folder / f"IEMOCAP_full_release/Session{s}/dialog/EmoEvaluation"


@pytest.mark.parametrize("utt, spk", [
    ("Ses01F_impro01_M003", "Ses01M"), ("Ses01F_impro01_F000", "Ses01F"),
    ("Ses05M_script02_2_F010", "Ses05F"), ("Ses03M_impro05b_M021", "Ses03M"),
])
def test_speaker_rule(utt, spk):
    assert speaker_of(utt) == spk


@pytest.mark.parametrize("utt", ["Ses01F_impro01", "foo", "Ses1F_x_M003",
                                 "Ses01F_impro01_X003"])
def test_malformed_id(utt):
    with pytest.raises(IEMOCAPError, match=utt):
        speaker_of(utt)


def test_scan_matches_generator(corpus):
    entries, summary = scan_corpus(corpus)
    truth = _truth(corpus / "IEMOCAP_full_release")
    kept = {u: (s, "hap" if c == "exc" else c) for u, (s, c) in truth.items()
            if c in ("neu", "hap", "exc", "ang", "sad")}
    assert set(entries) == set(kept)
    assert summary["dropped_label"] == len(truth) - len(kept)
    assert summary["per_class"] == dict(collections.Counter(
        c for _, c in kept.values()))
    assert summary["per_session"] == dict(collections.Counter(
        s for s, _ in kept.values()))
    assert len(summary["per_speaker"]) == 10
    assert any(truth[u][1] == "exc" for u in entries)
    for utt, e in entries.items():
        assert e["emo"] == kept[utt][1] and e["session"] == kept[utt][0]
        assert e["spk_id"] == f"Ses{utt[3:5]}{utt.rsplit('_', 1)[1][0]}"
        path = e["wav"].replace("{data_root}", str(corpus))
        assert pathlib.Path(path).is_file()
        assert e["duration"] == pytest.approx(sf.info(path).duration, 1e-3)
    assert summary["junk_files"] > 0
    assert summary["missing_wav"] == summary["unreadable_wav"] == 0


def test_junk_and_subfolders_ignored(small):
    emo = _emo_dir(small)
    (emo / "Categorical" / "Ses01F_impro01_e9_cat.txt").write_text(
        LABEL.format("Ses01F_impro01_F999", "ang"))
    (emo / "._Ses01F_impro09.txt").write_bytes(b"\x00\x05\x16\x07" + LABEL
                                               .format("Ses01F_x_F998", "ang")
                                               .encode())
    (emo / "notes.doc").write_text(LABEL.format("Ses01F_x_F997", "ang"))
    entries, summary = scan_corpus(small, sessions=[1, 2])
    assert not {"Ses01F_impro01_F999", "Ses01F_x_F998",
                "Ses01F_x_F997"} & set(entries)
    assert summary["missing_wav"] == 0
    assert not any("/._" in e["wav"] for e in entries.values())


def test_parent_or_release_folder(small):
    a, _ = scan_corpus(small, sessions=[1, 2])
    b, _ = scan_corpus(small / "IEMOCAP_full_release", sessions=[1, 2])
    assert set(a) == set(b)
    utt = next(iter(a))
    assert a[utt]["wav"].replace("{data_root}", str(small)) == (
        b[utt]["wav"].replace("{data_root}",
                              str(small / "IEMOCAP_full_release")))


def test_bad_folders(tmp_path, small):
    with pytest.raises(IEMOCAPError, match="does not exist") as err:
        scan_corpus(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IEMOCAPError, match="not an IEMOCAP release"):
        scan_corpus(tmp_path / "empty")
    with pytest.raises(IEMOCAPError, match=r"session 3 .*sessions: \[") as e:
        scan_corpus(small, sessions=[1, 2, 3])
    assert "Session3" in str(e.value) and "\n" not in str(e.value)


def test_bad_entries_are_counted(small):
    emo = _emo_dir(small)
    wavs = small / "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01"
    (wavs / "Ses01F_impro01_F900.wav").write_bytes(b"RIFF garbage" * 3)
    sf.write(str(wavs / "Ses01F_impro01_F901.wav"), np.zeros(0), 16000)
    (wavs / "Ses01F_impro01_F902.wav").write_bytes(b"")
    first = _truth(small / "IEMOCAP_full_release")
    dup = next(u for u, (s, c) in first.items()
               if c == "neu" and u.startswith("Ses01F_impro01"))
    with open(emo / "Ses01M_script02_1.txt", "a") as f:
        f.write(LABEL.format(dup, "sad"))
    with open(emo / "Ses01F_impro01.txt", "ab") as f:
        f.write(b"% comment with latin-1 \xe9\n")
        f.writelines(LABEL.format(f"Ses01F_impro01_F90{i}", code).encode()
                     for i, code in enumerate(["neu", "ang", "sad", "neu",
                                               "zzz"]))
    entries, summary = scan_corpus(small, sessions=[2, 1])
    assert summary["unreadable_wav"] == 1
    assert summary["empty_wav"] == 2
    assert summary["missing_wav"] == 1
    assert summary["unknown_label"] == 1
    assert summary["duplicate_id"] == 1
    assert summary["non_utf8_files"] == 1
    assert entries[dup]["emo"] == "neu"
    assert not {f"Ses01F_impro01_F90{i}" for i in range(5)} & set(entries)


def test_session_split(corpus):
    entries, _ = scan_corpus(corpus)
    out = make_splits(entries, "session", test_session=3)
    assert set(out["test"]) == {u for u, e in entries.items()
                                if e["session"] == 3}
    for name in ("train", "valid"):
        assert {e["session"] for e in out[name].values()} == {1, 2, 4, 5}
    assert len(out["valid"]) == round(0.2 * (len(entries) - len(out["test"])))
    assert not set(out["train"]) & set(out["valid"])
    assert len({e["spk_id"] for e in out["valid"].values()}) >= 6
    rest = collections.Counter(e["emo"] for u, e in entries.items()
                               if u not in out["test"])
    valid = collections.Counter(e["emo"] for e in out["valid"].values())
    for emo, n in rest.items():
        assert abs(valid[emo] - 0.2 * n) <= 1
    with pytest.raises(IEMOCAPError, match="test_session=7"):
        make_splits(entries, "session", test_session=7)


def test_speaker_split(corpus):
    entries, _ = scan_corpus(corpus)
    out = make_splits(entries, "speaker", test_speaker="Ses03F")
    assert {e["spk_id"] for e in out["test"].values()} == {"Ses03F"}
    assert {e["spk_id"] for e in out["valid"].values()} == {"Ses03M"}
    assert len({e["spk_id"] for e in out["train"].values()}) == 8
    with pytest.raises(IEMOCAPError, match="test_speaker"):
        make_splits(entries, "speaker")


def test_random_split(corpus):
    entries, _ = scan_corpus(corpus)
    a = make_splits(entries, "random", seed=1)
    assert a == make_splits(entries, "random", seed=1)
    assert a != make_splits(entries, "random", seed=2)
    for part in a.values():
        assert {e["emo"] for e in part.values()} == set(iemocap.EMOTIONS)
    assert sum(len(p) for p in a.values()) == len(entries)
    assert len(a["test"]) == round(0.1 * len(entries))


def test_missing_class_is_an_error(small):
    entries, _ = scan_corpus(small, sessions=[1, 2])
    entries = {u: e for u, e in entries.items()
               if not (e["emo"] == "sad" and e["session"] == 2)}
    with pytest.raises(IEMOCAPError, match="'test' has no 'sad'"):
        make_splits(entries, "session", test_session=2)


def _prep(data, save, **kw):
    return prepare_iemocap(data, save, sessions=[1, 2], test_session=2, **kw)


def test_manifests_reused_or_rewritten(small, tmp_path_factory):
    save = small / "save"
    out = _prep(small, save)
    assert json.loads((save / "test.json").read_text()) == out["test"]
    assert not list(save.glob("*.tmp")) and not list(save.glob(".*"))
    mtime = (save / "test.json").stat().st_mtime_ns
    assert _prep(small, save) == out
    assert (save / "test.json").stat().st_mtime_ns == mtime
    out1 = prepare_iemocap(small, save, sessions=[1, 2], test_session=1)
    assert out1["test"] != out["test"]
    assert json.loads((save / "test.json").read_text()) == out1["test"]
    other = tmp_path_factory.mktemp("copy")
    make_demo_corpus(other, n_sessions=2, utts_per_speaker=20)
    _prep(other, save)
    opts = json.loads((save / "prepare_opts.json").read_text())
    assert opts["data_folder"] == str(other.resolve())
    assert opts["test_session"] == 2
    with open(_emo_dir(other) / "Ses01F_impro01.txt", "a") as f:
        f.write("% touched\n")
    mtime = (save / "test.json").stat().st_mtime_ns
    _prep(other, save)
    assert (save / "test.json").stat().st_mtime_ns != mtime


def test_crash_leaves_no_stamp(small, monkeypatch):
    save = small / "save"
    _prep(small, save)
    calls = []
    real_dump = json.dump

    def flaky(obj, f, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_dump(obj, f, **kw)

    monkeypatch.setattr(json, "dump", flaky)
    with pytest.raises(OSError):
        _prep(small, save, seed=7)
    monkeypatch.undo()
    assert not (save / "prepare_opts.json").exists()
    assert not [p for p in save.iterdir() if p.name.endswith(".tmp")]
    out = _prep(small, save, seed=7)
    assert json.loads((save / "valid.json").read_text()) == out["valid"]
    assert (save / "prepare_opts.json").is_file()


def test_skip_prep(small):
    with pytest.raises(IEMOCAPError, match="skip_prep"):
        _prep(small, small / "save", skip_prep=True)


def _run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], check=False,
        capture_output=True, text=True, env={"PYTHONPATH": str(REPO)},
        timeout=120)


def test_script(small):
    res = _run("--data_folder", small, "--save_folder", small / "s",
               "--sessions", 1, 2, "--test_session", 1)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1
    assert {p.name for p in (small / "s").glob("*.json")} >= {
        "train.json", "valid.json", "test.json"}
    res = _run("--data_folder", small / "nope", "--save_folder", small / "s")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert str(small / "nope") in res.stderr
    assert "Traceback" not in res.stderr
