"""A tiny, randomly initialised SSL encoder saved as a Hugging Face folder.

No pretrained weights can be downloaded in the demo, the tests or CI, so
they build a small wav2vec2, HuBERT or WavLM with ``transformers`` and save
it to a local folder holding ``config.json``, ``preprocessor_config.json``
and the weights. SpeechBrain then loads that folder through exactly the
path a hub id takes (``speechbrain.integrations.huggingface``).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["make_tiny_ssl", "SSL_KINDS"]

SSL_KINDS = ("wav2vec2", "hubert", "wavlm")

# Three conv layers with a total stride of 320 samples (20 ms at 16 kHz),
# like the real models, but only 32 channels and two transformer layers.
TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32, 32, 32),
    conv_stride=(10, 8, 4),
    conv_kernel=(10, 8, 4),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    feat_extract_norm="group",
    hidden_dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    feat_proj_dropout=0.0,
    layerdrop=0.0,
    mask_time_prob=0.0,
)

# wav2vec2-base's shape, for speed benchmarks with random weights.
BASE = dict(
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    layerdrop=0.0,
    mask_time_prob=0.0,
)

# The Large models' shape (HuBERT Large, WavLM Large, wav2vec2 Large lv60:
# 24 layers of 1024, layer-normed conv front end, pre-norm transformer),
# ~316M parameters: GPU speed measurements.
LARGE = dict(
    BASE,
    hidden_size=1024,
    num_hidden_layers=24,
    num_attention_heads=16,
    intermediate_size=4096,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    conv_bias=True,
)
SIZES = {"tiny": TINY, "base": BASE, "large": LARGE}


def _classes(kind):
    import transformers as tf

    if kind == "wav2vec2":
        return tf.Wav2Vec2Config, tf.Wav2Vec2Model
    if kind == "hubert":
        return tf.HubertConfig, tf.HubertModel
    if kind == "wavlm":
        return tf.WavLMConfig, tf.WavLMModel
    raise ValueError(
        f"unknown SSL kind {kind!r}; use one of {', '.join(SSL_KINDS)}"
    )


def make_tiny_ssl(folder, kind="wav2vec2", size="tiny", seed=0,
                  do_normalize=False, overwrite=False):
    """Builds a randomly initialised SSL model and saves it to ``folder``.

    The folder is written atomically and reused when it already holds a
    model of the same kind, size and seed, so DDP processes and repeated
    runs share it.

    Arguments
    ---------
    folder : str or Path
        Where to save the model.
    kind : str
        ``"wav2vec2"``, ``"hubert"`` or ``"wavlm"``.
    size : str
        ``"tiny"`` (32 dims, 2 layers), ``"base"`` (wav2vec2-base's
        shape, 95M parameters) or ``"large"`` (HuBERT/WavLM Large's
        shape, ~316M parameters); the last two for speed measurements.
    seed : int
        Seed of the random initialisation.
    do_normalize : bool
        The feature extractor's waveform normalisation flag.
    overwrite : bool
        Rebuild even if a matching model is there.

    Returns
    -------
    str
        The folder, usable as ``source`` of SpeechBrain's SSL wrappers.

    Example
    -------
    >>> import os
    >>> tmp = getfixture("tmp_path")
    >>> path = make_tiny_ssl(tmp / "w2v")
    >>> sorted(f for f in os.listdir(path) if f.endswith(".json"))
    ['config.json', 'preprocessor_config.json', 'tiny_ssl.json']
    >>> from speechbrain.integrations.huggingface.wav2vec2 import Wav2Vec2
    >>> import torch
    >>> enc = Wav2Vec2(path, save_path=str(tmp / "cache"))
    >>> enc(torch.zeros(1, 16000)).shape
    torch.Size([1, 50, 32])
    """
    import torch
    import transformers as tf

    folder = Path(folder)
    stamp = {"kind": kind, "size": size, "seed": seed,
             "do_normalize": do_normalize}
    stamp_file = folder / "tiny_ssl.json"
    if not overwrite and stamp_file.exists():
        if json.loads(stamp_file.read_text()) == stamp:
            return str(folder)
    config_cls, model_cls = _classes(kind)
    if size not in SIZES:
        raise ValueError(
            f"unknown size {size!r}; use one of {', '.join(SIZES)}"
        )
    shape = SIZES[size]
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = model_cls(config_cls(**shape))
    finally:
        torch.random.set_rng_state(state)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tf.Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=16000,
            padding_value=0.0,
            do_normalize=do_normalize,
            return_attention_mask=True,
        ).save_pretrained(tmp)
        (tmp / "tiny_ssl.json").write_text(json.dumps(stamp))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)
