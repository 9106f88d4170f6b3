"""benchmarks/evidence.py pairs runs by seed, against ``none`` and, with
``--also_against``, against a second mode; finished runs are never rerun.

The runs are fabricated (finished run folders with their metrics), so
nothing trains here; the benchmark itself runs the recipe.
"""

import json
import math
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import evidence  # noqa: E402

UA = {"none": [70.0, 80.0, 75.0], "spknorm": [72.0, 79.0, 80.0],
      "tap:speaker_norm=True": [80.0, 85.0, 84.0]}


def fake_run(workdir, bias, mode, seed, ua):
    folder = evidence.run_folder(workdir, bias, mode, seed)
    folder.mkdir(parents=True)
    probe = {"balanced_accuracy": 50.0, "chance": 12.5,
             "given_emotion": {"balanced_accuracy": 60.0 - ua / 10,
                               "chance": 20.0}}
    (folder / "test_metrics.json").write_text(json.dumps(
        {"UA": ua, "speaker_probe": probe}))
    (folder / "train_log.txt").write_text(
        f"epoch: 1 - valid UA: {ua - 5:.2f}, valid macro_F1: 1\n"
        f"epoch: 2 - valid UA: {ua - 1:.2f}, valid macro_F1: 1\n")


@pytest.fixture
def workdir(tmp_path):
    for mode, uas in UA.items():
        for seed, ua in enumerate(uas, 1):
            fake_run(tmp_path, 0.9, mode, seed, ua)
    return tmp_path


def test_pairs_by_seed_against_none_and_a_second_mode(workdir, tmp_path,
                                                      monkeypatch):
    ran = []
    monkeypatch.setattr(evidence, "command",
                        lambda *a: ran.append(a) or ["false"])
    out = tmp_path / "out"
    evidence.main(["--biases", "0.9", "--seeds", "1,2,3", "--workdir",
                   str(workdir), "--out", str(out), "--modes",
                   "tap:speaker_norm=True", "--also_against", "spknorm"])
    assert ran == []  # every run had finished: nothing retrained
    data = json.loads((out / "evidence.json").read_text())["0.9"]
    assert list(data) == ["none", "spknorm", "tap:speaker_norm=True"]
    tap = data["tap:speaker_norm=True"]
    assert tap["delta_UA"] == [10.0, 5.0, 9.0]  # seed by seed vs none
    assert tap["delta_UA_ref"] == [8.0, 6.0, 4.0]  # vs spknorm
    assert tap["delta_UA_ref_mean"] == pytest.approx(6.0)
    lo, hi = tap["delta_UA_ref_ci95"]
    # t interval, 2 degrees of freedom: 6 ± 4.303 * 2 / sqrt(3)
    assert (lo, hi) == pytest.approx((6 - 4.969, 6 + 4.969), abs=1e-3)
    assert "delta_UA_ref_mean" not in data["spknorm"]
    assert tap["valid_UA_mean"] == pytest.approx(
        sum(UA["tap:speaker_norm=True"]) / 3 - 1)
    # Probe drop on the given-emotion gap: 1 - gap(mode) / gap(none).
    gap = {m: sum(40.0 - u / 10 for u in UA[m]) / 3 for m in UA}
    assert tap["probe_rel_drop"] == pytest.approx(
        1 - gap["tap:speaker_norm=True"] / gap["none"])
    text = (out / "evidence.md").read_text()
    assert "ΔUA vs spknorm [95% CI]" in text
    assert "| tap:speaker_norm=True | 82.0 | 83.0 | +8.0 |" in text
    assert "+6.0 [+1.0, +11.0] |" in text
    assert not math.isnan(tap["probe_mean"])


def test_corpora_report_pools_per_corpus_means_over_corpora(tmp_path,
                                                            monkeypatch):
    """evidence_corpora.py runs evidence.py's experiment per corpus seed
    (``--demo_corpus_seed``, in ``corpus_<c>/``), pairs by seed within a
    corpus, and pools the per-corpus mean ΔUA over corpora (t interval
    over corpora, counts of corpora whose seed interval excludes 0)."""
    import evidence_corpora

    # Corpus 0: tap +10, +5, +9 (above 0); corpus 1: tap -1, -2, -3.
    shifts = {0: [10.0, 5.0, 9.0], 1: [-1.0, -2.0, -3.0]}
    for corpus, deltas in shifts.items():
        root = tmp_path / "runs" / f"corpus_{corpus}"
        for seed, delta in enumerate(deltas, 1):
            base = 60.0 + 10 * corpus + seed
            fake_run(root, 0.9, "none", seed, base)
            fake_run(root, 0.9, "tap", seed, base + delta)
    commands = []
    monkeypatch.setattr(evidence, "command",
                        lambda *a: commands.append(a) or ["false"])
    out = tmp_path / "out"
    evidence_corpora.main(["--corpora", "0,1", "--seeds", "1,2,3",
                           "--modes", "tap", "--workdir",
                           str(tmp_path / "runs"), "--out", str(out)])
    assert commands == []  # every run had finished
    args = evidence_corpora.corpus_args(
        evidence_corpora.parse_args(["--workdir", "W", "--", "--x=1"]), 3)
    assert args.workdir.endswith("corpus_3")
    assert args.overrides == ["--x=1", "--demo_corpus_seed=3"]
    report = json.loads((out / "evidence_corpora.json").read_text())
    assert report["per_corpus"]["0"]["tap"]["delta_UA"] == [10.0, 5.0, 9.0]
    tap = report["over_corpora"]["tap"]
    assert tap["delta_UA_by_corpus"] == pytest.approx([8.0, -2.0])
    assert tap["delta_UA_mean"] == pytest.approx(3.0)
    # t interval over 2 corpora, 1 degree of freedom: 3 ± 12.706 * 5.
    lo, hi = tap["delta_UA_ci95_over_corpora"]
    assert (lo, hi) == pytest.approx((3 - 63.53, 3 + 63.53), abs=1e-2)
    # corpus 1: -2 ± 2.48 includes 0; corpus 0: 8 ± 6.57 does not
    assert (tap["corpora_above_0"], tap["corpora_below_0"]) == (1, 0)
    # Picked by validation (fabricated valid UA = test UA - 1): tap where
    # it validates better (corpus 0), none where it does not (corpus 1).
    picked = report["picked_by_validation"]
    assert picked["per_corpus"]["0"]["picks"] == ["tap"] * 3
    assert picked["per_corpus"]["0"]["delta_UA"] == [10.0, 5.0, 9.0]
    assert picked["per_corpus"]["1"]["picks"] == ["none"] * 3
    assert picked["per_corpus"]["1"]["delta_UA"] == [0.0, 0.0, 0.0]
    assert picked["over_corpora"]["delta_UA_mean"] == pytest.approx(4.0)
    text = (out / "evidence_corpora.md").read_text()
    assert "| 1 | +0.0 | [+0.0, +0.0] | none, none, none |" in text
    assert "| tap | +3.0 |" in text
    assert "| 1 | 72.0 | -2.0 [-4.5, +0.5]" in text


def test_runs_of_other_corpora_go_on_beside_a_corpus_builder(tmp_path):
    """run_all: nothing runs beside the very first run (it builds the tiny
    model) nor beside the first run of the same key (it builds that
    corpus), while runs of other keys share the cores."""
    from types import SimpleNamespace

    jobs = [(key, mode) for key in "abc" for mode in ("none", "spknorm")]

    def folder(job):
        return tmp_path / "_".join(job)

    def command(job):
        script = ("import sys, time; t = time.time(); time.sleep(0.4); "
                  "open(sys.argv[1], 'w').write(f'{t} {time.time()}')")
        return [sys.executable, "-c", script, str(folder(job) / "span")]

    evidence.run_all(SimpleNamespace(jobs=2), jobs, folder=folder,
                     command_of=command,
                     done=lambda job: (folder(job) / "span").is_file(),
                     first_key=lambda job: job[0], name="test")
    span = {job: [float(x) for x in (folder(job) / "span").read_text()
                  .split()] for job in jobs}

    def overlap(a, b):
        return span[a][0] < span[b][1] and span[b][0] < span[a][1]

    pairs = [(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1:]]
    assert not any(overlap(jobs[0], b) for b in jobs[1:])
    builders = [("b", "none"), ("c", "none")]
    assert not any(overlap(a, b) for a, b in pairs
                   if a in builders and a[0] == b[0])
    assert any(overlap(a, b) for a, b in pairs)


def test_adaptation_folds_rotate_the_test_and_unbiased_sessions():
    """adaptation.py by default: seed s tests on session s, and the
    validation session (the next) is unbiased too; the session-5 form
    stays available."""
    import adaptation

    args = adaptation.parse_args([])
    command = adaptation.train_command(args, "0", "0.9", "spknorm", "5")
    assert "--test_session=5" in command
    assert "--demo_unbiased_sessions=[5,1]" in command
    command = adaptation.train_command(args, "0", "0.9", "spknorm", "2")
    assert "--test_session=2" in command
    assert "--demo_unbiased_sessions=[2,3]" in command
    old = adaptation.parse_args(["--no-rotate_test_session",
                                 "--no-unbiased_valid"])
    plain = adaptation.train_command(old, "0", "0.9", "none", "2")
    assert "--test_session=5" in plain
    assert "--demo_unbiased_sessions=[5]" in plain
