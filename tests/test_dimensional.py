"""Dimensional emotion through the recipe: every adversary mode with a
dimensional task (the dimensional or the joint one), selection on CCC,
and the bad inputs."""

import json
import math

import pytest
from conftest import demo_args, run_recipe

# Every mode with a dimensional task, and each task with several modes
# (the baseline and spknorm with both): 7 of the 10 pairs, each a run.
PAIRS = [("none", "dimensional"), ("none", "both"), ("grl", "both"),
         ("tap", "dimensional"), ("snp", "both"),
         ("spknorm", "dimensional"), ("spknorm", "both")]


@pytest.mark.parametrize(("adversary", "task"), PAIRS)
def test_every_mode_trains_a_dimensional_task(demo_assets, tmp_path,
                                              adversary, task):
    run_recipe("train.py", *demo_args(
        demo_assets, tmp_path, f"--adversary={adversary}", f"--task={task}",
        "--number_of_epochs=1", "--probe_speakers=False"))
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["task"] == task
    assert set(metrics["CCC"]) == {"valence", "arousal", "dominance"}
    for key in ("CCC", "PCC", "MAE"):
        assert all(math.isfinite(v) for v in metrics[key].values()), key
    assert ("UA" in metrics) == (task == "both")
    assert metrics["selected_on"] == ("CCC" if task == "dimensional"
                                      else "score")
    log = (tmp_path / "train_log.txt").read_text()
    assert "train vad_loss" in log
    loss = float(log.split("train vad_loss: ")[1].split(",")[0])
    assert math.isfinite(loss) and 0.0 <= loss <= 2.0
    preds = json.loads((tmp_path / "test_predictions.json").read_text())
    assert len(preds["vad"]) == metrics["n_utterances"]
    assert all(0.0 <= v <= 1.0 for row in preds["vad"].values()
               for v in row)
    valid = json.loads((tmp_path / "valid_summary.json").read_text())
    assert valid["selected_on"] == metrics["selected_on"]


def test_dimensional_is_learnt_on_the_demo(demo_assets, tmp_path):
    """A few epochs on the demo, whose V/A/D follow its prosody, give a
    clearly positive CCC for arousal (loudness and rate)."""
    run_recipe("train.py", *demo_args(
        demo_assets, tmp_path, "--adversary=none", "--task=dimensional",
        "--number_of_epochs=4", "--probe_speakers=False"))
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["CCC"]["arousal"] > 0.5, metrics["CCC"]


def test_corpus_without_dimensions_is_one_line(demo_assets, tmp_path):
    from speechbrain_grl.testing.demo import demo_test_corpus

    crema = demo_test_corpus("crema_d", tmp_path / "corpora")
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "run", "--corpus=crema_d",
        f"--data_folder={crema}", "--task=dimensional",
        "--number_of_epochs=1", "--n_folds=3"), check=False)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()[-1]
    assert "no valence/arousal/dominance" in err and "Traceback" not in (
        res.stderr)


def test_keep_all_needs_an_unconditional_adversary(demo_assets, tmp_path):
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path, "--task=dimensional", "--adversary=grl",
        "--keep_all_emotions=True", "--number_of_epochs=1"), check=False)
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()[-1]
    assert "adversary_conditional: False" in err
    run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "ok", "--task=dimensional", "--adversary=grl",
        "--keep_all_emotions=True", "--adversary_conditional=False",
        "--spk_loss_balance=False", "--emo_loss_balance=False",
        "--number_of_epochs=1", "--probe_speakers=False"))
    train = json.loads((tmp_path / "ok" / "train.json").read_text())
    assert {"fru", "xxx"} & {e["emo"] for e in train.values()}


def test_keep_all_with_speaker_normalisation(demo_assets, tmp_path):
    """The demo's default (spknorm, statistics balanced over the emotion
    classes) trains on every clip: those of no class update no cell."""
    run_recipe("train.py", *demo_args(
        demo_assets, tmp_path, "--task=dimensional", "--adversary=spknorm",
        "--keep_all_emotions=True", "--adversary_conditional=False",
        "--spk_loss_balance=False", "--emo_loss_balance=False",
        "--number_of_epochs=1", "--probe_speakers=False"))
    train = json.loads((tmp_path / "train.json").read_text())
    assert {"fru", "xxx"} & {e["emo"] for e in train.values()}
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert math.isfinite(metrics["CCC_mean"])
