"""The classic baseline (speechbrain_grl.evaluation.classic): MFCC
statistics and a linear model, plain and per-speaker z-normalised, on a
run's manifests; what every training benchmark reports beside its
models."""

import json
import sys

import numpy as np
import pytest
from conftest import REPO

from speechbrain_grl.evaluation.classic import (
    ClassicBaseline,
    Split,
    adaptation_baseline,
    evaluate,
    features,
    load_split,
    mfcc_statistics,
    run_split,
    speaker_means,
    speaker_znorm,
)


@pytest.fixture(scope="module")
def fold(tmp_path_factory):
    """A synthetic EmoDB-layout corpus (the testing fixtures' emotion
    cues), prepared into speaker-independent manifests."""
    from speechbrain_grl.dataio.prepare import prepare_corpus
    from speechbrain_grl.testing.acted_corpora import make_emodb_corpus

    tmp = tmp_path_factory.mktemp("classic")
    root = make_emodb_corpus(tmp / "emodb", n_speakers=6,
                             utts_per_speaker=28)
    prepare_corpus("emodb", root, tmp / "run", n_folds=3)
    return tmp / "run"


def test_plain_is_above_chance_and_deterministic(fold):
    train, test = run_split(fold, "train"), run_split(fold, "test")
    assert not set(train.speakers) & set(test.speakers)
    assert len(set(test.emotions)) == 4
    first = evaluate(train, test)
    assert first["plain"] > 25.0 + 15.0  # chance: 4 classes
    assert first["znorm"] > 25.0 + 15.0
    assert evaluate(train, test) == first  # same fold, same numbers


def test_features_are_cached_per_path(fold):
    train = run_split(fold, "train")
    a = features(train.files[:3])
    assert a.shape == (3, 40)
    assert mfcc_statistics(train.files[0]) is mfcc_statistics(
        train.files[0])
    assert np.array_equal(features(train.files[:3]), a)


def _offset_case(seed):
    """Two classes apart on feature 0 by 2; every speaker has its own
    large offset on every feature, and the test speakers' offsets lie
    outside the training speakers' range."""
    rng = np.random.default_rng(seed)
    rows, labels, spks = [], [], []
    for s in range(12):
        offset = rng.normal(0.0, 1.0, 4) * 3.0 + (
            20.0 if s >= 8 else 0.0)  # speakers 8..11: the test ones
        for i in range(20):
            y = "hi" if i % 2 else "lo"
            rows.append(offset + rng.normal(0.0, 1.0, 4)
                        + [2.0 * (y == "hi"), 0.0, 0.0, 0.0])
            labels.append(y)
            spks.append(f"s{s}")
    x = np.array(rows)
    train = [i for i, s in enumerate(spks) if int(s[1:]) < 8]
    test = [i for i, s in enumerate(spks) if int(s[1:]) >= 8]
    return (x[train], [labels[i] for i in train], [spks[i] for i in train],
            x[test], [labels[i] for i in test], [spks[i] for i in test])


def test_znorm_removes_a_speaker_offset():
    xtr, ytr, str_, xte, yte, ste = _offset_case(0)
    plain = ClassicBaseline().fit(xtr, ytr).score(xte, yte)
    znorm = ClassicBaseline(znorm=True).fit(xtr, ytr, str_).score(
        xte, yte, ste)
    assert znorm > 80.0
    assert znorm > plain + 20.0
    # deterministic given the seed
    again = _offset_case(0)
    assert ClassicBaseline(znorm=True).fit(*again[:3]).score(
        *again[3:]) == znorm


def test_speaker_znorm_standardises_each_speaker():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0], [30.0, 2.0]])
    z = speaker_znorm(x, ["a", "a", "b", "b"])
    for rows in ([0, 1], [2, 3]):
        assert np.allclose(z[rows].mean(0), 0.0)
    assert np.allclose(z[[0, 1], 0], [-1.0, 1.0])
    assert np.all(np.isfinite(z))  # a constant feature stays finite
    with pytest.raises(ValueError, match="speakers"):
        ClassicBaseline(znorm=True).fit(x, ["p", "q", "p", "q"])


def test_dimensional_scores_ccc_per_dimension():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5))
    y = np.stack([x[:, 0], x[:, 1] - x[:, 2], 0.5 * x[:, 3]], 1) / 4 + .5
    spk = [f"s{i // 10}" for i in range(60)]
    m = ClassicBaseline("dimensional").fit(x[:40], y[:40]).score(
        x[40:], y[40:], spk[40:])
    assert set(m["CCC"]) == {"valence", "arousal", "dominance"}
    assert m["CCC_mean"] > 0.9
    with pytest.raises(ValueError, match="categorical or dimensional"):
        ClassicBaseline("ordinal")


def test_load_split_reads_vad_only_when_every_clip_has_it():
    man = {"a": {"wav": "{data_root}/a.wav", "spk_id": "1", "emo": "neu",
                 "vad": [0.1, 0.2, 0.3]},
           "b": {"wav": "{data_root}/b.wav", "spk_id": "2", "emo": "sad",
                 "vad": [0.4, 0.5, 0.6]}}
    split = load_split(man, "/r")
    assert split.files == ["/r/a.wav", "/r/b.wav"]
    assert split.vad == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    del man["b"]["vad"]
    assert load_split(man, "/r").vad is None


def test_the_adaptation_benchmark_uses_this_module(fold):
    """benchmarks/adaptation.py's ``classic`` is this module's
    :func:`adaptation_baseline` on the run's splits (no copy)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import adaptation

    ks = ["0", "1", "all"]
    got = adaptation.classic(fold, ks, 0, 2.0)
    want = adaptation_baseline(run_split(fold, "train"),
                               run_split(fold, "test"), ks, 0)
    assert got == want
    cells = adaptation.classic(fold, ks, 0, 2.0, balance="cells")
    assert cells == adaptation_baseline(run_split(fold, "train"),
                                        run_split(fold, "test"), ks, 0,
                                        balance="cells")
    assert adaptation.parse_args([]).classic_balance == "cells"
    # Given training means replace the computed ones (bias_ceiling.py's
    # true voices): the balanced means given reproduce balance="cells",
    # shifted means change the adapted scores, not the plain one.
    train = run_split(fold, "train")
    given = speaker_means(train.x(), train.speakers, train.emotions,
                          "cells")
    assert adaptation_baseline(train, run_split(fold, "test"), ks, 0,
                               means=given) == cells
    moved = adaptation_baseline(
        train, run_split(fold, "test"), ks, 0,
        means={s: m + 50.0 * (i % 2) for i, (s, m) in enumerate(
            given.items())})
    assert moved["plain"] == cells["plain"]
    assert moved["adapted"] != cells["adapted"]
    assert set(got["adapted"]) == set(ks) and got["tau"] == 2.0
    auto = adaptation.classic(fold, ks, 0, "auto")
    # The same clips and plain model; the prior's worth from the voices.
    assert auto["plain"] == got["plain"] and auto["tau"] > 0
    assert auto["tau"] != 2.0
    assert isinstance(run_split(fold, "train"), Split)
    opts = json.loads((fold / "prepare_opts.json").read_text())
    assert run_split(fold, "test").files[0].startswith(opts["data_folder"])


def test_evidence_reports_the_classic_rows_paired_by_seed(fold, tmp_path,
                                                          monkeypatch):
    """benchmarks/evidence.py scores the classic baseline on each seed's
    ``none`` manifests and pairs it with ``none``'s UA; ``merge_markdown``
    puts the rows into an existing report, idempotently."""
    import shutil

    from test_evidence_report import fake_run

    sys.path.insert(0, str(REPO / "benchmarks"))
    import evidence

    uas = [70.0, 80.0, 75.0]
    for seed, ua in enumerate(uas, 1):
        fake_run(tmp_path / "w", 0.9, "none", seed, ua)
        run = evidence.run_folder(tmp_path / "w", 0.9, "none", seed)
        for name in ("train.json", "test.json", "prepare_opts.json"):
            shutil.copy(fold / name, run / name)
    monkeypatch.setattr(evidence, "command", lambda *a: ["false"])
    evidence.main(["--biases", "0.9", "--seeds", "1,2,3", "--modes", "none",
                   "--workdir", str(tmp_path / "w"), "--out",
                   str(tmp_path / "out")])
    data = json.loads((tmp_path / "out" / "evidence.json").read_text())
    want = evaluate(run_split(fold, "train"), run_split(fold, "test"))
    for variant in ("plain", "znorm"):
        row = data["classic"]["0.9"][variant]
        assert row["UA"] == [want[variant]] * 3
        assert row["delta_UA"] == pytest.approx(
            [want[variant] - u for u in uas])
    assert list(data["0.9"]) == ["none"]  # the modes are untouched
    text = (tmp_path / "out" / "evidence.md").read_text()
    assert "| classic MFCC + LR, per-speaker z-norm | — |" in text
    rows = evidence.classic_rows(data["classic"], "0.9")
    section = evidence.classic_section({})
    bare = "\n".join(ln for ln in text.split("\n")
                     if not ln.startswith("| classic"))
    bare = bare[:bare.index("## Classic baseline")].rstrip() + "\n"
    once = evidence.merge_markdown(bare, {"## bias 0.9": rows}, section)
    assert once == text
    assert evidence.merge_markdown(once, {"## bias 0.9": rows},
                                   section) == once


def test_cross_corpus_and_dimensional_pair_when_per_seed_is_stored():
    """The classic rows of cross_corpus.py and dimensional.py pair by
    seed where the report holds ``none`` per seed; older reports (means
    only) get the difference of the means, flagged unpaired."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import cross_corpus
    import dimensional

    scores = {"seed_1": {"iemocap": {"plain": 60.0, "znorm": 80.0}},
              "seed_2": {"iemocap": {"plain": 70.0, "znorm": 90.0}}}
    result = {"none": {"iemocap": {"UA_mean": 75.0,
                                   "UA_by_seed": {"seed_1": 70.0,
                                                  "seed_2": 80.0}}}}
    got = cross_corpus.classic_summary(scores, result)["znorm"]["iemocap"]
    assert got["paired"] and got["UA_mean"] == 85.0
    assert got["delta_UA_mean"] == pytest.approx(10.0)
    assert got["delta_UA_ci95"] == pytest.approx([10.0, 10.0])
    del result["none"]["iemocap"]["UA_by_seed"]
    old = cross_corpus.classic_summary(scores, result)["plain"]["iemocap"]
    assert not old["paired"] and old["delta_UA_mean"] == -10.0
    assert "(Δ -10.0)" in cross_corpus.classic_rows(
        cross_corpus.classic_summary(scores, result), ["iemocap"])[0]

    def metrics(c):
        return {"CCC": dict.fromkeys(dimensional.DIMS, c), "CCC_mean": c,
                "CCC_speaker_std": None}

    dim = {"1": {"plain": metrics(0.5), "znorm": metrics(0.6)},
           "2": {"plain": metrics(0.7), "znorm": metrics(0.8)}}
    summary = {"none": {"CCC_mean": 0.9,
                        "CCC_mean_by_seed": {"1": 0.8, "2": 1.0}}}
    rows = dimensional.classic_summary(dim, summary)
    assert rows["plain"]["paired"]
    assert rows["plain"]["delta_CCC_mean"] == pytest.approx(-0.3)
    assert rows["znorm"]["CCC_valence"] == pytest.approx(0.7)
    del summary["none"]["CCC_mean_by_seed"]
    assert dimensional.classic_summary(dim, summary)["znorm"][
        "delta_CCC_mean"] == pytest.approx(-0.2)
    assert "(unpaired)" in dimensional.classic_rows(
        dimensional.classic_summary(dim, summary))[1]


def test_balanced_speaker_means_do_not_take_a_favourite_emotion_for_the_voice():
    """A speaker who mostly says one emotion: the plain mean moves towards
    it, the cells mean stays at the voice (the average of the emotions'
    means), as the recipe's SpeakerNorm keeps it."""
    from speechbrain_grl.evaluation.classic import speaker_means

    rng = np.random.default_rng(0)
    voice = {"a": 5.0, "b": -5.0}
    effect = {"lo": -1.0, "hi": 1.0}
    rows, spk, emo = [], [], []
    for s, fav in (("a", "hi"), ("b", "lo")):
        for i in range(40):
            e = fav if i < 36 else ("lo" if fav == "hi" else "hi")
            rows.append([voice[s] + effect[e] + 0.01 * rng.normal()])
            spk.append(s)
            emo.append(e)
    x = np.array(rows)
    plain = speaker_means(x, spk)
    cells = speaker_means(x, spk, emo, balance="cells")
    for s in voice:
        assert abs(cells[s][0] - voice[s]) < 0.02
        assert abs(plain[s][0] - voice[s]) > 0.7
    with pytest.raises(ValueError, match="needs the emotions"):
        speaker_means(x, spk, balance="cells")
