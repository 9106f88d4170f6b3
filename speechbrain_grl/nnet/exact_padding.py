"""Padded batches that encode each clip exactly as it would be alone.

A wav2vec2-family encoder sees the padding of a batch in three places:

- SpeechBrain's wrapper standardises the waveform (``normalize_wav``,
  the model's ``do_normalize``) over the padded length;
- wav2vec2/HuBERT/WavLM *Base* group-normalise their first convolution
  over every time step, padding included (the Large models normalise
  per frame, and are exact there);
- the pooling turns the waveform's relative lengths into frames by
  rounding, which may take one frame of padding in or leave one out.

:func:`encode` computes all three over each clip's own samples and
frames, so an evaluation batch gives each clip the features it gets
alone, up to float rounding (about 1e-6), at a fraction of the time of
one clip per batch. The attention and the positional convolution are
exact already: the model masks padded frames and zeroes them.

Training steps keep the plain forward (``SpeakerAdversarialBrain.embed``
calls this in evaluation only), so trained weights are as before.
"""

import contextlib

import torch
import torch.nn.functional as F

__all__ = ["encode", "frame_lengths", "handles"]


def _hf_model(ssl):
    """The Hugging Face model inside SpeechBrain's wrapper, or None."""
    model = getattr(ssl, "model", None)
    if model is None or not hasattr(model, "_get_feat_extract_output_lengths"):
        return None
    return model


def handles(ssl):
    """True when :func:`encode` computes ``ssl``'s padded batches exactly
    (SpeechBrain's Hugging Face wrapper around a PyTorch model); other
    encoders are called as they are."""
    return _hf_model(ssl) is not None


def frame_lengths(model, samples):
    """Encoder frames of clips of ``samples`` samples (a long tensor).

    Example
    -------
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> config = Wav2Vec2Config(  # wav2vec2-base's front end, small
    ...     conv_dim=(8,) * 7, hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=1, intermediate_size=8,
    ...     num_conv_pos_embedding_groups=1)
    >>> model = Wav2Vec2Model(config)
    >>> frame_lengths(model, torch.tensor([400, 3200, 16000]))
    tensor([ 1,  9, 49])
    """
    return model._get_feat_extract_output_lengths(samples).long()


def _standardise(wavs, samples):
    """Each waveform standardised over its own samples, as SpeechBrain's
    wrapper does to a clip alone; padding left at zero."""
    out = torch.zeros_like(wavs)
    for i, n in enumerate(samples.tolist()):
        out[i, :n] = F.layer_norm(wavs[i, :n], (n,))
    return out


def _group_norm_per_clip(forward, x, frames):
    """A GroupNorm's ``forward`` of ``x`` ``[batch, channels, time]``,
    each clip over its first ``frames`` steps only (the same kernel on
    the same numbers as the clip alone); padded steps are zero."""
    out = torch.zeros_like(x)
    for i, n in enumerate(frames.tolist()):
        out[i, :, :n] = forward(x[i:i + 1, :, :n])[0]
    return out


@contextlib.contextmanager
def _first_norm_per_clip(model, samples):
    """Within the block, the first convolution's group norm (if the model
    has one) counts each clip's own frames only."""
    layer = model.feature_extractor.conv_layers[0]
    norm = getattr(layer, "layer_norm", None)
    if not isinstance(norm, torch.nn.GroupNorm):
        yield
        return
    conv = layer.conv
    frames = torch.div(samples - conv.kernel_size[0], conv.stride[0],
                       rounding_mode="floor") + 1
    forward = norm.forward
    norm.forward = lambda x: _group_norm_per_clip(forward, x, frames)
    try:
        yield
    finally:
        del norm.forward


def encode(ssl, wavs, lens):
    """Encoder features of a padded batch, each clip's as if alone.

    Arguments
    ---------
    ssl : torch.nn.Module
        The encoder: SpeechBrain's Hugging Face wrapper (``Wav2Vec2``,
        ``HuBERT``, ``WavLM``) gets the exact path; any other module,
        a batch of one clip or one without padding is called as it is.
    wavs : torch.Tensor
        ``[batch, samples]`` waveforms, zero-padded.
    lens : torch.Tensor
        Relative lengths (SpeechBrain's convention).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The features ``[batch, frames, dim]`` and their relative lengths
        in frames (``lens`` itself when called as it is), for the
        pooling.

    Example
    -------
    >>> from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
    >>> from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl
    >>> tmp = getfixture("tmp_path")
    >>> ssl = Wav2Vec2(make_tiny_ssl(tmp / "w2v"), save_path=str(tmp)).eval()
    >>> wav = torch.randn(2, 8000)
    >>> alone = ssl(wav[:1, :5000], torch.ones(1))
    >>> feats, rel = encode(ssl, wav * (torch.arange(8000) < 5000),
    ...                     torch.tensor([0.625, 1.0]))
    >>> n = int(round(float(rel[0]) * feats.shape[1]))
    >>> n == alone.shape[1], bool(torch.allclose(feats[0, :n], alone[0],
    ...                                            atol=1e-5))
    (True, True)
    """
    model = _hf_model(ssl)
    if model is None or len(wavs) == 1 or bool((lens >= 1).all()):
        return ssl(wavs, lens), lens
    samples = torch.round(lens * wavs.shape[1]).long()
    normalize, output_norm = (getattr(ssl, "normalize_wav", False),
                              getattr(ssl, "output_norm", False))
    if normalize:
        wavs = _standardise(wavs, samples)
    ssl.normalize_wav, ssl.output_norm = False, False
    try:
        with _first_norm_per_clip(model, samples):
            feats = ssl(wavs, lens)
    finally:
        ssl.normalize_wav, ssl.output_norm = normalize, output_norm
    frames = frame_lengths(model, samples).to(feats.device)
    if output_norm:  # the wrapper's layer norm over each clip's frames
        feats = torch.stack([F.pad(F.layer_norm(
            f[:n], f[:n].shape), (0, 0, 0, len(f) - n))
            for f, n in zip(feats, frames.tolist())])
    return feats, frames.to(lens.dtype) / feats.shape[1]
