"""Early checks of a recipe's command line, SSL source, augmenter and DDP
state.

Mistakes caught here would otherwise surface as tracebacks from deep inside
hyperpyyaml, transformers or torch.distributed. Each check raises
:class:`RecipeError` with one line that names the option or file and says
what to do; ``train.py`` prints it and exits.
"""

import difflib
import os

import ruamel.yaml
import torch
from hyperpyyaml import resolve_references

from speechbrain_grl.utils.errors import GRLError

__all__ = [
    "RecipeError",
    "check_augmenter",
    "check_hparams",
    "check_overrides",
    "check_ssl_source",
    "check_ranks_in_sync",
    "resolve_hparams",
]


class RecipeError(GRLError, ValueError):
    """A problem with the recipe's options or files, in one line."""


def _yaml_load(text):
    return ruamel.yaml.YAML().load(text)


def check_overrides(hparams_file, overrides):
    """Rejects command-line overrides of keys the YAML does not define.

    hyperpyyaml raises a ``KeyError`` listing every key; this names the
    unknown one and suggests close matches.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML file.
    overrides : str or dict
        The overrides as ``sb.parse_arguments`` returns them.

    Example
    -------
    >>> p = getfixture("tmp_path") / "h.yaml"
    >>> _ = p.write_text("batch_size: 8\\nlr: 0.1\\n")
    >>> check_overrides(p, "batch_size: 4")
    >>> check_overrides(p, "batchsize: 4")
    Traceback (most recent call last):
    ...
    speechbrain_grl.utils.hparams_checks.RecipeError: --batchsize: \
h.yaml has no such key (did you mean --batch_size?); fix the spelling \
or add the key to the YAML
    """
    if isinstance(overrides, str):
        overrides = _yaml_load(overrides) if overrides.strip() else None
    if not overrides:
        return
    with open(hparams_file, encoding="utf-8") as fin:
        keys = list(_yaml_load(fin) or {})
    for key in overrides:
        if key in keys:
            continue
        close = difflib.get_close_matches(str(key), keys, n=3)
        hint = (" (did you mean " + ", ".join(f"--{k}" for k in close)
                + "?)") if close else ""
        raise RecipeError(
            f"--{key}: {os.path.basename(hparams_file)} has no such key"
            f"{hint}; fix the spelling or add the key to the YAML"
        )


def check_ssl_source(source, option="ssl_hub"):
    """Checks that a local SSL model folder holds a ``config.json``.

    Hub ids (``facebook/hubert-large-ll60k``) are left to transformers;
    anything that exists on disk or looks like a path is checked.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> check_ssl_source("facebook/hubert-large-ll60k")
    >>> check_ssl_source(str(tmp))
    Traceback (most recent call last):
    ...
    speechbrain_grl.utils.hparams_checks.RecipeError: ssl_hub: ... \
has no config.json; ...
    """
    source = str(source)
    looks_local = os.path.exists(source) or source.startswith(
        ("/", "./", "../", "~", "\\")
    ) or source.count("/") > 1
    if not looks_local:
        return
    path = os.path.expanduser(source)
    if not os.path.isdir(path):
        raise RecipeError(
            f"{option}: {source} is not a folder; point {option} at a "
            "Hugging Face model folder or a hub id"
        )
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise RecipeError(
            f"{option}: {source} has no config.json; point {option} at a "
            "Hugging Face model folder (config.json, "
            "preprocessor_config.json, weights) or a hub id"
        )


def resolve_hparams(hparams_file, overrides=None):
    """Plain values of a recipe yaml after overrides, nothing instantiated.

    ``!ref`` are resolved; objects (``!new``, ``!apply``...) are left as
    ruamel nodes, so reading e.g. ``output_folder`` costs nothing.

    Arguments
    ---------
    hparams_file : str
        The recipe's YAML file.
    overrides : str or dict, optional
        As ``sb.parse_arguments`` returns them, or ``{key: value}``.

    Example
    -------
    >>> p = getfixture("tmp_path") / "h.yaml"
    >>> _ = p.write_text("a: 1\\nb: !ref <a>\\n")
    >>> dict(resolve_hparams(p, {"a": 2}))
    {'a': 2, 'b': 2}
    """
    if isinstance(overrides, dict):
        overrides = "".join(f"{k}: {v}\n" for k, v in overrides.items())
    with open(hparams_file, encoding="utf-8") as fin:
        resolved = resolve_references(fin, overrides or None)
    return _yaml_load(resolved.getvalue()) or {}


def check_hparams(hparams_file, overrides):
    """All checks that can run before the YAML instantiates anything.

    Unknown override keys, then a local ``ssl_hub`` folder. References
    are resolved without building objects; an ``ssl_hub`` computed by a
    tag (the demo's ``!apply``) is left alone.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> p = tmp / "h.yaml"
    >>> _ = p.write_text("root: " + str(tmp) + "\\nssl_hub: !ref <root>\\n")
    >>> check_hparams(p, "")
    Traceback (most recent call last):
    ...
    speechbrain_grl.utils.hparams_checks.RecipeError: ssl_hub: ... \
has no config.json; ...
    """
    check_overrides(hparams_file, overrides)
    source = resolve_hparams(hparams_file, overrides).get("ssl_hub")
    if isinstance(source, str):
        check_ssl_source(source)


def check_augmenter(augmenter):
    """Checks that a training augmenter (the yaml's ``wav_augment``, e.g.
    SpeechBrain's ``Augmenter``) keeps a batch's clips: the Brain does not
    repeat labels and speakers, so ``concat_original`` must be False and
    ``repeat_augment`` 1. None (no augmentation) passes.

    Example
    -------
    >>> from speechbrain.augment.augmenter import Augmenter
    >>> from speechbrain.augment.time_domain import DropChunk
    >>> check_augmenter(Augmenter(augmentations=[DropChunk()]))
    >>> check_augmenter(Augmenter(concat_original=True,
    ...                           augmentations=[DropChunk()]))
    Traceback (most recent call last):
    ...
    speechbrain_grl.utils.hparams_checks.RecipeError: wav_augment: \
concat_original: True adds clips; set it to False ...
    """
    if augmenter is None:
        return
    if getattr(augmenter, "concat_original", False):
        raise RecipeError(
            "wav_augment: concat_original: True adds clips; set it to False "
            "in the yaml (labels and speakers are not repeated)")
    if getattr(augmenter, "repeat_augment", 1) != 1:
        raise RecipeError(
            "wav_augment: repeat_augment must be 1 (labels and speakers "
            "are not repeated); set it in the yaml")


def check_ranks_in_sync(modules, atol=0.0):
    """Under DDP, checks that every process holds the same parameters.

    Each process sums its parameters (float64, per tensor); the sums are
    gathered and compared. Processes drift apart when a gradient skips the
    all-reduce (e.g. a manual update on unsynchronised gradients).
    Returns the number of processes compared (1 without DDP).

    Example
    -------
    >>> check_ranks_in_sync({"lin": torch.nn.Linear(2, 2)})
    1
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    params = [p for name in sorted(modules)
              for p in modules[name].parameters()]
    # nccl gathers on the GPU, gloo on the CPU: stay where the model is.
    sums = torch.stack([p.detach().double().sum() for p in params])
    gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, sums)
    for rank, other in enumerate(gathered):
        if not torch.allclose(other, gathered[0], rtol=0.0, atol=atol):
            raise RecipeError(
                f"DDP: the parameters of process {rank} differ from process "
                "0 after training; some update skipped the gradient "
                "all-reduce (report this as a bug)"
            )
    return len(gathered)
