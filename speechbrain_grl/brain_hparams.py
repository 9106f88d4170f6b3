"""What the Brain reads of a recipe's hparams.

The recipe hands its whole yaml to the Brain, as SpeechBrain recipes do;
:data:`BRAIN_HPARAMS` lists the keys the Brain reads, with defaults. The
settings of the task and of the speaker method come as two objects built
in the yaml (``emotion_task``, ``speaker_method``); yaml files written
before them have flat keys, from which the objects are built here.
"""

import speechbrain as sb

from speechbrain_grl.methods import method_from_hparams
from speechbrain_grl.tasks import EmotionTask
from speechbrain_grl.utils.hparams_checks import RecipeError

__all__ = ["BRAIN_HPARAMS", "OPTIMIZERS", "REQUIRED", "complete_hparams"]

REQUIRED = object()

#: The optimizers the Brain builds: the encoder's, the emotion path's and
#: the speaker head's own (``opt_class`` maps these names to classes).
OPTIMIZERS = ("ssl", "heads", "spk")

#: The hparams the Brain reads, with their defaults (``REQUIRED``: none).
BRAIN_HPARAMS = {
    "speaker_method": None,  # speechbrain_grl.methods; None: flat keys
    "emotion_task": None,  # speechbrain_grl.tasks.EmotionTask; idem
    "adversary": None,  # the method's name, recorded with the metrics
    "log_softmax": None,  # None: SpeechBrain's Softmax(apply_log=True)
    "lr_annealing_ssl": REQUIRED,
    "lr_annealing_heads": REQUIRED,
    "wav_augment": None,  # training waveforms (speechbrain.augment)
    "fused_optimizers": True,  # Adam's fused kernel (CPU and CUDA)
    "expandable_segments": True,  # CUDA allocator setting
    "epoch_counter": REQUIRED,
    "train_logger": REQUIRED,
    "output_folder": REQUIRED,
    "emotions": REQUIRED,
    "n_speakers": REQUIRED,
    # Set by the recipe from its data.
    "label_encoder": None,
    "spk_encoder": None,
    "class_counts": None,
    # Read by SpeechBrain's own Brain under DDP; left out when None.
    "sorting": None,
}


def complete_hparams(hparams, opt_class=None):
    """``hparams`` with the defaults of :data:`BRAIN_HPARAMS` filled in
    and the task, method and optimizer classes built (from flat keys where
    the yaml has no object); a missing key is a one-line error.

    Returns ``(hparams, opt_class)``, ``opt_class`` a mapping of
    :data:`OPTIMIZERS` to optimizer classes.
    """
    hparams = dict(hparams)
    if hparams.get("sorting", "") is None:
        del hparams["sorting"]  # SpeechBrain tests hasattr(hparams, ...)
    for key, default in BRAIN_HPARAMS.items():
        if key in hparams or key == "sorting":
            continue
        if default is REQUIRED:
            raise RecipeError(f"the Brain needs the hparam {key!r}; add "
                              "it to the yaml")
        hparams[key] = default
    if hparams["log_softmax"] is None:
        hparams["log_softmax"] = sb.nnet.activations.Softmax(apply_log=True)
    if hparams["emotion_task"] is None:
        hparams["emotion_task"] = EmotionTask.from_hparams(hparams)
    if hparams["speaker_method"] is None:
        if "lambda_schedule" not in hparams or not hparams["adversary"]:
            raise RecipeError("the Brain needs the hparam 'speaker_method' "
                              "(see speechbrain_grl.methods); add it to "
                              "the yaml")
        hparams["speaker_method"] = method_from_hparams(hparams)
    if not hparams["adversary"]:
        hparams["adversary"] = hparams["speaker_method"].name
    return hparams, _optimizer_classes(hparams, opt_class)


def _optimizer_classes(hparams, opt_class):
    """``opt_class`` as given (a mapping), else the yaml's ``opt_class``,
    else the flat keys ``ssl_opt_class``, ``heads_opt_class``,
    ``spk_opt_class`` of older yaml files."""
    if opt_class is None:
        opt_class = hparams.get("opt_class")
    if opt_class is None:
        opt_class = {name: hparams.get(f"{name}_opt_class")
                     for name in OPTIMIZERS}
    if not isinstance(opt_class, dict):
        raise RecipeError("opt_class: give the Brain a mapping of ssl, "
                          "heads and spk to optimizer classes")
    opt_class = dict(opt_class)
    opt_class["spk"] = opt_class.get("spk") or opt_class.get("heads")
    missing = [n for n in OPTIMIZERS if not opt_class.get(n)]
    if missing:
        raise RecipeError(f"opt_class has no optimizer for {missing}; add "
                          "them to the yaml's opt_class")
    return opt_class
