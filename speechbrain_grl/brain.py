"""The Brain: emotion recognition while a method removes the speaker.

SSL encoder → pooling → [normalisation] → projection (the embedding) →
emotion head [+ V/A/D head], plus a speaker head. What happens to the
speaker is the business of one object, the hparam ``speaker_method``
(:mod:`speechbrain_grl.methods`, whose ``base`` documents the interface).
The Brain owns the loop: task loss, optimizers, stages, selection, outputs.
"""

import contextlib
import logging
import os

import speechbrain as sb
import torch
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.utils.distributed import main_process_only

from speechbrain_grl.brain_hparams import (
    BRAIN_HPARAMS,
    REQUIRED,
    complete_hparams,
)
from speechbrain_grl.dataio.audio import clips, readable
from speechbrain_grl.dataio.labels import cell_counts
from speechbrain_grl.evaluation.metrics import logged_metrics, set_metrics
from speechbrain_grl.evaluation.outputs import (
    update_valid_summary,
    write_test_outputs,
)
from speechbrain_grl.methods import ADVERSARIES
from speechbrain_grl.methods.base import emotions_of
from speechbrain_grl.nnet.exact_padding import encode
from speechbrain_grl.nnet.front_end import (
    convolution_kernels,
    front_end_trains,
    lean_front_end,
)
from speechbrain_grl.nnet.losses import cell_weights
from speechbrain_grl.utils.checkpoints import (
    average_best,
    guard_checkpoints,
    trim_train_log,
)
from speechbrain_grl.utils.cuda import expandable_segments
from speechbrain_grl.utils.ddp import unwrap
from speechbrain_grl.utils.hparams_checks import RecipeError
from speechbrain_grl.utils.precision import warn_slow_bf16
from speechbrain_grl.utils.rng import rng_state, set_rng_state
from speechbrain_grl.utils.timing import PhaseTimer

logger = logging.getLogger(__name__)

__all__ = ["SpeakerAdversarialBrain", "ADVERSARIES", "BRAIN_HPARAMS",
           "REQUIRED", "unwrap"]


class SpeakerAdversarialBrain(sb.Brain):
    """Fine-tunes an SSL encoder for emotion while removing the speaker.

    Expected ``modules``: ``ssl``, ``pooling``, ``projection``,
    ``emo_head``, ``spk_head``, and ``vad_head`` (dimensional tasks) and
    ``spk_norm`` (speaker normalisation). Hparams: :data:`BRAIN_HPARAMS`.
    A frozen encoder (the SSL wrapper's ``freeze``) gets no optimizer.
    """

    def __init__(self, modules=None, opt_class=None, hparams=None,
                 run_opts=None, checkpointer=None):
        try:
            hparams, opt_class = complete_hparams(hparams or {}, opt_class)
            super().__init__(modules, opt_class, hparams, run_opts,
                             checkpointer)
        except ValueError as err:  # SpeechBrain's, e.g. fp16 on a CPU
            if isinstance(err, RecipeError):
                raise
            raise RecipeError(str(err).strip().splitlines()[0]) from err
        self.task = self.hparams.emotion_task
        if self.task.dimensional and "vad_head" not in self.modules:
            raise RecipeError(
                f"task: {self.task.task} needs a vad_head module (a Linear "
                "to 3 outputs and a Sigmoid) in modules")
        self.method = self.hparams.speaker_method
        self.method.check(self)
        if str(self.device).startswith("cuda"):
            expandable_segments(self.hparams.expandable_segments)
        for use, precision in (("training", self.precision),
                               ("evaluation", self.eval_precision)):
            if precision == "bf16":  # slow on a CPU without its kernels
                warn_slow_bf16(self.device_type, use)
        self.cell_weights = None  # [n_speakers, n_emotions], see losses
        self.timer = PhaseTimer()  # seconds per stage (train.py adds more)
        self._loaders = {}
        self._eval_rng = None  # random state saved during an evaluation
        # StatisticsPooling adds noise (scale eps) to the mean, even in
        # eval: off, so that evaluations and exported models repeat.
        if hasattr(self.modules.pooling, "eps"):
            self.modules.pooling.eps = 0.0
        # No backward pass for the waveform (nnet/front_end.py).
        lean_front_end(unwrap(self.modules.ssl))
        if self.checkpointer is not None:
            for name, obj in self.method.recoverables().items():
                self.checkpointer.add_recoverable(name, obj)
            if "vad_head" in self.modules:  # runs saved before it load
                self.checkpointer.add_recoverable(
                    "vad_head", self.modules.vad_head, optional_load=True)
            guard_checkpoints(self.checkpointer)  # survive kills mid-save

    @property
    def categorical(self):
        """True when emotion classes are learnt (task categorical, both)."""
        return self.task.categorical

    @property
    def dimensional(self):
        """True when V/A/D are learnt (task dimensional, both)."""
        return self.task.dimensional

    @property
    def selection_key(self):
        """The validation metric that selects checkpoints."""
        return self.task.selection_key

    # -- forward and losses ------------------------------------------------
    def embed(self, wavs, lens, encoder_grad=True, batch=None):
        """Waveforms → utterance embeddings ``[batch, 1, emb_dim]``;
        ``batch`` gives the method its speakers."""
        pooled = None
        if batch is not None and not self.modules.ssl.training:
            pooled = self.method.cached_pooled(batch)
        if pooled is None:
            with torch.set_grad_enabled(
                    encoder_grad and torch.is_grad_enabled()):
                feats, frames = self.encode(wavs, lens)
                pooled = self.modules.pooling(
                    feats, host_lengths(batch, frames))
        pooled = self.method.normalize(self, pooled, batch)
        return self.modules.projection(pooled)

    def encode(self, wavs, lens):
        """Encoder features and their relative lengths: in evaluation,
        each clip of a padded batch as if alone (:func:`encode`), so that
        evaluation batches change no score; training steps run the
        encoder as it is."""
        if self.modules.ssl.training:
            return self.modules.ssl(wavs, lens), lens
        return encode(unwrap(self.modules.ssl), wavs, lens)

    def compute_forward(self, batch, stage):
        """Emotion log-probabilities [V/A/D]; in training, what the
        method adds (speaker log-probabilities)."""
        batch = self.to_device(batch)
        wavs, lens = batch.sig
        if stage == sb.Stage.TRAIN:
            wavs, lens = self.augment(wavs, lens)
        emb = self.embed(wavs, lens, batch=batch)
        out = {"emb": emb, "emo": self.hparams.log_softmax(
            self.modules.emo_head(emb)).squeeze(1)}
        if self.dimensional:
            out["vad"] = self.modules.vad_head(emb).reshape(len(wavs), 3)
        if stage == sb.Stage.TRAIN:
            self.method.on_forward(self, emb, batch, out)
        return out

    def to_device(self, batch):
        """``batch`` on the Brain's device, its clips' relative lengths
        kept on the host too (:func:`remember_host_lengths`): the pooling
        reads each clip's length there, where lengths on a GPU cost one
        device sync per clip (``benchmarks/gpu_syncs.md``)."""
        remember_host_lengths(batch)
        return batch.to(self.device)

    def augment(self, wavs, lens):
        """Training waveforms through the hparam ``wav_augment`` (e.g.
        SpeechBrain's ``Augmenter``), which must keep the batch's clips
        (``concat_original: False``, ``repeat_augment: 1``): labels and
        speakers are not repeated. None, or ``augment_prob: 0``, leaves
        the batch as it is."""
        augmenter = self.hparams.wav_augment
        if augmenter is None or getattr(augmenter, "augment_prob", 1) == 0:
            return wavs, lens
        out, out_lens = augmenter(wavs, lens)
        if len(out) != len(wavs):
            raise RecipeError(
                f"wav_augment turned a batch of {len(wavs)} clips into "
                f"{len(out)}; set concat_original: False and "
                "repeat_augment: 1 in the yaml")
        return out, out_lens

    def compute_objectives(self, predictions, batch, stage):
        """The task's loss (+ α·ℓ_spk of ``predictions["spk"]`` in
        training, kept apart in ``predictions["emo_loss"]``); collects
        the evaluation predictions."""
        train = stage == sb.Stage.TRAIN
        loss = self.task.loss(self, predictions, batch, train)
        predictions["emo_loss"] = loss
        if train:
            if "spk" in predictions:
                loss = loss + self.method.alpha * self.method.speaker_loss(
                    self, predictions["spk"], batch)
            return loss
        self._preds["ids"].extend(batch.id)
        self._preds["true"].append(emotions_of(batch).detach())
        self._preds["logp"].append(predictions["emo"].detach())
        self._preds["spk"].extend(batch.spk_id)
        if self.dimensional:
            self._preds["vad"].append(predictions["vad"].detach().float())
            self._preds["vad_true"].append(
                batch.vad_target.data.reshape(-1, 3).detach().float())
        return loss

    def add_stat(self, name, value, count):
        """Accumulates a training statistic on the device (no host sync
        in the hot path); logged as the epoch's mean."""
        total, n = self._stats.get(name, (0.0, 0))
        self._stats[name] = (total + value * count, n + count)

    def evaluate_batch(self, batch, stage):
        """SpeechBrain's evaluation step, except that one bad file never
        loses a finished training: a batch with an unreadable (empty)
        signal, or one the encoder rejects, is skipped, logged and
        counted (``skipped_utterances`` in the test metrics)."""
        wavs, lens = batch.sig
        empty = not bool(readable(wavs, lens).all())
        if empty and len(batch) == 1:
            return self._skip(batch, stage, "unreadable or empty audio")
        if not empty:
            try:
                return super().evaluate_batch(batch, stage)
            except (RuntimeError, ValueError) as err:
                if len(batch) == 1:
                    return self._skip(batch, stage,
                                      str(err).splitlines()[0][:200])
        # A batch with a bad clip: each clip alone, so only it is lost.
        losses = [self.evaluate_batch(one, stage) for one in clips(batch)]
        return torch.stack(losses).mean()

    def _skip(self, batch, stage, why):
        logger.warning("%s: skipping %s: %s", stage.name.lower(), batch.id,
                       why)
        self._skipped.extend(batch.id)
        return torch.zeros(())

    # -- training steps ----------------------------------------------------
    def fit_batch(self, batch):
        """The method's training step, then its after-step work.

        An fp32 step of a Hugging Face encoder on the CPU whose front end
        trains runs PyTorch's own convolution kernels, neither oneDNN's
        nor NNPACK's: the front end's backward pass is faster. For the
        demo's encoder a training step takes 0.80× the time of PyTorch's
        defaults at 8 clips; from 16 clips a batch, where PyTorch picks
        NNPACK, 0.74×, and 0.45× that of NNPACK alone (oneDNN off, the
        Brain's setting before). wav2vec2 Base, whose yamls freeze it:
        1.00× at 2 clips (``benchmarks/conv_backend.md``). With the front
        end frozen (no backward pass there), PyTorch's defaults are
        faster and stay (frozen steps 1.08× slower without them);
        evaluation keeps them too (Base 1.30× slower without)."""
        with self._training_kernels():
            loss = self.method.fit_batch(self, batch)
        self.method.after_step(self)
        return loss

    def _training_kernels(self):
        """The context of a training step's kernels (see fit_batch)."""
        ssl = unwrap(self.modules.ssl)
        if (self.device_type == "cpu" and self.precision == "fp32"
                and front_end_trains(ssl)):
            return convolution_kernels(onednn=False, nnpack=False)
        return contextlib.nullcontext()

    def standard_fit_batch(self, batch):
        """SpeechBrain's own training step."""
        return super().fit_batch(batch)

    def freeze_optimizers(self, optimizers):
        """The optimizers the method's step in progress may update."""
        return self.method.optimizers(self, optimizers)

    def init_optimizers(self):
        """The encoder's and the emotion path's optimizers (as in
        SpeechBrain's wav2vec2 IEMOCAP recipe), and the speaker head's own
        (``opt_class``: ``ssl``, ``heads``, ``spk``)."""
        heads = [p for name in ("projection", "emo_head", "vad_head")
                 if name in self.modules
                 for p in self.modules[name].parameters()]
        ssl = [p for p in self.modules.ssl.parameters() if p.requires_grad]
        self.optimizers_dict = {
            "heads": self._optimizer(self.opt_class["heads"], heads),
            "spk": self._optimizer(self.opt_class["spk"],
                                   self.modules.spk_head.parameters()),
        }
        if ssl:  # a frozen encoder (freeze: True) has nothing to train
            self.optimizers_dict["ssl"] = self._optimizer(
                self.opt_class["ssl"], ssl)
        self.optimizer = self.optimizers_dict["heads"]
        if self.checkpointer is not None:
            for name, opt in self.optimizers_dict.items():
                # Runs saved before spk had an optimizer still load.
                self.checkpointer.add_recoverable(
                    f"{name}_opt", opt, optional_load=name == "spk")

    def _optimizer(self, opt_class, params):
        """``opt_class(params)``, with Adam's fused kernel unless
        ``fused_optimizers: False`` (or the optimizer or the device has
        none). On the CPU a step of the demo's optimizers takes 0.25x
        the time of torch's default loop over the tensors, on the tiny
        encoder and on a base-sized one; ``foreach`` gives the loop's
        numbers, 0.64x as long on the tiny encoder but 2.1x on the base
        one (``benchmarks/optimizer.md``). Fused rounds differently from
        the loop; the demo's test UA is the same over seeds
        (``benchmarks/train_kernels_adam.md``)."""
        params = list(params)
        if self.hparams.fused_optimizers:
            try:
                return opt_class(params, fused=True)
            except (TypeError, RuntimeError):
                pass
        return opt_class(params)

    def on_fit_start(self):
        """Forgets log lines of epochs about to be redone (after a
        recovery) and tells the method the planned number of steps."""
        super().on_fit_start()
        trim_train_log(self.hparams.train_logger.save_file,
                       self.hparams.epoch_counter.current)
        per_epoch = getattr(self, "_steps_per_epoch", None)
        if per_epoch:
            self.method.on_fit_start(
                self, self.hparams.epoch_counter.limit * per_epoch)

    def make_dataloader(self, dataset, stage, *args, **kwargs):
        """Keeps the loaders (the method's evaluation passes read them),
        the dynamic batch sampler (``set_epoch``) and, for training, the
        (speaker, emotion) cell weights."""
        loader = super().make_dataloader(dataset, stage, *args, **kwargs)
        self._loaders[stage] = loader
        if stage == sb.Stage.TRAIN:
            self._check_unlabelled(dataset)
            if self.task.loss_balance or getattr(
                    self.method, "loss_balance", False):
                self.cell_weights = cell_weights(cell_counts(
                    dataset.data.values(), self.hparams.spk_encoder,
                    self.hparams.label_encoder, self.hparams.n_speakers))
            if self.train_sampler is None:
                self.train_sampler = kwargs.get("batch_sampler")
            self._steps_per_epoch = len(loader)
        return loader

    def _check_unlabelled(self, dataset):
        """Clips outside the emotion classes (``keep_all_emotions``) have
        no class: only settings that never read it can use them."""
        known = self.hparams.label_encoder.lab2ind
        other = sorted({e["emo"] for e in dataset.data.values()
                        if e["emo"] not in known})
        if not other:
            return
        needs = (["task: dimensional"] if self.categorical else []) + (
            self.method.needs_emotion_classes(self)) + (
            ["emo_loss_balance: False"] if self.task.loss_balance
            else [])
        if needs:
            raise RecipeError(
                f"the training set holds clips of classes {other} outside "
                f"emotions (keep_all_emotions); set {', '.join(needs)}")

    # -- stages ------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Resets the stage's statistics; before an evaluation, the
        method prepares (speaker statistics)."""
        self.timer.start(stage.name.lower())
        self._stats = {}
        self._preds = {"ids": [], "true": [], "logp": [], "spk": [],
                       "vad": [], "vad_true": []}
        self._skipped = []
        if stage != sb.Stage.TRAIN:
            # Evaluation draws no number that training sees: the random
            # state is put back at the stage's end (pooling draws noise
            # even in eval mode, and passes differ between methods).
            self._eval_rng = rng_state()
            self.method.on_evaluate(self, stage, self._loaders.get(stage))

    def stage_metrics(self):
        """The metrics of the evaluation pass just run."""
        return set_metrics(self._preds, self.task.task,
                           self.hparams.emotions,
                           self.hparams.label_encoder.decode_ndim)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, anneals, checkpoints, and writes the test outputs."""
        self.timer.stop(stage.name.lower())
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            for name, (total, n) in self._stats.items():
                self.train_stats[name] = float(total) / max(n, 1)
            self.train_stats["lambda"] = self.method.strength(self)
            return
        set_rng_state(self._eval_rng)
        self._eval_rng = None
        metrics = self.stage_metrics()
        if self.dimensional:
            # CCC is a statistic of the whole set (of one clip it is 0):
            # the pass's loss, which NewBob anneals on, is 1 - mean CCC.
            stage_loss = 1.0 - metrics[
                "score" if self.categorical else "CCC_mean"]
        elif self._preds["logp"]:
            # The mean over clips, however the pass was batched (a mean
            # of batch means weighs a short last batch more).
            stage_loss = float(torch.nn.functional.nll_loss(
                torch.cat(self._preds["logp"]).float(),
                torch.cat(self._preds["true"])))
        stats = dict(logged_metrics(metrics), loss=stage_loss)
        if stage == sb.Stage.VALID:
            self._on_valid_end(epoch, stage_loss, stats)
        else:
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats)
            self._write_test_outputs(metrics, stage_loss)

    def _on_valid_end(self, epoch, stage_loss, stats):
        """Anneals both learning rates, logs, keeps the best checkpoints
        by the selection key and updates ``valid_summary.json``."""
        lr_ssl, new_ssl = self.hparams.lr_annealing_ssl(stage_loss)
        lr_heads, new_heads = self.hparams.lr_annealing_heads(stage_loss)
        for name, lr in (("ssl", new_ssl), ("heads", new_heads)):
            if name in self.optimizers_dict:
                sb.nnet.schedulers.update_learning_rate(
                    self.optimizers_dict[name], lr)
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": epoch, "lr_ssl": lr_ssl,
                        "lr_heads": lr_heads},
            train_stats=self.train_stats, valid_stats=stats)
        # A fresh importance_keys list: SpeechBrain appends its recency key
        # to the argument's default list, which then grows by one key a
        # call, and every key re-reads each checkpoint's meta file.
        self.checkpointer.save_and_keep_only(
            meta=stats, max_keys=[self.selection_key], importance_keys=[],
            num_to_keep=max(self.task.keep_checkpoints,
                            self.task.avg_checkpoints))
        update_valid_summary(  # what sweeps read (never the test)
            os.path.join(self.hparams.output_folder, "valid_summary.json"),
            self.selection_key, epoch, stats[self.selection_key],
            self.hparams.epoch_counter.limit)
        # Intra-epoch checkpoints (--ckpt_interval_steps) carry no UA:
        # the end-of-epoch one supersedes them.
        self.checkpointer.delete_checkpoints(
            num_to_keep=0,
            ckpt_predicate=lambda c: INTRA_EPOCH_CKPT_FLAG in c.meta)

    def on_evaluate_start(self, max_key=None, min_key=None):
        """Loads the best checkpoint, or the average of the
        ``avg_checkpoints`` best ones (by validation)."""
        super().on_evaluate_start(max_key=max_key, min_key=min_key)
        self.averaged_checkpoints = 1
        k = self.task.avg_checkpoints
        if k > 1 and self.checkpointer is not None:
            names = ["ssl", "projection", "emo_head", "spk_head"] + (
                ["vad_head"] if "vad_head" in self.modules else [])
            self.averaged_checkpoints = average_best(
                self.checkpointer, self.modules, names, k, max_key, min_key)

    def set_test_target(self, folder=None, **info):
        """Where the next ``evaluate`` writes its outputs (None:
        ``output_folder``), and fields recorded with them."""
        self._test_folder, self._test_info = folder, info

    @main_process_only
    def _write_test_outputs(self, metrics, stage_loss):
        """``test_predictions.json`` and ``test_metrics.json``."""
        folder = getattr(self, "_test_folder", None)
        metrics = dict(
            metrics, task=self.task.task, selected_on=self.selection_key,
            adversary=self.hparams.adversary, loss=float(stage_loss),
            epoch=self.hparams.epoch_counter.current,
            averaged_checkpoints=getattr(self, "averaged_checkpoints", 1),
            skipped_utterances=list(self._skipped),
            class_counts=self.hparams.class_counts)
        metrics.update(getattr(self, "_test_info", {}))
        vad = torch.cat(self._preds["vad"]).cpu() if self.dimensional else None
        write_test_outputs(folder or self.hparams.output_folder,
                           self.hparams.emotions, self._preds["ids"],
                           torch.cat(self._preds["logp"]).cpu(), metrics,
                           vad=vad)
        self.test_metrics = metrics


def remember_host_lengths(batch):
    """Keeps the relative lengths of ``batch.sig`` as ``batch.host_lens``
    while they are on the host, before the batch moves to a device; a
    batch moved already keeps the copy it has (example:
    :func:`host_lengths`)."""
    sig = getattr(batch, "sig", None)
    if sig is not None and sig.lengths.device.type == "cpu":
        batch.host_lens = sig.lengths


def host_lengths(batch, lens):
    """``lens`` read from the host: the copy :func:`remember_host_lengths`
    kept when ``lens`` are the batch's own (neither augmented nor
    recomputed), else ``lens`` as they are.

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch([{"id": "a", "sig": torch.ones(4)},
    ...                      {"id": "b", "sig": torch.ones(2)}])
    >>> remember_host_lengths(batch)
    >>> moved = batch.to("meta")  # as to a GPU: the lengths leave the host
    >>> remember_host_lengths(moved)  # moved already: the copy stays
    >>> moved.sig.lengths.device.type, moved.host_lens.tolist()
    ('meta', [1.0, 0.5])
    >>> host_lengths(moved, moved.sig.lengths) is moved.host_lens
    True
    >>> other = torch.ones(2, device="meta")  # e.g. after augmentation
    >>> host_lengths(moved, other) is other
    True
    """
    sig = getattr(batch, "sig", None)
    if sig is not None and lens is sig.lengths:
        return getattr(batch, "host_lens", lens)
    return lens
