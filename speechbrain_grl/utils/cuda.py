"""CUDA settings the Brain applies on a GPU."""

import logging
import os

import torch

__all__ = ["expandable_segments"]

logger = logging.getLogger(__name__)


def expandable_segments(on):
    """CUDA allocator with expandable segments (unless the user set
    ``PYTORCH_CUDA_ALLOC_CONF``): batches of ever-changing length fragment
    the caching allocator otherwise (benchmarks/gpu_results.md)."""
    if not on or os.environ.get("PYTORCH_CUDA_ALLOC_CONF"):
        return
    try:
        torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    except (AttributeError, RuntimeError) as err:  # older torch
        logger.info("expandable segments unavailable: %s", err)
