"""The benchmarks run end to end and write well-formed results.

No timing is asserted: only that every number is there and sane.
"""

import json
import math

from conftest import benchmark_report, run_benchmark

MODES = ("none", "grl", "tap", "snp")


def test_run_all_quick(tmp_path):
    out = tmp_path / "results.md"
    res = run_benchmark("run_all.py", "--quick", "--threads", "1",
                        "--output", out, "--workdir", tmp_path / "work")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    text = out.read_text()
    assert "## train_step_tiny" in text and "## epoch_tiny" in text
    assert "Machine:" in text and "torch" in text
    for mode in MODES:
        assert f"| {mode} |" in text

    step = json.loads((tmp_path / "results" / "train_step_tiny.json")
                      .read_text())
    assert set(step["timing"]) == set(MODES)
    assert step["timing"]["none"]["step_ratio"] == 1.0
    for mode in MODES:
        timing = step["timing"][mode]
        assert timing["step"]["median"] > 0 and timing["step"]["n"] == 4
        assert math.isfinite(timing["iteration_ratio"])
        mem = step["memory"][mode]
        assert mem["peak_mb"] >= mem["before_mb"] > 0
    # Both turns of the alternating modes are timed; that SNP's speaker
    # turn builds no graph through the encoder is tested exactly in
    # test_adversary.py, not by timing on a shared machine.
    for mode in ("tap", "snp"):
        for turn in ("emotion_step", "speaker_step"):
            assert step["timing"][mode][turn]["median"] > 0

    ep = json.loads((tmp_path / "results" / "epoch_tiny.json").read_text())
    settings = ep["settings"]
    fixed = settings["fixed batch 4, random order"]
    dynamic = settings["dynamic 80 s, 20 buckets"]
    assert fixed["ratio"] == 1.0 and dynamic["ratio"] > 0
    assert fixed["steps"] == math.ceil(ep["corpus"]["n_utts"] / 4)
    assert 0 <= dynamic["padding_ratio"] < fixed["padding_ratio"] < 1
    inf = json.loads((tmp_path / "results" / "inference_tiny.json")
                     .read_text())
    assert [(r["size"], r["batch"]) for r in inf["rows"]] == [
        ("tiny", 1), ("tiny", 4)]
    assert all(r["rtf"] > 0 and r["cpu_per_audio_s"] > 0 for r in inf["rows"])
    assert "## inference_tiny" in text
    assert 0.6 <= ep["corpus"]["min_s"] <= ep["corpus"]["max_s"] <= 34


def test_audio_cache_benchmark(tmp_path):
    """benchmarks/audio_cache.py, small: both ways read the same signals
    and every number is there."""
    out = benchmark_report("audio_cache.py", tmp_path, "--utts", "4",
                           "--epochs", "2", "--rounds", "1", "--threads",
                           "1", timeout=300)
    assert out["clips"] == 40 and out["identical"] is True
    assert out["disk_s"] > 0 and out["cache_s"] > 0 and out["cache_mb"] > 0
    assert "| `AudioCache` |" in (tmp_path / "audio_cache.md").read_text()


def test_ddp_exit_benchmark(tmp_path):
    """benchmarks/ddp_exit.py, one round: both endings run a 2-process
    job and the report counts them."""
    out = benchmark_report("ddp_exit.py", tmp_path, "--rounds", "1",
                           timeout=300)
    assert out["rounds"] == 1
    assert set(out["failures"]) == {"destroy", "end_distributed"}
    assert out["failures"]["end_distributed"] == []
    assert "| end_distributed | 1 | 0 |" in (
        tmp_path / "ddp_exit.md").read_text()


def test_classic_tau_benchmark(tmp_path):
    """benchmarks/classic_tau.py, small: every setting, split, τ and k is
    there, and with no clip (k = 0) every τ gives the prior alone."""
    out = benchmark_report("classic_tau.py", tmp_path, "--utts", "8",
                           "--corpora", "0", "--seeds", "1", "--biases",
                           "0.0", "--taus", "0,2,auto", "--workdir",
                           tmp_path / "work")
    for setting in ("demo", "real-like"):
        cell = out[f"{setting}|bias_0.0"]
        assert cell["auto_tau_mean"] > 0
        for split in ("valid", "test"):
            curves = cell[split]
            assert 0 < curves["plain_UA"] <= 100
            assert {c["0"] for t, c in curves.items()
                    if t != "plain_UA"} == {curves["2"]["0"]}
            assert all(math.isfinite(v) for t in ("0", "2", "auto")
                       for v in curves[t].values())
    assert "## real-like, bias 0.0, test" in (
        tmp_path / "classic_tau.md").read_text()


def test_bias_ceiling_benchmark(tmp_path):
    """benchmarks/bias_ceiling.py, small: the twins share their held-out
    clips (the comparison's premise), every variant scores a UA on both
    splits, and each difference is the difference of the means."""
    out = benchmark_report("bias_ceiling.py", tmp_path, "--utts", "8",
                           "--corpora", "0", "--seeds", "1", "--workdir",
                           tmp_path / "work")
    assert out["same_held_out_clips"] is True
    for split in ("valid", "test"):
        cell = out[split]
        for variant in ("plain", "biased", "biased_true_voice", "unbiased"):
            assert 0 < cell[variant] <= 100
        diff = cell["differences"]["unbiased - biased"]["mean"]
        assert math.isclose(diff, cell["unbiased"] - cell["biased"],
                            abs_tol=0.02)
    assert "biased_true_voice" in (tmp_path / "bias_ceiling.md").read_text()


def test_paired_runs_benchmark(tmp_path):
    """benchmarks/paired_runs.py on two workdirs of cached curves: UA in
    each and A - B per k, means over seeds then corpora; a missing run is
    a one-line exit naming the file."""
    def write(work, corpus, seed, valid, test):
        run = work / f"corpus_{corpus}" / "bias_0.9" / "spknorm_tau-1" / (
            f"seed_{seed}")
        run.mkdir(parents=True)
        (run / "adaptation_curve.json").write_text(json.dumps(
            {"ks": ["0", "all"], "seed": seed,
             "UA": {"valid": valid, "test": test}}))

    for corpus, base in ((0, 40.0), (1, 60.0)):
        for seed in (1, 2):
            write(tmp_path / "a", corpus, seed, {"0": base + seed,
                  "all": base + 10}, {"0": base, "all": base + 20})
            write(tmp_path / "b", corpus, seed, {"0": base, "all": base},
                  {"0": base, "all": base})
    args = ["--a", tmp_path / "a", "--b", tmp_path / "b", "--modes",
            "spknorm:tau=1", "--corpora", "0,1", "--seeds", "1,2",
            "--biases", "0.9"]
    out = benchmark_report("paired_runs.py", tmp_path, *args, timeout=300)
    cell = out["spknorm:tau=1"]["0.9"]
    assert cell["valid"]["0"]["delta"] == 1.5  # seeds 1 and 2: +1, +2
    assert cell["valid"]["all"]["a"] == 60.0 and cell["valid"]["all"][
        "b"] == 50.0
    assert cell["test"]["all"]["delta"] == 20.0
    assert cell["test"]["0"]["delta"] == 0.0
    res = run_benchmark("paired_runs.py", *args, "--seeds", "1,2,3",
                        "--out", tmp_path, timeout=300)
    assert res.returncode == 1
    assert "seed_3/adaptation_curve.json is missing" in res.stderr
    assert "Traceback" not in res.stderr


def test_epoch_spread_benchmark(tmp_path):
    """benchmarks/epoch_spread.py on a workdir of two runs' validation
    summaries: best, second-half mean, gap and sd per candidate, means
    over runs; a candidate with no run is a one-line exit."""
    work = tmp_path / "work"
    curves = {"none": [[20, 80, 50, 70], [40, 40, 60, 60]],
              "spknorm_tau-1": [[50, 60, 55, 65], [50, 60, 55, 65]]}
    for name, runs in curves.items():
        for seed, ua in enumerate(runs, 1):
            run = work / "corpus_0" / "bias_0.9" / name / f"seed_{seed}"
            run.mkdir(parents=True)
            (run / "valid_summary.json").write_text(json.dumps(
                {"valid_UA": {str(i): v for i, v in enumerate(ua, 1)}}))
    args = ["--workdir", work, "--corpora", "0", "--biases", "0.9",
            "--seeds", "1,2", "--out", tmp_path]
    res = run_benchmark("epoch_spread.py", *args, "--candidate",
                        "spknorm:tau=1", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((tmp_path / "epoch_spread.json").read_text())
    # none: best 80 and 60, second halves 60 and 60, sds 14.14 and 0.
    assert out["none"] == {"runs": 2, "best": 70.0, "second_half": 60.0,
                           "gap": 10.0, "sd": 7.07}
    assert out["spknorm:tau=1"]["gap"] == 5.0
    assert "| `spknorm:tau=1` | 2 |" in (tmp_path / "epoch_spread.md"
                                        ).read_text()
    res = run_benchmark("epoch_spread.py", *args, "--candidate", "grl",
                        timeout=120)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0
    assert "no finished run of grl" in res.stderr


def test_speaker_predict_benchmark(tmp_path):
    """benchmarks/speaker_predict.py, small: both ways give the same
    predictions, and every time is there."""
    out = benchmark_report("speaker_predict.py", tmp_path, "--utts", "6",
                           "--epochs", "1", "--rounds", "1", "--threads",
                           "1", "--workdir", tmp_path / "work")
    assert out["speakers"] == 10 and out["files"] > 10
    assert out["label_agreement"] == {"one": 1.0, "curve": 1.0}
    assert max(out["max_prob_diff"].values()) < 1e-5
    assert all(t > 0 for t in out["median_s"].values())
    assert "| a curve |" in (tmp_path / "speaker_predict.md").read_text()
