"""The waveform front end's backward pass, only where it is needed.

The convolutional front end of a Hugging Face wav2vec2, HuBERT or WavLM
marks its input waveform as requiring a gradient in every training step
(its ``_requires_grad`` flag: reentrant gradient checkpointing of its
layers needs it to reach their weights). Without checkpointing nothing
reads that gradient, yet the backward pass computes it:

- with the front end trained (the demo yaml), the first convolution's
  gradient with respect to the waveform;
- with the front end frozen (``freeze_feature_extractor: True``, as in
  SpeechBrain's IEMOCAP recipe and this recipe's SSL yamls), the whole
  front end's backward pass: SpeechBrain's wrapper turns off its weights'
  ``requires_grad`` but not that flag.

:func:`lean_front_end` sets the flag before each forward pass to what
the step needs: on only while the front end's weights train under
gradient checkpointing. The gradient of every trained parameter is
unchanged, bit for bit; a CPU training step of wav2vec2 Base takes 0.85×
the time with the front end frozen and 0.95× with it trained
(``benchmarks/front_end.md``).
"""

import contextlib

__all__ = ["convolution_kernels", "front_end_trains", "lean_front_end"]


@contextlib.contextmanager
def convolution_kernels(onednn, nnpack):
    """Enables or disables oneDNN's and NNPACK's CPU convolutions inside
    the block, and puts both settings back after it. With both off,
    PyTorch runs its own kernels (faster for a training front end's
    backward pass on the CPU: ``benchmarks/conv_backend.md``).

    Example
    -------
    >>> import torch
    >>> was = torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled()
    >>> with convolution_kernels(onednn=False, nnpack=False):
    ...     torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled()
    (False, False)
    >>> (torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled()) == was
    True
    """
    import torch

    with torch.backends.mkldnn.flags(  # None: left as it is
            enabled=onednn, deterministic=None, allow_tf32=None,
            fp32_precision=None), torch.backends.nnpack.flags(nnpack):
        yield


def _front_end(ssl):
    """The Hugging Face feature encoder inside SpeechBrain's wrapper, or
    None."""
    front = getattr(getattr(ssl, "model", None), "feature_extractor", None)
    return front if hasattr(front, "_requires_grad") else None


def front_end_trains(ssl):
    """True when ``ssl`` is a Hugging Face encoder whose front end's
    weights train (so that a training step runs its backward pass).

    Example
    -------
    >>> from types import SimpleNamespace
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> model = Wav2Vec2Model(Wav2Vec2Config(
    ...     conv_dim=(8,), conv_kernel=(10,), conv_stride=(5,),
    ...     hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
    ...     intermediate_size=8, num_conv_pos_embedding_groups=1))
    >>> front_end_trains(SimpleNamespace(model=model))
    True
    >>> model.feature_extractor._freeze_parameters()
    >>> front_end_trains(SimpleNamespace(model=model))
    False
    """
    front = _front_end(ssl)
    return front is not None and any(
        p.requires_grad for p in front.parameters())


def _input_gradient_if_needed(front, args):
    """Forward pre-hook: the input needs a gradient only while the
    weights train under gradient checkpointing (``front._lean``: whether
    the hook decides; False leaves the flag as set)."""
    if not front._lean:
        return
    trains = any(p.requires_grad for p in front.parameters())
    front._requires_grad = trains and any(
        getattr(m, "gradient_checkpointing", False) for m in front.modules())


def lean_front_end(ssl):
    """Makes ``ssl``'s front end (a Hugging Face encoder's, in
    SpeechBrain's wrapper) skip the waveform's unused gradient; returns
    False, doing nothing, for other encoders. Calling it again changes
    nothing.

    Example
    -------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> config = Wav2Vec2Config(
    ...     conv_dim=(8, 8), conv_kernel=(10, 8), conv_stride=(5, 4),
    ...     hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
    ...     intermediate_size=8, num_conv_pos_embedding_groups=1)
    >>> model = Wav2Vec2Model(config).train()
    >>> for p in model.feature_extractor.parameters():  # the wrapper's
    ...     p.requires_grad = False                     # freeze
    >>> front = model.feature_extractor(torch.randn(1, 400))
    >>> front.requires_grad  # a backward pass would still go through it
    True
    >>> lean_front_end(SimpleNamespace(model=model))
    True
    >>> model.feature_extractor(torch.randn(1, 400)).requires_grad
    False
    """
    front = _front_end(ssl)
    if front is None:
        return False
    if not hasattr(front, "_lean"):
        front.register_forward_pre_hook(_input_gradient_if_needed)
    front._lean = True
    return True
