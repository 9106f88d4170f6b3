"""Whether bfloat16 is fast where it runs, and one warning where it is not.

On a CPU, bf16 autocast is fast only where oneDNN has bfloat16 kernels
(AVX-512; native with AVX512-BF16 or AMX). Elsewhere PyTorch falls back
to slow reference code: on an AVX2-only CPU a wav2vec2-base-sized
encoder predicted 53x slower than in fp32
(``benchmarks/inference_bf16_zen1.md``), and a training step of the
same encoder took 17-26x fp32's time (``benchmarks/train_bf16_zen1.md``).
The Brain and ``speechbrain-grl-predict`` say so once.
"""

import functools
import logging

import torch

__all__ = ["native_bf16", "warn_slow_bf16"]

logger = logging.getLogger(__name__)


def native_bf16(device="cpu"):
    """Whether ``device`` has bfloat16 kernels: any accelerator, or a CPU
    for which oneDNN has them. True when PyTorch cannot tell.

    Example
    -------
    >>> native_bf16("cuda:0")
    True
    >>> native_bf16("cpu") in (True, False)
    True
    """
    if not str(device).startswith("cpu"):
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


@functools.lru_cache(maxsize=None)
def warn_slow_bf16(device_type, use):
    """Logs once per process, device and ``use`` (``"training"``,
    ``"evaluation"``, ``"prediction"``) that bf16 is slow on
    ``device_type``, where it has no bfloat16 kernels; returns whether
    bf16 is slow there (a repeated call returns it without logging).

    Example
    -------
    >>> warn_slow_bf16("cuda", "training")
    False
    """
    if native_bf16(device_type):
        return False
    logger.warning(
        "precision bf16: this CPU has no bfloat16 kernels (oneDNN needs "
        "AVX-512), so bf16 %s runs many times slower than fp32 here; use "
        "fp32%s", use, ", or int8" if use == "prediction" else "")
    return True
