"""Small helpers for code that runs the same under DDP and alone."""

import torch

__all__ = ["distributed", "unwrap", "average_gradients"]


def distributed():
    """True inside an initialised ``torch.distributed`` process group.

    Example
    -------
    >>> distributed()
    False
    """
    return torch.distributed.is_available() and (
        torch.distributed.is_initialized())


def unwrap(module):
    """The module inside a DDP wrapper, or the module itself.

    Example
    -------
    >>> lin = torch.nn.Linear(1, 1)
    >>> unwrap(lin) is lin
    True
    """
    return getattr(module, "module", module)


def average_gradients(params):
    """Averages the gradients of ``params`` over the processes (a no-op
    outside DDP), so that every process takes the same update."""
    if not distributed():
        return
    world = torch.distributed.get_world_size()
    for param in params:
        if param.grad is not None:
            torch.distributed.all_reduce(param.grad)
            param.grad /= world
