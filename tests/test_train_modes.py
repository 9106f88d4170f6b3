"""End to end: the demo recipe trains and tests in every adversary mode."""

import json
import math
import re

import pytest
from conftest import demo_args, run_recipe

KEYS = {"WA", "UA", "macro_F1", "per_class_recall", "confusion_matrix",
        "labels", "n_utterances", "adversary"}


@pytest.mark.parametrize("adversary", ["none", "grl", "tap", "snp"])
def test_one_epoch_per_mode(demo_assets, tmp_path, adversary):
    out = tmp_path / adversary
    run_recipe("train.py", *demo_args(
        demo_assets, out, "--number_of_epochs=1", f"--adversary={adversary}"
    ))
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
