"""Per-speaker normalisation of the pooled encoder features.

Each speaker's pooled features are standardised with that speaker's own
statistics (:class:`~speechbrain_grl.nnet.speaker_norm.SpeakerNorm`, the
module ``spk_norm``) before the projection reads them. It composes with
any other method: ``--adversary=spknorm`` is the normalisation around the
baseline's monitor, ``--speaker_norm=True`` puts it around ``grl``,
``tap`` or ``snp``.

- Training speakers use running statistics, averaged over the emotions
  they said (a favourite emotion is not taken for the voice).
- Evaluated speakers get statistics from the set's own unlabelled audio
  in a pass before it (whose pooled features the scoring pass then
  reuses: the encoder runs once per clip), with the estimator a deployed
  model uses (a MAP mean shrunk towards the prior, the pooled standard
  deviation: see
  :class:`~speechbrain_grl.nnet.speaker_norm.SpeakerNorm`'s ``tau`` and
  ``std``); a training speaker met again keeps its training statistics.
  With ``valid_balanced`` a held-out validation speaker's are balanced
  over its labelled emotions, as a training speaker's are (the test pass
  reads no label).
"""

import speechbrain as sb
import torch

from speechbrain_grl.dataio.audio import readable
from speechbrain_grl.methods.base import emotions_of, speakers_of
from speechbrain_grl.methods.monitor import SpeakerMonitor
from speechbrain_grl.nnet.speaker_norm import speaker_stats
from speechbrain_grl.utils.ddp import unwrap
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["SpeakerNormalization"]


class SpeakerNormalization:
    """Per-speaker normalisation around another method.

    It has the interface of :class:`~speechbrain_grl.methods.base.
    SpeakerMethod`; what it does not do itself is the inner method's.

    Arguments
    ---------
    method : SpeakerMethod, optional
        The method it composes with (default: the baseline's monitor,
        ``--adversary=spknorm``). Every other call goes to it.
    valid_balanced : bool
        Balance a validation speaker's statistics over its labelled
        emotions.

    Example
    -------
    >>> norm = SpeakerNormalization()
    >>> norm.name, norm.method.name
    ('spknorm', 'none')
    """

    normalizes = True

    def __init__(self, method=None, valid_balanced=True):
        self.method = method if method is not None else SpeakerMonitor()
        self.valid_balanced = valid_balanced
        self._pooled = {}  # id -> pooled features of the pass to score

    def around(self, method):
        """Composes with ``method`` (returns self)."""
        self.method = method
        return self

    @property
    def name(self):
        """``spknorm`` around the monitor, else the inner method's."""
        if type(self.method) is SpeakerMonitor:
            return "spknorm"
        return self.method.name

    @property
    def alternating(self):
        """As the inner method."""
        return self.method.alternating

    def __getattr__(self, attr):
        # Only reached for attributes not found here: the inner method's
        # (its speaker head helpers and settings).
        if attr == "method" or attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.method, attr)

    def __repr__(self):
        return f"SpeakerNormalization({self.method!r})"

    # -- what the normalisation does ----------------------------------------
    def check(self, brain):
        """Needs a ``spk_norm`` module; then the inner method's checks."""
        if "spk_norm" not in brain.modules:
            raise RecipeError(
                "speaker normalisation needs a spk_norm module "
                "(speechbrain_grl.nnet.speaker_norm.SpeakerNorm) in modules")
        self.method.check(brain)

    def normalize(self, brain, pooled, batch):
        """Standardised with the speakers' statistics: running ones of
        the training speakers in training, else those of
        :meth:`on_evaluate`."""
        norm = brain.modules.spk_norm
        if norm.training:
            return norm(pooled, speaker_index=speakers_of(batch),
                        emotion_index=emotions_of(batch))
        return norm(pooled, speaker_ids=batch.spk_id)

    @torch.no_grad()
    def on_evaluate(self, brain, stage, loader):
        """Per-speaker statistics of the set about to be evaluated, from
        its own (unlabelled) audio: the transductive step."""
        if loader is None:
            raise RuntimeError("speaker_norm: no loader for this stage")
        labelled = stage == sb.Stage.VALID and self.valid_balanced
        self._pooled = {}
        feats, speakers, emotions = pooled_features(brain, loader, labelled,
                                                    keep=self._pooled)
        norm = unwrap(brain.modules.spk_norm)
        stats = speaker_stats(feats, speakers,
                              emotions=emotions if labelled else None,
                              prior=norm.eval_prior(), tau=norm.prior_tau())
        # A training speaker's statistics are known: keep them.
        known = getattr(brain.hparams.spk_encoder, "lab2ind", {})
        for spk in stats:
            trained = norm.trained_stats(known[spk]) if spk in known else None
            if trained is not None:
                stats[spk] = trained
        norm.set_eval_stats(stats)
        self.method.on_evaluate(brain, stage, loader)

    def cached_pooled(self, batch):
        """The pooled features of ``batch`` from :meth:`on_evaluate`'s
        pass (the same loader, model and batching: the scoring pass does
        not run the encoder again), each used once; None if any is
        missing."""
        cache = self._pooled
        if not all(i in cache for i in batch.id):
            return None
        return torch.stack([cache.pop(i) for i in batch.id])

    # -- the rest is the inner method's -------------------------------------
    def needs_emotion_classes(self, brain):
        """The inner method's (clips of no class update no cell of the
        speaker statistics: :class:`SpeakerNorm`)."""
        return self.method.needs_emotion_classes(brain)

    def recoverables(self):
        """The inner method's."""
        return self.method.recoverables()

    def on_fit_start(self, brain, total_steps):
        """The inner method's."""
        self.method.on_fit_start(brain, total_steps)

    def on_forward(self, brain, emb, batch, out):
        """The inner method's."""
        self.method.on_forward(brain, emb, batch, out)

    def fit_batch(self, brain, batch):
        """The inner method's."""
        return self.method.fit_batch(brain, batch)

    def optimizers(self, brain, optimizers):
        """The inner method's."""
        return self.method.optimizers(brain, optimizers)

    def after_step(self, brain):
        """The inner method's."""
        self.method.after_step(brain)

    def strength(self, brain):
        """The inner method's."""
        return self.method.strength(brain)


def pooled_features(brain, loader, labelled=False, keep=None):
    """Pooled encoder features ``[n, dim]`` of every readable clip of
    ``loader`` in evaluation mode, their speakers and (``labelled``)
    emotion indices; ``keep`` (a dict) receives each clip's pooled
    output as the pooling returned it, by id."""
    mods = [brain.modules.ssl, brain.modules.pooling]
    flags = [m.training for m in mods]
    for m in mods:
        m.eval()
    feats, speakers, emotions = [], [], []
    try:
        for batch in loader:
            batch = batch.to(brain.device)
            wavs, lens = batch.sig
            # Unreadable (empty) clips are skipped, by evaluate_batch too.
            ok = readable(wavs, lens).nonzero().flatten().tolist()
            if not ok:
                continue
            with brain.evaluation_ctx:
                pooled = brain.modules.pooling(*brain.encode(
                    wavs[ok], lens[ok]))
            feats.append(pooled.reshape(len(ok), -1).float())
            if keep is not None:
                keep.update(zip([batch.id[i] for i in ok], pooled.detach()))
            speakers.extend(batch.spk_id[i] for i in ok)
            if labelled:
                emotions.extend(emotions_of(batch)[ok].tolist())
    finally:
        for m, flag in zip(mods, flags):
            m.train(flag)
    return torch.cat(feats), speakers, emotions
