"""End to end: the demo recipe trains and tests in every adversary mode."""

import itertools
import json
import math
import re

import pytest
import torch
from conftest import demo_args, run_recipe

KEYS = {"WA", "UA", "macro_F1", "per_class_recall", "confusion_matrix",
        "labels", "n_utterances", "adversary"}
MODES = ["none", "grl", "tap", "snp", "spknorm"]


@pytest.fixture(scope="module")
def runs(demo_assets, tmp_path_factory):
    """One epoch of every mode, same seed, on the shortcut demo."""
    root = tmp_path_factory.mktemp("modes")
    for adversary in MODES:
        run_recipe("train.py", *demo_args(
            demo_assets, root / adversary, "--number_of_epochs=1",
            f"--adversary={adversary}", "--demo_speaker_bias=0.9",
            "--probe_speakers=False"))
    return root


def _encoder(folder):
    ckpt = next((folder / "save").glob("CKPT*"))
    return torch.load(ckpt / "ssl.ckpt", map_location="cpu",
                      weights_only=True)


def test_the_modes_move_the_encoder_differently(runs):
    """Same seed, same batches: every adversary leaves a different
    encoder from the baseline and from each other (a mode that silently
    fell back to another would not)."""
    encoders = {m: _encoder(runs / m) for m in MODES}
    for a, b in itertools.combinations(MODES, 2):
        diff = max(float((encoders[a][k] - encoders[b][k]).abs().max())
                   for k in encoders[a])
        assert diff > 1e-6, (a, b)


@pytest.mark.parametrize("adversary", MODES)
def test_one_epoch_per_mode(runs, adversary):
    out = runs / adversary
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert KEYS <= set(metrics)
    assert metrics["adversary"] == adversary
    assert metrics["labels"] == ["neu", "hap", "ang", "sad"]
    matrix = metrics["confusion_matrix"]
    assert sum(map(sum, matrix)) == metrics["n_utterances"] > 0
    assert 0 <= metrics["UA"] <= 100 and math.isfinite(metrics["loss"])
    log = (out / "train_log.txt").read_text()
    losses = re.findall(r"train (emo_loss|spk_loss): ([^,\s]+)", log)
    assert {name for name, _ in losses} == {"emo_loss", "spk_loss"}
    assert all(math.isfinite(float(v)) for _, v in losses)
    assert "valid UA" in log and "train lambda" in log
    # Where the time went: one entry per phase the run went through.
    timing = json.loads((out / "timing.json").read_text())
    phases = timing["phases"]
    assert {"data", "train", "valid", "test", "other"} == set(phases)
    assert all(v >= 0 for v in phases.values())
    assert phases["train"] > 0 and phases["test"] > 0
    assert sum(phases.values()) == pytest.approx(timing["wall_s"], abs=0.01)


@pytest.mark.parametrize("folder", ["missing", "not_iemocap"])
def test_bad_data_folder_is_one_clear_line(demo_assets, tmp_path, folder):
    data = tmp_path / folder
    if folder == "not_iemocap":
        (data / "something").mkdir(parents=True)
    res = run_recipe(
        "train.py",
        *demo_args(demo_assets, tmp_path / "out", f"--data_folder={data}"),
        check=False,
    )
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert str(data) in last and last.startswith("train.py: error:")
