"""Data-loader options: worker processes and pinned memory on a GPU.

On a GPU the encoder waits for audio decoding unless the loader runs in
worker processes and hands over pinned memory; on a CPU the workers would
only compete with the model for the same cores, so they stay off there.
"""

__all__ = ["loader_options"]


def loader_options(options, device, num_workers=2):
    """``options`` plus ``num_workers``/``pin_memory`` when on CUDA.

    Arguments
    ---------
    options : dict
        DataLoader keyword arguments (e.g. ``batch_size``,
        ``batch_sampler``); not modified.
    device : str
        The Brain's device, e.g. ``"cpu"`` or ``"cuda:0"``.
    num_workers : int
        Worker processes to use on a GPU.

    Returns
    -------
    dict
        A new dict; keys already in ``options`` are kept as given.

    Example
    -------
    >>> loader_options({"batch_size": 4}, "cpu")
    {'batch_size': 4}
    >>> loader_options({"batch_size": 4}, "cuda:0")
    {'batch_size': 4, 'num_workers': 2, 'pin_memory': True}
    >>> loader_options({"num_workers": 0}, "cuda", num_workers=4)
    {'num_workers': 0, 'pin_memory': True}
    """
    out = dict(options)
    if str(device).startswith("cuda"):
        out.setdefault("num_workers", num_workers)
        out.setdefault("pin_memory", True)
    return out
