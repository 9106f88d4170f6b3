"""Mixed precision on a CPU: bf16 trains, fp16 is refused in one line."""

import json
import math

import pytest
from conftest import DEMO_YAML, demo_args, run_recipe


def test_bf16_demo_epoch(demo_assets, tmp_path):
    out = tmp_path / "bf16"
    run_recipe("train.py", *demo_args(
        demo_assets, out, "--precision=bf16", "--number_of_epochs=1",
        "--adversary=tap", "--probe_speakers=False"))
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert math.isfinite(metrics["loss"]) and metrics["n_utterances"] > 0
    log = (out / "train_log.txt").read_text()
    assert "epoch: 1" in log and "nan" not in log.lower()
    assert "--precision=bf16" in (out / "log.txt").read_text()
    # The warning where this CPU has no bfloat16 kernels, none elsewhere.
    from speechbrain_grl.utils.precision import native_bf16

    warned = "no bfloat16 kernels" in (out / "log.txt").read_text()
    assert warned != native_bf16("cpu")


def test_fp16_on_cpu_is_a_clear_error(demo_assets, tmp_path):
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "fp16", "--precision=fp16",
        "--number_of_epochs=1"), check=False)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error:") and "bf16" in last


@pytest.fixture()
def kernels(monkeypatch):
    """Sets whether the CPU has bfloat16 kernels: ``kernels(False)``."""
    from speechbrain_grl.utils import precision

    def have(native):
        monkeypatch.setattr(precision, "native_bf16",
                            lambda device, native=native: native)
        precision.warn_slow_bf16.cache_clear()

    yield have
    precision.warn_slow_bf16.cache_clear()


def _slow_bf16_warnings(caplog, use):
    return [r for r in caplog.records
            if "no bfloat16" in r.message and f"bf16 {use}" in r.message]


def test_bf16_prediction_warns_once_where_the_cpu_has_no_kernels(
        kernels, caplog):
    """bf16 autocast without oneDNN's bfloat16 kernels is many times
    slower than fp32 (53x, benchmarks/inference_bf16_zen1.md): predict
    says so once, and not where the kernels exist or for fp32."""
    from types import SimpleNamespace

    from speechbrain_grl.inference import predict as predict_mod

    clf = SimpleNamespace(device="cpu")
    for native, precision, warnings in ((False, "bf16", 1),
                                        (False, "fp32", 0),
                                        (True, "bf16", 0)):
        kernels(native)
        caplog.clear()
        for _ in range(3):
            with predict_mod._autocast(clf, precision):
                pass
        found = _slow_bf16_warnings(caplog, "prediction")
        assert len(found) == warnings, (native, precision)


def test_bf16_training_warns_where_the_cpu_has_no_kernels(
        demo_assets, tmp_path, kernels, caplog):
    """The Brain says it once for training and once for evaluation in
    bf16 (benchmarks/train_bf16_zen1.md), not for fp32 or where the
    kernels exist."""
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_grl.brain import SpeakerAdversarialBrain

    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, {
            "demo_folder": str(demo_assets),
            "output_folder": str(tmp_path)})
    encoder = sb.dataio.encoder.CategoricalEncoder()
    encoder.update_from_iterable(hparams["emotions"])
    hparams["label_encoder"] = encoder
    for native, precision, eval_precision, uses in (
            (False, "bf16", "fp32", ["training"]),
            (False, "bf16", "bf16", ["training", "evaluation"]),
            (False, "fp32", "fp32", []),
            (True, "bf16", "bf16", [])):
        kernels(native)
        caplog.clear()
        for _ in range(2):  # once per process
            SpeakerAdversarialBrain(
                modules=hparams["modules"], hparams=hparams,
                run_opts={"device": "cpu", "precision": precision,
                          "eval_precision": eval_precision},
                checkpointer=None)
        for use in ("training", "evaluation"):
            assert len(_slow_bf16_warnings(caplog, use)) == (
                use in uses), (native, precision, eval_precision, use)
