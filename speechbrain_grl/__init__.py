"""speechbrain-grl: speaker-normalised speech emotion recognition.

A SpeechBrain plugin that fine-tunes a self-supervised encoder (wav2vec2,
HuBERT, WavLM) for emotion while the speaker is removed from the
utterance embedding (Gat et al., ICASSP 2022). Its roles, one level deep:

========================  ==================================================
``brain``                 The training loop: :class:`SpeakerAdversarialBrain`
                          (``brain_hparams``: what it reads of the yaml).
``tasks``                 What is learnt and how checkpoints are selected:
                          :class:`EmotionTask` (categorical, dimensional).
``methods``               One class per way of removing the speaker, built
                          in the yaml: ``SpeakerMonitor`` (``none``),
                          ``GradientReversalAdversary`` (``grl``),
                          ``AlternatingAscent`` (``tap``, ``snp``),
                          ``SpeakerNormalization`` (``spknorm``); ``base``
                          documents the interface the Brain calls.
``nnet``                  Building blocks: ``grl`` (gradient reversal, λ
                          schedule), ``speaker_head``, ``running_norm``,
                          ``speaker_norm``, ``losses``, ``exact_padding``
                          (evaluation batches as exact as one clip).
``dataio``                Data: ``prepare`` (one entry point, the
                          ``speechbrain-grl-prepare`` CLI) over ``iemocap``,
                          ``crema_d``, ``ravdess``, ``emodb``,
                          ``msp_podcast`` and ``csv_corpus`` (each with true
                          speakers); ``labels`` (class mappings),
                          ``splits`` (speaker-disjoint), ``manifests``
                          (atomic, reused while current); ``audio``
                          (reading, pipelines, dynamic batching),
                          ``subset`` (low-resource).
``evaluation``            ``metrics``, ``probe`` (speaker leakage),
                          ``protocols`` (folds, sweeps), ``report``,
                          ``outputs`` (a run's validation and test files),
                          ``adaptation`` (UA against clips per speaker).
``inference``             ``export`` (to the stock ``EncoderClassifier``,
                          with the speaker prior), ``predict`` (the CLI),
                          ``adaptation`` (a deployed model adapts to each
                          speaker from their clips), ``hparams/``.
``utils``                 ``errors`` (:class:`GRLError`), ``hparams_checks``,
                          ``checkpoints`` (kill-safe), ``jsonio``,
                          ``loader_opts``, ``ddp``, ``cuda``, ``threads``,
                          ``precision`` (bf16's kernels, a warning),
                          ``timing`` (phases), ``rng`` (evaluation leaves
                          training's random state alone), ``process``
                          (``env.log`` without pip; the collector kept
                          off the long-lived heap).
``testing``               Fixtures: ``demo_corpus`` (IEMOCAP layout,
                          optional speaker shortcut), ``acted_corpora``
                          (CREMA-D, RAVDESS, EmoDB layouts),
                          ``table_corpora`` (MSP-Podcast, CSV),
                          ``tiny_ssl``, ``demo``.
========================  ==================================================

The modules of version 0.1 (``speechbrain_grl.grl``,
``speechbrain_grl.running_norm``, ...) still import, with a deprecation
warning, so old run folders whose ``hyperparams.yaml`` names them load.
"""

from speechbrain.utils.importutils import deprecated_redirect

__version__ = "0.2.0"

# Old flat module → its place now (0.1 layout).
_MOVED = {
    "grl": "nnet.grl",
    "running_norm": "nnet.running_norm",
    "speaker_head": "nnet.speaker_head",
    "speaker_norm": "nnet.speaker_norm",
    "iemocap": "dataio.iemocap",
    "subset": "dataio.subset",
    "metrics": "evaluation.metrics",
    "probe": "evaluation.probe",
    "protocols": "evaluation.protocols",
    "report": "evaluation.report",
    "export": "inference.export",
    "predict": "inference.predict",
    "resume": "utils.checkpoints",
    "jsonio": "utils.jsonio",
    "checks": "utils.hparams_checks",
    "loader_opts": "utils.loader_opts",
    "demo_corpus": "testing.demo_corpus",
    "tiny_ssl": "testing.tiny_ssl",
    "demo": "testing.demo",
}
for _old, _new in _MOVED.items():
    deprecated_redirect(f"{__name__}.{_old}", f"{__name__}.{_new}",
                        extra_reason="speechbrain-grl 0.2 groups its "
                        "modules by role", also_lazy_export=True)

from speechbrain_grl.brain import (  # noqa: E402
    BRAIN_HPARAMS,
    SpeakerAdversarialBrain,
)
from speechbrain_grl.dataio.iemocap import prepare_iemocap  # noqa: E402
from speechbrain_grl.evaluation.probe import speaker_probe  # noqa: E402
from speechbrain_grl.inference.export import export_model  # noqa: E402
from speechbrain_grl.methods import (  # noqa: E402
    AlternatingAscent,
    GradientReversalAdversary,
    SpeakerMonitor,
    SpeakerNormalization,
)
from speechbrain_grl.nnet.grl import (  # noqa: E402
    GradientReversal,
    LambdaSchedule,
)
from speechbrain_grl.tasks import EmotionTask  # noqa: E402
from speechbrain_grl.utils.errors import GRLError  # noqa: E402

__all__ = [
    "__version__",
    "AlternatingAscent",
    "BRAIN_HPARAMS",
    "EmotionTask",
    "GRLError",
    "GradientReversalAdversary",
    "SpeakerMonitor",
    "SpeakerNormalization",
    "GradientReversal",
    "LambdaSchedule",
    "SpeakerAdversarialBrain",
    "export_model",
    "prepare_iemocap",
    "speaker_probe",
]
