"""Models exported by version 0.2 (before the methods became objects)
still load and predict the same, through the predict CLI and the stock
``EncoderClassifier``.

``legacy/exported_0.2`` was exported by the 0.2 code from a
one-epoch demo run; ``exported_0.2_predictions.csv`` is what 0.2's
``speechbrain-grl-predict`` wrote for eight IEMOCAP sample clips.
"""

import csv
import shutil

from conftest import REPO, run_python

SAMPLES = REPO / "tests" / "samples"
LEGACY = REPO / "tests" / "legacy"


def _rows(path):
    with open(path, encoding="utf-8", newline="") as fin:
        return list(csv.DictReader(fin))


def test_a_0_2_export_predicts_what_it_did(tmp_path):
    model = tmp_path / "model"  # elsewhere than where it was exported
    shutil.copytree(LEGACY / "exported_0.2", model)
    want = _rows(LEGACY / "exported_0.2_predictions.csv")
    out = tmp_path / "pred.csv"
    res = run_python(
        "-m", "speechbrain_grl.inference.predict", "--model", model,
        "--output", out, "--no-progress", *[row["path"] for row in want],
        cwd=SAMPLES)
    assert res.returncode == 0, res.stderr[-2000:]
    got = _rows(out)
    assert [r["path"] for r in got] == [r["path"] for r in want]
    for g, w in zip(got, want):
        assert g["label"] == w["label"]
        for key in w:
            if key.startswith("prob_"):
                assert abs(float(g[key]) - float(w[key])) < 1e-5, key


def test_a_0_2_export_loads_in_the_stock_class(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(LEGACY / "exported_0.2", model)
    want = _rows(LEGACY / "exported_0.2_predictions.csv")[0]
    script = (
        "import sys\n"
        "from speechbrain.inference.classifiers import EncoderClassifier\n"
        "m, wav, tmp = sys.argv[1:4]\n"
        "clf = EncoderClassifier.from_hparams(source=m, savedir=tmp,\n"
        "    overrides={'model_dir': m})\n"
        "out = clf.classify_file(wav)\n"
        "print(out[3][0], out[0][0].exp().max().item())\n")
    # A fresh process (the forkserver runs scripts and modules, not -c).
    res = run_python("-c", script, model, SAMPLES / want["path"],
                     tmp_path / "sd", cwd=tmp_path, fresh=True)
    assert res.returncode == 0, res.stderr[-2000:]
    label, prob = res.stdout.split()[-2:]
    assert label == want["label"]
    assert abs(float(prob) - float(want["score"])) < 1e-5
