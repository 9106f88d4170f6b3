"""The bad-input catalogue: each case ends in one clear line or a count.

Cases already covered by ``tests/test_prepare.py`` (not repeated here):
2 not an IEMOCAP folder and 3 a missing session (``test_bad_folders``),
4 label line without wav, 5 corrupt wav, 6 zero-length wav, 10 unknown
label code, 11 non-UTF-8 label file, 12 duplicate utterance id (all in
``test_bad_entries_are_counted``, skips counted in the summary), 14 a split
without a class (``test_missing_class_is_an_error``). Here: the same
errors through ``train.py``, and the cases that reach the model.
"""

import json

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch
from conftest import DEMO_YAML, demo_args, run_recipe
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import audio as dataio
from speechbrain_grl.testing.demo_corpus import make_demo_corpus


def _one_line_error(res, *needles):
    """Exit status 1, no traceback, a last line naming what is wrong."""
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: "), res.stderr[-3000:]
    for needle in needles:
        assert needle in last
    return last


@pytest.fixture(scope="module")
def three_sessions(tmp_path_factory):
    """A corpus holding Sessions 1-3 only."""
    return make_demo_corpus(tmp_path_factory.mktemp("s123"), n_sessions=3,
                            utts_per_speaker=8, seed=5)


def test_data_folder_missing(demo_assets, tmp_path):  # case 1
    missing = tmp_path / "no_such_iemocap"
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "out", f"--data_folder={missing}"),
        check=False)
    _one_line_error(res, str(missing), "does not exist")


def test_missing_session_then_subset(demo_assets, three_sessions,
                                     tmp_path):  # case 3
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "all", f"--data_folder={three_sessions}"),
        check=False)
    _one_line_error(res, "session 4", "sessions:")
    out = tmp_path / "subset"
    run_recipe("train.py", *demo_args(
        demo_assets, out, f"--data_folder={three_sessions}",
        "--sessions=[1, 2, 3]", "--test_session=3", "--number_of_epochs=1",
        "--probe_speakers=False"))
    test = json.loads((out / "test.json").read_text())
    assert {e["session"] for e in test.values()} == {3}
    assert json.loads((out / "test_metrics.json").read_text())[
        "n_utterances"] == len(test)


def test_ssl_folder_without_config(demo_assets, tmp_path):  # case 15
    empty = tmp_path / "my_hubert"
    empty.mkdir()
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "out", f"--ssl_hub={empty}"), check=False)
    _one_line_error(res, "ssl_hub", str(empty), "config.json")


@pytest.mark.parametrize("arg,needles", [
    ("--nonexistent_key=1", ["--nonexistent_key", "no such key"]),
    ("--batchsize=4", ["--batchsize", "did you mean --batch_size"]),
])
def test_unknown_override(demo_assets, tmp_path, arg, needles):  # case 16
    res = run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "out", arg), check=False)
    _one_line_error(res, *needles)
    assert not (tmp_path / "out").exists()  # rejected before anything


@pytest.mark.parametrize("rate,channels", [(8000, 1), (44100, 1),
                                           (44100, 2)])
def test_rates_and_stereo(tmp_path, rate, channels):  # cases 8, 9
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone, tone][:channels], axis=1)
    sf.write(str(tmp_path / "x.wav"), data, rate)
    sig = dataio.read_audio(str(tmp_path / "x.wav"), 16000)
    assert sig.shape == (16000,)
    assert 0.45 < float(sig.abs().max()) < 0.55  # mixdown keeps the level


def test_long_file_decodes_only_the_window(tmp_path, monkeypatch):  # 13
    path = tmp_path / "long.wav"
    sf.write(str(path), np.zeros(600 * 16000, dtype=np.int16), 16000,
             subtype="PCM_16")  # 10 minutes
    asked = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        asked.append(frames)
        return real_read(self, frames, *args, **kwargs)

    monkeypatch.setattr(dataio.sf.SoundFile, "read", spy)
    sig = dataio.read_audio(str(path), 16000, max_duration=3.0)
    assert asked == [48000] and sig.shape == (48000,)


@pytest.mark.parametrize("adversary", ["grl", "tap"])
def test_all_zero_audio_trains(demo_assets, tmp_path, adversary):  # case 7
    """Silent (all-zero) and padded input: finite loss, finite gradients."""
    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, {
            "demo_folder": str(demo_assets),
            "output_folder": str(tmp_path),
            "adversary": adversary,
        })
    encoder = sb.dataio.encoder.CategoricalEncoder()
    encoder.update_from_iterable(hparams["emotions"])
    hparams["label_encoder"] = encoder
    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"], hparams=hparams,
        run_opts={"device": "cpu"}, checkpointer=None)
    brain.init_optimizers()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    batch = PaddedBatch([
        {"id": f"u{i}", "sig": torch.zeros(n), "emo": "neu",
         "emo_encoded": torch.LongTensor([0]),
         "spk_encoded": torch.LongTensor([i])}
        for i, n in enumerate([16000, 8000, 16000])
    ])
    before = [p.detach().clone() for p in brain.modules.parameters()]
    for _ in range(2):  # tap: an emotion step, then a speaker step
        loss = brain.fit_batch(batch)
        assert torch.isfinite(loss)
    after = list(brain.modules.parameters())
    assert all(torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.fixture()
def small_copy(tmp_path):
    """A private 5-session corpus the test may damage."""
    return make_demo_corpus(tmp_path / "corpus", n_sessions=5,
                            utts_per_speaker=8, seed=7)


def _test_wav(root):
    return sorted((root / "Session5" / "sentences" / "wav").rglob(
        "Ses05*_F000.wav"))[0]


def test_truncated_test_wav_is_dropped_and_counted(demo_assets, small_copy,
                                                   tmp_path):
    """A 28-sample clip in the test session used to pass preparation and
    then crash wav2vec2's first convolution after training, losing the
    test; now preparation drops it and counts it, and the run finishes."""
    wav = _test_wav(small_copy)
    sf.write(wav, np.zeros(28), 16000, subtype="PCM_16")
    out = tmp_path / "out"
    run_recipe("train.py", *demo_args(
        demo_assets, out, f"--data_folder={small_copy}",
        "--number_of_epochs=1", "--probe_speakers=False"))
    summary = json.loads((out / "prepare_summary.json").read_text())
    assert summary["too_short_wav"] == 1
    assert wav.stem not in json.loads((out / "test.json").read_text())
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["n_utterances"] > 0 and metrics["skipped_utterances"] == []


def test_wav_broken_after_preparation_is_skipped_in_the_test(
        demo_assets, small_copy, tmp_path):
    """A test file damaged between preparation and testing is skipped,
    logged and counted; the metrics of the others are written."""
    out = tmp_path / "out"
    args = demo_args(demo_assets, out, f"--data_folder={small_copy}",
                     "--number_of_epochs=1", "--probe_speakers=False")
    run_recipe("train.py", *args, "--run_test=False")
    wav = _test_wav(small_copy)
    wav.write_bytes(b"RIFF garbage, not a wav any more")
    run_recipe("train.py", *args, "--skip_prep=True")
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert metrics["skipped_utterances"] == [wav.stem]
    n_test = len(json.loads((out / "test.json").read_text()))
    assert metrics["n_utterances"] == n_test - 1
    assert f"skipping ['{wav.stem}']" in (out / "log.txt").read_text()


def test_unparsed_label_lines_are_counted(small_copy, tmp_path):
    from speechbrain_grl.dataio.iemocap import scan_corpus

    label = sorted((small_copy / "Session1/dialog/EmoEvaluation").glob(
        "Ses01F_impro01.txt"))[0]
    with open(label, "a", encoding="utf-8") as fout:
        fout.write("[12.0 - oops]\tSes01F_impro01_F999\tneu\t[1, 2, 3]\n")
    _, summary = scan_corpus(small_copy)
    assert summary["unparsed_label_line"] == 1


def test_fixed_audio_makes_stale_manifests(small_copy, tmp_path):
    """The fingerprint covers the wavs' sizes: fixing a broken wav after a
    preparation rewrites the manifests (it used to reuse them)."""
    from speechbrain_grl.dataio.iemocap import prepare_iemocap

    wav = _test_wav(small_copy)
    good = wav.read_bytes()
    wav.write_bytes(b"broken")
    before = prepare_iemocap(small_copy, tmp_path / "m")
    assert wav.stem not in before["test"]
    wav.write_bytes(good)
    after = prepare_iemocap(small_copy, tmp_path / "m")
    assert wav.stem in after["test"]
