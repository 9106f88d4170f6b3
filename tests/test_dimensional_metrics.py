"""Dimensional emotion: CCC and its loss, the metrics, their reports."""

import json
import warnings

import numpy as np
import pytest
import torch

from speechbrain_grl.evaluation.metrics import (
    DIMENSIONS,
    ccc,
    dimensional_metrics,
)
from speechbrain_grl.evaluation.report import (
    plot_vad_scatter,
    summarize_folds,
    summary_markdown,
    vad_scatter_from_runs,
    write_cv_report,
)
from speechbrain_grl.nnet.losses import ccc_loss


def test_ccc_hand_computed():
    """CCC of a small example worked out by hand."""
    # pred = [1, 2, 3, 4], true = [2, 4, 5, 5]
    # mean_p = 2.5, mean_t = 16 / 4 = 4
    # var_p = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    # var_t = (4 + 0 + 1 + 1) / 4 = 1.5
    # cov = (-1.5·-2 + -0.5·0 + 0.5·1 + 1.5·1) / 4 = (3 + 0.5 + 1.5) / 4
    #     = 1.25
    # CCC = 2·1.25 / (1.25 + 1.5 + (2.5 − 4)²) = 2.5 / 5 = 0.5
    assert ccc([1, 2, 3, 4], [2, 4, 5, 5]) == pytest.approx(0.5)


def test_ccc_constant_and_perfect():
    true = np.array([0.2, 0.4, 0.9, 0.3])
    assert ccc(np.full(4, 0.3), true) == 0.0
    assert ccc(true, true) == pytest.approx(1.0)
    # Both constant: 1.0 when equal, 0.0 otherwise.
    assert ccc(np.full(3, 0.3), np.full(3, 0.3)) == 1.0
    assert ccc(np.full(3, 0.3), np.full(3, 0.7)) == 0.0
    with pytest.raises(ValueError):
        ccc([0.1, np.nan], [0.1, 0.2])


def test_metrics_constant_prediction_no_warning():
    rng = np.random.default_rng(0)
    true = rng.uniform(size=(20, 3))
    pred = np.full((20, 3), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = dimensional_metrics(pred, true)
    assert m["PCC"] == {d: 0.0 for d in DIMENSIONS}
    assert m["CCC"] == {d: 0.0 for d in DIMENSIONS}
    assert m["CCC_mean"] == 0.0
    assert m["MAE"]["valence"] == round(
        float(np.mean(np.abs(0.5 - true[:, 0]))), 4)
    assert m["CCC_speaker_std"] is None and m["n_utterances"] == 20


def test_metrics_perfect_prediction():
    true = np.random.default_rng(1).uniform(size=(10, 3))
    m = dimensional_metrics(true, true)
    assert m["CCC_mean"] == 1.0
    assert m["PCC"] == {d: 1.0 for d in DIMENSIONS}
    assert m["MAE"] == {d: 0.0 for d in DIMENSIONS}
    json.dumps(m)  # plain Python numbers


def test_ccc_speaker_std_planted():
    """Speaker a predicted perfectly (CCC 1), b constantly (CCC 0)."""
    true_a = np.array([[0.1, 0.2, 0.3], [0.5, 0.6, 0.9], [0.8, 0.4, 0.5]])
    true_b = np.array([[0.3, 0.7, 0.2], [0.6, 0.1, 0.4], [0.9, 0.5, 0.8]])
    true = np.concatenate([true_a, true_b])
    pred = np.concatenate([true_a, np.full((3, 3), 0.5)])
    # A third speaker with a single clip is left out.
    true = np.concatenate([true, [[0.2, 0.2, 0.2]]])
    pred = np.concatenate([pred, [[0.9, 0.9, 0.9]]])
    spk = ["a"] * 3 + ["b"] * 3 + ["c"]
    m = dimensional_metrics(pred, true, spk)
    assert m["CCC_speaker_std"] == {d: 0.5 for d in DIMENSIONS}
    # One qualifying speaker: no spread.
    assert dimensional_metrics(pred[3:], true[3:], spk[3:])[
        "CCC_speaker_std"] is None
    with pytest.raises(ValueError):
        dimensional_metrics(pred, true, spk[:-1])


def test_ccc_loss_matches_numpy_and_has_gradients():
    rng = np.random.default_rng(2)
    true = rng.uniform(size=(16, 3))
    pred = np.clip(true + rng.normal(scale=0.2, size=(16, 3)), 0, 1)
    expected = 1 - np.mean([ccc(pred[:, i], true[:, i]) for i in range(3)])
    p = torch.tensor(pred, dtype=torch.float32, requires_grad=True)
    loss = ccc_loss(p, torch.tensor(true, dtype=torch.float32))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()
    assert p.grad.abs().sum() > 0
    # [batch, 1, 3] is accepted; weights weigh the dimensions.
    p3 = torch.tensor(pred, dtype=torch.float32).unsqueeze(1)
    t3 = torch.tensor(true, dtype=torch.float32).unsqueeze(1)
    assert ccc_loss(p3, t3).item() == pytest.approx(expected, abs=1e-5)
    only_v = 1 - ccc(pred[:, 0], true[:, 0])
    assert ccc_loss(p3, t3, weights=(1.0, 0.0, 0.0)).item() == \
        pytest.approx(only_v, abs=1e-5)


def test_ccc_loss_half_precision_input():
    rng = np.random.default_rng(3)
    true = torch.tensor(rng.uniform(size=(8, 3)), dtype=torch.float32)
    pred = (true + 0.1).to(torch.bfloat16).requires_grad_()
    loss = ccc_loss(pred, true)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad.float()).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ccc_loss(true + 0.1, true)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1 - np.mean([ccc(
        true[:, i] + 0.1, true[:, i]) for i in range(3)]), abs=1e-5)


def _dim_fold(mean, spk_std=0.1):
    return {"CCC_mean": mean,
            "CCC": {"valence": mean - 0.1, "arousal": mean + 0.1,
                    "dominance": mean},
            "PCC": {d: mean for d in DIMENSIONS},
            "MAE": {d: 0.2 for d in DIMENSIONS},
            "CCC_speaker_std": {d: spk_std for d in DIMENSIONS},
            "n_utterances": 10}


def _cat_fold(ua):
    return {"WA": ua + 1, "UA": ua, "macro_F1": ua - 1,
            "labels": ["ang", "hap"], "confusion_matrix": [[3, 1], [2, 4]],
            "n_utterances": 10,
            "speaker_probe": {"balanced_accuracy": 30.0, "chance": 12.5,
                              "n_speakers": 8}}


def test_summarize_dimensional_only(tmp_path):
    s = summarize_folds({"fold_1": _dim_fold(0.4, 0.1),
                         "fold_2": _dim_fold(0.6, 0.3)}, "session")
    assert s["confusion_matrix"] is None and s["labels"] is None
    assert s["mean"]["UA"] is None
    assert s["folds"]["fold_1"]["CCC_valence"] == pytest.approx(0.3)
    assert s["mean"]["CCC_mean"] == pytest.approx(0.5)
    assert s["std"]["CCC_mean"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert s["mean"]["CCC_arousal"] == pytest.approx(0.6)
    assert s["mean"]["CCC_speaker_std_dominance"] == pytest.approx(0.2)
    md = summary_markdown(s)
    assert "CCC mean" in md and "CCC spk std valence" in md
    assert "confusion" not in md
    write_cv_report(tmp_path, s)
    assert (tmp_path / "cv_summary.md").stat().st_size > 0
    assert not (tmp_path / "confusion_matrix.png").exists()


def test_summarize_mixed_and_categorical(tmp_path):
    both = {f"fold_{i}": dict(_cat_fold(ua), **_dim_fold(c))
            for i, (ua, c) in enumerate([(50.0, 0.4), (60.0, 0.6)], 1)}
    s = summarize_folds(both, "session")
    assert s["mean"]["UA"] == pytest.approx(55.0)
    assert s["mean"]["CCC_mean"] == pytest.approx(0.5)
    assert s["confusion_matrix"] == [[6, 2], [4, 8]]
    md = summary_markdown(s)
    assert "| UA |" in md and "CCC valence" in md and "Pooled" in md
    write_cv_report(tmp_path, s)
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    # Categorical folds alone: no dimensional key anywhere.
    cat = summarize_folds({"fold_1": _cat_fold(50.0),
                           "fold_2": _cat_fold(60.0)}, "session")
    assert not any(k.startswith("CCC") for k in cat["mean"])
    assert not any(k.startswith("CCC") for k in cat["folds"]["fold_1"])
    assert "CCC" not in summary_markdown(cat)
    # Folds of different tasks do not mix.
    with pytest.raises(ValueError):
        summarize_folds({"fold_1": _cat_fold(50.0),
                         "fold_2": _dim_fold(0.5)})


def test_plot_vad_scatter(tmp_path):
    rng = np.random.default_rng(4)
    true = rng.uniform(size=(50, 3))
    path = tmp_path / "vad.png"
    plot_vad_scatter(np.clip(true + rng.normal(scale=0.1, size=true.shape),
                             0, 1), true, path, title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 1000


def _run_folder(folder, n, rng, with_vad=True):
    folder.mkdir()
    ids = [f"{folder.name}_utt{i}" for i in range(n)]
    true = rng.uniform(size=(n, 3)).round(4).tolist()
    manifest = {u: {"wav": f"{u}.wav", "emo": "neu", "spk_id": f"s{i % 2}",
                    "vad": t} for i, (u, t) in enumerate(zip(ids, true))}
    preds = {"labels": ["neu"], "log_probs": {u: [0.0] for u in ids}}
    if with_vad:
        preds["vad"] = {u: [min(1.0, x + 0.05) for x in t]
                        for u, t in zip(ids, true)}
    (folder / "test.json").write_text(json.dumps(manifest))
    (folder / "test_predictions.json").write_text(json.dumps(preds))
    return str(folder)


def test_vad_scatter_from_runs(tmp_path):
    rng = np.random.default_rng(5)
    runs = [_run_folder(tmp_path / f"fold_{i}", 6, rng) for i in (1, 2)]
    out = tmp_path / "vad_scatter.png"
    assert vad_scatter_from_runs(runs, out) == out
    assert out.stat().st_size > 0
    # Categorical runs only (and a missing folder): nothing written.
    cat = [_run_folder(tmp_path / "cat", 4, rng, with_vad=False),
           str(tmp_path / "missing")]
    other = tmp_path / "none.png"
    assert vad_scatter_from_runs(cat, other) is None
    assert not other.exists()
