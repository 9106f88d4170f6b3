"""The one error base class of speechbrain-grl.

Every error this package raises on purpose about the user's input (a data
folder, an hparams file, an option, a model folder) derives from
:class:`GRLError` and carries one line that names the problem and says
what to do, so scripts catch one type and print it as is.
"""

__all__ = ["GRLError"]


class GRLError(Exception):
    """A problem with the user's input, in one actionable line.

    Example
    -------
    >>> from speechbrain_grl.dataio.iemocap import IEMOCAPError
    >>> issubclass(IEMOCAPError, GRLError)
    True
    """
