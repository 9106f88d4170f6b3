"""Mixed precision on a CPU: bf16 trains, fp16 is refused in one line."""

import json
import math

from conftest import demo_args, run_recipe


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


def test_fp16_on_cpu_is_a_clear_error(demo_assets, tmp_path):
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "fp16", "--precision=fp16",
        "--number_of_epochs=1"), check=False)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error:") and "bf16" in last


def test_bf16_prediction_warns_once_where_the_cpu_has_no_kernels(
        monkeypatch, caplog):
    """bf16 autocast without oneDNN's bfloat16 kernels is many times
    slower than fp32 (53x, benchmarks/inference_bf16_zen1.md): predict
    says so once, and not where the kernels exist or for fp32."""
    from types import SimpleNamespace

    from speechbrain_grl.inference import predict as predict_mod

    clf = SimpleNamespace(device="cpu")
    for native, precision, warnings in ((False, "bf16", 1),
                                        (False, "fp32", 0),
                                        (True, "bf16", 0)):
        monkeypatch.setattr(predict_mod, "native_bf16",
                            lambda device, native=native: native)
        predict_mod._warn_slow_bf16.cache_clear()
        caplog.clear()
        for _ in range(3):
            with predict_mod._autocast(clf, precision):
                pass
        found = [r for r in caplog.records if "no bfloat16" in r.message]
        assert len(found) == warnings, (native, precision)
    predict_mod._warn_slow_bf16.cache_clear()
