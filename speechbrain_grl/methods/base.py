"""The interface between the Brain and a way of removing the speaker.

A *method* is one small object, built in the yaml with ``!new:`` and
handed to :class:`~speechbrain_grl.brain.SpeakerAdversarialBrain` as the
hparam ``speaker_method``, the way SpeechBrain hands over ``lr_annealing``.
The Brain owns the loop (optimizers, stages, selection, logging); the
method owns everything it does to the speaker. The Brain calls, in order:

========================  ==================================================
``check(brain)``          Once, at construction: refuse settings that do not
                          fit the Brain (a :class:`RecipeError`).
``recoverables()``        Once: ``{name: object}`` the Checkpointer keeps
                          for the method (e.g. the λ schedule).
``on_fit_start(brain,     Once per ``fit``: the number of training steps
total_steps)``            planned (λ ramps over them).
``normalize(brain,        In every forward: the pooled encoder features
pooled, batch)``          ``[batch, 1, dim]``, returned as the projection
                          should read them (identity but for speaker
                          normalisation).
``on_forward(brain, emb,  In a training forward: the utterance embedding
batch, out)``             (in the graph); may add ``out["spk"]``, speaker
                          log-probabilities that the Brain's objective
                          then weighs by ``alpha``.
``fit_batch(brain,        One training step on one batch; returns the
batch)``                  loss. The default is SpeechBrain's own step.
``optimizers(brain,       Which of the Brain's optimizers the step in
optimizers)``             progress may update (SpeechBrain's
                          ``freeze_optimizers``).
``after_step(brain)``     After every training step (extra speaker-head
                          updates, the λ schedule).
``on_evaluate(brain,      Before a validation or test pass, with its
stage, loader)``          loader (speaker statistics).
``cached_pooled(batch)``  In an evaluation forward: the batch's pooled
                          features if ``on_evaluate`` already computed
                          them, else None (the encoder runs).
``strength(brain)``       The adversary's strength now (logged).
========================  ==================================================

What a method sees of a batch: ``batch.sig``, ``batch.spk_encoded``
(training speakers, indices), ``batch.spk_id`` (names, any set) and
``batch.emo_encoded``. Of the Brain it uses ``modules`` (``ssl``,
``pooling``, ``projection``, ``emo_head``, ``spk_head``, ``spk_norm``),
``optimizers_dict`` (``ssl``, ``heads``, ``spk``), ``embed``,
``standard_fit_batch``, ``cell_weights`` and ``add_stat``, and
SpeechBrain's step machinery (``scaler``, ``training_ctx``, ``no_sync``,
``optimizers_step``).

This base class is also the baseline's speaker head: the losses, the
head's input, the confusion objective and the extra head steps that every
adversary shares.
"""

import torch
import torch.nn.functional as F

from speechbrain_grl.nnet.speaker_head import SpeakerHead
from speechbrain_grl.utils.ddp import average_gradients, unwrap
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["SpeakerMethod", "emotions_of", "speakers_of"]

OBJECTIVES = ("reverse", "confusion")
HEAD_INPUTS = ("embedding", "emotion")


def emotions_of(batch):
    """The batch's emotion indices ``[batch]``."""
    return batch.emo_encoded.data.squeeze(1)


def speakers_of(batch):
    """The batch's training-speaker indices ``[batch]``."""
    return batch.spk_encoded.data.squeeze(1)


class SpeakerMethod:
    """Base class of the methods: a speaker head that is only monitored.

    Arguments
    ---------
    alpha : float
        Weight of the speaker loss in the step's objective.
    loss_balance : bool
        Every speaker weighs the same within each emotion in ℓ_spk.
    head_steps : int
        Extra updates of the speaker head alone per training step, on the
        detached embeddings of the last ``head_memory`` batches.
    head_memory : int
        Batches those extra updates read.
    objective : str
        What an adversary pushes the encoder to do to the speaker head:
        ``reverse`` (raise its loss) or ``confusion`` (make its prediction
        uniform over the speakers of the emotion).
    head_input : str
        What the speaker head reads: the ``embedding`` or the ``emotion``
        log-probabilities computed from it.

    Example
    -------
    >>> method = SpeakerMethod(head_steps=2)
    >>> method.strength(None), method.recoverables()
    (0, {})
    """

    #: The name of ``--adversary`` that selects the method.
    name = "none"
    #: Alternating methods take steps of their own (no gradient
    #: accumulation).
    alternating = False
    #: True when the pooled features are standardised per speaker (the
    #: probe and export then do the same).
    normalizes = False

    def __init__(self, alpha=1.0, loss_balance=False, head_steps=0,
                 head_memory=1, objective="reverse",
                 head_input="embedding"):
        if objective not in OBJECTIVES:
            raise RecipeError(
                f"adversary_objective: {objective!r} is unknown; use one "
                f"of {', '.join(OBJECTIVES)}")
        if head_input not in HEAD_INPUTS:
            raise RecipeError(
                f"adversary_input: {head_input!r} is unknown; use one of "
                f"{', '.join(HEAD_INPUTS)}")
        self.alpha = alpha
        self.loss_balance = loss_balance
        self.head_steps = int(head_steps)
        self.head_memory = int(head_memory)
        self.objective = objective
        self.head_input = head_input
        self._memory = []  # recent (embedding, speaker, emotion)
        self._latest = None

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

    # -- the interface -----------------------------------------------------
    def check(self, brain):
        """Refuses settings that do not fit ``brain`` (none here)."""

    def recoverables(self):
        """What the Checkpointer keeps for the method: nothing here."""
        return {}

    def on_fit_start(self, brain, total_steps):
        """Told the planned number of training steps (unused here)."""

    def normalize(self, brain, pooled, batch):
        """The pooled features, unchanged."""
        return pooled

    def speaker_input(self, emb):
        """What the speaker head reads in a training forward: the detached
        embedding (monitored, no gradient to the encoder)."""
        return emb.detach()

    def on_forward(self, brain, emb, batch, out):
        """Remembers the embedding for the extra head steps and adds the
        speaker log-probabilities of :meth:`speaker_input`."""
        self.remember(emb, batch)
        spk_in = self.speaker_input(emb)
        if spk_in is not None:
            out["spk"] = self.speaker_logp(brain, spk_in, emotions_of(batch))

    def fit_batch(self, brain, batch):
        """SpeechBrain's training step."""
        return brain.standard_fit_batch(batch)

    def optimizers(self, brain, optimizers):
        """Every optimizer steps."""
        return optimizers

    def after_step(self, brain):
        """The extra speaker-head updates."""
        self.train_speaker_head(brain)

    def on_evaluate(self, brain, stage, loader):
        """Nothing to prepare before an evaluation pass."""

    def cached_pooled(self, batch):
        """The pooled features of an evaluation ``batch`` that
        :meth:`on_evaluate` already computed, or None (none kept here)."""
        return None

    def strength(self, brain):
        """No adversary: 0."""
        return 0

    def needs_emotion_classes(self, brain):
        """The settings that read every training clip's emotion class."""
        head = unwrap(brain.modules.spk_head)
        return [name for name, on in (
            ("adversary_conditional: False",
             getattr(head, "per_emotion", False)),
            ("spk_loss_balance: False", self.loss_balance)) if on]

    # -- the speaker head --------------------------------------------------
    def head_features(self, brain, emb):
        """What the speaker head reads of ``emb``: the embedding, or the
        emotion log-probabilities computed from it (an equalised-odds
        adversary)."""
        if self.head_input == "emotion":
            return brain.hparams.log_softmax(brain.modules.emo_head(emb))
        return emb

    def logp_from(self, brain, head, x, emotion):
        """Speaker log-probabilities ``[batch, n_speakers]`` of the head's
        own input ``x``; a per-emotion head picks the classifier of
        ``emotion``."""
        if isinstance(unwrap(head), SpeakerHead):
            logits = head(x, emotion)
        else:  # a plain module (older yaml files)
            logits = head(x)
        return brain.hparams.log_softmax(logits).squeeze(1)

    def speaker_logp(self, brain, emb, emotion, head=None):
        """Speaker log-probabilities of the embedding ``emb``; ``head``
        overrides the Brain's (the unwrapped one, outside DDP)."""
        head = head if head is not None else brain.modules.spk_head
        return self.logp_from(brain, head, self.head_features(brain, emb),
                              emotion)

    def speaker_nll(self, brain, logp, spk, emo):
        """ℓ_spk; with ``loss_balance``, every speaker weighs the same
        within each emotion."""
        weights = brain.cell_weights
        if weights is not None and self.loss_balance:
            # Weights have mean 1 over the training set, so a plain mean
            # is unbiased, and DDP's average of the processes' means is
            # the global batch's (a per-batch weight sum would not be).
            w = weights.to(logp.device)[spk, emo]
            return (F.nll_loss(logp, spk, reduction="none") * w).mean()
        return F.nll_loss(logp, spk)

    def speaker_loss(self, brain, logp, batch, record=True):
        """ℓ_spk of the batch, logged (loss and accuracy) with ``record``."""
        spk = speakers_of(batch)
        loss = self.speaker_nll(brain, logp, spk, emotions_of(batch))
        if record:
            brain.add_stat("spk_loss", loss.detach(), len(spk))
            correct = (logp.detach().argmax(-1) == spk).float().mean()
            brain.add_stat("spk_acc", correct, len(spk))
        return loss

    def adversary_loss(self, brain, emb, batch):
        """The loss whose gradient at ``emb`` an adversary sends back.

        ``reverse``: ℓ_spk (the encoder ascends it; only ∂/∂emb is taken).
        ``confusion``: the cross-entropy of the head's prediction to a
        uniform guess over the speakers that said the utterance's emotion
        (the encoder descends it), through a frozen copy of the head.
        Maximising ℓ_spk is also won by making speaker A look like
        speaker B, a relabelling that keeps the information; a uniform
        prediction is a bounded goal (Tzeng et al. 2015; Alvi et al. 2018).
        """
        head = unwrap(brain.modules.spk_head)
        emo = emotions_of(batch)
        if self.objective == "reverse":
            return self.speaker_loss(
                brain, self.speaker_logp(brain, emb, emo, head), batch,
                record=False)
        frozen = {n: t.detach() for n, t in head.named_parameters()}
        # Running statistics: copies, so that this pass updates nothing.
        frozen.update({n: t.clone() for n, t in head.named_buffers()})
        x = self.head_features(brain, emb)
        args = (x, emo) if isinstance(head, SpeakerHead) else (x,)
        logits = torch.func.functional_call(head, frozen, args)
        logp = brain.hparams.log_softmax(logits).squeeze(1)
        allowed = torch.ones_like(logp)
        weights = brain.cell_weights
        if weights is not None and getattr(head, "per_emotion", False):
            # Uniform over the speakers with this emotion in training.
            allowed = (weights.to(logp.device)[:, emo].T > 0).to(logp.dtype)
        uniform = allowed / allowed.sum(-1, keepdim=True).clamp_min(1)
        return -(uniform * logp.float()).sum(-1).mean()

    def remember(self, emb, batch):
        """Keeps the batch's detached embedding, speakers and emotions for
        :meth:`train_speaker_head`."""
        if self.head_steps > 0:
            self._latest = (emb.detach(), speakers_of(batch),
                            emotions_of(batch))

    def train_speaker_head(self, brain):
        """``head_steps`` updates of the speaker head alone, on the
        detached embeddings of the last ``head_memory`` batches.

        An adversary is only as good as its speaker head: behind a GRL the
        encoder keeps moving the speaker information to where the head
        does not look yet, so a head taking one step per batch sits near
        chance while a fresh probe still reads the speaker. The encoder,
        projection and emotion head are untouched.
        """
        latest, self._latest = self._latest, None
        if self.head_steps <= 0 or latest is None:
            return
        self._memory.append(latest)
        del self._memory[:-max(1, self.head_memory)]
        emb, spk, emo = (torch.cat(parts) for parts in zip(*self._memory))
        head = unwrap(brain.modules.spk_head)
        opt = brain.optimizers_dict["spk"]
        params = [p for p in head.parameters() if p.requires_grad]
        with torch.no_grad():
            emb = self.head_features(brain, emb.float())
        for _ in range(self.head_steps):
            opt.zero_grad(set_to_none=True)
            loss = self.speaker_nll(
                brain, self.logp_from(brain, head, emb, emo), spk, emo)
            loss.backward()
            average_gradients(params)  # the same update on every process
            opt.step()
        opt.zero_grad(set_to_none=True)
