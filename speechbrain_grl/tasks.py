"""What is learnt, and how the checkpoint to test is chosen.

:class:`EmotionTask` is built in the yaml with ``!new:`` and handed to the
Brain as the hparam ``emotion_task``: categorical emotion (ℓ_emo),
dimensional emotion (valence, arousal, dominance by 1 − CCC) or both, and
the validation metric that selects checkpoints.
"""

import torch
import torch.nn.functional as F

from speechbrain_grl.methods.base import emotions_of, speakers_of
from speechbrain_grl.nnet.losses import ccc_loss
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["EmotionTask", "SELECT_ON", "TASKS"]

TASKS = ("categorical", "dimensional", "both")
#: Checkpoint selection keys: validation UA, mean validation CCC, or
#: their mean (UA / 100 + CCC) / 2, the default of ``task: both``.
SELECT_ON = ("UA", "CCC", "score")


class EmotionTask:
    """The task loss and the selection of the checkpoint to test.

    Arguments
    ---------
    task : str
        ``categorical`` (the emotion classes), ``dimensional`` (V/A/D in
        [0, 1]) or ``both``.
    dimension_weights : sequence of float
        Weights of valence, arousal and dominance in 1 − CCC.
    regression_weight : float
        ``both``: weight of the V/A/D loss added to ℓ_emo.
    loss_balance : bool
        ℓ_emo balanced over (speaker, emotion) cells in training, so that
        in the weighted training set the speaker tells nothing about the
        emotion.
    select_on : str, optional
        ``UA``, ``CCC`` or ``score``; None: the task's own.
    keep_checkpoints : int
        Checkpoints kept (the best by the selection key).
    avg_checkpoints : int
        Test the average of this many best checkpoints (1: the best).

    Example
    -------
    >>> task = EmotionTask("both")
    >>> task.categorical, task.dimensional, task.selection_key
    (True, True, 'score')
    >>> EmotionTask("dimensional", select_on="UA").selection_key
    'UA'
    """

    def __init__(self, task="categorical", dimension_weights=(1.0, 1.0, 1.0),
                 regression_weight=1.0, loss_balance=False, select_on=None,
                 keep_checkpoints=1, avg_checkpoints=1):
        if task not in TASKS:
            raise RecipeError(f"task: {task!r} is unknown; use one of "
                              f"{', '.join(TASKS)}")
        if select_on is not None and select_on not in SELECT_ON:
            raise RecipeError(
                f"select_on: {select_on!r} is unknown; use "
                f"{', '.join(SELECT_ON)} (or null: the task's own)")
        self.task = task
        self.dimension_weights = dimension_weights
        self.regression_weight = regression_weight
        self.loss_balance = loss_balance
        self.select_on = select_on
        self.keep_checkpoints = int(keep_checkpoints)
        self.avg_checkpoints = int(avg_checkpoints or 1)

    @classmethod
    def from_hparams(cls, hparams):
        """The task of a flat hparams dict (yaml files without
        ``emotion_task``)."""
        get = hparams.get
        return cls(get("task", "categorical"),
                   get("dimension_weights", (1.0, 1.0, 1.0)),
                   get("regression_weight", 1.0),
                   get("emo_loss_balance", False), get("select_on"),
                   get("keep_checkpoints", 1), get("avg_checkpoints", 1))

    @property
    def categorical(self):
        """True when emotion classes are learnt (categorical, both)."""
        return self.task != "dimensional"

    @property
    def dimensional(self):
        """True when V/A/D are learnt (dimensional, both)."""
        return self.task != "categorical"

    @property
    def selection_key(self):
        """The validation metric that selects checkpoints."""
        if self.select_on:
            return self.select_on
        return {"categorical": "UA", "dimensional": "CCC"}.get(
            self.task, "score")

    def loss(self, brain, predictions, batch, train):
        """The task loss: ℓ_emo, 1 − CCC weighted over V/A/D, or ℓ_emo
        plus ``regression_weight`` times that (both); logged in training
        (``brain.add_stat``)."""
        emo = emotions_of(batch)
        loss = torch.zeros((), device=brain.device)
        if self.categorical:
            loss = self.emotion_loss(brain, predictions["emo"], batch, train)
        if self.dimensional:
            vad = batch.vad_target.data.reshape(len(emo), 3)
            reg = ccc_loss(predictions["vad"], vad, self.dimension_weights)
            if train:
                brain.add_stat("vad_loss", reg.detach(), len(emo))
            weight = self.regression_weight if self.categorical else 1.0
            loss = loss + weight * reg
        return loss

    def emotion_loss(self, brain, logp, batch, train):
        """ℓ_emo, balanced over (speaker, emotion) cells in training with
        ``loss_balance`` (``brain.cell_weights``)."""
        emo = emotions_of(batch)
        weights = brain.cell_weights
        if train and weights is not None and self.loss_balance:
            w = weights.to(logp.device)[speakers_of(batch), emo]
            loss = (F.nll_loss(logp, emo, reduction="none") * w).mean()
        else:
            loss = F.nll_loss(logp, emo)
        if train:
            brain.add_stat("emo_loss", loss.detach(), len(emo))
        return loss
