"""One preparation entry point for every corpus, speaker-disjoint splits,
training on another corpus and the zero-shot cross-corpus test."""

import json
import subprocess

import pytest
from conftest import demo_args, recipe_env, run_recipe

from speechbrain_grl.dataio.manifests import PrepareError
from speechbrain_grl.dataio.prepare import CORPORA, main, prepare_corpus
from speechbrain_grl.dataio.splits import speaker_kfold
from speechbrain_grl.testing.demo import TEST_CORPORA, demo_test_corpus
from speechbrain_grl.testing.demo_corpus import make_demo_corpus


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """Every corpus in its release layout: ``{name: data_folder}``."""
    folder = tmp_path_factory.mktemp("corpora")
    out = {name: demo_test_corpus(name, folder) for name in TEST_CORPORA}
    out["iemocap"] = str(make_demo_corpus(folder / "iemocap",
                                          utts_per_speaker=12))
    return out


def _speakers(out):
    return {k: {e["spk_id"] for e in v.values()} for k, v in out.items()}


def test_registry_covers_the_six_corpora():
    assert sorted(CORPORA) == ["crema_d", "csv", "emodb", "iemocap",
                               "msp_podcast", "ravdess"]


@pytest.mark.parametrize("corpus", ["iemocap", "crema_d", "ravdess",
                                    "emodb", "msp_podcast", "csv"])
def test_default_split_is_speaker_disjoint(corpora, corpus, tmp_path):
    out = prepare_corpus(corpus, corpora[corpus], tmp_path, n_folds=3)
    assert sorted(out) == ["test", "train", "valid"]
    spk = _speakers(out)
    assert all(spk.values())
    assert not spk["test"] & (spk["train"] | spk["valid"])
    if corpus != "iemocap":  # IEMOCAP's default validates on train speakers
        assert not spk["valid"] & spk["train"]
    assert "Unknown" not in spk["train"] | spk["valid"]
    for part in out.values():
        for entry in part.values():
            assert {"wav", "duration", "emo", "spk_id"} <= set(entry)
            assert entry["emo"] in ("neu", "hap", "ang", "sad")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["prepare_opts.json", "prepare_summary.json",
                     "test.json", "train.json", "valid.json"]


@pytest.mark.parametrize("valid_from", ["held_out_speakers",
                                        "training_speakers"])
def test_speaker_kfold_every_fold(corpora, tmp_path, valid_from):
    """No speaker in two of train, validation and test, in any fold; the
    test folds partition the speakers."""
    from speechbrain_grl.dataio.crema_d import scan_crema_d

    entries, _ = scan_crema_d(corpora["crema_d"])
    tested = []
    for fold in range(1, 5):
        out = speaker_kfold(entries, fold, 4, valid_from)
        spk = _speakers(out)
        assert not spk["test"] & (spk["train"] | spk["valid"])
        if valid_from == "held_out_speakers":
            assert not spk["valid"] & spk["train"]
        else:
            assert spk["valid"] <= spk["train"]
        tested += sorted(spk["test"])
    assert sorted(tested) == sorted({e["spk_id"] for e in entries.values()})


def test_all_split_and_reuse(corpora, tmp_path):
    out = prepare_corpus("ravdess", corpora["ravdess"], tmp_path,
                         split="all")
    assert list(out) == ["all"] and len(out["all"]) == 64
    stamp = tmp_path / "prepare_opts.json"
    mtime = stamp.stat().st_mtime_ns
    prepare_corpus("ravdess", corpora["ravdess"], tmp_path, split="all")
    assert stamp.stat().st_mtime_ns == mtime  # reused, not rewritten
    prepare_corpus("ravdess", corpora["ravdess"], tmp_path, split="all",
                   mapping={"01": "neu", "02": "neu", "03": "hap",
                            "04": "sad", "05": "ang"})
    assert json.loads(stamp.read_text())["mapping"]["02"] == "neu"
    summary = json.loads((tmp_path / "prepare_summary.json").read_text())
    assert summary["per_class"]["neu"] == 16 + 16  # calm kept as neutral


def test_msp_official_split_keeps_unknown_out_of_train(corpora, tmp_path):
    out = prepare_corpus("msp_podcast", corpora["msp_podcast"], tmp_path)
    assert "Unknown" not in _speakers(out)["train"]
    summary = json.loads((tmp_path / "prepare_summary.json").read_text())
    assert summary["unknown_speaker_clips"] > 0


def test_bad_options():
    with pytest.raises(PrepareError, match="does not apply to emodb"):
        prepare_corpus("emodb", ".", "x", split="session")
    with pytest.raises(PrepareError, match="unknown; use one of"):
        prepare_corpus("timit", ".", "x")
    with pytest.raises(PrepareError, match="takes no option"):
        prepare_corpus("emodb", ".", "x", sessions=[1])


def test_cli_prints_counts(corpora, tmp_path, capsys):
    assert main(["crema_d", "--data_folder", corpora["crema_d"],
                 "--save_folder", str(tmp_path), "--n_folds", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["train", "valid", "test"]


@pytest.mark.parametrize("case", ["missing", "no_column", "empty_folder"])
def test_cli_bad_input_is_one_line(tmp_path, case):
    if case == "missing":
        args = ["emodb", "--data_folder", str(tmp_path / "nope")]
    elif case == "no_column":
        csv = tmp_path / "data.csv"
        csv.write_text("wav,speaker\na.wav,s1\n")
        args = ["csv", "--data_folder", str(csv)]
    else:
        (tmp_path / "empty").mkdir()
        args = ["crema_d", "--data_folder", str(tmp_path / "empty")]
    res = subprocess.run(
        ["speechbrain-grl-prepare", *args, "--save_folder",
         str(tmp_path / "out")], capture_output=True, text=True,
        env=recipe_env())
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr
    assert err[0].startswith("speechbrain-grl-prepare: error:")
    if case == "no_column":
        assert "emotion" in err[0] and "data.csv" in err[0]
    assert not (tmp_path / "out" / "train.json").exists()


def test_train_on_csv_and_test_zero_shot(demo_assets, corpora, tmp_path):
    """train.py on a user's CSV, selected on its validation speakers, then
    tested zero-shot on the whole of an EmoDB-layout corpus."""
    out = tmp_path / "run"
    run_recipe("train.py", *demo_args(
        demo_assets, out, "--corpus=csv", f"--data_folder={corpora['csv']}",
        "--number_of_epochs=1", "--n_folds=3", "--test_corpus=emodb",
        f"--test_data_folder={corpora['emodb']}", "--probe_speakers=False"))
    own = json.loads((out / "test_metrics.json").read_text())
    cross = json.loads(
        (out / "cross_corpus" / "emodb" / "test_metrics.json").read_text())
    assert own["test_corpus"] == "csv"
    assert cross["test_corpus"] == "emodb"
    assert cross["train_corpus"] == "csv"
    assert cross["n_utterances"] == 80  # the whole corpus, 4 classes
    train = json.loads((out / "train.json").read_text())
    test = json.loads((out / "test.json").read_text())
    assert not ({e["spk_id"] for e in train.values()}
                & {e["spk_id"] for e in test.values()})


def test_cross_corpus_protocol_and_compare(demo_assets, tmp_path):
    """One command gives the train × test table; compare.py pairs two
    such runs (none vs grl) run by run."""
    for mode in ("none", "grl"):
        run_recipe("cross_validate.py", *demo_args(
            demo_assets, tmp_path / mode, "--protocol", "cross_corpus",
            "--test_corpus", "crema_d,emodb", "--seeds", "1",
            "--number_of_epochs=1", f"--adversary={mode}",
            "--probe_speakers=False"))
    summary = json.loads((tmp_path / "grl" / "cv_summary.json").read_text())
    assert list(summary["table"]) == ["iemocap", "crema_d", "emodb"]
    assert summary["table"]["crema_d"]["n_utterances"] == 96
    assert "| iemocap |" in (tmp_path / "grl" / "cross_corpus.md").read_text()
    res = run_recipe("compare.py", tmp_path / "none", tmp_path / "grl")
    assert "emodb/seed_1" in res.stdout


def test_iemocap_protocols_refuse_other_corpora(demo_assets, corpora,
                                                tmp_path):
    res = run_recipe("cross_validate.py", *demo_args(
        demo_assets, tmp_path, "--protocol", "session", "--corpus=emodb",
        f"--data_folder={corpora['emodb']}"), check=False)
    assert res.returncode != 0
    assert "speaker_kfold or cross_corpus" in res.stderr.strip()
    assert "Traceback" not in res.stderr
