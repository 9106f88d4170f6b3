"""Export a trained model for SpeechBrain's stock ``EncoderClassifier``.

The exported folder loads with no plugin and no custom code::

    from speechbrain.inference.classifiers import EncoderClassifier
    clf = EncoderClassifier.from_hparams(source=model_dir, savedir=tmp)

It holds ``hyperparams.yaml`` (the template
``hparams/inference_encoder_classifier.yaml`` filled from the training
hparams), the fine-tuned encoder as a Hugging Face folder ``ssl/`` (any
other encoder, e.g. the filterbank ECAPA-TDNN of ``ecapa_spknorm.yaml``: its
training yaml blocks ``ssl`` and ``pooling`` copied into
``hyperparams.yaml`` and its weights as ``encoder.ckpt``), the
heads ``embedding_model.ckpt`` and ``classifier.ckpt`` (training state
dicts remapped to the inference containers), ``label_encoder.txt`` and a
model card ``README.md``.

A model trained with ``task: dimensional`` or ``both`` also holds
``regressor.ckpt``, its ``vad_head`` (a ``Linear`` to 3 outputs and a
``Sigmoid``), loaded by the same pretrainer as a module ``regressor``::

    vad = clf.mods.regressor(clf.encode_batch(wavs))  # [batch, 1, 3]

gives valence, arousal and dominance normalised to [0, 1]; the exported
``hyperparams.yaml`` records ``task`` and the training corpus's scale
``vad_scale: [lo, hi]`` (raw = lo + x * (hi - lo)). A dimensional-only
model keeps the emotion classifier, which the stock class needs, but its
weights are untrained (the model card says so).
"""

import argparse
import json
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from speechbrain_grl.utils.errors import GRLError

__all__ = ["export_model", "trained_speaker_norm", "find_output_folder",
           "fill_template", "build_heads", "encoder_yaml", "template_path",
           "selection_key", "ExportError", "main"]

logger = logging.getLogger(__name__)

TEMPLATE = "inference_encoder_classifier.yaml"
DEFAULT_SSL_CLASS = "speechbrain.integrations.huggingface.wav2vec2.Wav2Vec2"
TASKS = ("categorical", "dimensional", "both")
DIMENSIONS = ("valence", "arousal", "dominance")
#: The checkpoint selection key of each task when ``select_on`` is unset
#: (as the recipe's Brain selects).
TASK_SELECTION = {"categorical": "UA", "dimensional": "CCC",
                  "both": "score"}


def _block(name):
    """The template block ``# >>> name`` ... ``# <<< name``."""
    return re.compile(rf"^[ \t]*# >>> {name}\n(.*?)^[ \t]*# <<< {name}\n",
                      flags=re.M | re.S)


#: Template blocks kept for dimensional models only.
DIMENSIONAL_BLOCK = _block("dimensional")
#: Kept for models trained with per-speaker normalisation, and without.
NORMALISED_BLOCK, PLAIN_BLOCK = _block("normalised"), _block("plain")
#: Kept for a Hugging Face SSL encoder, and for any other encoder.
HF_BLOCK, MODULE_BLOCK = _block("hf"), _block("module")


class ExportError(GRLError):
    """A training folder that cannot be exported (one-line message)."""


def template_path():
    """The inference hparams template shipped in the package.

    It lies in ``speechbrain_grl/inference/hparams/``. The repository's
    root ``hparams/`` holds the same file for readers; a test keeps the
    two identical.

    Returns
    -------
    pathlib.Path
        The template file.
    """
    return Path(__file__).resolve().parent / "hparams" / TEMPLATE


def find_output_folder(path):
    """The training output folder at or under ``path``.

    ``path`` is a recipe output folder (holding ``hyperparams.yaml`` and
    ``save/``) or a folder above exactly one such folder (e.g. a fold or
    seed directory).

    Parameters
    ----------
    path : str or pathlib.Path
        The folder given on the command line.

    Returns
    -------
    pathlib.Path
        The training output folder.

    Raises
    ------
    ExportError
        When there is no such folder, or several.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "run" / "1986" / "save").mkdir(parents=True)
    >>> _ = (tmp / "run" / "1986" / "hyperparams.yaml").write_text("a: 1")
    >>> find_output_folder(tmp / "run").name
    '1986'
    """
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"--from {path}: no such folder")

    def is_run(p):
        """Tell a training output folder.

        Parameters
        ----------
        p : pathlib.Path
            A folder.

        Returns
        -------
        bool
            True when ``p`` holds ``hyperparams.yaml`` and ``save/``.
        """
        return (p / "hyperparams.yaml").is_file() and (p / "save").is_dir()

    if is_run(path):
        return path
    runs = sorted(p.parent for p in path.rglob("hyperparams.yaml")
                  if is_run(p.parent))
    if len(runs) == 1:
        return runs[0]
    if not runs:
        raise ExportError(
            f"--from {path}: no training output folder (hyperparams.yaml "
            "and save/) in it; pass the recipe's output_folder"
        )
    raise ExportError(
        f"--from {path}: {len(runs)} training runs in it "
        f"({', '.join(str(r) for r in runs[:3])}...); pass one of them"
    )


def _overrides(run, text):
    """What loading a run's ``hyperparams.yaml`` overrides: no data (a
    demo's ``data_folder`` would otherwise be regenerated by its
    ``!apply``) and the run's folders where it lies now.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.
    text : str
        Its ``hyperparams.yaml``.

    Returns
    -------
    dict
        The overrides.
    """
    try:
        keys = yaml.safe_load(re.sub(r"!\S+", "", text)) or {}
    except yaml.YAMLError:
        keys = {}
    overrides = {}
    if "data_folder" in keys:
        overrides["data_folder"] = "unused"
    for key in ("output_folder", "save_folder"):
        if key in keys:  # the run may have been moved since training
            overrides[key] = str(run if key == "output_folder"
                                 else run / "save")
    return overrides


def is_hf_encoder(ssl):
    """Whether a trained encoder is SpeechBrain's wrapper of a Hugging
    Face model (exported as a ``save_pretrained`` folder).

    Parameters
    ----------
    ssl : torch.nn.Module
        The training ``ssl`` module.

    Returns
    -------
    bool
        True for a Hugging Face wrapper.

    Example
    -------
    >>> is_hf_encoder(torch.nn.Linear(2, 2))
    False
    """
    return hasattr(getattr(ssl, "model", None), "save_pretrained")


def _strip_comments(node):
    """Removes the comments of a ruamel round-trip node, recursively.

    Parameters
    ----------
    node : object
        A loaded node.
    """
    comments = getattr(node, "ca", None)
    if comments is not None:
        comments.items.clear()
        comments.comment = None
        if hasattr(comments, "end"):
            comments.end = []
    children = (node.values() if isinstance(node, dict)
                else node if isinstance(node, list) else ())
    for child in children:
        _strip_comments(child)


def encoder_yaml(run):
    """The training yaml's ``ssl`` and ``pooling`` blocks, references
    resolved and comments dropped, as inference ``compute_features`` and
    ``pooling``.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.

    Returns
    -------
    str
        YAML text.

    Raises
    ------
    ExportError
        When the blocks need this plugin (no stock load then).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "hyperparams.yaml").write_text(
    ...     "dim: 4\\nssl: !new:torch.nn.Linear [!ref <dim>, 2]  # note\\n"
    ...     "pooling: !new:torch.nn.Identity\\n")
    >>> print(encoder_yaml(tmp), end="")
    compute_features: !new:torch.nn.Linear [4, 2]
    pooling: !new:torch.nn.Identity
    """
    import io

    import ruamel.yaml
    from hyperpyyaml import resolve_references

    text = (run / "hyperparams.yaml").read_text(encoding="utf-8")
    resolved = resolve_references(text, _overrides(run, text)).getvalue()
    tree = ruamel.yaml.YAML().load(resolved)
    dumper = ruamel.yaml.YAML()
    dumper.indent(mapping=4, sequence=6, offset=4)
    dumper.width = 4096
    blocks = {}
    for name, key in (("compute_features", "ssl"), ("pooling", "pooling")):
        _strip_comments(tree[key])
        blocks[name] = tree[key]
    out = io.StringIO()
    dumper.dump(blocks, out)
    if "speechbrain_grl" in out.getvalue():
        raise ExportError(
            f"--from {run}: its ssl or pooling block uses speechbrain_grl "
            "classes, which the stock EncoderClassifier cannot load; build "
            "the encoder from SpeechBrain or torch classes")
    return out.getvalue()


def _load_training(run):
    """The training hparams, instantiated, without rebuilding the data.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.

    Returns
    -------
    dict
        The loaded ``hyperparams.yaml``.

    Raises
    ------
    ExportError
        When it cannot be loaded (one line).
    """
    from hyperpyyaml import load_hyperpyyaml

    text = (run / "hyperparams.yaml").read_text(encoding="utf-8")
    overrides = _overrides(run, text)
    try:
        with open(run / "hyperparams.yaml", encoding="utf-8") as fin:
            return load_hyperpyyaml(fin, overrides)
    except Exception as err:  # noqa: BLE001 - reported in one line
        msg = " ".join(str(err).split())[:200]
        raise ExportError(
            f"--from {run}: cannot load hyperparams.yaml "
            f"({type(err).__name__}: {msg}); is the SSL source "
            "(ssl_hub) still reachable or cached?"
        ) from err


def _task(run, hparams):
    """The run's ``task``; runs from before it are categorical.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder (for the error message).
    hparams : dict
        The training hparams.

    Returns
    -------
    str
        ``categorical``, ``dimensional`` or ``both``.

    Raises
    ------
    ExportError
        For an unknown task.
    """
    task = hparams.get("task") or "categorical"
    if task not in TASKS:
        raise ExportError(f"--from {run}: task {task!r} is unknown; "
                          f"expected one of {', '.join(TASKS)}")
    return task


def _read_json(path):
    """A JSON file's content, or None when absent or unreadable.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    object or None
        The parsed JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def selection_key(run, hparams):
    """The validation metric that selected the run's test checkpoint.

    The run's own record (``selected_on`` in ``valid_summary.json``, else
    in ``test_metrics.json``) wins; otherwise, as the recipe's Brain
    decides, ``select_on`` or the task's own key (UA for categorical,
    CCC for dimensional, score for both). Runs from before dimensional
    training select on UA.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.
    hparams : dict
        The training hparams.

    Returns
    -------
    str
        A checkpoint meta key: ``UA``, ``CCC`` or ``score``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> selection_key(tmp, {"task": "dimensional"})
    'CCC'
    >>> selection_key(tmp, {"task": "both", "select_on": "UA"})
    'UA'
    >>> _ = (tmp / "valid_summary.json").write_text('{"selected_on": "score"}')
    >>> selection_key(tmp, {})
    'score'
    """
    for name in ("valid_summary.json", "test_metrics.json"):
        record = _read_json(Path(run) / name)
        if isinstance(record, dict) and record.get("selected_on"):
            return str(record["selected_on"])
    if hparams.get("select_on"):
        return str(hparams["select_on"])
    return TASK_SELECTION.get(hparams.get("task") or "categorical", "UA")


def _states(run, hparams, key="UA", dimensional=False, extra=(),
            checkpoint="best"):
    """State dicts of the modules to export from the selected checkpoint.

    The checkpoint with the best validation ``key`` (or the average of
    the ``avg_checkpoints`` best), as the recipe's test pass loads it;
    when no checkpoint's meta holds ``key``, the best validation UA.
    ``checkpoint="latest"``: the newest end-of-epoch checkpoint instead
    (the last finished epoch, chosen by nothing).

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.
    hparams : dict
        The training hparams (``avg_checkpoints``).
    key : str
        The selection key (see :func:`selection_key`).
    dimensional : bool
        Also read ``vad_head``, the regression head.
    extra : tuple of str
        Other modules to read (``spk_norm``).
    checkpoint : str
        ``best`` or ``latest``.

    Returns
    -------
    states : dict
        ``ssl``, ``projection``, ``emo_head`` (and ``vad_head``) state
        dicts.
    ckpts : list of speechbrain.utils.checkpoints.Checkpoint
        The checkpoints used.
    key : str
        The key they were selected on.

    Raises
    ------
    ExportError
        Without a usable checkpoint.
    """
    from speechbrain.utils.checkpoints import (
        Checkpointer,
        average_checkpoints,
    )

    ckpter = Checkpointer(run / "save")
    k = int(hparams.get("avg_checkpoints", 1) or 1)
    if checkpoint == "latest":
        ckpts = ckpter.find_checkpoints(
            ckpt_predicate=lambda c: c.meta.get("end-of-epoch", True),
            max_num_checkpoints=1)
        if not ckpts:
            raise ExportError(f"--from {run}: no end-of-epoch checkpoint "
                              f"in {run / 'save'}; has training finished "
                              "an epoch?")
    else:
        ckpts = ckpter.find_checkpoints(max_key=key, max_num_checkpoints=k)
    if not ckpts and key != "UA":
        ckpts = ckpter.find_checkpoints(max_key="UA", max_num_checkpoints=k)
        if ckpts:
            logger.warning("no checkpoint records a validation %s: the "
                           "best validation UA is exported", key)
            key = "UA"
    if not ckpts:
        raise ExportError(
            f"--from {run}: no checkpoint with a validation {key} in "
            f"{run / 'save'}; has training finished an epoch?"
        )
    names = ("ssl", "projection", "emo_head")
    names += ("vad_head",) if dimensional else ()
    names += tuple(extra)
    for ckpt in ckpts:
        missing = [n for n in names if n not in ckpt.paramfiles]
        if missing:
            raise ExportError(
                f"--from {run}: checkpoint {ckpt.path.name} lacks "
                f"{', '.join(missing)}"
            )
    if len(ckpts) == 1:
        states = {name: torch.load(ckpts[0].paramfiles[name],
                                   map_location="cpu") for name in names}
    else:
        states = {name: average_checkpoints(ckpts, name) for name in names}
    return states, ckpts, key


def _vad_scale(run, hparams):
    """The training corpus's scale of the dimensional labels.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder: its ``prepare_summary.json`` records
        ``vad_scale``.
    hparams : dict
        The training hparams (``corpus``, for corpora of a known scale
        when the summary lacks it).

    Returns
    -------
    list of float or None
        ``[lo, hi]``, or None when unknown.
    """
    summary = _read_json(run / "prepare_summary.json")
    scale = summary.get("vad_scale") if isinstance(summary, dict) else None
    if scale is None:
        from speechbrain_grl.dataio.dimensions import VAD_SCALES

        scale = VAD_SCALES.get(str(hparams.get("corpus") or "iemocap"))
    return [float(x) for x in scale] if scale else None


def _remap(state, target, offset):
    """Rename training keys to those of an inference container.

    Parameters
    ----------
    state : dict
        A training state dict with keys ``<i>.rest``.
    target : torch.nn.Module
        The inference container.
    offset : int
        Children of ``target`` before the trained ones (the pooling).

    Returns
    -------
    dict
        The state dict with ``<child name>.rest`` keys.
    """
    children = [name for name, _ in target.named_children()]
    out = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        out[f"{children[int(head) + offset]}.{rest}"] = value
    return out


def fill_template(values, ssl_class, dimensional=False, normalised=False,
                  encoder=None):
    """The inference hparams of an exported folder, as text.

    Parameters
    ----------
    values : dict
        Replaces each ``key: !PLACEHOLDER`` line of the template
        (``model_dir``, ``encoder_dim``, ``emb_dim``, ``n_emotions``,
        ``output_norm`` (Hugging Face encoders only); with
        ``dimensional`` also ``task`` and ``vad_scale``).
    ssl_class : str
        The SpeechBrain wrapper of the encoder (dotted path).
    dimensional : bool
        Keep the template's dimensional blocks (the ``regressor`` module,
        ``task``, ``vad_scale``); otherwise they are removed and the
        text is that of a categorical model.
    normalised : bool
        Per-speaker normalisation: ``mean_var_norm`` standardises with
        the prior (``mean_var_norm.ckpt``, ``speaker_prior_tau``);
        otherwise it passes features through.
    encoder : str, optional
        For an encoder that is not a Hugging Face model: the yaml of its
        ``compute_features`` and ``pooling`` (:func:`encoder_yaml`),
        loaded with the weights ``encoder.ckpt``; None keeps the
        template's Hugging Face encoder (``ssl_class``) and mean pooling.

    Returns
    -------
    str
        The filled template; every placeholder must be filled.

    Example
    -------
    >>> values = {"model_dir": "/m", "encoder_dim": 8, "emb_dim": 4,
    ...           "n_emotions": 4, "output_norm": False}
    >>> "regressor" in fill_template(values, DEFAULT_SSL_CLASS)
    False
    >>> text = fill_template(dict(values, task="both", vad_scale=[1, 5]),
    ...                      DEFAULT_SSL_CLASS, dimensional=True)
    >>> "regressor: !ref <regressor>" in text, "vad_scale: [1, 5]" in text
    (True, True)
    >>> text = fill_template(dict(values, speaker_prior_tau=2.0),
    ...                      DEFAULT_SSL_CLASS, normalised=True)
    >>> "InputNormalization" in text, "mean_var_norm.ckpt" in text
    (True, True)
    >>> block = "compute_features: !new:torch.nn.Identity\\n"
    >>> text = fill_template({k: v for k, v in values.items()
    ...                       if k != "output_norm"}, "", encoder=block)
    >>> "Wav2Vec2" in text, "encoder.ckpt" in text
    (False, True)
    """
    text = template_path().read_text(encoding="utf-8")
    text = DIMENSIONAL_BLOCK.sub(r"\1" if dimensional else "", text)
    text = NORMALISED_BLOCK.sub(r"\1" if normalised else "", text)
    text = PLAIN_BLOCK.sub("" if normalised else r"\1", text)
    text = HF_BLOCK.sub("" if encoder else r"\1", text)
    text = MODULE_BLOCK.sub(r"\1" if encoder else "", text)
    if encoder:
        text = re.sub(r"^compute_features: !PLACEHOLDER.*\n",
                      lambda m: encoder.rstrip("\n") + "\n", text,
                      flags=re.M)
    for key, value in values.items():
        dumped = json.dumps(value)  # JSON scalars are YAML scalars
        text, n = re.subn(
            rf"^{key}: !PLACEHOLDER.*$",
            lambda m, k=key, d=dumped: f"{k}: {d}",
            text, flags=re.M,
        )
        if n != 1:
            raise RuntimeError(f"template has no placeholder {key!r}")
    text = text.replace(f"!new:{DEFAULT_SSL_CLASS}", f"!new:{ssl_class}")
    if re.search(r"^[^#\n]*!PLACEHOLDER", text, flags=re.M):
        raise RuntimeError("template placeholders left unfilled")
    return text


def _pct(x):
    """Format a percentage with two decimals.

    Parameters
    ----------
    x : object
        A number, or anything else when missing.

    Returns
    -------
    str
        ``x`` with two decimals, or ``n/a``.

    Example
    -------
    >>> _pct(59.375), _pct(None)
    ('59.38', 'n/a')
    """
    return f"{x:.2f}" if isinstance(x, (int, float)) else "n/a"


def _num(x):
    """Format a correlation or error with four decimals.

    Parameters
    ----------
    x : object
        A number, or anything else when missing.

    Returns
    -------
    str
        ``x`` with four decimals, or ``n/a``.

    Example
    -------
    >>> _num(0.01934), _num(None)
    ('0.0193', 'n/a')
    """
    return f"{x:.4f}" if isinstance(x, (int, float)) else "n/a"


def _checkpoint_line(ckpts, key, checkpoint="best"):
    """The model card's line naming the exported checkpoint(s).

    Parameters
    ----------
    ckpts : list of speechbrain.utils.checkpoints.Checkpoint
        The checkpoints exported (averaged when several).
    key : str
        The validation key they were selected on.
    checkpoint : str
        ``best``, or ``latest`` (the last finished epoch).

    Returns
    -------
    str
        A Markdown list item.
    """
    fmt = _pct if key == "UA" else _num
    return "- checkpoint: " + ", ".join(
        f"{c.path.name} (valid {key} {fmt(c.meta.get(key))})"
        for c in ckpts) + (" (averaged)" if len(ckpts) > 1 else "") + (
        " (the latest, not the best: the test metrics below are the "
        "recipe's, of its best checkpoint)" if checkpoint == "latest"
        else "")


def _dimensional_use(hparams, vad_scale, task):
    """The model card's lines on the regressor.

    Parameters
    ----------
    hparams : dict
        The training hparams (``corpus``).
    vad_scale : list of float or None
        The training corpus's scale ``[lo, hi]``.
    task : str
        ``dimensional`` or ``both``.

    Returns
    -------
    list of str
        Markdown lines.
    """
    corpus = hparams.get("corpus") or "iemocap"
    if vad_scale:
        lo, hi = (f"{x:g}" for x in vad_scale)
        scale = (f"The training corpus (`{corpus}`) rates them on "
                 f"[{lo}, {hi}]: raw = {lo} + x · ({hi} − {lo}).")
    else:
        scale = (f"The scale of the training corpus (`{corpus}`) is not "
                 "recorded (`vad_scale: null`): map x back with your "
                 "corpus's own [lo, hi], raw = lo + x · (hi − lo).")
    load = [] if task == "both" else [
        "from speechbrain.inference.classifiers import EncoderClassifier",
        "clf = EncoderClassifier.from_hparams(source=MODEL_DIR, "
        "savedir=TMP,",
        "    overrides={\"model_dir\": MODEL_DIR})  # needed once moved",
    ]
    head = ["### Valence, arousal, dominance", ""] if task == "both" else []
    return head + [
        "The module `regressor` (a `Linear` to 3 outputs and a `Sigmoid`, "
        "loaded from `regressor.ckpt`) maps the utterance embedding to "
        "valence, arousal and dominance, in this order, each normalised "
        "to [0, 1]:",
        "",
        "```python",
        "import torch",
        *load,
        "wavs = clf.load_audio(\"x.wav\")[None]  # [1, samples], 16 kHz "
        "mono",
        "with torch.no_grad():",
        "    vad = clf.mods.regressor(clf.encode_batch(wavs))  "
        "# [batch, 1, 3] in [0, 1]",
        "valence, arousal, dominance = vad[0, 0].tolist()",
        "lo, hi = clf.hparams.vad_scale  # the corpus's scale, "
        "or None",
        "raw = lo + vad * (hi - lo)  # back on the corpus's scale",
        "```",
        "",
        scale,
        "",
    ]


def _dimensional_metrics(metrics):
    """The model card's lines on the dimensional test metrics.

    Parameters
    ----------
    metrics : dict
        ``test_metrics.json`` of a dimensional or both run.

    Returns
    -------
    list of str
        Markdown list items.
    """
    ccc = metrics.get("CCC") or {}
    pcc = metrics.get("PCC") or {}
    mae = metrics.get("MAE") or {}
    lines = [f"- CCC mean: {_num(metrics.get('CCC_mean'))}"]
    lines += [f"- {dim}: CCC {_num(ccc.get(dim))}, PCC "
              f"{_num(pcc.get(dim))}, MAE {_num(mae.get(dim))}"
              for dim in DIMENSIONS]
    spread = metrics.get("CCC_speaker_std")
    if isinstance(spread, dict):
        lines.append("- CCC_speaker_std (std over test speakers of each "
                     "speaker's CCC): " + ", ".join(
                         f"{dim} {_num(spread.get(dim))}"
                         for dim in DIMENSIONS))
    else:
        lines.append("- CCC_speaker_std: n/a (fewer than 2 test "
                     "speakers with 2 utterances)")
    lines.append("- MAE is in the normalised [0, 1] units.")
    return lines


def _model_card(run, hparams, metrics, ckpts, ssl_class,
                task="categorical", key="UA", vad_scale=None,
                checkpoint="best"):
    """The exported folder's ``README.md``.

    A categorical model's card is as before dimensional training
    existed; a dimensional or both model's card adds the regressor's use,
    its scale and the dimensional test metrics, and a dimensional-only
    one says that its emotion labels are untrained.

    Parameters
    ----------
    run : pathlib.Path
        The training output folder.
    hparams : dict
        The training hparams.
    metrics : dict or None
        ``test_metrics.json``, when there is one.
    ckpts : list of speechbrain.utils.checkpoints.Checkpoint
        The exported checkpoint(s).
    ssl_class : str
        The encoder's wrapper class (dotted path).
    task : str
        ``categorical``, ``dimensional`` or ``both``.
    key : str
        The validation key the checkpoints were selected on.
    vad_scale : list of float or None
        The training corpus's scale of the dimensions.

    Returns
    -------
    str
        Markdown.
    """
    proto = {k: hparams.get(k) for k in (
        "adversary", "split", "test_session", "test_speaker", "sessions",
        "valid_ratio", "seed", "number_of_epochs", "emotions")}
    classes = (f"4-class emotion "
               f"({', '.join(map(str, proto['emotions'] or []))})")
    what = {
        "categorical": classes,
        "dimensional": "valence, arousal and dominance regression",
        "both": f"{classes} and valence, arousal and dominance "
                "regression",
    }[task]
    ssl_source = hparams.get("ssl_hub")
    encoder = (f"SSL encoder `{ssl_class.rsplit('.', 1)[-1]}` fine-tuned "
               f"from `{ssl_source}`" if ssl_source else
               "Encoder (`compute_features` in `hyperparams.yaml`) trained "
               "from scratch")
    lines = [
        "# Speaker-normalised emotion recognition (speechbrain-grl)",
        "",
        f"{encoder} with adversary `{proto['adversary']}` "
        f"(Gat et al., ICASSP 2022), {what}.",
        "",
    ]
    if task == "dimensional":
        lines += [
            "**The emotion labels are not trained.** This model learnt "
            "valence, arousal and dominance only (`task: dimensional`). "
            "SpeechBrain's `EncoderClassifier` needs a `classifier`, so "
            "the emotion head "
            f"({', '.join(map(str, proto['emotions'] or []))}) is kept, "
            "but its weights were never trained: `classify_file` and "
            "`classify_batch` give meaningless labels and probabilities. "
            "Use the `regressor` below.",
            "",
        ]
    lines += ["## Use", ""]
    if task != "dimensional":
        lines += [
            "```python",
            "from speechbrain.inference.classifiers import "
            "EncoderClassifier",
            "clf = EncoderClassifier.from_hparams(source=MODEL_DIR, "
            "savedir=TMP,",
            "    overrides={\"model_dir\": MODEL_DIR})  # needed once moved",
            "out_prob, score, index, text_lab = clf.classify_file(\"x.wav\")",
            "```",
            "",
        ]
    if task == "categorical":
        lines += [
            "Or: `speechbrain-grl-predict --model MODEL_DIR audio/ "
            "--output preds.csv`.",
            "Input: 16 kHz mono (`classify_file` and the CLI resample and "
            "mix down). `out_prob` holds log-probabilities.",
        ]
    else:
        lines += _dimensional_use(hparams, vad_scale, task)
        cols = ("`label`, `score`, `prob_<label>`, " if task == "both"
                else "")
        lines += [
            "Or: `speechbrain-grl-predict --model MODEL_DIR audio/ "
            f"--output preds.csv`: columns `path`, {cols}`valence`, "
            "`arousal`, `dominance` (normalised to [0, 1]) and `error`.",
            "Input: 16 kHz mono (`load_audio`, `classify_file` and the CLI "
            "resample and mix down)."
            + (" `out_prob` holds log-probabilities." if task == "both"
               else ""),
        ]
    one = ("(`classify_file`)" if task == "categorical" else
           "(`classify_file`, or `encode_batch` on one file)")
    lines += [
        "",
        "Batches: the stock `encode_batch` calls the encoder without "
        "lengths, so in a padded batch the encoder sees the padding "
        "(pooling does mask it). Batched outputs therefore differ "
        "slightly from one-file calls; classify one file at a time "
        f"{one} for exactly the recipe's numbers, or batch "
        "files of similar length as the CLI does.",
        "",
        "## Training",
        "",
        f"- training run: `{run}`",
        _checkpoint_line(ckpts, key, checkpoint),
    ]
    if task != "categorical":
        why = (" ((UA / 100 + CCC mean) / 2)" if key == "score" else "")
        lines += [f"- task: {task}", f"- selected on: validation {key}{why}"]
    lines += [f"- {k}: {v}" for k, v in proto.items() if v is not None]
    lines += ["", "## Test metrics", ""]
    if metrics:
        lines.append(f"- utterances: {metrics.get('n_utterances', 'n/a')}")
        if task != "dimensional":
            lines += [
                f"- WA: {_pct(metrics.get('WA'))}",
                f"- UA: {_pct(metrics.get('UA'))}",
                f"- macro F1: {_pct(metrics.get('macro_F1'))}",
            ]
            for lab, rec in (metrics.get("per_class_recall")
                             or {}).items():
                lines.append(f"- recall {lab}: {_pct(rec)}")
        if task != "categorical":
            lines += _dimensional_metrics(metrics)
    else:
        lines.append("No test_metrics.json in the training folder.")
    return "\n".join(lines) + "\n"


def export_model(source, model_dir, overwrite=False, checkpoint="best"):
    """Exports the selected checkpoint of a training run.

    The checkpoint is the one the recipe tested: the best on the run's
    validation selection key (UA, or CCC or score for dimensional and
    both runs); with ``checkpoint="latest"``, the last finished epoch's
    (a model chosen by nothing, e.g. to compare settings on validation
    without the choice of epoch). A dimensional or both run also gets
    its regression head as ``regressor.ckpt`` and the module
    ``regressor``.

    Parameters
    ----------
    source : str or Path
        The recipe's output folder (or a folder holding exactly one).
    model_dir : str or Path
        The folder to write; it must not exist unless ``overwrite``.
    overwrite : bool
        Replace an existing ``model_dir``.
    checkpoint : str
        ``best`` (default) or ``latest``.

    Returns
    -------
    Path
        The absolute path of the exported folder.

    Raises
    ------
    ExportError
        For a run that cannot be exported (one line).
    """
    from speechbrain.dataio.encoder import CategoricalEncoder

    if checkpoint not in ("best", "latest"):
        raise ExportError(f"--checkpoint {checkpoint}: use best or latest")
    run = find_output_folder(source).resolve()
    model_dir = Path(model_dir).resolve()
    if model_dir.exists() and not overwrite:
        raise ExportError(
            f"--to {model_dir} exists; remove it or pass --overwrite"
        )
    hparams = _load_training(run)
    for key in ("ssl", "projection", "emo_head", "emotions"):
        if key not in hparams:
            raise ExportError(
                f"--from {run}: hyperparams.yaml has no {key!r}; is this "
                "a speechbrain-grl run?"
            )
    normalised = _check_normalised(run, hparams)
    task = _task(run, hparams)
    dimensional = task != "categorical"
    states, ckpts, key = _states(run, hparams, selection_key(run, hparams),
                                 dimensional,
                                 ("spk_norm",) if normalised else (),
                                 checkpoint)
    vad_scale = _vad_scale(run, hparams) if dimensional else None
    ssl = hparams["ssl"]
    ssl.load_state_dict(states["ssl"], strict=True)
    ssl_class = f"{type(ssl).__module__}.{type(ssl).__name__}"
    hf = is_hf_encoder(ssl)
    encoder = None if hf else encoder_yaml(run)
    emotions = list(hparams["emotions"])
    metrics_file = run / "test_metrics.json"
    metrics = (json.loads(metrics_file.read_text())
               if metrics_file.exists() else None)

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=model_dir.parent))
    try:
        values = {
            "model_dir": str(model_dir),
            "encoder_dim": int(states["projection"]["0.w.weight"].shape[1]),
            "emb_dim": int(states["emo_head"]["w.weight"].shape[1]),
            "n_emotions": len(emotions),
        }
        if hf:
            ssl.model.save_pretrained(tmp / "ssl")
            ssl.feature_extractor.save_pretrained(tmp / "ssl")
            values["encoder_dim"] = int(ssl.model.config.hidden_size)
            values["output_norm"] = bool(getattr(ssl, "output_norm", False))
        else:
            torch.save(ssl.state_dict(), tmp / "encoder.ckpt")
        if dimensional:
            values.update(task=task, vad_scale=vad_scale)
        if normalised:
            norm = hparams["spk_norm"]
            norm.load_state_dict(states["spk_norm"], strict=True)
            values["speaker_prior_tau"] = norm.prior_tau()
            _save_prior(norm, tmp / "mean_var_norm.ckpt")
        text = fill_template(values, ssl_class, dimensional, normalised,
                             encoder)
        (tmp / "hyperparams.yaml").write_text(text, encoding="utf-8")
        encoder = CategoricalEncoder()
        encoder.update_from_iterable(emotions)
        encoder.save(tmp / "label_encoder.txt")
        heads = build_heads(text, tmp)
        torch.save(_check(heads["embedding_model"],
                          _remap(states["projection"],
                                 heads["embedding_model"], 1)),
                   tmp / "embedding_model.ckpt")
        torch.save(_check(heads["classifier"],
                          {f"{_first(heads['classifier'])}.{k}": v
                           for k, v in states["emo_head"].items()}),
                   tmp / "classifier.ckpt")
        if dimensional:  # the same Sequential: the keys carry over
            torch.save(_check(heads["regressor"], states["vad_head"]),
                       tmp / "regressor.ckpt")
        (tmp / "README.md").write_text(
            _model_card(run, hparams, metrics, ckpts, ssl_class, task, key,
                        vad_scale, checkpoint),
            encoding="utf-8")
        if model_dir.exists():
            shutil.rmtree(model_dir)
        tmp.rename(model_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("exported %s (%s) to %s", run,
                ", ".join(c.path.name for c in ckpts), model_dir)
    return model_dir


def _check_normalised(run, hparams):
    """Whether the run normalised speakers; one-line error when it did so
    in a way no deployed model can (each speaker's own spread)."""
    if not (hparams.get("adversary") == "spknorm"
            or hparams.get("speaker_norm")):
        return False
    norm = hparams.get("spk_norm")
    if getattr(norm, "std", "speaker") != "pooled":
        raise ExportError(
            f"--from {run}: the model divides each speaker by their own "
            "spread (spk_norm std: speaker), which an unknown speaker does "
            "not have; retrain with the spk_norm std: pooled (the recipe "
            "default) to export it")
    return True


def trained_speaker_norm(source):
    """The ``spk_norm`` module of a training run with the statistics of
    the checkpoint :func:`export_model` exports (its prior, and
    :meth:`~speechbrain_grl.nnet.speaker_norm.SpeakerNorm.empirical_tau`).

    Raises
    ------
    ExportError
        For a run without deployable speaker normalisation (one line).
    """
    run = find_output_folder(source).resolve()
    hparams = _load_training(run)
    if not _check_normalised(run, hparams):
        raise ExportError(f"--from {run}: the run has no speaker "
                          "normalisation (adversary spknorm or "
                          "speaker_norm: True)")
    states, _, _ = _states(run, hparams, selection_key(run, hparams),
                           _task(run, hparams) != "categorical",
                           ("spk_norm",))
    norm = hparams["spk_norm"]
    norm.load_state_dict(states["spk_norm"], strict=True)
    return norm


def _save_prior(norm, path):
    """The prior of ``norm`` (a trained SpeakerNorm) as the statistics of
    SpeechBrain's ``InputNormalization`` (``mean_var_norm.ckpt``)."""
    mean, std = norm.prior()
    trained = int((norm.count.view(norm.n_speakers, -1) > 0).any(-1).sum())
    torch.save({"count": trained, "glob_mean": mean.float().cpu(),
                "glob_std": std.float().cpu()}, path)


def _first(module):
    """The name of a container's first child.

    Parameters
    ----------
    module : torch.nn.Module
        A container.

    Returns
    -------
    str
        Its first child's name.
    """
    return next(name for name, _ in module.named_children())


def build_heads(text, folder):
    """The heads of generated inference hparams, without the encoder.

    ``embedding_model``, ``classifier`` (and ``regressor`` in a
    dimensional model's hparams), e.g. to write random or trained weights
    for them.

    Parameters
    ----------
    text : str
        Inference hparams, as :func:`fill_template` returns them.
    folder : str or pathlib.Path
        The model folder (``model_dir``).

    Returns
    -------
    dict
        The loaded hparams before ``label_encoder``.
    """
    from hyperpyyaml import load_hyperpyyaml

    keep = re.split(r"^label_encoder:", text, flags=re.M)[0]
    keep = re.sub(r"^compute_features:.*?(?=^\S)", "", keep,
                  flags=re.M | re.S)
    return load_hyperpyyaml(keep, {"model_dir": str(folder)})


def _check(module, state):
    """Fails unless ``state`` loads strictly into ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The inference module.
    state : dict
        Its state dict to be.

    Returns
    -------
    dict
        ``state``, unchanged.
    """
    module.load_state_dict(state, strict=True)
    return state


def main(argv=None):
    """Command line: ``--from RUN --to MODEL_DIR [--overwrite]
    [--checkpoint best|latest]``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0; errors exit with a one-line message.
    """
    parser = argparse.ArgumentParser(
        prog="speechbrain-grl-export",
        description="Export a trained run for SpeechBrain's stock "
        "EncoderClassifier.",
    )
    parser.add_argument("--from", dest="source", required=True,
                        help="the recipe's output folder")
    parser.add_argument("--to", dest="model_dir", required=True,
                        help="the folder to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --to folder")
    parser.add_argument("--checkpoint", choices=("best", "latest"),
                        default="best",
                        help="best: the one the recipe tested (best on "
                        "validation, default); latest: the last finished "
                        "epoch's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        out = export_model(args.source, args.model_dir, args.overwrite,
                           args.checkpoint)
    except ExportError as err:
        sys.exit(f"export: error: {err}")
    print(out)
    return 0


def cli():
    """``speechbrain-grl-export``: :func:`main`, exit unswept."""
    from speechbrain_grl.utils.process import run_command
    run_command(main)


if __name__ == "__main__":
    cli()
