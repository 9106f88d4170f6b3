"""Runs every row of ``tests/recipes/*.csv`` as SpeechBrain's recipe tests do.

From the repository root: ``python <Script_file> <Hparam_file>
<test_debug_flags> --device=cpu --output_folder=<tmp>``, then the row's
``file_exists=[...]`` and ``performance_check=[...]``. The flags run each
hparams file in ``--debug`` mode (2 batches, 2 epochs) on the mini corpus
and the tiny SSL models in ``tests/samples``.
"""

import json
import os
import subprocess

import pytest
from conftest import recipe_env
from recipe_checks import (
    RECIPE_CSVS,
    REPO,
    check_files,
    check_performance,
    read_rows,
    recipe_command,
)

ROWS = [row for f in sorted(RECIPE_CSVS.glob("*.csv")) for row in read_rows(f)]


def _row_id(row):
    return f"{row['id']}-{os.path.basename(row['Hparam_file'])[:-5]}"


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_recipe_row(row, tmp_path):
    out = tmp_path / row["id"]
    cmd = recipe_command(row, out)
    env = recipe_env()
    # As SpeechBrain's runner: the script's folder on PYTHONPATH.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / os.path.dirname(row["Script_file"])), env["PYTHONPATH"]])
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-4000:]}")
    missing = check_files(row["test_debug_checks"], out)
    assert not missing, f"{row['id']}: missing {missing} in {out}"
    failed = check_performance(row["test_debug_checks"], out)
    assert failed is None, f"{row['id']}: {failed}"
    # The test ran (--debug stops it after 2 batches, which hold the 8
    # clips of the debug test set once evaluation batches).
    metrics = json.loads((out / "test_metrics.json").read_text())
    n_test = len(json.loads((out / "test.json").read_text()))
    assert 0 < metrics["n_utterances"] <= n_test, (metrics, n_test)
    log = (out / "train_log.txt").read_text()
    assert "epoch: 2," in log and "epoch: 3," not in log, log
