"""Saving and restoring torch's random state around a block of work.

Evaluation must draw no number that training sees: a method that runs
the encoder a different number of times in evaluation would otherwise
change the next epochs' dropout and masks.
"""

import torch

__all__ = ["rng_state", "set_rng_state"]


def rng_state():
    """torch's CPU random state and, when CUDA is initialised, every
    device's.

    Example
    -------
    >>> state = rng_state()
    >>> a = torch.rand(1)
    >>> set_rng_state(state)
    >>> bool(torch.rand(1) == a)
    True
    """
    cuda = (torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() and torch.cuda.is_initialized()
            else None)
    return torch.get_rng_state(), cuda


def set_rng_state(state):
    """Puts back a :func:`rng_state` (None: nothing to do)."""
    if state is None:
        return
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
