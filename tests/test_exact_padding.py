"""Padded evaluation batches: each clip encoded as if alone."""

import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
from speechbrain.nnet.pooling import StatisticsPooling

from speechbrain_grl.dataio.audio import clips
from speechbrain_grl.nnet.exact_padding import encode
from speechbrain_grl.testing.tiny_ssl import TINY, make_tiny_ssl

LENGTHS = [3200, 7013, 11000, 16000]  # samples; the first is 10 frames


def _layer_norm_ssl(folder):
    """A tiny model with the Large models' front end (per-frame layer
    norm, pre-norm transformer) and waveform standardisation."""
    import transformers as tf

    torch.manual_seed(0)
    config = tf.Wav2Vec2Config(**dict(
        TINY, feat_extract_norm="layer", do_stable_layer_norm=True))
    tf.Wav2Vec2Model(config).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0,
        do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return str(folder)


@pytest.fixture(params=["group", "group_normalize_output_norm", "layer"])
def ssl(request, tmp_path):
    """The wav2vec2 shapes whose padding matters: group norm (Base), with
    the wrapper's waveform and output normalisation, and layer norm."""
    if request.param == "layer":
        source = _layer_norm_ssl(tmp_path / "w2v")
    else:
        source = make_tiny_ssl(tmp_path / "w2v", do_normalize=request.param
                               != "group")
    model = Wav2Vec2(source, save_path=str(tmp_path / "cache"),
                     output_norm=request.param.endswith("output_norm"))
    return model.eval()


def _batch(lengths, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sigs = [0.1 * torch.randn(n, generator=gen) + 0.05 for n in lengths]
    wavs = torch.zeros(len(sigs), max(lengths))
    for i, sig in enumerate(sigs):
        wavs[i, :len(sig)] = sig
    return sigs, wavs, torch.tensor(lengths) / max(lengths)


@torch.no_grad()
def test_batched_clips_pool_as_alone(ssl):
    pooling = StatisticsPooling(return_std=False)
    # SpeechBrain's pooling adds noise of up to 9e-5 to each mean, even in
    # evaluation: off here, so that the comparison can be tight.
    pooling._get_gauss_noise = lambda size, device: torch.zeros(size)
    sigs, wavs, lens = _batch(LENGTHS)
    alone = torch.cat([pooling(ssl(s[None], torch.ones(1)), torch.ones(1))
                       for s in sigs])
    feats, frames = encode(ssl, wavs, lens)
    exact = pooling(feats, frames)
    assert torch.allclose(exact, alone, atol=1e-5), (exact - alone).abs().max()
    # The encoder as it is sees the padding: the test can fail.
    plain = pooling(ssl(wavs, lens), lens)
    assert not torch.allclose(plain, alone, atol=1e-3)


@torch.no_grad()
def test_frames_are_each_clips_own(ssl):
    _, wavs, lens = _batch(LENGTHS)
    feats, frames = encode(ssl, wavs, lens)
    counts = torch.round(frames * feats.shape[1]).long().tolist()
    assert counts == [ssl(torch.zeros(1, n)).shape[1] for n in LENGTHS]


@torch.no_grad()
def test_unpadded_batch_and_other_encoders_run_as_they_are(ssl):
    _, wavs, lens = _batch([8000, 8000])
    feats, frames = encode(ssl, wavs, lens)
    assert frames is lens and torch.equal(feats, ssl(wavs, lens))
    conv = torch.nn.Conv1d(1, 2, 3)
    out, same = encode(lambda w, n: conv(w[:, None]), wavs, lens * 0.5)
    assert same is not None and out.shape == (2, 2, 7998)


def test_the_wrapper_is_left_as_it_was(ssl):
    before = (ssl.normalize_wav, ssl.output_norm)
    _, wavs, lens = _batch(LENGTHS)
    with torch.no_grad():
        encode(ssl, wavs, lens)
    norm = ssl.model.feature_extractor.conv_layers[0].layer_norm
    assert (ssl.normalize_wav, ssl.output_norm) == before
    assert "forward" not in vars(norm)


def test_clips_splits_a_batch_unpadded():
    batch = PaddedBatch([
        {"id": "a", "sig": torch.arange(3.0), "emo_encoded":
         torch.LongTensor([2]), "spk_id": "s1"},
        {"id": "b", "sig": torch.arange(5.0), "emo_encoded":
         torch.LongTensor([0]), "spk_id": "s2"}])
    one, two = clips(batch)
    assert one.id == ["a"] and two.spk_id == ["s2"]
    assert torch.equal(one.sig.data, torch.arange(3.0)[None])
    assert torch.equal(two.sig.data, torch.arange(5.0)[None])
    assert one.emo_encoded.data.tolist() == [[2]]
