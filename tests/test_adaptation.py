"""Speaker normalisation that ships: the exported model's prior, and its
adaptation to each speaker from their clips (API and predict CLI)."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import (
    REPO,
    benchmark_report,
    demo_args,
    run_python,
    run_recipe,
)

from speechbrain_grl.inference.adaptation import (
    AdaptationError,
    SpeakerAdaptation,
    deployment_prior,
    normalised,
    pooled_features,
    predict_speakers,
    read_speaker_map,
)
from speechbrain_grl.inference.export import (
    ExportError,
    _check_normalised,
    trained_speaker_norm,
)
from speechbrain_grl.inference.predict import head, load_model, predict

LEGACY = REPO / "tests" / "legacy" / "exported_0.2"
OPTIONS = dict(window_seconds=40.0, batch_seconds=0.0, progress=False)


@pytest.fixture(scope="module")
def exported(demo_assets, tmp_path_factory):
    """A spknorm demo run (held-out validation speakers) and its export."""
    run = tmp_path_factory.mktemp("spknorm_run")
    model = tmp_path_factory.mktemp("spknorm_model") / "model"
    run_recipe("train.py", *demo_args(
        demo_assets, run, "--adversary=spknorm", "--number_of_epochs=2",
        "--probe_speakers=False", "--valid_from=held_out_speakers",
        "--spk_norm_train_clips=[0, 1, null]"))
    run_recipe("export.py", f"--from={run}", f"--to={model}")
    return run, model


def _test_set(run):
    man = json.loads((run / "test.json").read_text())
    root = json.loads((run / "prepare_opts.json").read_text())["data_folder"]
    files = {u: e["wav"].replace("{data_root}", root) for u, e in man.items()}
    return man, files


def test_the_export_holds_the_prior(exported):
    """The stock module standardises with the training speakers' average
    voice and pooled spread, as the recipe's SpeakerNorm computes them."""
    from speechbrain.utils.checkpoints import Checkpointer

    from speechbrain_grl.nnet.speaker_norm import SpeakerNorm

    run, model = exported
    clf = load_model(model)
    trained = trained_speaker_norm(run)  # the yaml's spk_norm_tau
    assert normalised(clf) and clf.hparams.speaker_prior_tau == (
        pytest.approx(trained.prior_tau()))
    ckpt = Checkpointer(run / "save").find_checkpoint(max_key="UA")
    state = torch.load(ckpt.paramfiles["spk_norm"], weights_only=True)
    norm = SpeakerNorm(state["mean"].shape[-1], state["count"].numel() // 4,
                       n_emotions=4, std="pooled")
    norm.load_state_dict(state)
    mean, std = norm.prior()
    assert torch.allclose(clf.mods.mean_var_norm.glob_mean, mean)
    assert torch.allclose(clf.mods.mean_var_norm.glob_std, std)
    assert float(mean.abs().sum()) > 0


def test_the_recipe_test_pass_is_what_predict_gives_with_all_clips(
        exported):
    """The recipe's test numbers are the deployed numbers: predict with
    each test speaker's clips gives the recipe's test log-probabilities."""
    run, model = exported
    clf = load_model(model)
    man, files = _test_set(run)
    utts = sorted(files)
    rows = predict_speakers(clf, [files[u] for u in utts],
                            {f: man[u]["spk_id"] for u, f in files.items()},
                            **OPTIONS)
    ref = json.loads((run / "test_predictions.json").read_text())
    labels = ref["labels"]
    diff = max(abs(float(row[f"prob_{lab}"]) - np.exp(p))
               for u, row in zip(utts, rows)
               for lab, p in zip(labels, ref["log_probs"][u]))
    assert diff < 1e-4
    counts = {r["speaker"]: r["adapt_clips"] for r in rows}
    for spk, n in counts.items():
        assert n == sum(1 for e in man.values() if e["spk_id"] == spk)


def test_no_clip_is_the_prior_and_clips_move_the_mean(exported):
    run, model = exported
    clf = load_model(model)
    man, files = _test_set(run)
    utts = sorted(files)[:6]
    paths = [files[u] for u in utts]
    speakers = {f: man[u]["spk_id"] for u, f in files.items()}
    prior = predict(clf, paths, **OPTIONS)
    none = predict_speakers(clf, paths, speakers, adapt_clips=0, **OPTIONS)
    assert [r["adapt_clips"] for r in none] == [0] * len(paths)
    for a, b in zip(prior, none):
        assert a["prob_" + a["label"]] == b["prob_" + a["label"]]
    three = predict_speakers(clf, paths, speakers, adapt_clips=3, **OPTIONS)
    assert {r["adapt_clips"] for r in three} == {3}
    assert any(a["score"] != b["score"] for a, b in zip(none, three))
    # The same seed draws the same clips; another seed others.
    again = predict_speakers(clf, paths, speakers, adapt_clips=3, **OPTIONS)
    assert again == three


class _Calls:
    """Counts the clips that go through a module's forward."""

    def __init__(self, module):
        self.clips = 0
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module, args):
        self.clips += len(args[0])


def test_each_file_is_encoded_once(exported):
    """``predict_speakers`` classifies a file and reads its speaker's
    statistics from one pass of the encoder; windows encoded before are
    shared (several k), with the same rows."""
    from speechbrain_grl.inference.predict import encode_windows

    run, model = exported
    clf = load_model(model)
    man, files = _test_set(run)
    paths = [files[u] for u in sorted(files)]
    speakers = {f: man[u]["spk_id"] for u, f in files.items()}
    calls = _Calls(clf.mods.compute_features)
    rows = predict_speakers(clf, paths, speakers, **OPTIONS)
    assert calls.clips == len(paths)
    assert min(r["adapt_clips"] for r in rows) > 0
    assert all(r["label"] and not r["error"] for r in rows)
    windows = encode_windows(clf, paths, **OPTIONS)
    calls.clips = 0
    for k in (None, 0, 3):
        got = predict_speakers(clf, paths, speakers, k, windows=windows,
                               **OPTIONS)
        assert got == predict_speakers(clf, paths, speakers, k, **OPTIONS)
    assert calls.clips == 3 * len(paths)  # the three calls without windows
    calls.handle.remove()


def test_long_files_give_statistics_of_the_whole_clip(exported):
    """A file classified in several windows (or trimmed) adds its whole
    clip to its speaker's statistics, as the recipe does: the same rows as
    the streaming API's mean over whole clips applied to predict."""
    from speechbrain_grl.dataio.audio import read_audio

    run, model = exported
    clf = load_model(model)
    man, files = _test_set(run)
    utts = sorted(files)
    spk = man[utts[0]]["spk_id"]
    mine = [files[u] for u in utts if man[u]["spk_id"] == spk][:4]
    options = dict(OPTIONS, window_seconds=0.4)
    got = predict_speakers(clf, mine, {f: spk for f in mine}, **options)
    adapt = SpeakerAdaptation.from_model(clf).partial_fit(torch.stack(
        [pooled_features(clf, read_audio(f, 16000)) for f in mine]))
    with adapt.applied(clf):
        want = predict(clf, mine, **options)
    assert [r["score"] for r in got] == [r["score"] for r in want]
    assert {r["adapt_clips"] for r in got} == {len(mine)}


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_an_inexact_encoder_reads_padded_clips_alone(exported, backend):
    """An int8 encoder quantises a batch's activations with the batch's
    scales (and the ONNX one sees the padding): batched clips do not
    lend their features to the statistics, they are read alone, as
    ``pooled_features`` reads them."""
    from speechbrain_grl.dataio.audio import read_audio
    from speechbrain_grl.inference.predict import (
        encode_windows,
        quantize_int8,
    )

    run, model = exported
    clf = quantize_int8(load_model(model), backend=backend)
    man, files = _test_set(run)
    paths = [files[u] for u in sorted(files)][:12]
    alone = encode_windows(clf, paths, **OPTIONS)
    assert alone.whole == set(range(len(paths)))
    batched = encode_windows(clf, paths, **dict(OPTIONS, batch_seconds=8.0))
    assert len(batched.whole) < len(paths)
    for i in batched.whole:
        assert torch.equal(batched.feats[i][0], alone.feats[i][0])
    speakers = {f: man[u]["spk_id"] for u, f in files.items()}
    spk = speakers[paths[0]]
    mine = [p for p in paths if speakers[p] == spk]
    got = predict_speakers(clf, mine, {p: spk for p in mine},
                           **dict(OPTIONS, batch_seconds=8.0))
    adapt = SpeakerAdaptation.from_model(clf).partial_fit(torch.stack(
        [pooled_features(clf, read_audio(p, 16000)) for p in mine]))
    with adapt.applied(clf):
        want = predict(clf, mine, **dict(OPTIONS, batch_seconds=8.0))
    assert [r["score"] for r in got] == [r["score"] for r in want]


def test_streaming_equals_all_at_once(exported):
    from speechbrain_grl.dataio.audio import read_audio

    run, model = exported
    clf = load_model(model)
    _, files = _test_set(run)
    wavs = [read_audio(files[u], 16000) for u in sorted(files)[:3]]
    feats = torch.stack([pooled_features(clf, w) for w in wavs])
    one = SpeakerAdaptation.from_model(clf)
    for f in feats:
        one.partial_fit(f)
    batch = SpeakerAdaptation.from_model(clf).partial_fit(feats)
    assert one.n_clips_ == batch.n_clips_ == len(wavs)
    assert torch.allclose(one.mean_, batch.mean_)
    tau = clf.hparams.speaker_prior_tau
    want = (tau * clf.mods.mean_var_norm.glob_mean + feats.sum(0)) / (
        tau + len(wavs))
    assert torch.allclose(batch.mean_, want, atol=1e-6)
    saved = clf.mods.mean_var_norm.glob_mean.clone()
    with batch.applied(clf):
        assert torch.allclose(clf.mods.mean_var_norm.glob_mean, want)
        # A clip's pooled features through the heads: classify_batch's
        # log-probabilities without encoding it again (the README's).
        stock = clf.classify_batch(wavs[0][None])[0]
        once = clf.mods.classifier(head(clf, feats[0][None, None]))
        assert torch.allclose(once.squeeze(), stock.squeeze(), atol=1e-5)
    assert torch.equal(clf.mods.mean_var_norm.glob_mean, saved)


def _cli(model, *args, cwd=REPO):
    return run_python("-m", "speechbrain_grl.inference.predict",
                      "--model", model, "--no-progress", *args, cwd=cwd)


def test_cli_speakers_map_with_bad_rows(exported, tmp_path):
    """Relative paths (to the CSV), a missing file, a silent clip and one
    too short for the encoder are counted out of the statistics; a file
    of no listed speaker gets the prior; every row names its speaker and
    clip count."""
    run, model = exported
    man, files = _test_set(run)
    utts = sorted(files)
    spk = man[utts[0]]["spk_id"]
    mine = [u for u in utts if man[u]["spk_id"] == spk][:3]
    other = next(u for u in utts if man[u]["spk_id"] != spk)
    clips = tmp_path / "clips"
    clips.mkdir()
    for u in mine + [other]:
        data, rate = sf.read(files[u])
        sf.write(clips / f"{u}.wav", data, rate)
    sf.write(clips / "silent.wav", np.zeros(16000), 16000)
    # Listed, not classified, too short for the encoder (10 ms).
    sf.write(tmp_path / "short.wav", np.random.default_rng(0).uniform(
        -0.5, 0.5, 160), 16000)
    with open(tmp_path / "map.csv", "w", newline="") as fout:
        w = csv.writer(fout)
        w.writerow(["path", "speaker"])
        for u in mine:
            w.writerow([f"clips/{u}.wav", spk])
        w.writerow(["clips/silent.wav", spk])
        w.writerow(["clips/gone.wav", spk])
        w.writerow(["short.wav", spk])
        w.writerow([f"clips/{other}.wav", "solo"])
    out = tmp_path / "pred.csv"
    res = _cli(model, "--speakers", tmp_path / "map.csv", "--output", out,
               clips)
    # The silent file itself is not classified: its row says so, in one
    # line, and the exit status is 1 (as for any file that failed).
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "1 failed" in res.stderr
    rows = {r["path"].split("/")[-1]: r for r in csv.DictReader(open(out))}
    assert rows["silent.wav"]["error"].startswith("silent audio")
    assert rows[f"{mine[0]}.wav"]["speaker"] == spk
    assert rows[f"{mine[0]}.wav"]["adapt_clips"] == "3"  # silent, gone out
    assert rows[f"{other}.wav"]["adapt_clips"] == "1"  # one clip: fine
    assert not rows[f"{other}.wav"]["error"]
    assert "3 unreadable, too short or silent clips" in res.stderr
    res = _cli(model, "--speakers", tmp_path / "map.csv", "--adapt_clips",
               "1", "--output", out, clips)
    assert res.returncode == 1
    rows = [r for r in csv.DictReader(open(out)) if not r["error"]]
    assert rows and {r["adapt_clips"] for r in rows} == {"1"}


@pytest.mark.parametrize("content,message", [
    ("file,who\nx.wav,a\n", "no column path, speaker"),
    ("path,speaker\n,a\n", "line 2: empty path or speaker"),
])
def test_bad_speaker_map_is_one_line(exported, tmp_path, content, message):
    _, model = exported
    (tmp_path / "map.csv").write_text(content)
    res = _cli(model, "--speakers", tmp_path / "map.csv",
               REPO / "tests" / "samples" / "IEMOCAP_full_release")
    assert res.returncode != 0
    assert message in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(AdaptationError, match=message.split(":")[0]):
        read_speaker_map(tmp_path / "map.csv")


def test_speakers_on_a_model_without_normalisation_is_one_line(tmp_path):
    (tmp_path / "map.csv").write_text("path,speaker\nx.wav,a\n")
    res = _cli(LEGACY, "--speakers", tmp_path / "map.csv",
               REPO / "tests" / "samples" / "IEMOCAP_full_release")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "trained without speaker normalisation" in last
    assert last.startswith("speechbrain-grl-predict: error: --speakers")


def test_export_refuses_normalisation_no_deployment_can_apply(tmp_path):
    from speechbrain_grl.nnet.speaker_norm import SpeakerNorm

    hp = {"adversary": "spknorm",
          "spk_norm": SpeakerNorm(4, 2, std="speaker")}
    with pytest.raises(ExportError, match="std: pooled"):
        _check_normalised(tmp_path, hp)
    assert _check_normalised(tmp_path, {"adversary": "grl"}) is False
    hp["spk_norm"] = SpeakerNorm(4, 2, std="pooled")
    assert _check_normalised(tmp_path, hp) is True


def test_the_curve_at_all_clips_is_the_recipes_test_ua(exported, tmp_path):
    """The adaptation curve goes through the deployed model; at k = all
    it reproduces the recipe's test UA, and the fast all-taus path agrees
    with it on validation."""
    import shutil

    from speechbrain_grl.evaluation.adaptation import (
        adaptation_curve,
        tau_curves,
    )

    run, _ = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    curve = adaptation_curve(copy, ks=("0", "3", "all"), seed=1)
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert curve["test"]["all"] == pytest.approx(metrics["UA"])
    # The export's prior strength (the yaml's spk_norm_tau) and another.
    tau = load_model(copy / "exported").hparams.speaker_prior_tau
    fast = tau_curves(copy, {"export": tau, "strong": 50.0},
                      ks=("0", "3", "all"), seed=1)
    assert fast["export"] == pytest.approx(curve["valid"])
    assert set(fast) == {"export", "strong"}
    assert (copy / "adaptation_curve.json").is_file()
    again = adaptation_curve(copy, ks=("0", "3", "all"), seed=1)
    assert again == curve  # from the cache


def test_the_latest_checkpoint_exports_and_reads_curves(exported,
                                                       tmp_path):
    """``checkpoint="latest"`` exports the newest end-of-epoch checkpoint
    (its weights; the card says it is not the tested one), and its curve
    is cached beside the best one's; ``epoch_spread.py --curves`` reads
    both against ``none`` (here the same run: every Δ is 0)."""
    import shutil

    from speechbrain.utils.checkpoints import Checkpointer

    from speechbrain_grl.evaluation.adaptation import adaptation_curve
    from speechbrain_grl.inference.export import export_model

    run, _ = exported
    copy = tmp_path / "work" / "corpus_0" / "bias_0.9" / "spknorm" / "seed_1"
    shutil.copytree(run, copy)
    ckpter = Checkpointer(copy / "save")
    newest = ckpter.find_checkpoint()
    best = ckpter.find_checkpoint(max_key="UA")
    if newest.path == best.path:  # a later, worse checkpoint of its own
        import yaml

        later = newest.path.with_name(newest.path.name + "-later")
        shutil.copytree(newest.path, later)
        meta = yaml.safe_load((later / "CKPT.yaml").read_text())
        meta.update(unixtime=meta["unixtime"] + 1, UA=-1.0)
        (later / "CKPT.yaml").write_text(yaml.dump(meta))
        weights = torch.load(later / "ssl.ckpt", map_location="cpu")
        torch.save({k: v + 0.01 if v.is_floating_point() else v
                    for k, v in weights.items()}, later / "ssl.ckpt")
        newest = ckpter.find_checkpoint()
        assert newest.path == later
    model = export_model(copy, tmp_path / "latest", checkpoint="latest")
    ssl = torch.load(newest.paramfiles["ssl"], map_location="cpu")
    clf = load_model(model)
    got = clf.mods.compute_features.model.state_dict()
    name = next(k for k in got if k.endswith("weight") and got[k].ndim > 1)
    assert torch.equal(got[name], ssl[f"model.{name}"])
    assert "the latest, not the best" in (model / "README.md").read_text()
    latest = adaptation_curve(copy, ks=("0", "all"), seed=1,
                              splits=("valid",), checkpoint="latest")
    assert (copy / "adaptation_curve_latest.json").is_file()
    assert (copy / "exported_latest" / "hyperparams.yaml").is_file()
    adaptation_curve(copy, ks=("0", "all"), seed=1)
    shutil.copytree(copy, copy.parents[1] / "none" / "seed_1",
                    symlinks=True)
    out = benchmark_report("epoch_spread.py", tmp_path, "--workdir",
                           tmp_path / "work", "--corpora", "0", "--biases",
                           "0.9", "--seeds", "1", "--candidate", "spknorm",
                           "--curves")
    assert out["spknorm"]["curves"]["latest"] == {
        "0.9": {"0": 0.0, "all": 0.0}, "mean": 0.0}
    assert "| latest | 0.9 | +0.0 | +0.0 | +0.00 |" in (
        tmp_path / "epoch_spread.md").read_text()
    assert 0 <= latest["valid"]["all"] <= 100


def test_normalised_template_composes_with_the_dimensional_blocks(tmp_path):
    """A dimensional (or both) model with per-speaker normalisation gets
    both the regressor and the prior-holding InputNormalization."""
    from speechbrain.processing.features import InputNormalization

    from speechbrain_grl.inference.export import (
        DEFAULT_SSL_CLASS,
        build_heads,
        fill_template,
    )

    values = {"model_dir": str(tmp_path), "encoder_dim": 8, "emb_dim": 4,
              "n_emotions": 4, "output_norm": False, "task": "both",
              "vad_scale": [1, 5], "speaker_prior_tau": 2.0}
    text = fill_template(values, DEFAULT_SSL_CLASS, dimensional=True,
                         normalised=True)
    heads = build_heads(text, tmp_path)
    assert isinstance(heads["mean_var_norm"], InputNormalization)
    assert "regressor" in heads and heads["speaker_prior_tau"] == 2.0
    assert "mean_var_norm: !ref <model_dir>/mean_var_norm.ckpt" in text
    plain = fill_template({k: v for k, v in values.items()
                           if k != "speaker_prior_tau"}, DEFAULT_SSL_CLASS,
                          dimensional=True)
    assert "InputNormalization" not in plain and "mean_var_norm.ckpt" \
        not in plain


def test_voice_offsets_measures_a_run_through_its_export(exported):
    """benchmarks/voice_offsets.py on a real run and export: a speaker's
    squared distance from the prior is the voices' spread around their
    average plus that average's shift from the prior."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import voice_offsets

    run, model = exported
    g = voice_offsets.measure(run, model)
    assert g["E"] > 0 and g["voices"] >= 0 and g["session_shift"] >= 0
    assert g["prior_offset"] == pytest.approx(
        g["voices"] + g["session_shift"], rel=1e-4)


def test_prior_head_scores_the_export_at_no_clip(exported, tmp_path):
    """benchmarks/prior_head.py reads a run's clips as its export does at
    k = 0: the export's own head scores what the adaptation curve gives at
    k = 0, and every fitted head scores both splits."""
    import shutil

    from speechbrain_grl.evaluation.adaptation import adaptation_curve

    sys.path.insert(0, str(REPO / "benchmarks"))
    import prior_head

    run, model = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    curve = adaptation_curve(copy, ks=("0",), seed=1)
    got = prior_head.measure(copy, model)
    for split in ("valid", "test"):
        assert got["model"][split] == pytest.approx(curve[split]["0"])
    assert set(got) == {"model", *prior_head.HEADS}
    assert all(0 <= v[s] <= 100 for v in got.values() for s in v)


def _run_with_export(exported, tmp_path):
    """A copy of the exported fixture's run with its export inside (as
    ``adaptation.py`` leaves it), its test files and their pooled
    features through the export: ``(run, files, speakers, emotions,
    features)``."""
    import shutil

    from speechbrain_grl.dataio.audio import read_audio
    from speechbrain_grl.evaluation.adaptation import manifest_files

    run, model = exported
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.copytree(model, copy / "exported")
    files, spks, emos = manifest_files(copy, "test")
    clf = load_model(copy / "exported")
    feats = torch.stack([pooled_features(clf, read_audio(str(f), 16000))
                         for f in files])
    return copy, files, spks, emos, feats


def test_a_recentred_prior_is_the_splits_mean(exported, tmp_path):
    """``tau_curves(recenter=True)`` at k = 0 scores what the export
    predicts with its prior mean replaced by the mean of the split's own
    clips (benchmarks/recentred_prior.py)."""
    from speechbrain_grl.evaluation.adaptation import tau_curves
    from speechbrain_grl.evaluation.metrics import emotion_metrics

    model = exported[1]
    copy, files, _, emos, feats = _run_with_export(exported, tmp_path)
    tau = load_model(model).hparams.speaker_prior_tau
    got = tau_curves(copy, {"t": tau}, ks=("0",), split="test",
                     recenter=True)["t"]["0"]
    plain = tau_curves(copy, {"t": tau}, ks=("0",), split="test")["t"]["0"]
    clf = load_model(copy / "exported")
    clf.mods.mean_var_norm.glob_mean = feats.mean(0)
    rows = predict(clf, files, **OPTIONS)
    labels = list(clf.hparams.label_encoder.lab2ind)
    want = emotion_metrics(emos, [r["label"] for r in rows], labels)["UA"]
    assert got == pytest.approx(want)
    exported_prior = load_model(model).mods.mean_var_norm.glob_mean
    assert not torch.allclose(feats.mean(0), exported_prior)
    assert 0 <= plain <= 100


def test_an_others_prior_leaves_the_speakers_own_clips_out(exported,
                                                          tmp_path):
    """benchmarks/recentred_prior.py's ``others`` row at k = 0: each
    speaker is classified with the prior mean set to the mean of the
    split's other speakers' clips, none of their own; its ``exported``
    row is the adaptation curve's."""
    from speechbrain_grl.evaluation.adaptation import adaptation_curve
    from speechbrain_grl.evaluation.metrics import emotion_metrics

    sys.path.insert(0, str(REPO / "benchmarks"))
    import recentred_prior

    copy, files, spks, emos, feats = _run_with_export(exported, tmp_path)
    got = recentred_prior.measure(copy, seed=3)
    assert len(set(spks)) >= 2
    clf = load_model(copy / "exported")
    labels = list(clf.hparams.label_encoder.lab2ind)
    said = [None] * len(files)
    for spk in set(spks):
        own = [i for i, s in enumerate(spks) if s == spk]
        others = [i for i, s in enumerate(spks) if s != spk]
        clf.mods.mean_var_norm.glob_mean = feats[others].mean(0)
        rows = predict(clf, [files[i] for i in own], **OPTIONS)
        for i, row in zip(own, rows):
            said[i] = row["label"]
    want = emotion_metrics(emos, said, labels)["UA"]
    assert got["others"]["test"]["0"] == pytest.approx(want)
    curve = adaptation_curve(copy, seed=3)
    for split in ("valid", "test"):
        assert got["exported"][split] == pytest.approx(curve[split])
    assert set(got["recentred"]["valid"]) == set(curve["valid"])


def test_recenter_shrinks_towards_the_files_average(exported, tmp_path):
    """``recenter``: the prior mean is the average of the files being
    classified; with no clip of a speaker they read it as predict does
    with it as the prior, and the CLI's --recenter works without
    --speakers; a model without normalisation refuses it in one line."""
    run, model = exported
    clf = load_model(model)
    man, files = _test_set(run)
    paths = [files[u] for u in sorted(files)][:8]
    speakers = {f: man[u]["spk_id"] for u, f in files.items()}
    got = predict_speakers(clf, paths, speakers, adapt_clips=0,
                           recenter=True, **OPTIONS)
    plain = predict_speakers(clf, paths, speakers, adapt_clips=0, **OPTIONS)
    mean = deployment_prior(clf, paths)
    assert not torch.allclose(mean, clf.mods.mean_var_norm.glob_mean)
    saved = clf.mods.mean_var_norm.glob_mean
    clf.mods.mean_var_norm.glob_mean = mean
    want = predict(clf, paths, **OPTIONS)
    clf.mods.mean_var_norm.glob_mean = saved
    assert [r["score"] for r in got] == [r["score"] for r in want]
    assert [r["score"] for r in got] != [r["score"] for r in plain]
    clips = tmp_path / "clips"
    clips.mkdir()
    for path in paths[:3]:
        data, rate = sf.read(path)
        sf.write(clips / Path(path).name, data, rate)
    out = tmp_path / "pred.csv"
    res = _cli(model, "--recenter", "--output", out, clips)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list(csv.DictReader(open(out)))) == 3
    res = _cli(LEGACY, "--recenter", clips)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert last.startswith("speechbrain-grl-predict: error: --recenter")
