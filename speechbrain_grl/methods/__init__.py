"""Ways of removing the speaker, one class each, built in the yaml.

=================================  =========================================
:class:`SpeakerMonitor`            ``none``: the baseline; the speaker head
                                   is trained on a detached embedding and
                                   only monitored.
:class:`GradientReversalAdversary`  ``grl``: gradient reversal (relative or
                                   absolute strength).
:class:`AlternatingAscent`         ``tap`` / ``snp``: the paper's
                                   alternating ascent (the encoder or the
                                   projection ascends).
:class:`SpeakerNormalization`      ``spknorm``: per-speaker normalisation,
                                   alone or around any of the above.
=================================  =========================================

:mod:`speechbrain_grl.methods.base` documents the interface the Brain
calls. :func:`select_method` picks the one that ``--adversary`` names
among the yaml's blocks; :func:`method_from_hparams` builds one from the
flat keys of yaml files written before the methods were objects.
"""

from speechbrain_grl.methods.ascent import AlternatingAscent
from speechbrain_grl.methods.base import SpeakerMethod
from speechbrain_grl.methods.gradient_reversal import (
    GradientReversalAdversary,
)
from speechbrain_grl.methods.monitor import SpeakerMonitor
from speechbrain_grl.methods.normalization import SpeakerNormalization
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = [
    "ADVERSARIES",
    "AlternatingAscent",
    "GradientReversalAdversary",
    "SpeakerMethod",
    "SpeakerMonitor",
    "SpeakerNormalization",
    "method_from_hparams",
    "select_method",
]

#: The names ``--adversary`` takes.
ADVERSARIES = ("none", "grl", "tap", "snp", "spknorm")


def select_method(name, normalize=False, **methods):
    """The method that ``--adversary`` names, among the yaml's blocks.

    Arguments
    ---------
    name : str
        One of :data:`ADVERSARIES`.
    normalize : bool
        Put the ``spknorm`` block's normalisation around the method
        (``--speaker_norm=True``).
    **methods
        One method object per name (``none``, ``grl``, ``tap``, ``snp``,
        ``spknorm``).

    Returns
    -------
    The method object (for ``spknorm`` or ``normalize``, the
    normalisation around ``methods["none"]`` or the named method).

    Example
    -------
    >>> from speechbrain_grl.nnet.grl import LambdaSchedule
    >>> blocks = dict(none=SpeakerMonitor(),
    ...               grl=GradientReversalAdversary(LambdaSchedule()),
    ...               spknorm=SpeakerNormalization())
    >>> select_method("grl", **blocks).name
    'grl'
    >>> select_method("grl", normalize=True, **blocks)
    SpeakerNormalization(GradientReversalAdversary(name='grl'))
    >>> select_method("spknorm", **blocks).name
    'spknorm'
    """
    if name not in ADVERSARIES:
        raise RecipeError(f"adversary: {name!r} is unknown; use one of "
                          f"{', '.join(ADVERSARIES)}")
    if name == "spknorm":
        name, normalize = "none", True
    if name not in methods:
        raise RecipeError(f"adversary: {name} has no block in the yaml's "
                          "speaker_method; add one")
    method = methods[name]
    if normalize:
        norm = methods.get("spknorm") or SpeakerNormalization()
        method = norm.around(method)
    return method


def method_from_hparams(hparams):
    """The method of a flat hparams dict (yaml files written before the
    methods were yaml objects, and scripts that set ``adversary``)."""
    get = hparams.get
    head = dict(alpha=get("alpha", 1.0),
                loss_balance=get("spk_loss_balance", False),
                head_steps=get("spk_head_steps", 0),
                head_memory=get("spk_head_memory", 1),
                objective=get("adversary_objective", "reverse"),
                head_input=get("adversary_input", "embedding"))
    schedule = hparams["lambda_schedule"]
    scale = get("adversary_scale", "relative")
    ascent = dict(scale=scale, ascent_ratio=get("ascent_ratio", 0.1),
                  ascent_step=get("ascent_step", 0.001),
                  alternate=get("alternate", "same_batch"), **head)
    methods = {
        "none": SpeakerMonitor(**head),
        "grl": GradientReversalAdversary(schedule, scale=scale, **head),
        "tap": AlternatingAscent(schedule, ascend="encoder", **ascent),
        "snp": AlternatingAscent(schedule, ascend="projection", **ascent),
        "spknorm": SpeakerNormalization(
            valid_balanced=get("spk_norm_valid_balanced", False)),
    }
    return select_method(hparams["adversary"],
                         normalize=bool(get("speaker_norm", False)),
                         **methods)
