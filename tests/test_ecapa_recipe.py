"""The from-scratch filterbank recipe (``hparams/ecapa_spknorm.yaml``): every
method trains with it, its export loads with the stock
``EncoderClassifier`` and predicts what the recipe's test pass did, and
it passes SpeechBrain's consistency checks."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import RECIPE, REPO, run_recipe
from test_export_predict import STOCK_SCRIPT, run_stock_script

ECAPA_YAML = RECIPE / "hparams" / "ecapa_spknorm.yaml"
METHODS = ("none", "grl", "spknorm")
DEBUG = ("grl",)  # 2 batches a stage: trains, tests nothing
OPTIONS = dict(window_seconds=40.0, batch_seconds=0.0, progress=False)


@pytest.fixture(scope="module")
def runs(demo_assets, tmp_path_factory):
    """One short run per method on the demo corpus (1 epoch, 8 training
    clips per class; grl in SpeechBrain's --debug mode, augmented), none
    and spknorm exported."""
    tmp = tmp_path_factory.mktemp("ecapa")
    out = {}
    for method in METHODS:
        run = tmp / method
        # grl also trains on augmented waveforms (every batch).
        debug = (["--debug", "--debug_epochs=1", "--augment_prob=1.0"]
                 if method in DEBUG else [])
        run_recipe("train.py", ECAPA_YAML, f"--demo_folder={demo_assets}",
                   f"--output_folder={run}", f"--adversary={method}",
                   "--number_of_epochs=1", "--train_per_class=8",
                   "--valid_ratio=0.1", "--probe_speakers=False", *debug)
        out[method] = run
    for method in ("none", "spknorm"):
        run_recipe("export.py", f"--from={out[method]}",
                   f"--to={tmp / f'model_{method}'}")
    return tmp, out


def _augment_draws(augmenter, wavs, lens, draws):
    """The Brain's training augmentation through ``augmenter``, applied
    ``draws`` times to the same batch; each output keeps the batch's
    clips."""
    from types import SimpleNamespace

    from speechbrain_grl.brain import SpeakerAdversarialBrain

    fake = SimpleNamespace(hparams=SimpleNamespace(wav_augment=augmenter))
    outs = [SpeakerAdversarialBrain.augment(fake, wavs, lens)[0]
            for _ in range(draws)]
    assert all(len(out) == len(wavs) for out in outs)
    return outs


def test_augmentation_changes_training_batches_only():
    """The yaml's wav_augment (SpeechBrain's Augmenter) alters training
    waveforms and keeps the batch's clips; augment_prob 0 is a no-op and
    an augmenter that adds clips is refused."""
    from types import SimpleNamespace

    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import DropChunk

    from speechbrain_grl.brain import SpeakerAdversarialBrain
    from speechbrain_grl.utils.hparams_checks import RecipeError

    text = ECAPA_YAML.read_text().split("\nmodules:")[0]
    wavs, lens = torch.randn(4, 16000), torch.tensor([1.0, 0.7, 0.5, 1.0])
    torch.manual_seed(0)
    for prob in (0.0, 1.0):
        hp = load_hyperpyyaml(text.replace("!apply:", "!name:"),
                              {"augment_prob": prob})
        # One draw may change nothing (speed 100, no band dropped): five.
        outs = _augment_draws(hp["wav_augment"], wavs, lens, 5)
        assert any(out.shape != wavs.shape or not torch.equal(out, wavs)
                   for out in outs) == (prob > 0)
    fake = SimpleNamespace(hparams=SimpleNamespace(wav_augment=Augmenter(
        concat_original=True, augmentations=[DropChunk()])))
    with pytest.raises(RecipeError, match="concat_original"):
        SpeakerAdversarialBrain.augment(fake, wavs, lens)


def test_demo_augmentation_is_off_by_default():
    """The demo yaml's speed perturbation (an option, not the default:
    docs/evidence.md) leaves training batches alone at its default
    augment_prob and, switched on, changes them and keeps their clips."""
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_grl.utils.hparams_checks import check_augmenter

    text = (RECIPE / "hparams" / "demo_grl.yaml").read_text()
    block = text[text.index("augment_prob:"):text.index("\nmodules:")]
    wavs, lens = torch.randn(4, 16000), torch.tensor([1.0, 0.7, 0.5, 1.0])
    torch.manual_seed(0)
    for overrides, on in (({}, False), ({"augment_prob": 1.0}, True)):
        hp = load_hyperpyyaml("sample_rate: 16000\n" + block, overrides)
        check_augmenter(hp["wav_augment"])
        # Speed 100 changes nothing: several draws.
        outs = _augment_draws(hp["wav_augment"], wavs, lens, 6)
        assert any(out.shape != wavs.shape for out in outs) == on


def _test_set(run):
    man = json.loads((run / "test.json").read_text())
    root = json.loads((run / "prepare_opts.json").read_text())["data_folder"]
    return man, {u: e["wav"].replace("{data_root}", root)
                 for u, e in man.items()}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_the_ecapa_encoder(runs, method):
    _, out = runs
    run = out[method]
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["adversary"] == method
    n_test = len(json.loads((run / "test.json").read_text()))
    assert metrics["n_utterances"] == (2 if method in DEBUG else n_test)
    assert 0 <= metrics["UA"] <= 100
    log = (run / "train_log.txt").read_text()
    lam = float(log.split("train lambda:")[1].split()[0].rstrip(","))
    assert (lam > 0) == (method == "grl"), log
    if method not in DEBUG:  # --debug saves no checkpoint
        ckpt = next((run / "save").glob("CKPT*/ssl.ckpt"))
        keys = torch.load(ckpt, map_location="cpu", weights_only=True)
        assert any(k.startswith("2.blocks.") for k in keys)  # ECAPA-TDNN


def test_stock_classifier_equals_recipe(runs, demo_assets, tmp_path):
    """The stock class, without the plugin, gives the recipe's test
    log-probabilities; the encoder and pooling blocks came from the
    training yaml."""
    tmp, out = runs
    model = tmp / "model_none"
    names = {p.name for p in model.iterdir()}
    assert {"hyperparams.yaml", "encoder.ckpt", "embedding_model.ckpt",
            "classifier.ckpt", "label_encoder.txt", "README.md"} <= names
    assert "ssl" not in names
    hp = (model / "hyperparams.yaml").read_text()
    assert "ECAPA_TDNN" in hp and "Wav2Vec2" not in hp
    assert "trained from scratch" in (model / "README.md").read_text()
    got, ref = run_stock_script(STOCK_SCRIPT, out["none"], model,
                                demo_assets, tmp_path)
    assert got["n"] == len(ref["log_probs"]) > 0
    assert got["max_diff"] <= 1e-4, got["max_diff"]
    assert got["moved_diff"] <= 1e-4
    assert got["emb_shape"] == [6, 1, 64]


def test_spknorm_export_adapts_to_speakers(runs, tmp_path):
    """With each test speaker's clips, ``predict_speakers`` (what
    ``speechbrain-grl-predict --speakers`` runs) gives the recipe's test
    log-probabilities; the CLI writes a speaker column."""
    from speechbrain_grl.inference import predict as cli
    from speechbrain_grl.inference.adaptation import (
        normalised,
        predict_speakers,
    )

    tmp, out = runs
    run = out["spknorm"]
    clf = cli.load_model(tmp / "model_spknorm")
    assert normalised(clf)
    man, files = _test_set(run)
    utts = sorted(files)
    rows = predict_speakers(clf, [files[u] for u in utts],
                            {f: man[u]["spk_id"] for u, f in files.items()},
                            **OPTIONS)
    ref = json.loads((run / "test_predictions.json").read_text())
    diff = max(abs(float(row[f"prob_{lab}"]) - np.exp(p))
               for u, row in zip(utts, rows)
               for lab, p in zip(ref["labels"], ref["log_probs"][u]))
    assert diff < 1e-4
    spk_map = tmp_path / "speakers.csv"
    with open(spk_map, "w", newline="", encoding="utf-8") as fout:
        writer = csv.writer(fout)
        writer.writerow(["path", "speaker"])
        writer.writerows([files[u], man[u]["spk_id"]] for u in utts[:4])
    preds = tmp_path / "preds.csv"
    cli.main(["--model", str(tmp / "model_spknorm"), "--no-progress",
              "--speakers", str(spk_map), "--output", str(preds),
              *[files[u] for u in utts[:4]]])
    with open(preds, encoding="utf-8") as fin:
        got = list(csv.DictReader(fin))
    assert [r["speaker"] for r in got] == [man[u]["spk_id"]
                                           for u in utts[:4]]
    assert all(r["label"] and not r["error"] for r in got)


def test_recipe_is_listed_and_consistent():
    """A recipe-CSV row with debug flags, and every yaml key used
    (SpeechBrain's own check, unmodified)."""
    from recipe_checks import read_rows

    from tests.utils.check_yaml import check_yaml_vs_script

    rows = [r for r in read_rows(REPO / "tests" / "recipes" / "IEMOCAP.csv")
            if r["Hparam_file"].endswith("/ecapa_spknorm.yaml")]
    assert len(rows) == 1 and "--debug" in rows[0]["test_debug_flags"]
    assert check_yaml_vs_script(str(ECAPA_YAML), str(RECIPE / "train.py"))
    assert len(ECAPA_YAML.read_text().splitlines()) <= 165
