"""A frozen convolutional front end that costs no backward pass.

SpeechBrain's Hugging Face wrapper freezes the waveform front end of
wav2vec2, HuBERT and WavLM (``freeze_feature_extractor: True``, as in
SpeechBrain's IEMOCAP recipe and this recipe's SSL yamls) by turning off
its parameters' ``requires_grad``. The Hugging Face feature encoder keeps
its own flag, ``_requires_grad``, and while it is set it marks its input
as requiring a gradient in training. So every training step still runs
the front end's backward pass, for a gradient of the waveform that
nothing reads. Without it a CPU training step takes 0.90× the time for
wav2vec2 Base and 0.63× for the demo's tiny encoder
(``benchmarks/front_end.md``).

:func:`freeze_front_end` completes the freeze with the model's own
``_freeze_parameters``. The weights, and the gradients of every trained
parameter, stay as they were; only the unused backward pass goes.
"""

__all__ = ["freeze_front_end", "front_end_trains"]


def freeze_front_end(ssl):
    """Completes the freeze of ``ssl``'s front end, where its wrapper
    asks for one (``freeze_feature_extractor``, the encoder itself
    trained). Returns True when the front end is now frozen this way.

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
    ...     p.requires_grad = False
    >>> front = model.feature_extractor(torch.randn(1, 400))
    >>> front.requires_grad  # a backward pass would still go through it
    True
    >>> ssl = SimpleNamespace(model=model, freeze=False,
    ...                       freeze_feature_extractor=True)
    >>> freeze_front_end(ssl)
    True
    >>> model.feature_extractor(torch.randn(1, 400)).requires_grad
    False
    """
    if getattr(ssl, "freeze", False) or not getattr(
            ssl, "freeze_feature_extractor", False):
        return False
    front = getattr(getattr(ssl, "model", None), "feature_extractor", None)
    if not hasattr(front, "_freeze_parameters"):
        return False
    front._freeze_parameters()
    return True


def front_end_trains(ssl):
    """True when ``ssl`` is a Hugging Face encoder whose front end's
    weights train, so that a training step needs its backward pass
    (after :func:`freeze_front_end`, none is run otherwise).

    Example
    -------
    >>> from types import SimpleNamespace
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> model = Wav2Vec2Model(Wav2Vec2Config(
    ...     conv_dim=(8,), conv_kernel=(10,), conv_stride=(5,),
    ...     hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
    ...     intermediate_size=8, num_conv_pos_embedding_groups=1))
    >>> ssl = SimpleNamespace(model=model, freeze=False,
    ...                       freeze_feature_extractor=True)
    >>> front_end_trains(ssl)
    True
    >>> freeze_front_end(ssl)
    True
    >>> front_end_trains(ssl)
    False
    """
    front = getattr(getattr(ssl, "model", None), "feature_extractor", None)
    return front is not None and any(
        p.requires_grad for p in front.parameters())
