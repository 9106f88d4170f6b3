"""Gradient reversal (Ganin & Lempitsky 2015) in front of the speaker head.

The encoder and the projection receive ∇ℓ_emo − s·∇ℓ_spk, where s is

- ``relative`` (default): scale-free, the reversed gradient at the
  embedding has λ times the norm of the emotion gradient there;
- ``absolute``: the textbook α·λ of a gradient reversal layer.

λ comes from a :class:`~speechbrain_grl.nnet.grl.LambdaSchedule`.
"""

import speechbrain as sb
import torch

from speechbrain_grl.methods.base import SpeakerMethod
from speechbrain_grl.nnet.grl import GradientReversal
from speechbrain_grl.utils.ddp import distributed
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["GradientReversalAdversary", "SCALES"]

SCALES = ("relative", "absolute")


class GradientReversalAdversary(SpeakerMethod):
    """``--adversary=grl``.

    Arguments
    ---------
    lambda_schedule : LambdaSchedule
        λ over the training steps (checkpointed with the method).
    scale : str
        ``relative`` or ``absolute`` (see the module).
    **kwargs
        The speaker head's settings (:class:`SpeakerMethod`).

    Example
    -------
    >>> from speechbrain_grl.nnet.grl import LambdaSchedule
    >>> grl = GradientReversalAdversary(LambdaSchedule(0.5))
    >>> grl.strength(None), sorted(grl.recoverables())
    (0.5, ['lambda_schedule'])
    """

    name = "grl"

    def __init__(self, lambda_schedule, scale="relative", **kwargs):
        super().__init__(**kwargs)
        if scale not in SCALES:
            raise RecipeError(
                f"adversary_scale: {scale!r} is unknown; use one of "
                f"{', '.join(SCALES)}")
        self.schedule = lambda_schedule
        self.scale = scale
        self.layer = GradientReversal(lambda_schedule.value)

    def check(self, brain):
        """Confusion needs the relative scale."""
        if self.objective == "confusion" and self.scale == "absolute":
            raise RecipeError(
                "adversary_objective: confusion needs adversary_scale: "
                "relative with grl (absolute GRL is the textbook reversal)")

    def recoverables(self):
        """The λ schedule (its step counter is the global step)."""
        return {"lambda_schedule": self.schedule}

    def on_fit_start(self, brain, total_steps):
        """λ ramps over the planned steps."""
        self.schedule.total_steps = total_steps

    def speaker_input(self, emb):
        """Absolute: the embedding behind the reversal layer. Relative:
        detached (:meth:`relative_step` reverses the gradient itself)."""
        if self.scale == "absolute":
            self.layer.lambda_ = self.schedule.value
            return self.layer(emb)
        return emb.detach()

    def fit_batch(self, brain, batch):
        """SpeechBrain's step (absolute) or :meth:`relative_step`."""
        if self.scale == "relative":
            return self.relative_step(brain, batch)
        return brain.standard_fit_batch(batch)

    def after_step(self, brain):
        """Extra head steps, then λ's schedule advances."""
        super().after_step(brain)
        self.schedule.step()

    def strength(self, brain):
        """λ now."""
        return self.schedule.value

    def relative_step(self, brain, batch):
        """GRL whose reversed gradient is λ·‖g_emo‖ long at the embedding.

        g_emo = ∂ℓ_emo/∂emb and g_spk = ∂ℓ_spk/∂emb are taken through the
        heads only (cheap); one backward pass through the encoder then
        carries g_emo − λ·(‖g_emo‖ / ‖g_spk‖)·g_spk, while the heads
        descend on their own losses as in the baseline.
        """
        accumulate = brain.grad_accumulation_factor
        should_step = (brain.step % accumulate) == 0
        brain.on_fit_batch_start(batch, should_step)
        with brain.no_sync(not should_step):
            with brain.training_ctx:
                out = brain.compute_forward(batch, sb.Stage.TRAIN)
                loss = brain.compute_objectives(out, batch, sb.Stage.TRAIN)
                emb = out["emb"]
                direction = self.adversary_loss(brain, emb, batch)
            g_emo, = torch.autograd.grad(out["emo_loss"], emb,
                                         retain_graph=True)
            g_spk, = torch.autograd.grad(direction, emb, retain_graph=True)
            reverse = self._reversed(brain, g_emo, g_spk)
            scaled = brain.scaler.scale(loss / accumulate)
            brain.check_loss_isfinite(scaled)
            torch.autograd.backward([scaled, emb],
                                    [None, reverse / accumulate])
        if should_step:
            brain.optimizers_step()
        brain.on_fit_batch_end(batch, out, loss, should_step)
        return loss.detach().cpu()

    @torch.no_grad()
    def _reversed(self, brain, g_emo, g_spk):
        """−λ·(‖g_emo‖ / ‖g_spk‖)·g_spk (reverse: ascend ℓ_spk), or +
        (confusion: descend ℓ_conf), loss-scaled under fp16."""
        norms = torch.stack([g_emo.float().pow(2).sum(),
                             g_spk.float().pow(2).sum()])
        if distributed():  # the global batch's norms, as one process's
            torch.distributed.all_reduce(norms)
        coef = self.schedule.value * norms[0].sqrt() / (
            norms[1].sqrt() + 1e-12)
        sign = -1.0 if self.objective == "reverse" else 1.0
        reverse = (sign * coef * g_spk.float()).to(g_spk.dtype)
        if brain.scaler.is_enabled():
            reverse = reverse * brain.scaler._get_scale_async().to(
                reverse.dtype)
        return reverse
