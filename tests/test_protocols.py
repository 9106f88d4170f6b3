"""Evaluation protocols on the demo: fold runs, reports, probe, resume."""

import json
import shutil

import pytest
from conftest import demo_args, run_recipe

from speechbrain_grl.dataio.iemocap import make_splits, speakers
from speechbrain_grl.evaluation.protocols import make_folds

FAST = ["--number_of_epochs=1"]


def _cv(demo_assets, out, *extra):
    args = demo_args(demo_assets, out, *FAST, *extra)
    return run_recipe("cross_validate.py", *args)


def _json(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def session_cv(demo_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv") / "session"
    res = _cv(demo_assets, out, "--protocol", "session", "--folds", "1,2")
    return out, res


def test_session_report(session_cv):
    out, res = session_cv
    for name in ("cv_summary.json", "cv_summary.md", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 0
    summary = _json(out / "cv_summary.json")
    assert list(summary["folds"]) == ["fold_1", "fold_2"]
    pooled = None
    for fold in ("fold_1", "fold_2"):
        m = _json(out / fold / "test_metrics.json")
        assert summary["folds"][fold]["UA"] == pytest.approx(m["UA"])
        probe = m["speaker_probe"]
        # The training speakers (4 sessions), train and valid utterances.
        assert probe["n_speakers"] == 8
        assert probe["probe_set"] == "train+valid"
        assert abs(probe["chance"] - 100 / 8) < 6  # a uniform guess
        assert 0 <= probe["balanced_accuracy"] <= 100 and probe["grouped"]
        assert m["speaker_probe_before"]["n_speakers"] == 8
        assert (out / fold / "speaker_probe_before.json").is_file()
        cm = m["confusion_matrix"]
        pooled = cm if pooled is None else [
            [a + b for a, b in zip(r, s)] for r, s in zip(pooled, cm)]
        # Speaker independence: no test speaker in train or valid.
        spk = {s: {e["spk_id"] for e in _json(out / fold / f"{s}.json")
                   .values()} for s in ("train", "valid", "test")}
        assert spk["test"] == {f"Ses0{fold[-1]}F", f"Ses0{fold[-1]}M"}
        assert not spk["test"] & (spk["train"] | spk["valid"])
    for key in ("UA", "WA", "macro_F1", "probe_acc"):
        vals = [f[key] for f in summary["folds"].values()]
        assert summary["mean"][key] == pytest.approx(sum(vals) / 2)
    assert summary["confusion_matrix"] == pooled
    assert "mean ± std" in (out / "cv_summary.md").read_text()


def test_rerun_skips_finished_folds(demo_assets, session_cv):
    out, _ = session_cv
    stamp = (out / "fold_1" / "test_metrics.json").stat().st_mtime_ns
    res = _cv(demo_assets, out, "--protocol", "session", "--folds", "1,2")
    assert res.stdout.count("complete, skipped") == 2
    assert "running" not in res.stdout
    assert (out / "fold_1" / "test_metrics.json").stat().st_mtime_ns == stamp


def test_incomplete_fold_resumes(demo_assets, session_cv, tmp_path):
    out, _ = session_cv
    # A fold killed after its checkpoint but before its test: it resumes
    # from the checkpoint (no training epoch) and is tested again.
    copy = tmp_path / "session"
    shutil.copytree(out / "fold_1", copy / "fold_1")
    (copy / "fold_1" / "test_metrics.json").unlink()
    _cv(demo_assets, copy, "--protocol", "session", "--folds", "1")
    m = _json(copy / "fold_1" / "test_metrics.json")
    assert m["UA"] == pytest.approx(_json(out / "fold_1" /
                                          "test_metrics.json")["UA"])
    log = (copy / "fold_1" / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1  # not retrained


def test_compare(session_cv, tmp_path):
    out, _ = session_cv
    other = tmp_path / "other"
    other.mkdir()
    summary = _json(out / "cv_summary.json")
    for fold in summary["folds"].values():
        fold["UA"] += 2.0
    (other / "cv_summary.json").write_text(json.dumps(summary))
    res = run_recipe("compare.py", out, other)
    assert "2.00 ± 0.00" in res.stdout
    assert list(other.glob("compare_*_vs_*.md"))
    del summary["folds"]["fold_2"]
    (other / "cv_summary.json").write_text(json.dumps(summary))
    res = run_recipe("compare.py", out, other, check=False)
    assert res.returncode != 0 and "fold sets differ" in res.stderr
    assert "Traceback" not in res.stderr


def test_random_protocol_and_averaging(demo_assets, tmp_path):
    out = tmp_path / "random"
    _cv(demo_assets, out, "--protocol", "random", "--folds", "1",
        "--number_of_epochs=2", "--avg_checkpoints=2",
        "--probe_speakers=False")
    m = _json(out / "fold_1" / "test_metrics.json")
    assert m["averaged_checkpoints"] == 2
    assert len(list((out / "fold_1" / "save").glob("CKPT*"))) == 2
    assert _json(out / "cv_summary.json")["protocol"] == "random"
    assert (out / "confusion_matrix.png").is_file()


def test_speaker_protocol(demo_assets, tmp_path):
    out = tmp_path / "speaker"
    # Leave one speaker out, the session partner validating.
    _cv(demo_assets, out, "--protocol", "speaker", "--folds", "3",
        "--valid_from=held_out_speakers")
    spk = {s: {e["spk_id"] for e in _json(out / "fold_3" / f"{s}.json")
               .values()} for s in ("train", "valid", "test")}
    assert spk["test"] == {"Ses02F"} and spk["valid"] == {"Ses02M"}
    assert len(spk["train"]) == 8
    m = _json(out / "fold_3" / "test_metrics.json")
    # Validation is an unseen speaker: the probe uses training utterances.
    assert m["speaker_probe"]["probe_set"] == "train"
    assert (out / "cv_summary.md").is_file()


def test_lowres_protocol(demo_assets, tmp_path):
    out = tmp_path / "lowres"
    _cv(demo_assets, out, "--protocol", "lowres", "--lowres_sizes", "4,6",
        "--lowres_draws", "1", "--probe_speakers=False")
    summary = _json(out / "lowres_summary.json")
    assert [c["n"] for c in summary["curve"]] == [4, 6]
    n = {}
    for e in _json(out / "n4_draw1" / "train.json").values():
        n[e["emo"]] = n.get(e["emo"], 0) + 1
    assert min(n.values()) > 4  # the manifest is full; training is cut
    counts = _json(out / "n4_draw1" / "test_metrics.json")["class_counts"]
    assert counts["train"] == {"neu": 4, "hap": 4, "ang": 4, "sad": 4}
    # Validation is cut in the same proportion (N / training size).
    full = {}
    for e in _json(out / "n4_draw1" / "valid.json").values():
        full[e["emo"]] = full.get(e["emo"], 0) + 1
    for emo, v in counts["valid"].items():
        assert v == max(1, round(full[emo] * 4 / n[emo])), emo
    assert summary["curve"][0]["n_effective"] == counts["train"]
    assert (out / "lowres_curve.png").stat().st_size > 0
    assert "AUC" in (out / "lowres_summary.md").read_text()


def test_every_speaker_fold_is_speaker_independent():
    entries = {f"{s}_impro01_{s[-1]}{i:03d}": {
        "emo": "neu hap ang sad".split()[i % 4], "spk_id": s,
        "session": int(s[4])} for s in speakers() for i in range(8)}
    folds = make_folds("speaker", speakers=speakers())
    assert len(folds) == 10
    for fold in folds:
        out = make_splits(entries, **fold.overrides)
        test = {e["spk_id"] for e in out["test"].values()}
        others = {e["spk_id"] for k in ("train", "valid")
                  for e in out[k].values()}
        assert len(test) == 1 and not test & others


@pytest.mark.parametrize("valid_from", ["held_out_speakers",
                                        "training_speakers"])
@pytest.mark.parametrize("protocol", ["session", "speaker", "random",
                                      "lowres"])
def test_no_speaker_in_two_parts(protocol, valid_from):
    """Every fold of every protocol, under both validation sources: no
    speaker is in two of train, validation and test (``random`` is
    speaker dependent by design: train and test share speakers, and only
    held-out validation is disjoint from both)."""
    entries = {f"{s}_impro01_{s[-1]}{i:03d}": {
        "emo": "neu hap ang sad".split()[i % 4], "spk_id": s,
        "session": int(s[4])} for s in speakers() for i in range(40)}
    for fold in make_folds(protocol, lowres_sizes=(5,), lowres_draws=1,
                           speakers=speakers()):
        opts = {k: v for k, v in fold.overrides.items()
                if k in ("split", "test_session", "test_speaker", "seed")}
        out = make_splits(entries, valid_from=valid_from, **opts)
        spk = {k: {e["spk_id"] for e in out[k].values()} for k in out}
        assert all(spk.values())
        held = valid_from == "held_out_speakers"
        if protocol != "random":
            assert not spk["test"] & (spk["train"] | spk["valid"]), fold
        if held:
            assert not spk["valid"] & (spk["train"] | spk["test"]), fold
        else:
            assert spk["valid"] <= spk["train"], fold
        if held and opts["split"] == "session":
            valid = {e["session"] for e in out["valid"].values()}
            assert len(valid) == 1 and not valid & {
                e["session"] for e in out["train"].values()}


def test_bad_options(demo_assets, tmp_path):
    res = run_recipe("cross_validate.py", *demo_args(
        demo_assets, tmp_path, "--protocol", "session", "--test_session=2"),
        check=False)
    assert res.returncode != 0 and "set per fold" in res.stderr
    res = run_recipe("cross_validate.py", *demo_args(
        demo_assets, tmp_path, "--protocol", "session", "--folds", "7"),
        check=False)
    assert "folds 1..5" in res.stderr and "Traceback" not in res.stderr


def test_sweep_picks_on_validation_and_tests_the_pick_only(demo_assets,
                                                           tmp_path):
    """Every value trains with testing off; the pick is the best mean
    validation UA (valid_summary.json); only then is the pick tested, and
    no other value ever has test metrics or predictions."""
    out = tmp_path / "sweep"
    res = _cv(demo_assets, out, "--protocol", "session", "--folds", "5",
              "--sweep", "lambda_max=0.1,0.5", "--adversary=grl",
              "--number_of_epochs=2", "--probe_speakers=False")
    summary = _json(out / "sweep_summary.json")
    points = summary["points"]
    assert set(points) == {"lambda_max-0.1", "lambda_max-0.5"}
    for tag, point in points.items():
        fold = out / "sweep" / tag / "fold_5"
        valid = _json(fold / "valid_summary.json")
        assert point["valid_UA"]["fold_5"] == valid["best_valid_UA"]
        tested = (fold / "test_metrics.json").exists()
        assert tested == (tag == summary["pick"])
        assert (fold / "test_predictions.json").exists() == tested
    best = max(points, key=lambda t: points[t]["valid_UA_mean"])
    assert points[summary["pick"]]["valid_UA_mean"] == (
        points[best]["valid_UA_mean"])
    pick = out / "sweep" / summary["pick"] / "fold_5"
    assert (out / "sweep_summary.json").stat().st_mtime_ns <= (
        pick / "test_metrics.json").stat().st_mtime_ns
    assert f"picked {summary['pick']}" in res.stdout
    assert _json(out / "cv_summary.json")["mean"]["UA"] == _json(
        pick / "test_metrics.json")["UA"]


def _span(folder):
    """First and last timestamps of a run's log.txt."""
    from datetime import datetime

    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
              for line in (folder / "log.txt").read_text().splitlines()
              if line[:4].isdigit() and line[4:5] == "-"]
    return stamps[0], stamps[-1]


def test_jobs_run_folds_side_by_side(demo_assets, tmp_path):
    """--jobs 2: the first fold alone, then two at a time, each with its
    own output file; the report covers every fold."""
    out = tmp_path / "jobs"
    res = _cv(demo_assets, out, "--protocol", "session", "--folds",
              "1,2,3", "--jobs", "2", "--probe_speakers=False")
    assert "2 at a time" in res.stdout
    spans = {f: _span(out / f"fold_{f}") for f in (1, 2, 3)}
    for f in (1, 2, 3):
        assert (out / f"fold_{f}" / "stdout.txt").stat().st_size > 0
    assert spans[1][1] <= min(spans[2][0], spans[3][0])  # first alone
    assert spans[2][0] < spans[3][1] and spans[3][0] < spans[2][1]
    summary = _json(out / "cv_summary.json")
    assert sorted(summary["folds"]) == ["fold_1", "fold_2", "fold_3"]


def test_cross_validate_draws_the_adaptation_curve(demo_assets, tmp_path):
    """``--adaptation_curve``: every fold exported and read at each k;
    at all clips the curve is the fold's test UA (the recipe's test pass
    is the deployed estimator), and the PNG is written."""
    out = tmp_path / "cv"
    res = _cv(demo_assets, out, "--protocol", "session", "--folds", "1",
              "--adversary=spknorm", "--probe_speakers=False",
              "--adaptation_curve")
    curve = _json(out / "adaptation_curve.json")
    assert list(curve["mean_UA"]) == ["0", "1", "3", "5", "10", "all"]
    test_ua = _json(out / "fold_1" / "test_metrics.json")["UA"]
    assert curve["folds"]["fold_1"]["all"] == pytest.approx(test_ua)
    assert (out / "adaptation_curve.png").stat().st_size > 0
    assert "adaptation: test UA k=0" in res.stdout
