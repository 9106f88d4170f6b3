"""Small helpers for code that runs the same under DDP and alone."""

import gc

import torch

__all__ = ["distributed", "unwrap", "average_gradients", "end_distributed"]


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


def end_distributed(modules):
    """Ends a DDP run on this rank: the DDP wrappers in ``modules`` (a
    Brain's, a dict or ``ModuleDict``) are replaced by the modules inside
    them and collected, then every rank meets at a barrier and the
    process group is destroyed; a no-op outside DDP.

    Ended with a barrier and ``destroy_process_group()`` while the
    wrappers were alive, a finished 2-process gloo run failed as it
    exited in 3 of 60 jobs (``benchmarks/ddp_exit.md``; 7 of 80 in a
    scratch run of the same job): a rank aborted with "terminate called
    without an active exception", and torchrun reported the run failed
    after its results were written. Ended this way, none of 60 (none of
    80) failed. Unwrapping without the collection still failed 4 of 40
    in the scratch run, so both are done: the collection covers frozen
    objects too (a recipe that froze its heap freezes it again as it
    ends). Which object the collection frees in time is not pinned down.

    Arguments
    ---------
    modules : dict or torch.nn.ModuleDict
        Modules, some of them DDP wrappers (replaced in place).

    Example
    -------
    >>> mods = torch.nn.ModuleDict({"lin": torch.nn.Linear(1, 1)})
    >>> end_distributed(mods)  # not distributed: nothing to end
    >>> type(mods["lin"]).__name__
    'Linear'
    """
    if not distributed():
        return
    for name in list(modules.keys()):
        modules[name] = unwrap(modules[name])
    gc.unfreeze()
    gc.collect()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
