"""The speaker-adversarial Brain: emotion recognition that forgets speakers.

SSL encoder → masked mean pooling → projection (the utterance embedding)
→ emotion head, plus a speaker head over the training speakers. The hparam
``adversary`` picks how the speaker head talks back to the encoder:

- ``none``: the baseline. The speaker head trains on a detached embedding,
  so it is monitored but sends no gradient to the encoder.
- ``grl``: joint loss ℓ_emo + α·ℓ_spk with a gradient reversal layer in
  front of the speaker head (Ganin et al.).
- ``tap`` / ``snp``: the alternating scheme of Gat et al. (ICASSP 2022).
  Odd steps are emotion steps (descent on everything); even steps are
  speaker steps on another batch: the speaker head descends while the
  adversarial parameters take a plain gradient *ascent* step of size λ
  (hparam ``ascent_step``, 1e-3 in the paper) on ℓ_spk. TAP ascends the
  whole encoder and the projection; SNP ascends the projection only (the
  encoder then runs without gradient).
"""

import logging
import os

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.core import INTRA_EPOCH_CKPT_FLAG
from speechbrain.utils.distributed import main_process_only

from speechbrain_grl.grl import GradientReversal
from speechbrain_grl.jsonio import write_json_atomic
from speechbrain_grl.metrics import emotion_metrics
from speechbrain_grl.resume import guard_checkpoints, trim_train_log

logger = logging.getLogger(__name__)

__all__ = ["SpeakerAdversarialBrain", "ADVERSARIES", "unwrap"]

ADVERSARIES = ("none", "grl", "tap", "snp")


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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hparams.adversary not in ADVERSARIES:
            raise ValueError(
                f"adversary: {self.hparams.adversary!r} is unknown; use "
                f"one of {', '.join(ADVERSARIES)}"
            )
        if self.alternating and self.grad_accumulation_factor > 1:
            raise ValueError(
                f"adversary: {self.hparams.adversary} alternates steps and "
                "does not support grad_accumulation_factor > 1"
            )
        if str(self.device).startswith("cuda"):
            _expandable_segments(
                getattr(self.hparams, "expandable_segments", True))
        self.grl = GradientReversal(self.schedule.value)
        self.ascent_skipped = 0  # speaker steps skipped on inf/NaN
        # SpeechBrain's StatisticsPooling adds random noise (scale eps) to
        # the mean, even in eval: off, so that evaluations are repeatable
        # and exported models reproduce them.
        if hasattr(self.modules.pooling, "eps"):
            self.modules.pooling.eps = 0.0
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable(
                "lambda_schedule", self.schedule
            )
            guard_checkpoints(self.checkpointer)  # survive kills mid-save

    # -- helpers -----------------------------------------------------------
    @property
    def alternating(self):
        """True for the paper's alternating modes (TAP, SNP)."""
        return self.hparams.adversary in ("tap", "snp")

    @property
    def schedule(self):
        """The λ schedule; its step counter is the global step."""
        return self.hparams.lambda_schedule

    @property
    def current_lambda(self):
        """GRL coefficient (grl), ascent step (tap, snp) or 0 (none)."""
        if self.alternating:
            return self.hparams.ascent_step
        return self.schedule.value if self.hparams.adversary == "grl" else 0

    def embed(self, wavs, lens, encoder_grad=True):
        """Waveforms → utterance embeddings ``[batch, 1, emb_dim]``."""
        with torch.set_grad_enabled(
            encoder_grad and torch.is_grad_enabled()
        ):
            feats = self.modules.ssl(wavs, lens)
            pooled = self.modules.pooling(feats, lens)
        return self.modules.projection(pooled)

    def speaker_logp(self, emb):
        """Speaker log-probabilities ``[batch, n_speakers]``."""
        return self.hparams.log_softmax(self.modules.spk_head(emb)).squeeze(1)

    # -- forward and losses ------------------------------------------------
    def compute_forward(self, batch, stage):
        """Emotion log-probabilities and, in training, speaker ones."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        emb = self.embed(wavs, lens)
        out = {
            "emb": emb,
            "emo": self.hparams.log_softmax(
                self.modules.emo_head(emb)
            ).squeeze(1),
        }
        if stage == sb.Stage.TRAIN and not self.alternating:
            # The only difference between the baseline and GRL: a detached
            # embedding (no speaker gradient into the encoder) or a
            # reversed one.
            self.grl.lambda_ = self.schedule.value
            spk_in = self.grl(emb) if self.hparams.adversary == "grl" else (
                emb.detach()
            )
            out["spk"] = self.speaker_logp(spk_in)
        return out

    def compute_objectives(self, predictions, batch, stage):
        """ℓ_emo (+ α·ℓ_spk in none/grl training); collects predictions."""
        emo = batch.emo_encoded.data.squeeze(1)
        loss = F.nll_loss(predictions["emo"], emo)
        if stage == sb.Stage.TRAIN:
            self._add_stat("emo_loss", loss.detach(), len(emo))
            if "spk" in predictions:
                spk_loss = self._speaker_loss(predictions["spk"], batch)
                loss = loss + self.hparams.alpha * spk_loss
            return loss
        self._preds["ids"].extend(batch.id)
        self._preds["true"].append(emo.detach())
        self._preds["logp"].append(predictions["emo"].detach())
        return loss

    def _speaker_loss(self, spk_logp, batch):
        spk = batch.spk_encoded.data.squeeze(1)
        spk_loss = F.nll_loss(spk_logp, spk)
        self._add_stat("spk_loss", spk_loss.detach(), len(spk))
        correct = (spk_logp.detach().argmax(-1) == spk).float().mean()
        self._add_stat("spk_acc", correct, len(spk))
        return spk_loss

    def _add_stat(self, name, value, count):
        """Accumulates on the device: no host sync in the hot path."""
        total, n = self._stats.get(name, (0.0, 0))
        self._stats[name] = (total + value * count, n + count)

    # -- training steps ----------------------------------------------------
    def fit_batch(self, batch):
        """One optimisation step; TAP/SNP alternate emotion and speaker."""
        if not self.alternating or self.schedule.current_step % 2 == 0:
            loss = super().fit_batch(batch)
        else:
            loss = self._speaker_step(batch)
        self.schedule.step()
        return loss

    def freeze_optimizers(self, optimizers):
        """Speaker steps only let the heads' optimizer step."""
        if self.alternating and self.schedule.current_step % 2 == 1:
            return {"heads": optimizers["heads"]}
        return optimizers

    def _speaker_step(self, batch):
        """Speaker head descends; adversarial parameters ascend by λ."""
        self.on_fit_batch_start(batch, True)
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        tap = self.hparams.adversary == "tap"
        with self.training_ctx:
            emb = self.embed(wavs, lens, encoder_grad=tap)
            spk_loss = self._speaker_loss(self.speaker_logp(emb), batch)
        self.scaler.scale(spk_loss).backward()
        adversarial = list(self.modules.projection.parameters())
        if tap:
            adversarial += list(self.modules.ssl.parameters())
        adversarial = [p for p in adversarial if p.grad is not None]
        skipped = self._ascend(adversarial, self.hparams.ascent_step)
        for param in adversarial:
            param.grad = None
        self.optimizers_step()
        if skipped:
            self.ascent_skipped += 1
            if self.scaler.is_enabled():  # fp16: back off as GradScaler does
                self.scaler.update(
                    self.scaler.get_scale() * self.scaler.get_backoff_factor()
                )
        self.zero_grad(set_to_none=True)
        self.on_fit_batch_end(batch, None, spk_loss, True)
        return spk_loss.detach()

    def _ascend(self, params, step):
        """θ ← θ + step·∇ℓ_spk on ``params``; skipped on inf/NaN gradients.

        As ``GradScaler`` does for optimizers: the gradients are unscaled
        (fp16) and checked in one fused pass; if any is not finite the
        ascent is skipped and ``True`` is returned (the caller backs the
        fp16 loss scale off). One host sync, as ``GradScaler.step`` has.
        """
        grads = [p.grad for p in params]
        if not grads:
            return False
        with torch.no_grad():
            device = grads[0].device
            found_inf = torch.zeros(1, device=device)
            inv_scale = torch.ones(1, device=device)
            if self.scaler.is_enabled():  # fp16: the scale stays on device
                inv_scale = self.scaler._get_scale_async().double()
                inv_scale = inv_scale.reciprocal().float().to(device)
            torch._amp_foreach_non_finite_check_and_unscale_(
                grads, found_inf, inv_scale
            )
            if found_inf.item():
                logger.warning(
                    "speaker step: non-finite gradients, ascent skipped"
                )
                return True
            torch._foreach_add_(params, grads, alpha=step)
        return False

    def init_optimizers(self):
        """Two optimizers, as SpeechBrain's wav2vec2 IEMOCAP recipe has."""
        heads = [
            p
            for name in ("projection", "emo_head", "spk_head")
            for p in self.modules[name].parameters()
        ]
        ssl = [p for p in self.modules.ssl.parameters() if p.requires_grad]
        self.optimizers_dict = {
            "heads": self._optimizer(self.hparams.heads_opt_class, heads)
        }
        if ssl:  # a frozen encoder (freeze: True) has nothing to train
            self.optimizers_dict["ssl"] = self._optimizer(
                self.hparams.ssl_opt_class, ssl
            )
        self.optimizer = self.optimizers_dict["heads"]
        if self.checkpointer is not None:
            for name, opt in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(f"{name}_opt", opt)

    def _optimizer(self, opt_class, params):
        """``opt_class(params)``, with the fused CUDA kernel on a GPU.

        Adam and AdamW take ``fused=True`` on CUDA (one kernel for all
        parameters); ``fused_optimizers: False`` turns it off, and an
        optimizer without that option is built as given.
        """
        if str(self.device).startswith("cuda") and getattr(
            self.hparams, "fused_optimizers", True
        ):
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
        """Keeps a dynamic batch sampler reachable for ``set_epoch``."""
        loader = super().make_dataloader(dataset, stage, *args, **kwargs)
        if stage == sb.Stage.TRAIN:
            if self.train_sampler is None:
                self.train_sampler = kwargs.get("batch_sampler")
            self._steps_per_epoch = len(loader)
        return loader

    # -- stages ------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        """Resets the statistics of the stage."""
        self._stats = {}
        self._preds = {"ids": [], "true": [], "logp": []}

    def _stage_metrics(self):
        true = torch.cat(self._preds["true"]).cpu().tolist()
        pred = torch.cat(self._preds["logp"]).argmax(-1).cpu().tolist()
        decode = self.hparams.label_encoder.decode_ndim
        return emotion_metrics(
            decode(true), decode(pred), self.hparams.emotions
        )

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, anneals, checkpoints, and writes the test metrics."""
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss}
            for name, (total, n) in self._stats.items():
                self.train_stats[name] = float(total) / max(n, 1)
            self.train_stats["lambda"] = self.current_lambda
            return
        metrics = self._stage_metrics()
        stats = {"loss": stage_loss, "WA": metrics["WA"],
                 "UA": metrics["UA"], "macro_F1": metrics["macro_F1"]}
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
                max_keys=["UA"],
                num_to_keep=max(
                    getattr(self.hparams, "keep_checkpoints", 1),
                    getattr(self.hparams, "avg_checkpoints", 1) or 1,
                ),
            )
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
        k = getattr(self.hparams, "avg_checkpoints", 1) or 1
        if k <= 1 or self.checkpointer is None:
            return
        ckpts = self.checkpointer.find_checkpoints(
            max_key=max_key, min_key=min_key, max_num_checkpoints=k
        )
        for name in ("ssl", "projection", "emo_head", "spk_head"):
            avg = sb.utils.checkpoints.average_checkpoints(ckpts, name)
            unwrap(self.modules[name]).load_state_dict(avg, strict=True)
        self.averaged_checkpoints = len(ckpts)
        logger.info("testing the average of %d checkpoints", len(ckpts))

    @main_process_only
    def _write_test_outputs(self, metrics, stage_loss):
        folder = self.hparams.output_folder
        logp = torch.cat(self._preds["logp"]).cpu()
        preds = {
            utt: [round(float(v), 6) for v in row]
            for utt, row in zip(self._preds["ids"], logp)
        }
        write_json_atomic(
            {"labels": list(self.hparams.emotions), "log_probs": preds},
            os.path.join(folder, "test_predictions.json"),
        )
        metrics = dict(
            metrics,
            adversary=self.hparams.adversary,
            loss=float(stage_loss),
            epoch=self.hparams.epoch_counter.current,
            averaged_checkpoints=getattr(self, "averaged_checkpoints", 1),
        )
        write_json_atomic(metrics, os.path.join(folder, "test_metrics.json"))
        self.test_metrics = metrics
