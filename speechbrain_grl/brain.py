"""The speaker-adversarial Brain: emotion recognition that forgets speakers.

SSL encoder → masked mean pooling → projection (the utterance embedding)
→ emotion head, plus a speaker head over the training speakers. The hparam
``adversary`` picks how the speaker head talks back to the encoder:

- ``none``: the baseline. The speaker head trains on a detached embedding
  with its own optimizer, so it is monitored but changes nothing else.
- ``grl``: a gradient reversal layer in front of the speaker head (Ganin
  et al.): the encoder and projection receive ∇ℓ_emo − s·∇ℓ_spk.
- ``tap`` / ``snp``: the alternating scheme of Gat et al. (ICASSP 2022).
  Emotion turns (descent on everything but the speaker head) alternate
  with speaker turns on the next batch: the speaker head descends while
  the adversarial parameters take a gradient *ascent* step on ℓ_spk. TAP
  ascends the whole encoder and the projection; SNP the projection only
  (the encoder then runs without gradient).
- ``spknorm``: no adversary; the pooled encoder features are standardised
  with each speaker's own statistics (:mod:`speechbrain_grl.nnet.speaker_norm`).

How strong the adversary is (``adversary_scale``):

- ``relative`` (default): scale-free. GRL's reversed gradient at the
  embedding has λ times the norm of the emotion gradient there (λ:
  ``lambda_schedule``'s value, ``lambda_max`` optionally ramped); the
  TAP/SNP ascent moves each parameter group by ``ascent_ratio`` (ramped
  the same way) times its optimizer's learning rate (RMS over the group),
  a fraction of an Adam step.
- ``absolute``: the textbook forms. GRL adds α·λ·∇ℓ_spk reversed; the
  ascent is a plain SGD step of ``ascent_step`` (the paper's λ = 1e-3).

With ``adversary_conditional`` the speaker head is one classifier per
emotion (:class:`speechbrain_grl.nnet.speaker_head.SpeakerHead`), so the
adversary removes only the speaker information that the emotion does not
explain (see that module for why an unconditional adversary collapses
when speakers carry an emotion shortcut).
"""

import json
import logging
import os

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.utils.distributed import main_process_only

from speechbrain_grl.evaluation.metrics import (
    dimensional_metrics,
    emotion_metrics,
)
from speechbrain_grl.nnet.grl import GradientReversal
from speechbrain_grl.nnet.losses import ccc_loss
from speechbrain_grl.nnet.speaker_head import SpeakerHead
from speechbrain_grl.nnet.speaker_norm import speaker_stats
from speechbrain_grl.utils.checkpoints import guard_checkpoints, trim_train_log
from speechbrain_grl.utils.hparams_checks import RecipeError
from speechbrain_grl.utils.jsonio import write_json_atomic

logger = logging.getLogger(__name__)

__all__ = ["SpeakerAdversarialBrain", "ADVERSARIES", "SCALES", "unwrap",
           "BRAIN_HPARAMS", "REQUIRED", "brain_hparams"]

ADVERSARIES = ("none", "grl", "tap", "snp", "spknorm")
SCALES = ("relative", "absolute")
OBJECTIVES = ("reverse", "confusion")
TASKS = ("categorical", "dimensional", "both")
#: Checkpoint selection keys: validation UA, mean validation CCC, or
#: their mean (UA / 100 + CCC) / 2, the default of ``task: both``.
SELECT_ON = ("UA", "CCC", "score")


REQUIRED = object()

#: Every hparam the Brain reads, with its default (``REQUIRED``: none).
#: The recipe passes exactly these, read explicitly from its yaml; the
#: Brain reads nothing else (``self.hparams`` holds only these, plus the
#: encoders the recipe adds).
BRAIN_HPARAMS = {
    # What the adversary is and how strong (see the module docstring).
    "adversary": REQUIRED,
    "adversary_scale": "relative",
    "adversary_input": "embedding",
    "alpha": 1.0,
    "lambda_schedule": REQUIRED,
    "ascent_ratio": 0.1,
    "ascent_step": 0.001,
    "alternate": "same_batch",
    "spk_loss_balance": False,
    "emo_loss_balance": False,
    # Extra speaker-head updates per step, on the detached embeddings of
    # the last spk_head_memory batches (a head that keeps up).
    "spk_head_steps": 0,
    "spk_head_memory": 1,
    # What the encoder is pushed to do to the speaker head: maximise its
    # loss (reverse) or make its prediction uniform (confusion).
    "adversary_objective": "reverse",
    # What is learnt: categorical (emotion classes), dimensional (valence,
    # arousal, dominance by 1 - CCC) or both; what selects checkpoints.
    "task": "categorical",
    "dimension_weights": (1.0, 1.0, 1.0),
    "regression_weight": 1.0,
    "select_on": None,
    "speaker_norm": False,
    "spk_norm_valid_balanced": False,
    "log_softmax": REQUIRED,
    # Optimisation.
    "ssl_opt_class": REQUIRED,
    "heads_opt_class": REQUIRED,
    "spk_opt_class": None,
    "lr_annealing_ssl": REQUIRED,
    "lr_annealing_heads": REQUIRED,
    "fused_optimizers": True,
    "expandable_segments": True,
    "epoch_counter": REQUIRED,
    # Outputs and selection.
    "train_logger": REQUIRED,
    "output_folder": REQUIRED,
    "keep_checkpoints": 1,
    "avg_checkpoints": 1,
    # Labels (the encoders come from dataio_prep).
    "emotions": REQUIRED,
    "n_speakers": REQUIRED,
    "label_encoder": REQUIRED,
    "spk_encoder": None,
    # Utterances per class of each set as used (recorded with the test).
    "class_counts": None,
    # Read by SpeechBrain's own Brain under DDP ("random" shuffles the
    # distributed sampler); left out when None, as SpeechBrain expects.
    "sorting": None,
}


def brain_hparams(hparams):
    """The Brain's hparams picked from a loaded recipe yaml (tests and
    benchmarks; the recipe reads them one by one).

    Example
    -------
    >>> brain_hparams({"adversary": "grl", "other": 1})
    {'adversary': 'grl'}
    """
    return {k: hparams[k] for k in BRAIN_HPARAMS if k in hparams}


def _complete(hparams):
    """``hparams`` with the defaults of :data:`BRAIN_HPARAMS` filled in;
    a missing required key is a one-line error."""
    hparams = dict(hparams)
    if hparams.get("sorting", "") is None:
        del hparams["sorting"]  # SpeechBrain tests hasattr(hparams, ...)
    for key, default in BRAIN_HPARAMS.items():
        if key == "sorting":
            continue
        if key in hparams:
            continue
        if default is REQUIRED:
            if key in ("label_encoder",):  # set after construction
                continue
            raise RecipeError(f"the Brain needs the hparam {key!r}; add "
                              "it to the yaml")
        hparams[key] = default
    return hparams


def _expandable_segments(on):
    """CUDA allocator with expandable segments (unless the user set
    ``PYTORCH_CUDA_ALLOC_CONF``): batches of ever-changing length fragment
    the caching allocator otherwise. Measured on an H200: one IEMOCAP-sized
    HuBERT-Large epoch 60.0 s → 41.6 s (benchmarks/gpu_results.md)."""
    if not on or os.environ.get("PYTORCH_CUDA_ALLOC_CONF"):
        return
    try:
        torch.cuda.memory._set_allocator_settings("expandable_segments:True")
    except (AttributeError, RuntimeError) as err:  # older torch
        logger.info("expandable segments unavailable: %s", err)


def unwrap(module):
    """The module inside a DDP wrapper, or the module itself."""
    return getattr(module, "module", module)


class SpeakerAdversarialBrain(sb.Brain):
    """Fine-tunes an SSL encoder for emotion while removing the speaker.

    Expected ``modules``: ``ssl``, ``pooling``, ``projection``,
    ``emo_head``, ``spk_head``. Expected hparams: ``adversary``,
    ``log_softmax``, ``alpha``, ``lambda_schedule`` (GRL coefficient and
    step counter), ``ascent_step`` (TAP/SNP), ``ssl_opt_class``,
    ``heads_opt_class``, ``lr_annealing_ssl``, ``lr_annealing_heads``,
    ``epoch_counter``, ``train_logger``, ``output_folder``, ``emotions``,
    ``label_encoder`` (set by the recipe) and optionally
    ``keep_checkpoints``. A frozen encoder (the SSL wrapper's ``freeze``)
    gets no optimizer.
    """

    def __init__(self, modules=None, opt_class=None, hparams=None,
                 run_opts=None, checkpointer=None):
        try:
            super().__init__(modules, opt_class, _complete(hparams or {}),
                             run_opts, checkpointer)
        except ValueError as err:  # SpeechBrain's, e.g. fp16 on a CPU
            if isinstance(err, RecipeError):
                raise
            raise RecipeError(str(err).strip().splitlines()[0]) from err
        if self.hparams.adversary not in ADVERSARIES:
            raise RecipeError(
                f"adversary: {self.hparams.adversary!r} is unknown; use "
                f"one of {', '.join(ADVERSARIES)}"
            )
        if self.hparams.task not in TASKS:
            raise RecipeError(
                f"task: {self.hparams.task!r} is unknown; use one of "
                f"{', '.join(TASKS)}")
        if self.selection_key not in SELECT_ON:
            raise RecipeError(
                f"select_on: {self.hparams.select_on!r} is unknown; use "
                f"{', '.join(SELECT_ON)} (or null: the task's own)")
        if self.hparams.task != "categorical" and (
                "vad_head" not in self.modules):
            raise RecipeError(
                f"task: {self.hparams.task} needs a vad_head module (a "
                "Linear to 3 outputs and a Sigmoid) in modules")
        if self.scale not in SCALES:
            raise RecipeError(
                f"adversary_scale: {self.scale!r} is unknown; use one of "
                f"{', '.join(SCALES)}"
            )
        if self.objective not in OBJECTIVES:
            raise RecipeError(
                f"adversary_objective: {self.objective!r} is unknown; use "
                f"one of {', '.join(OBJECTIVES)}")
        if (self.objective == "confusion" and self.hparams.adversary == "grl"
                and self.scale == "absolute"):
            raise RecipeError(
                "adversary_objective: confusion needs adversary_scale: "
                "relative with grl (absolute GRL is the textbook reversal)")
        if self.alternating and self.grad_accumulation_factor > 1:
            raise RecipeError(
                f"adversary: {self.hparams.adversary} alternates steps and "
                "does not support grad_accumulation_factor > 1"
            )
        if str(self.device).startswith("cuda"):
            _expandable_segments(
                self.hparams.expandable_segments)
        self.grl = GradientReversal(self.schedule.value)
        self.ascent_skipped = 0  # speaker steps skipped on inf/NaN
        self._spk_memory = []  # recent (embedding, speaker, emotion)
        self._speaker_phase = False  # inside a speaker step's update
        self._loaders = {}
        if self.speaker_norm and "spk_norm" not in self.modules:
            raise RecipeError(
                "speaker normalisation needs a spk_norm module "
                "(speechbrain_grl.nnet.speaker_norm.SpeakerNorm) in modules")
        # SpeechBrain's StatisticsPooling adds random noise (scale eps) to
        # the mean, even in eval: off, so that evaluations are repeatable
        # and exported models reproduce them.
        if hasattr(self.modules.pooling, "eps"):
            self.modules.pooling.eps = 0.0
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable(
                "lambda_schedule", self.schedule
            )
            if "vad_head" in self.modules:  # runs saved before it load
                self.checkpointer.add_recoverable(
                    "vad_head", self.modules.vad_head, optional_load=True)
            guard_checkpoints(self.checkpointer)  # survive kills mid-save

    # -- helpers -----------------------------------------------------------
    @property
    def alternating(self):
        """True for the paper's alternating modes (TAP, SNP)."""
        return self.hparams.adversary in ("tap", "snp")

    @property
    def same_batch(self):
        """TAP/SNP take the speaker turn on the batch of the emotion turn
        (hparam ``alternate: same_batch``) rather than on the next batch
        (``next_batch``, the paper's): every batch then gets an emotion
        update, as in the baseline, at twice the cost per batch."""
        return self.hparams.alternate == (
            "same_batch")

    @property
    def speaker_turn(self):
        """True when the next TAP/SNP step is a speaker turn.

        With ``alternate: next_batch`` the alternation counts the global
        step on the λ schedule's counter, which the checkpoints keep:
        steps 0, 2, 4, … are emotion turns, steps 1, 3, 5, … speaker
        turns. With ``same_batch`` every step is both, in that order.
        """
        return (self.alternating and not self.same_batch
                and self.schedule.current_step % 2 == 1)

    @property
    def categorical(self):
        """True when emotion classes are learnt (``task`` categorical or
        both)."""
        return self.hparams.task != "dimensional"

    @property
    def dimensional(self):
        """True when valence, arousal and dominance are learnt (``task``
        dimensional or both)."""
        return self.hparams.task != "categorical"

    @property
    def selection_key(self):
        """The validation metric that selects checkpoints: ``select_on``,
        or the task's own (UA, CCC, or score for ``both``)."""
        if self.hparams.select_on:
            return self.hparams.select_on
        return {"categorical": "UA", "dimensional": "CCC"}.get(
            self.hparams.task, "score")

    @property
    def scale(self):
        """``relative`` or ``absolute`` (hparam ``adversary_scale``)."""
        return self.hparams.adversary_scale

    @property
    def objective(self):
        """``reverse`` or ``confusion`` (hparam ``adversary_objective``)."""
        return self.hparams.adversary_objective

    @property
    def schedule(self):
        """The λ schedule; its step counter is the global step."""
        return self.hparams.lambda_schedule

    @property
    def current_lambda(self):
        """The adversary's strength now: λ of the schedule (grl),
        ``ascent_ratio`` times the schedule's ramp (tap/snp, relative),
        ``ascent_step`` (tap/snp, absolute), or 0 (none, spknorm)."""
        if self.alternating and self.scale == "absolute":
            return self.hparams.ascent_step
        if self.alternating:
            return self.hparams.ascent_ratio * self._ramp()
        if self.hparams.adversary == "grl":
            return self.schedule.value
        return 0

    def _ramp(self):
        """The schedule's progress factor in [0, 1] (1: constant)."""
        top = self.schedule.lambda_max
        return self.schedule.value / top if top else 0.0

    @property
    def speaker_norm(self):
        """True when pooled features are standardised per speaker
        (``adversary: spknorm``, or ``speaker_norm: True`` with any
        adversary)."""
        return self.hparams.adversary == "spknorm" or bool(
            self.hparams.speaker_norm)

    def embed(self, wavs, lens, encoder_grad=True, batch=None):
        """Waveforms → utterance embeddings ``[batch, 1, emb_dim]``.

        With :attr:`speaker_norm`, ``batch`` gives the speakers (training:
        ``spk_encoded``; evaluation: ``spk_id``).
        """
        with torch.set_grad_enabled(
            encoder_grad and torch.is_grad_enabled()
        ):
            feats = self.modules.ssl(wavs, lens)
            pooled = self.modules.pooling(feats, lens)
        if self.speaker_norm:
            norm = self.modules.spk_norm
            if norm.training:
                pooled = norm(pooled,
                              speaker_index=batch.spk_encoded.data.squeeze(1),
                              emotion_index=self._emotions(batch))
            else:
                pooled = norm(pooled, speaker_ids=batch.spk_id)
        return self.modules.projection(pooled)

    def speaker_logp(self, emb, emotion=None, module=None):
        """Speaker log-probabilities ``[batch, n_speakers]``.

        A per-emotion head (:class:`SpeakerHead`) picks the classifier of
        ``emotion`` (``[batch]`` indices); ``module`` overrides the head
        (the unwrapped one, outside DDP's bookkeeping).
        """
        head = module if module is not None else self.modules.spk_head
        return self.speaker_logp_from(head, self._head_input(emb), emotion)

    # -- forward and losses ------------------------------------------------
    def compute_forward(self, batch, stage):
        """Emotion log-probabilities and, in training, speaker ones."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        emb = self.embed(wavs, lens, batch=batch)
        if stage == sb.Stage.TRAIN:
            self._remember(emb, batch)
        out = {
            "emb": emb,
            "emo": self.hparams.log_softmax(
                self.modules.emo_head(emb)
            ).squeeze(1),
        }
        if self.dimensional:
            out["vad"] = self.modules.vad_head(emb).reshape(len(wavs), 3)
        if stage == sb.Stage.TRAIN and not self.alternating:
            # The baseline (and relative GRL, which reverses the speaker
            # gradient itself in _relative_grl_step) train the speaker
            # head on a detached embedding; absolute GRL reverses here.
            absolute_grl = (self.hparams.adversary == "grl"
                            and self.scale == "absolute")
            self.grl.lambda_ = self.schedule.value
            spk_in = self.grl(emb) if absolute_grl else emb.detach()
            out["spk"] = self.speaker_logp(spk_in, self._emotions(batch))
        return out

    @staticmethod
    def _emotions(batch):
        return batch.emo_encoded.data.squeeze(1)

    def compute_objectives(self, predictions, batch, stage):
        """The task loss (+ α·ℓ_spk in training outside TAP/SNP); collects
        predictions. ``predictions["emo_loss"]`` keeps the task loss
        alone: ℓ_emo (categorical), 1 − CCC weighted over valence,
        arousal and dominance (dimensional), or ℓ_emo plus
        ``regression_weight`` times that (both)."""
        emo = self._emotions(batch)
        train = stage == sb.Stage.TRAIN
        loss = torch.zeros((), device=self.device)
        if self.categorical:
            loss = self._emotion_loss(predictions["emo"], emo, batch, train)
        if self.dimensional:
            vad = batch.vad_target.data.reshape(len(emo), 3)
            reg = ccc_loss(predictions["vad"], vad,
                           self.hparams.dimension_weights)
            if train:
                self._add_stat("vad_loss", reg.detach(), len(emo))
            weight = (self.hparams.regression_weight
                      if self.categorical else 1.0)
            loss = loss + weight * reg
        predictions["emo_loss"] = loss
        if train:
            if "spk" in predictions:
                spk_loss = self._speaker_loss(predictions["spk"], batch)
                loss = loss + self.hparams.alpha * spk_loss
            return loss
        self._preds["ids"].extend(batch.id)
        self._preds["true"].append(emo.detach())
        self._preds["logp"].append(predictions["emo"].detach())
        self._preds["spk"].extend(batch.spk_id)
        if self.dimensional:
            self._preds["vad"].append(predictions["vad"].detach().float())
            self._preds["vad_true"].append(vad.detach().float())
        return loss

    def _emotion_loss(self, logp, emo, batch, train):
        """ℓ_emo; in training, balanced over (speaker, emotion) cells with
        ``emo_loss_balance``."""
        weights = getattr(self, "_cell_weight", None)
        if train and weights is not None and self.hparams.emo_loss_balance:
            # Every (speaker, emotion) cell weighs the same: in the
            # weighted training set the speaker tells nothing about the
            # emotion (mean-1 weights, so a plain mean, as for ℓ_spk).
            spk = batch.spk_encoded.data.squeeze(1)
            w = weights.to(logp.device)[spk, emo]
            loss = (F.nll_loss(logp, emo, reduction="none") * w).mean()
        else:
            loss = F.nll_loss(logp, emo)
        if train:
            self._add_stat("emo_loss", loss.detach(), len(emo))
        return loss

    def _speaker_loss(self, spk_logp, batch, record=True):
        spk = batch.spk_encoded.data.squeeze(1)
        spk_loss = self._speaker_nll(spk_logp, spk, self._emotions(batch))
        if record:
            self._add_stat("spk_loss", spk_loss.detach(), len(spk))
            correct = (spk_logp.detach().argmax(-1) == spk).float().mean()
            self._add_stat("spk_acc", correct, len(spk))
        return spk_loss

    def _speaker_nll(self, spk_logp, spk, emo):
        """ℓ_spk; with ``spk_loss_balance``, every speaker weighs the same
        within each emotion."""
        weights = getattr(self, "_cell_weight", None)
        if weights is not None and self.hparams.spk_loss_balance:
            # Weights have mean 1 over the training set, so a plain mean
            # is unbiased, and DDP's average of the processes' means is
            # the global batch's (a per-batch weight sum would not be).
            w = weights.to(spk_logp.device)[spk, emo]
            return (F.nll_loss(spk_logp, spk, reduction="none") * w).mean()
        return F.nll_loss(spk_logp, spk)

    def _head_input(self, emb):
        """What the speaker head reads: the embedding, or the emotion
        log-probabilities (``adversary_input: emotion``: the emotion
        posterior computed from the embedding, an equalised-odds
        adversary)."""
        if self.hparams.adversary_input == "emotion":
            return self.hparams.log_softmax(self.modules.emo_head(emb))
        return emb

    def _adversary_loss(self, emb, batch):
        """The loss whose gradient at ``emb`` the adversary sends back:
        ℓ_spk (``reverse``: the encoder ascends it), or the cross-entropy
        ℓ_conf of the speaker head's prediction to a uniform guess over
        the speakers that said the utterance's emotion (``confusion``:
        the encoder descends it). The head's parameters are used frozen
        (``reverse``: only the gradient at ``emb`` is taken, by the
        callers; ``confusion``: a frozen copy, no gradient reaches them).

        Why confusion (Tzeng et al. 2015; Alvi et al. 2018): maximising
        ℓ_spk is also won by making speaker A look like speaker B, a
        relabelling that keeps the speaker information, and it has no
        bottom; a uniform prediction is a bounded goal that leaves nothing
        to read. On the shortcut demo neither objective lowered a fresh
        probe's speaker accuracy (recipe README), so ``reverse`` stays
        the default.
        """
        head = unwrap(self.modules.spk_head)
        emo = self._emotions(batch)
        if self.objective == "reverse":  # only ∂/∂emb is taken from it
            return self._speaker_loss(self.speaker_logp(emb, emo, head),
                                      batch, record=False)
        frozen = {n: t.detach() for n, t in head.named_parameters()}
        # Running statistics: copies, so that this pass updates nothing.
        frozen.update({n: t.clone() for n, t in head.named_buffers()})
        x = self._head_input(emb)
        args = (x, emo) if isinstance(head, SpeakerHead) else (x,)
        logits = torch.func.functional_call(head, frozen, args)
        logp = self.hparams.log_softmax(logits).squeeze(1)
        allowed = torch.ones_like(logp)
        weights = getattr(self, "_cell_weight", None)
        if weights is not None and getattr(head, "per_emotion", False):
            # Uniform over the speakers with this emotion in training.
            allowed = (weights.to(logp.device)[:, emo].T > 0).to(logp.dtype)
        uniform = allowed / allowed.sum(-1, keepdim=True).clamp_min(1)
        return -(uniform * logp.float()).sum(-1).mean()

    def evaluate_batch(self, batch, stage):
        """SpeechBrain's evaluation step, except that one bad file never
        loses a finished training: a batch holding an unreadable (empty)
        signal, or one that the encoder rejects, is skipped, logged and
        counted (``skipped_utterances`` in the test metrics)."""
        wavs, lens = batch.sig
        if wavs.shape[-1] == 0 or bool((lens * wavs.shape[-1] < 1).any()):
            return self._skip(batch, stage, "unreadable or empty audio")
        try:
            return super().evaluate_batch(batch, stage)
        except (RuntimeError, ValueError) as err:
            return self._skip(batch, stage, str(err).splitlines()[0][:200])

    def _skip(self, batch, stage, why):
        ids = list(batch.id)
        logger.warning("%s: skipping %s: %s", stage.name.lower(), ids, why)
        self._skipped.extend(ids)
        return torch.zeros(())

    def _add_stat(self, name, value, count):
        """Accumulates on the device: no host sync in the hot path."""
        total, n = self._stats.get(name, (0.0, 0))
        self._stats[name] = (total + value * count, n + count)

    # -- training steps ----------------------------------------------------
    def fit_batch(self, batch):
        """One optimisation step; TAP/SNP alternate emotion and speaker."""
        if self.alternating and self.same_batch:
            loss = super().fit_batch(batch)
            self._speaker_step(batch)
        elif self.speaker_turn:
            loss = self._speaker_step(batch)
        elif self.hparams.adversary == "grl" and self.scale == "relative":
            loss = self._relative_grl_step(batch)
        else:
            loss = super().fit_batch(batch)
        self._train_speaker_head()
        self.schedule.step()
        return loss

    def _remember(self, emb, batch):
        """Keeps the batch's detached embedding, speakers and emotions for
        :meth:`_train_speaker_head`."""
        if self.hparams.spk_head_steps > 0:
            self._latest = (emb.detach(), batch.spk_encoded.data.squeeze(1),
                            self._emotions(batch))

    def _train_speaker_head(self):
        """``spk_head_steps`` extra updates of the speaker head alone, on
        the detached embeddings of the last ``spk_head_memory`` batches.

        An adversary is only as good as its speaker head. Behind a GRL
        (or TAP's ascent) the encoder keeps moving the speaker information
        to where the head does not look yet, so a head taking one step per
        batch sits near chance while a fresh probe still reads the speaker
        from the same embeddings: the head is fooled, the information stays.
        A head that catches up on the recent embeddings every step keeps
        pointing the adversary at the speaker information that is there.
        The encoder, projection and emotion head are untouched.
        """
        steps = self.hparams.spk_head_steps
        latest = getattr(self, "_latest", None)
        if steps <= 0 or latest is None:
            return
        self._latest = None
        memory = self._spk_memory
        memory.append(latest)
        del memory[:-max(1, self.hparams.spk_head_memory)]
        emb, spk, emo = (torch.cat(parts) for parts in zip(*memory))
        head = unwrap(self.modules.spk_head)
        opt = self.optimizers_dict["spk"]
        params = [p for p in head.parameters() if p.requires_grad]
        distributed = torch.distributed.is_available() and (
            torch.distributed.is_initialized())
        with torch.no_grad():
            emb = self._head_input(emb.float())
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = self._speaker_nll(self.speaker_logp_from(head, emb, emo),
                                     spk, emo)
            loss.backward()
            if distributed:  # the same update on every process
                world = torch.distributed.get_world_size()
                for param in params:
                    if param.grad is not None:
                        torch.distributed.all_reduce(param.grad)
                        param.grad /= world
            opt.step()
        opt.zero_grad(set_to_none=True)

    def speaker_logp_from(self, head, x, emotion):
        """Speaker log-probabilities of the speaker head's own input
        ``x`` (no emotion transform), ``[batch, n_speakers]``."""
        if isinstance(unwrap(head), SpeakerHead):
            logits = head(x, emotion)
        else:  # a plain module (older yaml files)
            logits = head(x)
        return self.hparams.log_softmax(logits).squeeze(1)

    def freeze_optimizers(self, optimizers):
        """Speaker turns step the speaker head's optimizer only; TAP/SNP
        emotion turns leave it out (it had no gradient)."""
        if self._speaker_phase:
            return {"spk": optimizers["spk"]}
        if self.alternating:
            return {k: v for k, v in optimizers.items() if k != "spk"}
        return optimizers

    def _relative_grl_step(self, batch):
        """GRL whose reversed gradient is λ·‖g_emo‖ long at the embedding.

        g_emo = ∂ℓ_emo/∂emb and g_spk = ∂ℓ_spk/∂emb are taken through the
        heads only (cheap); one backward pass through the encoder then
        carries g_emo − λ·(‖g_emo‖ / ‖g_spk‖)·g_spk, while the heads
        descend on their own losses as in the baseline.
        """
        should_step = (self.step % self.grad_accumulation_factor) == 0
        self.on_fit_batch_start(batch, should_step)
        with self.no_sync(not should_step):
            with self.training_ctx:
                out = self.compute_forward(batch, sb.Stage.TRAIN)
                loss = self.compute_objectives(out, batch, sb.Stage.TRAIN)
                emb = out["emb"]
                direction = self._adversary_loss(emb, batch)
            g_emo, = torch.autograd.grad(out["emo_loss"], emb,
                                         retain_graph=True)
            g_spk, = torch.autograd.grad(direction, emb, retain_graph=True)
            with torch.no_grad():
                norms = torch.stack([g_emo.float().pow(2).sum(),
                                     g_spk.float().pow(2).sum()])
                if torch.distributed.is_available() and (
                        torch.distributed.is_initialized()):
                    # The global batch's norms, as one process would see.
                    torch.distributed.all_reduce(norms)
                coef = self.schedule.value * norms[0].sqrt() / (
                    norms[1].sqrt() + 1e-12)
                # reverse: ascend ℓ_spk; confusion: descend ℓ_conf.
                sign = -1.0 if self.objective == "reverse" else 1.0
                reverse = (sign * coef * g_spk.float()).to(g_spk.dtype)
                if self.scaler.is_enabled():
                    reverse = reverse * self.scaler._get_scale_async().to(
                        reverse.dtype)
            scaled = self.scaler.scale(loss / self.grad_accumulation_factor)
            self.check_loss_isfinite(scaled)
            torch.autograd.backward(
                [scaled, emb],
                [None, reverse / self.grad_accumulation_factor])
        if should_step:
            self.optimizers_step()
        self.on_fit_batch_end(batch, out, loss, should_step)
        return loss.detach().cpu()

    def _speaker_step(self, batch):
        """Speaker head descends; adversarial parameters ascend."""
        if not self.same_batch:
            self.on_fit_batch_start(batch, True)
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        tap = self.hparams.adversary == "tap"
        with self.training_ctx:
            emb = self.embed(wavs, lens, encoder_grad=tap, batch=batch)
            self._remember(emb, batch)
            if self.objective == "confusion":
                # The head descends ℓ_spk on the detached embedding; the
                # adversarial parameters get −∇ℓ_conf through a frozen
                # copy of the head, so that the "ascent" below descends
                # ℓ_conf. One backward pass (DDP hooks as usual).
                emo = self._emotions(batch)
                spk_loss = self._speaker_loss(self.speaker_logp_from(
                    self.modules.spk_head, self._head_input(emb).detach(),
                    emo), batch)
                total = spk_loss - self._adversary_loss(emb, batch)
            else:
                spk_loss = self._speaker_loss(
                    self.speaker_logp(emb, self._emotions(batch)), batch)
                total = spk_loss
        self.scaler.scale(total).backward()
        groups = [(list(self.modules.projection.parameters()), "heads")]
        if self.hparams.adversary_input == (
                "emotion"):
            groups[0][0].extend(self.modules.emo_head.parameters())
        if tap:
            groups.append((list(self.modules.ssl.parameters()), "ssl"))
        groups = [([p for p in params if p.grad is not None], name)
                  for params, name in groups]
        skipped = self._ascend(groups)
        for params, _ in groups:
            for param in params:
                param.grad = None
        self._speaker_phase = True
        try:
            self.optimizers_step()
        finally:
            self._speaker_phase = False
        if skipped:
            self.ascent_skipped += 1
            if self.scaler.is_enabled():  # fp16: back off as GradScaler does
                self.scaler.update(
                    self.scaler.get_scale() * self.scaler.get_backoff_factor()
                )
        self.zero_grad(set_to_none=True)
        if not self.same_batch:
            self.on_fit_batch_end(batch, None, spk_loss, True)
        return spk_loss.detach()

    def _ascent_sizes(self, groups):
        """Step size per group: ``ascent_step`` (absolute), or
        ``ascent_ratio`` (ramped like λ) times the group's learning rate
        (relative)."""
        if self.scale == "absolute":
            return [self.hparams.ascent_step for _ in groups]
        lam = self.current_lambda
        sizes = []
        for _, name in groups:
            opt = self.optimizers_dict.get(name)
            lr = opt.param_groups[0]["lr"] if opt is not None else 0.0
            sizes.append(lam * lr)
        return sizes

    def _ascend(self, groups):
        """θ ← θ + size·∇ℓ_spk per group, skipped on inf/NaN gradients.

        ``groups`` is a list of ``(params, optimizer name)``. With the
        relative scale each group's gradient is divided by its RMS first,
        so every parameter moves by about λ·lr, as an Adam step does. As
        ``GradScaler`` does for optimizers, the gradients are unscaled
        (fp16) and checked in one fused pass; if any is not finite the
        ascent is skipped and ``True`` is returned (the caller backs the
        fp16 loss scale off). One host sync, as ``GradScaler.step`` has.
        """
        groups = [(params, size) for (params, _), size in
                  zip(groups, self._ascent_sizes(groups)) if params]
        if not groups:
            return False
        with torch.no_grad():
            device = groups[0][0][0].grad.device
            found_inf = torch.zeros(1, device=device)
            inv_scale = torch.ones(1, device=device)
            if self.scaler.is_enabled():  # fp16: the scale stays on device
                inv_scale = self.scaler._get_scale_async().double()
                inv_scale = inv_scale.reciprocal().float().to(device)
            rms = []
            for params, _ in groups:
                grads = [p.grad for p in params]
                torch._amp_foreach_non_finite_check_and_unscale_(
                    grads, found_inf, inv_scale
                )
                if self.scale == "relative":
                    sq = torch.stack([n.float() ** 2 for n in
                                      torch._foreach_norm(grads)]).sum()
                    count = sum(g.numel() for g in grads)
                    rms.append(torch.sqrt(sq / count))
            if found_inf.item():
                logger.warning(
                    "speaker step: non-finite gradients, ascent skipped"
                )
                return True
            rms = [float(r) for r in rms] or [1.0] * len(groups)
            for (params, size), r in zip(groups, rms):
                torch._foreach_add_(params, [p.grad for p in params],
                                    alpha=size / max(r, 1e-20))
        return False

    def init_optimizers(self):
        """Three optimizers: the encoder's and the emotion path's (as
        SpeechBrain's wav2vec2 IEMOCAP recipe has two), and the speaker
        head's own (``spk_opt_class``, by default ``heads_opt_class``),
        so that the speaker head shares no moments, step or clipping with
        the emotion path."""
        heads = [
            p
            for name in ("projection", "emo_head", "vad_head")
            if name in self.modules
            for p in self.modules[name].parameters()
        ]
        spk = list(self.modules.spk_head.parameters())
        ssl = [p for p in self.modules.ssl.parameters() if p.requires_grad]
        spk_class = self.hparams.spk_opt_class or (
            self.hparams.heads_opt_class)
        self.optimizers_dict = {
            "heads": self._optimizer(self.hparams.heads_opt_class, heads),
            "spk": self._optimizer(spk_class, spk),
        }
        if ssl:  # a frozen encoder (freeze: True) has nothing to train
            self.optimizers_dict["ssl"] = self._optimizer(
                self.hparams.ssl_opt_class, ssl
            )
        self.optimizer = self.optimizers_dict["heads"]
        if self.checkpointer is not None:
            for name, opt in self.optimizers_dict.items():
                # Runs saved before the speaker head had its own
                # optimizer still load.
                self.checkpointer.add_recoverable(
                    f"{name}_opt", opt, optional_load=name == "spk")

    def _optimizer(self, opt_class, params):
        """``opt_class(params)``, with the fused CUDA kernel on a GPU.

        Adam and AdamW take ``fused=True`` on CUDA (one kernel for all
        parameters); ``fused_optimizers: False`` turns it off, and an
        optimizer without that option is built as given.
        """
        cuda = str(self.device).startswith("cuda")
        if cuda and self.hparams.fused_optimizers:
            try:
                return opt_class(params, fused=True)
            except (TypeError, RuntimeError):
                pass
        return opt_class(params)

    def on_fit_start(self):
        """Sets the schedule's horizon once the train loader is known."""
        super().on_fit_start()
        # After recovery: forget log lines of epochs about to be redone.
        trim_train_log(self.hparams.train_logger.save_file,
                       self.hparams.epoch_counter.current)
        per_epoch = getattr(self, "_steps_per_epoch", None)
        if per_epoch:
            limit = self.hparams.epoch_counter.limit
            self.schedule.total_steps = limit * per_epoch

    def make_dataloader(self, dataset, stage, *args, **kwargs):
        """Keeps a dynamic batch sampler reachable for ``set_epoch``, and
        the evaluation loaders for the speaker statistics pass."""
        loader = super().make_dataloader(dataset, stage, *args, **kwargs)
        self._loaders[stage] = loader
        if stage == sb.Stage.TRAIN:
            self._check_unlabelled(dataset)
        if stage == sb.Stage.TRAIN and (self.hparams.spk_loss_balance
                                        or self.hparams.emo_loss_balance):
            self._cell_weight = self._balance_weights(dataset)
        if stage == sb.Stage.TRAIN:
            if self.train_sampler is None:
                self.train_sampler = kwargs.get("batch_sampler")
            self._steps_per_epoch = len(loader)
        return loader

    def _check_unlabelled(self, dataset):
        """Clips outside the emotion classes (``keep_all_emotions``, for
        dimensional training) have no emotion: only a dimensional task
        without per-emotion speaker head or cell balancing can use them."""
        known = self.hparams.label_encoder.lab2ind
        other = sorted({e["emo"] for e in dataset.data.values()
                        if e["emo"] not in known})
        if not other:
            return
        head = unwrap(self.modules.spk_head)
        needs = [name for name, on in (
            ("task: dimensional", self.categorical),
            ("adversary_conditional: False",
             getattr(head, "per_emotion", False)),
            ("spk_loss_balance: False", self.hparams.spk_loss_balance),
            ("emo_loss_balance: False", self.hparams.emo_loss_balance),
            ("spk_norm_emotions: 1", self.speaker_norm and getattr(
                unwrap(self.modules.spk_norm), "n_emotions", 1) > 1),
        ) if on]
        if needs:
            raise RecipeError(
                f"the training set holds clips of classes {other} outside "
                f"emotions (keep_all_emotions); set {', '.join(needs)}")

    def _balance_weights(self, dataset):
        """``[n_speakers, n_emotions]`` weights 1/count of each (speaker,
        emotion) cell of the training set, normalised to mean 1 per
        utterance: every speaker counts equally within an emotion."""
        spk_enc = self.hparams.spk_encoder
        emo_enc = self.hparams.label_encoder
        counts = torch.zeros(self.hparams.n_speakers, len(emo_enc))
        for entry in dataset.data.values():
            counts[spk_enc.lab2ind[entry["spk_id"]],
                   emo_enc.lab2ind[entry["emo"]]] += 1
        weights = torch.where(counts > 0, 1.0 / counts.clamp_min(1), 0.0)
        return weights * counts.sum() / (weights * counts).sum()

    # -- stages ------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Resets the statistics of the stage; with :attr:`speaker_norm`,
        computes the evaluated speakers' statistics first."""
        self._stats = {}
        self._preds = {"ids": [], "true": [], "logp": [], "spk": [],
                       "vad": [], "vad_true": []}
        self._skipped = []
        if self.speaker_norm and stage != sb.Stage.TRAIN:
            self._speaker_stats_pass(self._loaders.get(stage), stage)

    @torch.no_grad()
    def _speaker_stats_pass(self, loader, stage=None):
        """Per-speaker statistics of the set about to be evaluated, from
        its own (unlabelled) audio: the transductive step of spknorm."""
        if loader is None:
            raise RuntimeError("speaker_norm: no loader for this stage")
        mods = [self.modules.ssl, self.modules.pooling]
        flags = [m.training for m in mods]
        for m in mods:
            m.eval()
        feats, speakers, emotions = [], [], []
        labelled = (stage == sb.Stage.VALID
                    and self.hparams.spk_norm_valid_balanced)
        try:
            for batch in loader:
                batch = batch.to(self.device)
                wavs, lens = batch.sig
                if wavs.shape[-1] == 0 or bool(
                        (lens * wavs.shape[-1] < 1).any()):
                    continue  # unreadable: skipped by evaluate_batch too
                with self.evaluation_ctx:
                    pooled = self.modules.pooling(
                        self.modules.ssl(wavs, lens), lens)
                feats.append(pooled.reshape(len(wavs), -1).float())
                speakers.extend(batch.spk_id)
                if labelled:
                    emotions.extend(self._emotions(batch).tolist())
        finally:
            for m, flag in zip(mods, flags):
                m.train(flag)
        stats = speaker_stats(torch.cat(feats), speakers,
                              emotions=emotions if labelled else None)
        # A training speaker's statistics are known: keep them (with
        # n_emotions > 1 balanced over emotions, where the evaluated
        # utterances may favour one).
        norm = unwrap(self.modules.spk_norm)
        known = getattr(self.hparams.spk_encoder, "lab2ind", {})
        for spk in stats:
            trained = norm.trained_stats(known[spk]) if spk in known else None
            if trained is not None:
                stats[spk] = trained
        norm.set_eval_stats(stats)

    def _stage_metrics(self):
        """Emotion metrics (categorical), dimensional metrics
        (dimensional), both; and the selection ``score`` for ``both``."""
        metrics = {}
        if self.categorical:
            true = torch.cat(self._preds["true"]).cpu().tolist()
            pred = torch.cat(self._preds["logp"]).argmax(-1).cpu().tolist()
            decode = self.hparams.label_encoder.decode_ndim
            metrics = emotion_metrics(
                decode(true), decode(pred), self.hparams.emotions
            )
        if self.dimensional:
            metrics.update(dimensional_metrics(
                torch.cat(self._preds["vad"]).cpu().numpy(),
                torch.cat(self._preds["vad_true"]).cpu().numpy(),
                self._preds["spk"]))
        if self.categorical and self.dimensional:
            metrics["score"] = round(
                (metrics["UA"] / 100.0 + metrics["CCC_mean"]) / 2.0, 4)
        return metrics

    def _stage_stats(self, stage_loss, metrics):
        """What the log shows of a validation or test pass."""
        stats = {"loss": stage_loss}
        keys = ("WA", "UA", "macro_F1", "score")
        stats.update({k: metrics[k] for k in keys if k in metrics})
        if "CCC_mean" in metrics:  # the selection key CCC: the mean
            stats["CCC"] = metrics["CCC_mean"]
        return stats

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, anneals, checkpoints, and writes the test metrics."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            for name, (total, n) in self._stats.items():
                self.train_stats[name] = float(total) / max(n, 1)
            self.train_stats["lambda"] = self.current_lambda
            return
        metrics = self._stage_metrics()
        if self.dimensional:
            # CCC is a statistic of the whole set, not of a batch (of one
            # clip, at validation batch 1, it is 0): the pass's loss, which
            # NewBob anneals on, is 1 - mean CCC (both: 1 - score).
            stage_loss = 1.0 - metrics[
                "score" if self.categorical else "CCC_mean"]
        stats = self._stage_stats(stage_loss, metrics)
        if stage == sb.Stage.VALID:
            lr_ssl, new_ssl = self.hparams.lr_annealing_ssl(stage_loss)
            lr_heads, new_heads = self.hparams.lr_annealing_heads(stage_loss)
            for name, lr in (("ssl", new_ssl), ("heads", new_heads)):
                if name in self.optimizers_dict:
                    sb.nnet.schedulers.update_learning_rate(
                        self.optimizers_dict[name], lr
                    )
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr_ssl": lr_ssl,
                            "lr_heads": lr_heads},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(
                meta=stats,
                max_keys=[self.selection_key],
                num_to_keep=max(
                    self.hparams.keep_checkpoints,
                    self.hparams.avg_checkpoints or 1,
                ),
            )
            self._write_valid_summary(epoch, stats)
            # Intra-epoch checkpoints (--ckpt_interval_steps) carry no UA:
            # the end-of-epoch one supersedes them, so drop them now.
            self.checkpointer.delete_checkpoints(
                num_to_keep=0,
                ckpt_predicate=lambda c: INTRA_EPOCH_CKPT_FLAG in c.meta,
            )
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
            self._write_test_outputs(metrics, stage_loss)

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Loads the best checkpoint, or averages the ``avg_checkpoints``
        best ones (by validation ``max_key``/``min_key``) into the model."""
        super().on_evaluate_start(max_key=max_key, min_key=min_key)
        self.averaged_checkpoints = 1
        k = self.hparams.avg_checkpoints or 1
        if k <= 1 or self.checkpointer is None:
            return
        ckpts = self.checkpointer.find_checkpoints(
            max_key=max_key, min_key=min_key, max_num_checkpoints=k
        )
        names = ["ssl", "projection", "emo_head", "spk_head"]
        if "vad_head" in self.modules and all(
                "vad_head" in c.paramfiles for c in ckpts):
            names.append("vad_head")
        for name in names:
            avg = sb.utils.checkpoints.average_checkpoints(ckpts, name)
            unwrap(self.modules[name]).load_state_dict(avg, strict=True)
        self.averaged_checkpoints = len(ckpts)
        logger.info("testing the average of %d checkpoints", len(ckpts))

    @main_process_only
    def _write_valid_summary(self, epoch, stats):
        """``valid_summary.json``: the selection metric on validation per
        epoch (``valid_UA``, or ``valid_CCC``/``valid_score`` per
        ``select_on``) and the best (the checkpoint that will be tested).
        Hyperparameter sweeps read this file and never the test
        metrics."""
        key = self.selection_key
        field = f"valid_{key}"
        path = os.path.join(self.hparams.output_folder, "valid_summary.json")
        summary = {field: {}}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fin:
                summary = json.load(fin)
        summary.setdefault(field, {})[str(epoch)] = stats[key]
        summary[field] = {k: v for k, v in summary[field].items()
                          if int(k) <= epoch}  # a resumed run redoes
        best = max(summary[field].items(), key=lambda kv: kv[1])
        summary.update({f"best_{field}": best[1]}, best_epoch=int(best[0]),
                       selected_on=key, epochs_done=epoch,
                       number_of_epochs=self.hparams.epoch_counter.limit)
        write_json_atomic(summary, path)

    def set_test_target(self, folder=None, **info):
        """Where the next ``evaluate`` writes ``test_metrics.json`` and
        ``test_predictions.json`` (None: ``output_folder``), and fields
        recorded with them (e.g. ``test_corpus``)."""
        self._test_folder, self._test_info = folder, info

    @main_process_only
    def _write_test_outputs(self, metrics, stage_loss):
        """Writes ``test_predictions.json`` and ``test_metrics.json``."""
        folder = getattr(self, "_test_folder", None)
        folder = folder or self.hparams.output_folder
        os.makedirs(folder, exist_ok=True)
        logp = torch.cat(self._preds["logp"]).cpu()
        preds = {
            utt: [round(float(v), 6) for v in row]
            for utt, row in zip(self._preds["ids"], logp)
        }
        out = {"labels": list(self.hparams.emotions), "log_probs": preds}
        if self.dimensional:
            vad = torch.cat(self._preds["vad"]).cpu()
            out["vad"] = {utt: [round(float(v), 6) for v in row]
                          for utt, row in zip(self._preds["ids"], vad)}
        write_json_atomic(
            out, os.path.join(folder, "test_predictions.json"))
        metrics = dict(
            metrics,
            task=self.hparams.task,
            selected_on=self.selection_key,
            adversary=self.hparams.adversary,
            loss=float(stage_loss),
            epoch=self.hparams.epoch_counter.current,
            averaged_checkpoints=getattr(self, "averaged_checkpoints", 1),
            skipped_utterances=list(self._skipped),
            class_counts=self.hparams.class_counts,
        )
        metrics.update(getattr(self, "_test_info", {}))
        write_json_atomic(metrics, os.path.join(folder, "test_metrics.json"))
        self.test_metrics = metrics
