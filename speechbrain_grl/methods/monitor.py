"""The baseline: the speaker is monitored, never removed."""

from speechbrain_grl.methods.base import SpeakerMethod

__all__ = ["SpeakerMonitor"]


class SpeakerMonitor(SpeakerMethod):
    """``--adversary=none``: the speaker head trains on a detached
    embedding with its own optimizer, so its loss and accuracy are logged
    while nothing else changes.

    Arguments are those of :class:`SpeakerMethod`.

    Example
    -------
    >>> SpeakerMonitor().name
    'none'
    """

    name = "none"
