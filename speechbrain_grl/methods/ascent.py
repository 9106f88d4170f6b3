"""The alternating ascent of Gat et al. (ICASSP 2022): TAP and SNP.

Emotion turns (descent on everything but the speaker head) alternate with
speaker turns, where the speaker head descends on ℓ_spk while the
adversarial parameters take a gradient *ascent* step on it. TAP ascends
the whole encoder and the projection; SNP the projection only (the
encoder then runs without gradient in the speaker turn).

How far they ascend (``scale``):

- ``relative`` (default): each parameter group moves by ``ascent_ratio``
  (ramped like λ) times its optimizer's learning rate, its gradient
  divided by its RMS first: a fraction of an Adam step;
- ``absolute``: a plain SGD step of ``ascent_step`` (the paper's λ).
"""

import logging

import torch

from speechbrain_grl.methods.base import SpeakerMethod, emotions_of
from speechbrain_grl.methods.gradient_reversal import SCALES
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["AlternatingAscent"]

logger = logging.getLogger(__name__)

ASCEND = {"encoder": "tap", "projection": "snp"}
ALTERNATE = ("same_batch", "next_batch")


class AlternatingAscent(SpeakerMethod):
    """``--adversary=tap`` (``ascend: encoder``) or ``snp``
    (``ascend: projection``).

    Arguments
    ---------
    lambda_schedule : LambdaSchedule
        Its ramp scales the relative ascent; its step counter (the global
        step, checkpointed) times the turns of ``next_batch``.
    ascend : str
        ``encoder`` (TAP) or ``projection`` (SNP).
    scale : str
        ``relative`` or ``absolute`` (see the module).
    ascent_ratio : float
        Relative ascent, times the learning rate.
    ascent_step : float
        Absolute ascent (SGD step size).
    alternate : str
        ``same_batch``: the speaker turn follows the emotion turn on the
        same batch; ``next_batch`` (the paper's): turns alternate over
        batches, steps 0, 2, 4, … emotion, 1, 3, 5, … speaker.
    **kwargs
        The speaker head's settings (:class:`SpeakerMethod`).

    Example
    -------
    >>> from speechbrain_grl.nnet.grl import LambdaSchedule
    >>> tap = AlternatingAscent(LambdaSchedule(1.0), ascent_ratio=0.1)
    >>> tap.name, tap.strength(None)
    ('tap', 0.1)
    >>> AlternatingAscent(LambdaSchedule(1.0), ascend="projection").name
    'snp'
    """

    alternating = True

    def __init__(self, lambda_schedule, ascend="encoder", scale="relative",
                 ascent_ratio=0.1, ascent_step=0.001, alternate="same_batch",
                 **kwargs):
        super().__init__(**kwargs)
        for key, value, allowed in (("ascend", ascend, tuple(ASCEND)),
                                    ("adversary_scale", scale, SCALES),
                                    ("alternate", alternate, ALTERNATE)):
            if value not in allowed:
                raise RecipeError(f"{key}: {value!r} is unknown; use one "
                                  f"of {', '.join(allowed)}")
        self.schedule = lambda_schedule
        self.ascend = ascend
        self.scale = scale
        self.ascent_ratio = ascent_ratio
        self.ascent_step = ascent_step
        self.alternate = alternate
        self.skipped = 0  # speaker turns whose ascent was not finite
        self._speaker_phase = False  # inside a speaker turn's update

    @property
    def name(self):
        """``tap`` or ``snp``."""
        return ASCEND[self.ascend]

    def check(self, brain):
        """Alternating steps do not accumulate gradients."""
        if brain.grad_accumulation_factor > 1:
            raise RecipeError(
                f"adversary: {self.name} alternates steps and does not "
                "support grad_accumulation_factor > 1")

    def recoverables(self):
        """The λ schedule (its step counter is the global step)."""
        return {"lambda_schedule": self.schedule}

    def on_fit_start(self, brain, total_steps):
        """λ's ramp runs over the planned steps."""
        self.schedule.total_steps = total_steps

    def speaker_input(self, emb):
        """Emotion turns train no speaker head."""
        return None

    @property
    def speaker_turn(self):
        """True when the next ``next_batch`` step is a speaker turn."""
        return (self.alternate == "next_batch"
                and self.schedule.current_step % 2 == 1)

    def fit_batch(self, brain, batch):
        """An emotion turn, a speaker turn, or both (``same_batch``)."""
        if self.alternate == "same_batch":
            loss = brain.standard_fit_batch(batch)
            self.speaker_step(brain, batch)
            return loss
        if self.speaker_turn:
            return self.speaker_step(brain, batch)
        return brain.standard_fit_batch(batch)

    def optimizers(self, brain, optimizers):
        """Speaker turns step the speaker head's optimizer only; emotion
        turns leave it out (it had no gradient)."""
        if self._speaker_phase:
            return {"spk": optimizers["spk"]}
        return {k: v for k, v in optimizers.items() if k != "spk"}

    def after_step(self, brain):
        """Extra head steps, then the schedule advances."""
        super().after_step(brain)
        self.schedule.step()

    def strength(self, brain):
        """``ascent_step`` (absolute) or ``ascent_ratio`` times the
        schedule's ramp (relative)."""
        if self.scale == "absolute":
            return self.ascent_step
        top = self.schedule.lambda_max
        ramp = self.schedule.value / top if top else 0.0
        return self.ascent_ratio * ramp

    def speaker_step(self, brain, batch):
        """Speaker head descends; adversarial parameters ascend."""
        own_step = self.alternate != "same_batch"
        if own_step:
            brain.on_fit_batch_start(batch, True)
        batch = brain.to_device(batch)
        wavs, lens = batch.sig
        tap = self.ascend == "encoder"
        with brain.training_ctx:
            emb = brain.embed(wavs, lens, encoder_grad=tap, batch=batch)
            self.remember(emb, batch)
            emo = emotions_of(batch)
            if self.objective == "confusion":
                # The head descends ℓ_spk on the detached embedding; the
                # adversarial parameters get −∇ℓ_conf through a frozen
                # copy of the head, so that the "ascent" descends ℓ_conf.
                spk_loss = self.speaker_loss(brain, self.logp_from(
                    brain, brain.modules.spk_head,
                    self.head_features(brain, emb).detach(), emo), batch)
                total = spk_loss - self.adversary_loss(brain, emb, batch)
            else:
                spk_loss = self.speaker_loss(
                    brain, self.speaker_logp(brain, emb, emo), batch)
                total = spk_loss
        brain.scaler.scale(total).backward()
        self._ascend_and_update(brain)
        if own_step:
            brain.on_fit_batch_end(batch, None, spk_loss, True)
        return spk_loss.detach()

    def _groups(self, brain):
        """``(params with a gradient, optimizer name)`` that ascend."""
        heads = list(brain.modules.projection.parameters())
        if self.head_input == "emotion":
            heads.extend(brain.modules.emo_head.parameters())
        groups = [(heads, "heads")]
        if self.ascend == "encoder":
            groups.append((list(brain.modules.ssl.parameters()), "ssl"))
        return [([p for p in params if p.grad is not None], name)
                for params, name in groups]

    def _ascend_and_update(self, brain):
        """The ascent, then the speaker head's own optimizer step."""
        groups = self._groups(brain)
        skipped = self._ascend(brain, groups)
        for params, _ in groups:
            for param in params:
                param.grad = None
        self._speaker_phase = True
        try:
            brain.optimizers_step()
        finally:
            self._speaker_phase = False
        if skipped:
            self.skipped += 1
            if brain.scaler.is_enabled():  # fp16: back off as GradScaler
                brain.scaler.update(brain.scaler.get_scale()
                                    * brain.scaler.get_backoff_factor())
        brain.zero_grad(set_to_none=True)

    def _sizes(self, brain, groups):
        """Step size per group: ``ascent_step`` (absolute), or the
        strength times the group's learning rate (relative)."""
        if self.scale == "absolute":
            return [self.ascent_step for _ in groups]
        lam = self.strength(brain)
        sizes = []
        for _, name in groups:
            opt = brain.optimizers_dict.get(name)
            sizes.append(lam * (opt.param_groups[0]["lr"]
                                if opt is not None else 0.0))
        return sizes

    def _ascend(self, brain, groups):
        """θ ← θ + size·∇ℓ_spk per group, skipped on inf/NaN gradients.

        With the relative scale each group's gradient is divided by its
        RMS first, so every parameter moves by about λ·lr, as an Adam
        step does. As ``GradScaler`` does, the gradients are unscaled
        (fp16) and checked in one fused pass; if any is not finite the
        ascent is skipped and ``True`` returned. One host sync.
        """
        groups = [(params, size) for (params, _), size in
                  zip(groups, self._sizes(brain, groups)) if params]
        if not groups:
            return False
        with torch.no_grad():
            device = groups[0][0][0].grad.device
            found_inf = torch.zeros(1, device=device)
            inv_scale = torch.ones(1, device=device)
            if brain.scaler.is_enabled():  # fp16: the scale stays on device
                inv_scale = brain.scaler._get_scale_async().double()
                inv_scale = inv_scale.reciprocal().float().to(device)
            rms = []
            for params, _ in groups:
                grads = [p.grad for p in params]
                torch._amp_foreach_non_finite_check_and_unscale_(
                    grads, found_inf, inv_scale)
                if self.scale == "relative":
                    sq = torch.stack([n.float() ** 2 for n in
                                      torch._foreach_norm(grads)]).sum()
                    rms.append(torch.sqrt(sq / sum(g.numel()
                                                   for g in grads)))
            if found_inf.item():
                logger.warning(
                    "speaker step: non-finite gradients, ascent skipped")
                return True
            rms = [float(r) for r in rms] or [1.0] * len(groups)
            for (params, size), r in zip(groups, rms):
                torch._foreach_add_(params, [p.grad for p in params],
                                    alpha=size / max(r, 1e-20))
        return False
