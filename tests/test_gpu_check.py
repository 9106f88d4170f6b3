"""The GPU check's code paths, on the CPU (``--smoke``), so that the
script a lent GPU runs first cannot rot."""

import json

from conftest import run_benchmark


def test_gpu_check_smoke(tmp_path):
    out = tmp_path / "out"
    res = run_benchmark("gpu_check.py", "--smoke", "--out", out,
                        "--workdir", tmp_path / "w")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    results = json.loads((out / "gpu_results.json").read_text())
    sections = results["sections"]
    assert set(sections) == {"steps", "opts", "epoch", "profile",
                             "syncs", "inference", "ddp"}
    steps = {k: v for k, v in sections["steps"].items() if k != "config"}
    assert len(steps) == 6  # three encoder kinds x two precisions
    for key, res_ in steps.items():
        assert set(res_["timing"]) == {"none", "grl", "tap", "snp"}, key
        assert res_["timing"]["none"]["step_ratio"] == 1.0
    guards = [r["fp16_guard"] for r in steps.values() if "fp16_guard" in r]
    assert guards and all(g["ok"] for g in guards)
    assert "front end's backward pass (SpeechBrain's freeze)" in sections[
        "opts"]["variants"]
    epoch = [v for k, v in sections["epoch"].items() if "epoch_s" in v]
    assert len(epoch) == 2 and all(e["epoch_pflop"] > 0 for e in epoch)
    for mode in ("none", "grl", "tap", "snp"):
        assert sections["syncs"][mode]["per_step"] == 0  # none on the CPU
    assert sections["inference"]["rows"]
    ddp = [v for v in sections["ddp"].values() if "rc" in v]
    assert ddp and all(r["rc"] == 0 and "test_UA" in r for r in ddp)
    assert "## One IEMOCAP-sized epoch" in (out / "gpu_results.md").read_text()
