"""Gradient reversal and the schedules of its coefficient.

The gradient reversal layer (GRL) of Ganin & Lempitsky (2015) is the
identity in the forward pass and multiplies the incoming gradient by -λ in
the backward pass. Put in front of a speaker classifier, it lets the
classifier learn the speaker while pushing the encoder to forget it.
"""

import math

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

__all__ = [
    "GradientReversalFunction",
    "GradientReversal",
    "LambdaSchedule",
]


class GradientReversalFunction(torch.autograd.Function):
    """Identity forward, gradient times -λ backward.

    Example
    -------
    >>> x = torch.ones(3, requires_grad=True)
    >>> GradientReversalFunction.apply(x, 0.5).sum().backward()
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """

    @staticmethod
    def forward(ctx, x, lambda_):
        """Returns ``x`` unchanged and remembers λ."""
        ctx.lambda_ = float(lambda_)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        """Multiplies the incoming gradient by -λ; λ gets no gradient."""
        return grad_output.neg() * ctx.lambda_, None


class GradientReversal(torch.nn.Module):
    """Module wrapper of :class:`GradientReversalFunction`.

    Arguments
    ---------
    lambda_ : float
        Initial coefficient; change it while training runs through the
        ``lambda_`` attribute (the Brain does so from a
        :class:`LambdaSchedule`).

    Example
    -------
    >>> grl = GradientReversal(lambda_=2.0)
    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> y = grl(x)
    >>> torch.equal(y, x)
    True
    >>> y.sum().backward()
    >>> bool((x.grad == -2.0).all())
    True
    """

    def __init__(self, lambda_=1.0):
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x):
        """Identity; reverses and scales the gradient on the way back."""
        return GradientReversalFunction.apply(x, self.lambda_)

    def extra_repr(self):
        """Shows λ when the module is printed."""
        return f"lambda_={self.lambda_}"


@register_checkpoint_hooks
class LambdaSchedule:
    """The λ of the adversary as a function of training progress.

    Progress p = step / total_steps, in [0, 1], counts optimisation steps,
    which are global steps under DDP since every process steps together.

    - ``constant``: λ(p) = λ_max.
    - ``ganin``: λ(p) = λ_max · (2 / (1 + exp(-γ·p)) - 1), the ramp of
      Ganin et al. (2016), from 0 to almost λ_max.

    The step counter is saved and restored by the Checkpointer, so a resumed
    run continues the ramp rather than restarting it.

    Arguments
    ---------
    lambda_max : float
        The final (or constant) value of λ.
    kind : str
        ``"constant"`` or ``"ganin"``.
    gamma : float
        Steepness of the Ganin ramp.
    total_steps : int
        Number of optimisation steps of the whole training. It may be set
        later, once the data loader's length is known.

    Example
    -------
    >>> s = LambdaSchedule(lambda_max=1.0, kind="ganin", gamma=10,
    ...                    total_steps=100)
    >>> s.value
    0.0
    >>> for _ in range(50):
    ...     s.step()
    >>> round(s.value, 4)
    0.9866
    >>> LambdaSchedule(0.001).value
    0.001
    """

    KINDS = ("constant", "ganin")

    def __init__(self, lambda_max=1.0, kind="constant", gamma=10.0,
                 total_steps=None):
        if kind not in self.KINDS:
            raise ValueError(
                f"lambda schedule kind {kind!r} is unknown; "
                f"use one of {', '.join(self.KINDS)}"
            )
        self.lambda_max = float(lambda_max)
        self.kind = kind
        self.gamma = float(gamma)
        self.total_steps = total_steps
        self.current_step = 0

    @property
    def progress(self):
        """Training progress p in [0, 1]."""
        if not self.total_steps:
            return 0.0
        return min(1.0, self.current_step / self.total_steps)

    @property
    def value(self):
        """The current λ."""
        if self.kind == "constant":
            return self.lambda_max
        ramp = 2.0 / (1.0 + math.exp(-self.gamma * self.progress)) - 1.0
        return self.lambda_max * ramp

    def step(self):
        """Advances the schedule by one optimisation step."""
        self.current_step += 1

    @mark_as_saver
    def save(self, path):
        """Saves the step counter (and settings, for inspection)."""
        torch.save(
            {
                "current_step": self.current_step,
                "total_steps": self.total_steps,
                "lambda_max": self.lambda_max,
                "kind": self.kind,
                "gamma": self.gamma,
            },
            path,
        )

    @mark_as_loader
    def load(self, path, end_of_epoch=False):
        """Restores the step counter, so the ramp continues after resume."""
        del end_of_epoch
        state = torch.load(path, weights_only=True)
        self.current_step = int(state["current_step"])
