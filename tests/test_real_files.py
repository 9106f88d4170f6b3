"""Real files: rates, channels, lengths and silence (issue 23, part 4).

Each case of the README's "Real files" paragraph, on speech-like signals
(a harmonic voice with a moving pitch and a syllable-rate envelope)
written with soundfile as 16-bit PCM, float WAV and FLAC. Training and
evaluation go through :mod:`speechbrain_grl.dataio.audio`; prediction
through :func:`speechbrain_grl.inference.predict.predict` with a stand-in
model that records what the encoder is given (no training, no SSL model).
"""

import collections
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.dataio.encoder import CategoricalEncoder

from speechbrain_grl.dataio import audio
from speechbrain_grl.dataio.csv_corpus import scan_csv
from speechbrain_grl.dataio.manifests import clip_duration
from speechbrain_grl.inference import predict as pred

RATE = 16000
EMOTIONS = ["neu", "hap", "ang", "sad"]


def voice(seconds, rate, f0=140.0, seed=0):
    """A speech-like signal: 8 harmonics of a wandering f0 (below 3 kHz,
    so any rate from 16 kHz up holds it), amplitude-modulated at a
    syllable rate, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    # The pitch f0 * (1 + 0.1 sin(2 pi 0.7 t + a)), integrated exactly so
    # that every rate samples the same continuous signal.
    wobble = np.cos(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * f0 * (t - 0.1 / (2 * np.pi * 0.7) * wobble)
    sig = sum(np.sin(k * phase) / k for k in range(1, 9))  # peak < 1.9
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return 0.5 / 1.9 * sig * envelope


def write(path, data, rate, subtype=None):
    """Writes ``data`` and returns the path as a str."""
    sf.write(str(path), data, rate, subtype=subtype)
    return str(path)


# -- rates ------------------------------------------------------------------

@pytest.mark.parametrize("rate,ext,subtype", [
    (22050, "wav", "PCM_16"), (44100, "wav", "PCM_16"),
    (44100, "wav", "FLOAT"), (22050, "flac", None)])
def test_22k_and_44k_are_resampled_to_16k(tmp_path, rate, ext, subtype):
    seconds = 2.5
    path = write(tmp_path / f"v.{ext}", voice(seconds, rate), rate, subtype)
    sig = audio.read_audio(path, RATE)
    assert sig.dtype == torch.float32 and sig.ndim == 1
    assert abs(len(sig) - seconds * RATE) <= 1
    # The same voice synthesised at 16 kHz: resampling keeps the waveform
    # (away from the edges, where the filter lacks context).
    ref = torch.from_numpy(voice(seconds, RATE)).float()
    inner = slice(400, len(ref) - 400)
    assert (sig[inner] - ref[inner]).abs().max() < 0.01


def test_odd_length_resamples_to_the_ceiling(tmp_path):
    path = write(tmp_path / "odd.wav", voice(1.0, 44100)[:12345], 44100,
                 "PCM_16")
    sig = audio.read_audio(path, RATE)
    assert len(sig) == math.ceil(12345 * RATE / 44100) == 4479
    assert pred._frames(pred.Path(path)) == len(sig)  # predict plans so


# -- channels ---------------------------------------------------------------

def test_stereo_is_the_mean_of_its_channels(tmp_path):
    left, right = voice(1.0, RATE, 120, seed=1), voice(1.0, RATE, 210, seed=2)
    path = write(tmp_path / "st.wav", np.stack([left, right], 1), RATE,
                 "PCM_16")
    stored, _ = sf.read(path, dtype="float32")  # as quantised
    sig = audio.read_audio(path, RATE)
    expected = torch.from_numpy(stored).mean(dim=1)
    assert torch.allclose(sig, expected, atol=1e-7)
    assert not torch.allclose(sig, torch.from_numpy(stored[:, 0]), atol=0.01)


def test_stereo_44k_equals_its_mono_mix_resampled(tmp_path):
    left, right = voice(2.0, 44100, 120, seed=1), voice(2.0, 44100, 230, 2)
    stereo = write(tmp_path / "st.wav", np.stack([left, right], 1), 44100,
                   "FLOAT")
    mono = write(tmp_path / "mono.wav", (left + right) / 2, 44100, "FLOAT")
    sig = audio.read_audio(stereo, RATE)
    assert len(sig) == 2 * RATE
    assert torch.allclose(sig, audio.read_audio(mono, RATE), atol=1e-6)


# -- short clips ------------------------------------------------------------

def test_0_3_s_clip_is_kept_whole(tmp_path):
    path = write(tmp_path / "short.wav", voice(0.3, 22050), 22050, "PCM_16")
    counts = collections.Counter()
    assert clip_duration(path, 1, counts, "short") == 0.3 and not counts
    sig = audio.read_audio(path, RATE, max_duration=3.0)  # no crop
    assert len(sig) == 4800
    assert torch.allclose(sig, audio.read_audio(path, RATE))


def test_preparation_drops_and_counts_clips_under_min_duration(tmp_path):
    write(tmp_path / "a.wav", voice(0.3, 22050), 22050, "PCM_16")
    write(tmp_path / "b.wav", voice(0.03, 44100), 44100, "PCM_16")
    write(tmp_path / "c.flac", voice(0.05, 16000), 16000)
    (tmp_path / "list.csv").write_text(
        "wav,emotion,speaker\na.wav,happy,s1\nb.wav,sad,s1\nc.flac,sad,s2\n")
    entries, summary = scan_csv(tmp_path / "list.csv")
    assert sorted(entries) == ["a", "c"]
    assert entries["a"]["duration"] == 0.3
    assert summary["too_short_wav"] == 1


# -- long clips -------------------------------------------------------------

def test_30_s_training_crop_is_a_window_of_the_file(tmp_path):
    n = 30 * RATE
    ramp = (np.arange(n) / n * 0.9).astype(np.float32)  # codes positions
    path = write(tmp_path / "ramp.wav", ramp, RATE, "FLOAT")
    full = audio.read_audio(path, RATE)
    assert len(full) == n  # evaluation reads it whole
    starts = set()
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        crop = audio.read_audio(path, RATE, max_duration=3.0, generator=gen)
        assert len(crop) == 3 * RATE
        start = int(round(float(crop[0]) / 0.9 * n))
        assert 0 <= start <= n - 3 * RATE
        assert torch.equal(crop, full[start:start + 3 * RATE])
        starts.add(start)
    assert len(starts) == 5


@pytest.mark.parametrize("rate,channels,ext,subtype", [
    (16000, 1, "wav", "PCM_16"), (44100, 2, "wav", "PCM_16"),
    (22050, 1, "flac", None), (48000, 2, "wav", "FLOAT")])
def test_the_audio_cache_reads_what_read_audio_reads(tmp_path, rate,
                                                     channels, ext, subtype):
    """Whole clips and training windows, first read and kept: the same
    samples as from disk, the same random window for the same draw."""
    data = np.stack([voice(8, rate, 120 + 40 * c, c)
                     for c in range(channels)], 1)
    path = write(tmp_path / f"v.{ext}", data, rate, subtype)
    cache = audio.AudioCache()
    for _ in range(2):  # decoded, then kept
        assert torch.equal(cache.read(path, RATE),
                           audio.read_audio(path, RATE))
        for seed in range(3):
            got = cache.read(path, RATE, 2.5,
                             torch.Generator().manual_seed(seed))
            want = audio.read_audio(path, RATE, 2.5,
                                    torch.Generator().manual_seed(seed))
            assert torch.equal(got, want)
    assert cache.misses == 1 and cache.hits == 7
    assert cache.nbytes == 8 * rate * 4  # mono float32 at the file's rate


def test_the_audio_cache_keeps_its_budget_and_its_clips(tmp_path):
    """Clips past the budget are read from disk every time; a caller that
    changes a signal in place leaves the kept clip as it was."""
    paths = [write(tmp_path / f"{i}.wav", voice(1, RATE, 100 + 30 * i, i),
                   RATE, "PCM_16") for i in range(3)]
    cache = audio.AudioCache(max_bytes=2 * RATE * 4)  # two 1 s clips
    for _ in range(2):
        for path in paths:
            assert torch.equal(cache.read(path), audio.read_audio(path))
    assert cache.nbytes == 2 * RATE * 4
    assert (cache.hits, cache.misses) == (2, 4)
    cache.read(paths[0]).zero_()
    assert torch.equal(cache.read(paths[0]), audio.read_audio(paths[0]))


def test_data_loader_workers_read_from_disk(tmp_path):
    """A worker process keeps nothing (each would hold a copy); it reads
    the same signals."""
    paths = [write(tmp_path / f"{i}.wav", voice(1, RATE, 100 + 30 * i, i),
                   RATE, "PCM_16") for i in range(2)]
    cache = audio.AudioCache()

    class Clips(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            sig = cache.read(paths[i])
            return sig, torch.tensor([cache.nbytes, cache.misses])

    loader = torch.utils.data.DataLoader(Clips(), num_workers=1,
                                         batch_size=None)
    for (sig, (nbytes, misses)), path in zip(loader, paths):
        assert torch.equal(sig, audio.read_audio(path))
        assert nbytes == 0 and misses > 0
    assert cache.nbytes == 0  # nor did this process


def _manifest(tmp_path, name, files):
    entries = {
        f"{name}{i}": {"wav": "{data_root}/" + f, "duration": 30.0,
                       "emo": EMOTIONS[i % 4], "spk_id": f"s{i % 2}"}
        for i, f in enumerate(files)}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(entries))
    return str(path)


def test_30_s_44k_stereo_cropped_in_training_whole_in_evaluation(tmp_path):
    rate = 44100
    data = np.stack([voice(30, rate, 130), voice(30, rate, 190, 3)], 1)
    write(tmp_path / "long.wav", data, rate, "PCM_16")
    write(tmp_path / "short.wav", data[:rate], rate, "PCM_16")
    files = ["long.wav", "short.wav"]
    sets = audio.dataio_prep(
        _manifest(tmp_path, "train", files),
        _manifest(tmp_path, "valid", files),
        _manifest(tmp_path, "test", files), str(tmp_path), EMOTIONS,
        n_speakers=2, max_train_duration=12.0)
    train = {sets["train"][i]["id"]: sets["train"][i]["sig"]
             for i in range(2)}
    assert len(train["train0"]) == 12 * RATE  # the crop, exactly
    assert len(train["train1"]) == RATE  # shorter: whole
    for split in ("valid", "test"):
        lengths = sorted(len(sets[split][i]["sig"]) for i in range(2))
        assert lengths == [RATE, 30 * RATE]


# -- prediction with a stand-in model ---------------------------------------

class StandIn:
    """What :func:`~speechbrain_grl.inference.predict.predict` uses of an
    ``EncoderClassifier``; remembers every window the encoder gets. Its
    "embedding" is the window's RMS and length, so windows of a file give
    different probabilities."""

    device = "cpu"

    def __init__(self):
        encoder = CategoricalEncoder()
        encoder.update_from_iterable(EMOTIONS)
        self.hparams = SimpleNamespace(label_encoder=encoder)
        layer = torch.nn.Linear(2, len(EMOTIONS))
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(
                [[8.0, 0.0], [0.0, 0.2], [-8.0, 0.0], [0.0, -0.2]]))
            layer.bias.zero_()
        self.mods = torch.nn.ModuleDict({"classifier": torch.nn.Sequential(
            layer, torch.nn.LogSoftmax(dim=-1))})
        self.seen = []

    def encode_batch(self, wavs, lens):
        """``[batch, 1, 2]``: RMS and seconds of each unpadded window."""
        embs = []
        for wav, rel in zip(wavs, lens):
            n = int(round(float(rel) * wavs.shape[1]))
            self.seen.append(wav[:n].clone())
            embs.append(torch.stack([wav[:n].pow(2).mean().sqrt(),
                                     torch.tensor(n / RATE)]))
        return torch.stack(embs)[:, None]


def _probs(row):
    return np.array([float(row[f"prob_{e}"]) for e in EMOTIONS])


def test_predict_reads_44k_stereo_and_22k_as_16k_mono(tmp_path):
    left, right = voice(2.0, 44100, 120), voice(2.0, 44100, 200, 4)
    stereo = write(tmp_path / "st.flac", np.stack([left, right], 1), 44100)
    mono22 = write(tmp_path / "m22.wav", voice(2.0, 22050), 22050, "PCM_16")
    clf = StandIn()
    rows = pred.predict(clf, [stereo, mono22], batch_seconds=0,
                        progress=False)
    assert [r["error"] for r in rows] == ["", ""]
    assert [len(s) for s in clf.seen] == [2 * RATE, 2 * RATE]
    for path in (stereo, mono22):  # the windows are read_audio's signals
        wanted = audio.read_audio(path, RATE)
        assert any(torch.equal(s, wanted) for s in clf.seen)


def test_predict_cuts_a_30_s_file_into_windows_and_averages(tmp_path):
    rate = 44100
    sig = voice(30, rate) * np.repeat([0.2, 1.0, 0.5], 10 * rate)
    path = write(tmp_path / "long.wav", np.stack([sig, sig], 1), rate,
                 "PCM_16")
    clf = StandIn()
    row, = pred.predict(clf, [path], window_seconds=10, batch_seconds=0,
                        progress=False)
    assert row["error"] == ""
    assert [len(s) for s in clf.seen] == [10 * RATE] * 3
    whole = audio.read_audio(path, RATE)
    starts = {}
    for s in clf.seen:  # each window is a slice of the file, no overlap
        for k in range(3):
            if torch.equal(s, whole[k * 10 * RATE:(k + 1) * 10 * RATE]):
                starts[k] = s
    assert sorted(starts) == [0, 1, 2]
    with torch.no_grad():
        each = [clf.mods.classifier(clf.encode_batch(
            s[None], torch.ones(1))).exp()[0, 0].numpy()
            for s in starts.values()]
    assert np.abs(_probs(row) - np.mean(each, axis=0)).max() < 1e-5
    assert np.abs(each[0] - each[1]).max() > 0.05  # windows did differ
    # The whole file in one window: one 30 s call.
    clf = StandIn()
    pred.predict(clf, [path], window_seconds=40, progress=False)
    assert [len(s) for s in clf.seen] == [30 * RATE]


def test_predict_short_clips(tmp_path):
    ok = write(tmp_path / "ok.wav", voice(0.3, 22050), 22050, "PCM_16")
    tiny = write(tmp_path / "tiny.wav", voice(0.02, 44100), 44100, "PCM_16")
    clf = StandIn()
    rows = pred.predict(clf, [ok, tiny], progress=False)
    assert rows[0]["error"] == "" and rows[0]["label"] in EMOTIONS
    assert [len(s) for s in clf.seen] == [4800]
    assert rows[1]["label"] == ""
    assert rows[1]["error"] == "too short (0.020 s, under 0.05 s)"


# -- silence ----------------------------------------------------------------

def _padded(tmp_path, rate=22050):
    """1 s of digital silence, 1 s of voice, 1 s of silence."""
    pad = np.zeros(rate)
    data = np.concatenate([pad, voice(1.0, rate), pad])
    return write(tmp_path / "padded.wav", data, rate, "PCM_16")


def test_silence_padding_is_kept_when_reading(tmp_path):
    path = _padded(tmp_path)
    sig = audio.read_audio(path, RATE)
    assert len(sig) == 3 * RATE
    assert sig[:RATE - 100].abs().max() < audio.SILENCE
    assert sig[-(RATE - 100):].abs().max() < audio.SILENCE
    assert sig[RATE:2 * RATE].abs().max() > 0.3
    crop = audio.read_audio(path, RATE, max_duration=2.0,
                            generator=torch.Generator().manual_seed(0))
    assert len(crop) == 2 * RATE  # a window, silence and all


def test_trim_silence_is_opt_in_in_predict(tmp_path):
    path = _padded(tmp_path)
    clf = StandIn()
    plain, = pred.predict(clf, [path], progress=False)
    assert [len(s) for s in clf.seen] == [3 * RATE]
    clf = StandIn()
    trimmed, = pred.predict(clf, [path], progress=False, trim_silence=True)
    n = len(clf.seen[0])
    assert RATE - 10 <= n <= RATE + 50  # the voice, give or take a filter
    assert plain["error"] == trimmed["error"] == ""
    assert np.abs(_probs(plain) - _probs(trimmed)).max() > 1e-3


def test_trim_keeps_an_encoder_frame_around_a_click():
    sig = torch.zeros(RATE)
    sig[8000] = 0.5
    out = audio.trim_silence(sig, min_samples=pred.MIN_SAMPLES)
    assert len(out) == pred.MIN_SAMPLES and float(out.abs().max()) == 0.5
    edge = torch.zeros(RATE)
    edge[3] = 0.5  # near the start: widened to the right
    assert len(audio.trim_silence(edge, min_samples=800)) == 800


def test_silent_windows_are_left_out_and_silent_files_reported(tmp_path):
    rate = 44100
    sig = voice(30, rate)
    # The last 10 s window is digital silence, even once resampled (the
    # filter spreads the voice over a few samples).
    sig[int(19.9 * rate):] = 0
    part = write(tmp_path / "part.wav", sig, rate, "PCM_16")
    dither = np.random.default_rng(0).integers(-1, 2, 2 * RATE)
    silent = write(tmp_path / "silent.wav", dither.astype(np.int16), RATE,
                   "PCM_16")  # +-1 LSB: silence too
    zeros = write(tmp_path / "zeros.flac", np.zeros((RATE, 2)), RATE)
    clf = StandIn()
    rows = pred.predict(clf, [part, silent, zeros], window_seconds=10,
                        progress=False)
    assert [len(s) for s in clf.seen] == [10 * RATE] * 2
    assert rows[0]["error"] == "" and rows[0]["label"] in EMOTIONS
    for row in rows[1:]:
        assert row["error"] == pred.SILENT and row["label"] == ""


def test_cli_reports_a_silent_file_in_one_line(tmp_path, monkeypatch,
                                               capsys):
    good = write(tmp_path / "good.wav", voice(1.0, 22050), 22050, "PCM_16")
    write(tmp_path / "silent.wav", np.zeros(RATE), RATE, "PCM_16")
    monkeypatch.setattr(pred, "load_model", lambda *a, **k: StandIn())
    out = tmp_path / "preds.csv"
    status = pred.main(["--model", "m", str(tmp_path), "--output", str(out),
                        "--no-progress", "--trim-silence"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err == [
        f"speechbrain-grl-predict: {tmp_path / 'silent.wav'}: {pred.SILENT}",
        "speechbrain-grl-predict: 1 files classified, 1 failed"]
    assert good in out.read_text()
