"""Dimensional emotion labels: valence, arousal and dominance.

Every manifest entry of a corpus with dimensional labels holds
``"vad": [v, a, d]``, each value normalised to [0, 1] from the corpus's
own scale ``(lo, hi)``::

    normalised = (raw - lo) / (hi - lo)

The scanners record the scale in their summary (``"vad_scale": [lo,
hi]``, written to ``prepare_summary.json``) so that predictions can be
mapped back with :func:`denormalise_vad`. A clip whose values are out of
the scale, or that lacks one of them while the others are given, is kept
without ``"vad"`` and counted as ``bad_vad``: the training code decides
what to do with it.
"""

import math

from speechbrain_grl.dataio.manifests import PrepareError

__all__ = ["DIMENSIONS", "VAD_SCALES", "check_scale", "normalise_vad",
           "denormalise_vad"]

#: The dimensions, in the order of ``"vad"``.
DIMENSIONS = ("valence", "arousal", "dominance")
#: Each corpus's own scale ``(lo, hi)`` of its dimensional labels.
VAD_SCALES = {"iemocap": (1.0, 5.0), "msp_podcast": (1.0, 7.0)}


def check_scale(scale, what="vad_range") -> tuple[float, float]:
    """Return a scale as two floats ``(lo, hi)``, or raise one line.

    Parameters
    ----------
    scale : sequence of two numbers
        The lowest and highest value of the scale.
    what : str
        The option's name, for the error.

    Returns
    -------
    tuple of float
        ``(lo, hi)``.

    Raises
    ------
    PrepareError
        Unless ``scale`` is two finite numbers with ``lo < hi``.

    Example
    -------
    >>> check_scale([1, 7])
    (1.0, 7.0)
    >>> check_scale((5, 1))
    Traceback (most recent call last):
    ...
    speechbrain_grl.dataio.manifests.PrepareError: vad_range=(5, 1): \
give two finite numbers lo < hi, e.g. (1.0, 5.0)
    """
    try:
        if isinstance(scale, (str, bytes)):
            raise TypeError(scale)
        lo, hi = (float(x) for x in scale)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise PrepareError(f"{what}={scale!r}: give two finite numbers "
                           "lo < hi, e.g. (1.0, 5.0)")
    return lo, hi


def _number(value):
    """Return ``value`` as a finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def normalise_vad(values, scale) -> list[float] | None:
    """Map raw valence, arousal and dominance to [0, 1].

    Parameters
    ----------
    values : sequence
        The three raw values in :data:`DIMENSIONS` order (numbers or
        numeric strings; None for a missing one).
    scale : sequence of two numbers
        The corpus's scale ``(lo, hi)``.

    Returns
    -------
    list of float or None
        ``[(x - lo) / (hi - lo) for x in values]`` rounded to 6
        decimals, or None if there are not three values or one is
        missing, not a finite number or outside the scale.

    Example
    -------
    >>> normalise_vad([2.5, 4.0, 1.0], (1.0, 5.0))
    [0.375, 0.75, 0.0]
    >>> normalise_vad(["4.0", "7", "1"], (1, 7))
    [0.5, 1.0, 0.0]
    >>> normalise_vad([2.5, None, 3.0], (1.0, 5.0)) is None
    True
    >>> normalise_vad([5.5, 3.0, 3.0], (1.0, 5.0)) is None
    True
    """
    lo, hi = check_scale(scale, "scale")
    if values is None or len(values) != len(DIMENSIONS):
        return None
    out = []
    for value in values:
        number = _number(value)
        if number is None or not lo <= number <= hi:
            return None
        out.append(round((number - lo) / (hi - lo), 6))
    return out


def denormalise_vad(values, scale) -> list[float]:
    """Map normalised values back to the corpus's scale.

    Parameters
    ----------
    values : sequence of float
        Values on [0, 1] (predictions may fall slightly outside; they
        are mapped linearly, not clipped).
    scale : sequence of two numbers
        The corpus's scale ``(lo, hi)``, e.g. a summary's
        ``vad_scale``.

    Returns
    -------
    list of float
        ``[lo + x * (hi - lo) for x in values]`` rounded to 6 decimals
        (a round trip through :func:`normalise_vad` is exact to within
        ``(hi - lo) * 5e-7``, the rounding of the normalised values).

    Example
    -------
    >>> denormalise_vad([0.375, 0.75, 0.0], (1.0, 5.0))
    [2.5, 4.0, 1.0]
    >>> raw = [4.2, 1.8, 6.6]
    >>> back = denormalise_vad(normalise_vad(raw, (1, 7)), (1, 7))
    >>> max(abs(a - b) for a, b in zip(back, raw)) < 6 * 5e-7
    True
    """
    lo, hi = check_scale(scale, "scale")
    return [round(lo + float(x) * (hi - lo), 6) for x in values]
