"""Emotion predictions for audio files with an exported model.

    speechbrain-grl-predict --model MODEL_DIR PATH... [--output preds.csv]

Inputs are files or folders (searched recursively for ``*.wav`` and
``*.flac``). Audio at any rate is resampled to 16 kHz and mixed down to
mono (channels averaged); files longer than ``--window-seconds`` are cut
into equal windows whose probabilities are averaged, so memory stays
bounded by the window (a whole file is held as 16 kHz float32 while its
windows run: 230 MB an hour). Files are sorted by duration and batched up
to ``--batch-seconds`` of padded audio, so that padding stays small; a
Hugging Face encoder gives each file of a batch what it gives the file
alone (:func:`pooled`); in int8 the encoder's matrix products quantise
with the batch's scales (and the ONNX one sees the padding), so its
outputs depend on a file's batch (``--batch-seconds 0`` makes them each
file's own); its convolutions after the waveform's run in int8 with
scales calibrated on the first 8 readable files (ONNX Runtime). A file
that cannot be read, is shorter than 0.05 s (the
preparations' ``MIN_DURATION``: the encoder needs 25 ms for a frame) or
is digital silence throughout (peak under -80 dBFS) gets a row with its
error; the exit status is then 1. Windows that are silent throughout are
left out of a file's average. Leading and trailing silence is kept, as in
training and in the recipe's test pass, unless ``--trim-silence`` cuts it
off each window (:func:`speechbrain_grl.dataio.audio.trim_silence`).

With ``--speakers map.csv`` (columns ``path,speaker``; relative paths
are relative to the CSV) a model trained with per-speaker normalisation
adapts to each speaker: their mean is a MAP estimate from their own clips
(at most ``--adapt_clips K``, drawn with ``--seed``), shrunk towards the
training speakers' average voice; files of no listed speaker get that
prior (:mod:`speechbrain_grl.inference.adaptation`). Rows then also name
the ``speaker`` and the ``adapt_clips`` their statistics came from.
``--recenter`` shrinks towards the average of the files being classified
instead (every file, a speaker's own included; with or without
``--speakers``).

Columns: ``path``, ``label``, ``score``, ``prob_<label>`` per label and
``error``. A model exported from a dimensional or both run (its loaded
modules hold a ``regressor``) adds ``valence``, ``arousal`` and
``dominance`` before ``error``: the regressor's outputs, normalised to
[0, 1] (averaged over windows like the probabilities; map them back to
the training corpus's scale, ``vad_scale: [lo, hi]`` in the model's
``hyperparams.yaml``, with ``lo + x * (hi - lo)``). A dimensional-only
model (``task: dimensional``), whose emotion classifier is untrained,
has no ``label``, ``score`` or ``prob_*`` columns.
"""

import argparse
import contextlib
import csv
import json
import logging
import math
import sys
import tempfile
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from speechbrain_grl.dataio.audio import is_silent, read_audio
from speechbrain_grl.dataio.audio import trim_silence as _trim
from speechbrain_grl.dataio.manifests import MIN_DURATION
from speechbrain_grl.nnet.exact_padding import encode, handles
from speechbrain_grl.utils.errors import GRLError
from speechbrain_grl.utils.precision import warn_slow_bf16

logger = logging.getLogger(__name__)

__all__ = ["find_audio", "plan_batches", "load_model", "model_outputs",
           "predict", "encode_windows", "classify_windows",
           "prediction_rows", "Windows", "pooled", "head", "main",
           "quantize_int8", "calibration_audio", "OnnxInt8Encoder",
           "session_of"]

AUDIO_SUFFIXES = (".wav", ".flac")
SAMPLE_RATE = 16000
#: Shortest file or trimmed window, in samples at 16 kHz.
MIN_SAMPLES = round(MIN_DURATION * SAMPLE_RATE)
SILENT = "silent audio (every sample under -80 dBFS)"
#: The regressor's outputs, in order, and their column names.
DIMENSIONS = ("valence", "arousal", "dominance")


def find_audio(paths):
    """Files given, plus ``*.wav``/``*.flac`` under folders given (sorted).

    Paths that do not exist are kept: they become error rows. In folders,
    macOS AppleDouble files (``._*``, as in real IEMOCAP copies) are
    skipped and counted in a log line; a file named explicitly is kept.

    Parameters
    ----------
    paths : list of str or pathlib.Path
        Files and folders.

    Returns
    -------
    list of pathlib.Path
        The audio files.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> (tmp / "a" / "b").mkdir(parents=True)
    >>> for name in ("a/x.wav", "a/b/y.FLAC", "a/notes.txt", "a/._x.wav"):
    ...     _ = (tmp / name).write_text("")
    >>> [p.name for p in find_audio([tmp / "a"])]
    ['y.FLAC', 'x.wav']
    """
    out, apple = [], 0
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = [p for p in path.rglob("*")
                 if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
        apple += sum(p.name.startswith("._") for p in found)
        out += sorted(p for p in found if not p.name.startswith("._"))
    if apple:
        logger.warning("skipped %d AppleDouble (._*) files", apple)
    return out


def plan_batches(frames, window, batch_frames):
    """Windows of each file, sorted by length and grouped into batches.

    Parameters
    ----------
    frames : list of int
        Length of each file (samples at the model's rate).
    window : int
        Longest window; longer files are split into equal windows.
    batch_frames : int
        Most padded samples in a batch (at least one window per batch;
        0: one window per batch).

    Returns
    -------
    list of list of tuple
        Batches of ``(file_index, start, stop)``.

    Example
    -------
    >>> plan_batches([100, 250, 90], window=100, batch_frames=300)
    [[(1, 168, 250), (1, 0, 84), (1, 84, 168)], [(2, 0, 90), (0, 0, 100)]]
    """
    segs = []
    for i, n in enumerate(frames):
        parts = max(1, math.ceil(n / window))
        size = math.ceil(n / parts)
        segs += [(i, s, min(s + size, n)) for s in range(0, n, size)]
    segs.sort(key=lambda s: (s[2] - s[1], s[0], s[1]))
    batches, batch = [], []
    for seg in segs:
        longest = seg[2] - seg[1]  # sorted: the newest is the longest
        if batch and (batch_frames <= 0
                      or longest * (len(batch) + 1) > batch_frames):
            batches.append(batch)
            batch = []
        batch.append(seg)
    if batch:
        batches.append(batch)
    return batches


class ModelError(GRLError):
    """An exported model folder that cannot be loaded."""


def load_model(model_dir, savedir=None, device="cpu"):
    """Loads an exported folder with SpeechBrain's ``EncoderClassifier``.

    ``model_dir`` overrides the path recorded at export, so a moved or
    copied folder loads too.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        A folder written by :mod:`speechbrain_grl.inference.export`.
    savedir : str, optional
        Where SpeechBrain links the files (default: a temporary folder,
        removed once the model is loaded).
    device : str
        ``cpu``, ``cuda:0``...

    Returns
    -------
    speechbrain.inference.classifiers.EncoderClassifier
        The model.

    Raises
    ------
    ModelError
        When the folder cannot be loaded (one line).
    """
    from speechbrain.inference.classifiers import EncoderClassifier

    model_dir = Path(model_dir)
    if not (model_dir / "hyperparams.yaml").is_file():
        raise ModelError(
            f"--model {model_dir}: no hyperparams.yaml there; pass a folder "
            "written by speechbrain_grl.inference.export"
        )
    if savedir is None:  # SpeechBrain's links, not needed once loaded
        with tempfile.TemporaryDirectory(prefix="sb-grl-model-") as tmp:
            return load_model(model_dir, savedir=tmp, device=device)
    try:
        return EncoderClassifier.from_hparams(
            source=str(model_dir.resolve()), savedir=str(savedir),
            overrides={"model_dir": str(model_dir.resolve())},
            run_opts={"device": device},
        )
    except Exception as err:  # noqa: BLE001 - any load failure, one line
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ModelError(
            f"--model {model_dir}: cannot load it ({type(err).__name__}: "
            f"{msg})"
        ) from err


PRECISIONS = ("fp32", "bf16", "int8")
CALIBRATION_FILES = 8  # files that set the int8 convolutions' ranges


def quantize_int8(clf, backend="auto", cache_dir=None, calibration=None):
    """Runs the encoder's linear layers in int8, in place; CPU only.

    Two paths, the faster first (measured on 2 cores, wav2vec2-base-sized
    encoder: ``benchmarks/results.md``):

    - ``onnxruntime``: the encoder is exported to ONNX once (into
      ``cache_dir``, a temporary folder by default), its MatMul/Gemm
      weights quantised to int8 with ONNX Runtime's dynamic quantisation,
      and run by an ONNX Runtime session; needs ``pip install onnxruntime
      onnx``. Given ``calibration`` audio, the convolutions after the
      first (the feature encoder's and the positional one) run in int8
      too, their activation ranges read from that audio; the first one,
      which sees the waveform itself at whatever loudness it comes, stays
      fp32, as every convolution does without ``calibration``;
    - ``torch``: PyTorch's dynamic quantisation of ``torch.nn.Linear``
      (``calibration`` is not used).

    ``auto`` takes ONNX Runtime when it is installed. The exported folder
    and its stock ``EncoderClassifier`` loading are unchanged: this is
    applied to the loaded model.

    Parameters
    ----------
    clf : speechbrain.inference.classifiers.EncoderClassifier
        The loaded model, changed in place.
    backend : str
        ``auto``, ``onnxruntime`` or ``torch``.
    cache_dir : str, optional
        Where the ONNX files go.
    calibration : list of torch.Tensor, optional
        16 kHz mono clips (``[samples]``, as :func:`calibration_audio`
        reads them) whose activation ranges fix the int8 convolutions'
        scales.

    Returns
    -------
    speechbrain.inference.classifiers.EncoderClassifier
        ``clf``.

    Example
    -------
    >>> import torch
    >>> class Clf:  # the part of an EncoderClassifier used here
    ...     mods = {"compute_features": torch.nn.Module()}
    >>> clf = Clf()
    >>> clf.mods["compute_features"].model = torch.nn.Sequential(
    ...     torch.nn.Linear(4, 4))
    >>> _ = quantize_int8(clf, backend="torch")
    >>> clf.mods["compute_features"].model[0].weight().dtype
    torch.qint8
    """
    if backend not in ("auto", "onnxruntime", "torch"):
        raise ModelError(f"int8 backend {backend!r}: use auto, onnxruntime "
                         "or torch")
    if not hasattr(clf.mods["compute_features"], "model"):
        raise ModelError("int8 quantises a Hugging Face SSL encoder; this "
                         "model's encoder is not one: use fp32 or bf16")
    if backend != "torch":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if backend == "onnxruntime":
                raise ModelError("the onnxruntime int8 path needs "
                                 "`pip install onnxruntime onnx`") from None
            backend = "torch"
    encoder = clf.mods["compute_features"]
    if backend == "torch":
        import warnings

        with warnings.catch_warnings():  # the API is deprecated upstream
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            encoder.model = quantize_dynamic(
                encoder.model, {torch.nn.Linear}, dtype=torch.qint8)
    else:
        encoder.model = OnnxInt8Encoder.build(encoder.model, cache_dir,
                                              calibration)
    return clf


def calibration_audio(files, n=CALIBRATION_FILES, max_seconds=10.0):
    """The clips that calibrate :func:`quantize_int8`'s convolutions.

    The first ``n`` of ``files`` that can be read and are not silent;
    of a file longer than ``max_seconds``, a window that long (only it
    is decoded; placed by a generator seeded 0). Files that fail are
    skipped here (the prediction reports them).

    Parameters
    ----------
    files : list of pathlib.Path
        Audio files, as :func:`find_audio` lists them.
    n : int
        How many clips at most.
    max_seconds : float
        The longest clip read.

    Returns
    -------
    list of torch.Tensor
        ``[samples]`` at 16 kHz.

    Example
    -------
    >>> calibration_audio([Path("no_such_file.wav")])
    []
    """
    clips, gen = [], torch.Generator().manual_seed(0)
    for path in files:
        if len(clips) == n:
            break
        try:
            sig = read_audio(str(path), SAMPLE_RATE, max_seconds, gen)
        except Exception:  # unreadable: the prediction's error row
            continue
        if sig.numel() >= MIN_DURATION * SAMPLE_RATE and not is_silent(sig):
            clips.append(sig)
    return clips


class OnnxInt8Encoder(torch.nn.Module):
    """A Hugging Face SSL encoder run by ONNX Runtime with int8 matrices.

    It answers the call SpeechBrain's wrapper makes,
    ``model(wav, attention_mask=..., output_hidden_states=False)``, with an
    object holding ``last_hidden_state``.
    """

    def __init__(self, session, config):
        """Wraps an ONNX Runtime session.

        Parameters
        ----------
        session : onnxruntime.InferenceSession
            The int8 encoder.
        config : transformers.PretrainedConfig
            The encoder's configuration, which SpeechBrain's wrapper
            reads.
        """
        super().__init__()
        self.session = session
        self.config = config

    @classmethod
    def build(cls, model, cache_dir=None, calibration=None):
        """Exports ``model`` to ONNX in int8 and opens a session.

        The fp32 export's MatMul/Gemm weights are quantised to int8
        (dynamic quantisation). With ``calibration``, its convolutions
        whose inputs have more than one channel per group are first
        quantised statically (weights and activations in int8, the
        activations' ranges the minimum and maximum over the calibration
        clips); the waveform's convolution stays fp32. The session is
        :func:`session_of`'s.

        Parameters
        ----------
        model : transformers.PreTrainedModel
            The Hugging Face encoder.
        cache_dir : str, optional
            Where the ONNX files go (default: a temporary folder, removed
            once the session is built).
        calibration : list of torch.Tensor, optional
            16 kHz mono clips that set the convolutions' activation
            ranges.

        Returns
        -------
        OnnxInt8Encoder
            The wrapped session.
        """
        import warnings

        from onnxruntime.quantization import QuantType, quantize_dynamic

        if cache_dir is None:  # the session holds the model once built
            with tempfile.TemporaryDirectory(prefix="sb-grl-int8-") as tmp:
                return cls.build(model, tmp, calibration)
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        fp32, int8 = folder / "encoder.onnx", folder / "encoder_int8.onnx"

        class _Export(torch.nn.Module):
            """The encoder as ``(wav, mask) -> hidden states``."""

            def __init__(self, model):
                """Holds the encoder.

                Parameters
                ----------
                model : torch.nn.Module
                    The Hugging Face encoder.
                """
                super().__init__()
                self.model = model

            def forward(self, wav, mask):
                """The encoder's last hidden states.

                Parameters
                ----------
                wav : torch.Tensor
                    ``[batch, samples]``.
                mask : torch.Tensor
                    The attention mask, as ``wav``.

                Returns
                -------
                torch.Tensor
                    ``[batch, frames, hidden]``.
                """
                return self.model(wav, attention_mask=mask).last_hidden_state

        wav = torch.zeros(1, SAMPLE_RATE)
        mask = torch.ones(1, SAMPLE_RATE, dtype=torch.long)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Export(model).eval(), (wav, mask), str(fp32),
                input_names=["wav", "mask"], output_names=["feats"],
                dynamic_axes={"wav": {0: "batch", 1: "samples"},
                              "mask": {0: "batch", 1: "samples"},
                              "feats": {0: "batch", 1: "frames"}},
                opset_version=17, dynamo=False)
            convs = folder / "encoder_conv_int8.onnx"
            if calibration and _quantize_convolutions(fp32, convs,
                                                      calibration):
                fp32 = convs
            with _without_quantiser_advice():
                quantize_dynamic(str(fp32), str(int8),
                                 weight_type=QuantType.QInt8,
                                 op_types_to_quantize=["MatMul", "Gemm"])
        return cls(session_of(int8), model.config)

    def forward(self, wav, attention_mask=None, output_hidden_states=False):
        """Hidden states of ``wav``.

        Parameters
        ----------
        wav : torch.Tensor
            ``[batch, samples]``.
        attention_mask : torch.Tensor, optional
            1 for samples, 0 for padding.
        output_hidden_states : bool
            Unsupported (the last layer only).

        Returns
        -------
        types.SimpleNamespace
            With ``last_hidden_state`` ``[batch, frames, hidden]``.
        """
        from types import SimpleNamespace

        if output_hidden_states:
            raise ModelError("the int8 encoder returns the last layer only")
        if attention_mask is None:
            attention_mask = torch.ones_like(wav, dtype=torch.long)
        feats = self.session.run(None, {
            "wav": wav.detach().float().cpu().numpy(),
            "mask": attention_mask.long().cpu().numpy()})[0]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(feats))


def session_of(path, spinning=False):
    """An ONNX Runtime CPU session as the int8 encoder runs one.

    With torch's thread count, and worker threads that sleep between
    runs instead of spinning (``spinning=False``): spinning workers take
    the cores from torch's threads, which run the model's head between
    the encoder's calls (benchmarks/ort_spinning.md).

    Parameters
    ----------
    path : str or pathlib.Path
        An ONNX file.
    spinning : bool
        ONNX Runtime's ``session.intra_op.allow_spinning``.

    Returns
    -------
    onnxruntime.InferenceSession
        The session.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if spinning else "0")
    return ort.InferenceSession(str(path), options,
                                providers=["CPUExecutionProvider"])


class _QuantiserAdvice(logging.Filter):
    """Drops the advice ONNX Runtime's quantiser logs on every call (to
    pre-process the model first, to check that it is not quantised
    already), which says nothing about this encoder."""

    PREFIXES = ("Please consider to run pre-processing",
                "Please consider pre-processing",
                "Please check if the model is already quantized")

    def filter(self, record):
        """Whether ``record`` is kept.

        Parameters
        ----------
        record : logging.LogRecord
            A record of the root logger.

        Returns
        -------
        bool
            False for the advice.
        """
        return not str(record.msg).startswith(self.PREFIXES)


@contextlib.contextmanager
def _without_quantiser_advice():
    """The root logger drops :class:`_QuantiserAdvice`'s messages."""
    advice = _QuantiserAdvice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)


def _quantize_convolutions(source, target, calibration):
    """Statically quantises an ONNX encoder's convolutions to int8.

    Those whose weight has more than one input channel per group, and
    whose weight and bias are constants (the exporter passes a constant
    equal to another through an ``Identity``: such inputs are read from
    the constant); activation ranges from ``calibration`` (minimum and
    maximum). If ONNX Runtime fails, the convolutions stay fp32, with a
    warning.

    Parameters
    ----------
    source, target : pathlib.Path
        The fp32 model, and where the quantised one goes.
    calibration : list of torch.Tensor
        16 kHz mono clips.

    Returns
    -------
    bool
        Whether ``target`` was written.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(source))
    graph = model.graph
    weights = {w.name: w.dims for w in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in weights}
    nodes = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        for i, name in enumerate(node.input[1:], 1):
            node.input[i] = alias.get(name, name)
        if (all(name in weights for name in node.input[1:])
                and len(weights[node.input[1]]) > 1
                and weights[node.input[1]][1] > 1):
            nodes.append(node.name)
    resolved = target.with_name(target.stem + "_source.onnx")
    onnx.save(model, str(resolved))

    class _Clips(CalibrationDataReader):
        """The calibration clips as the encoder's inputs."""

        def __init__(self):
            """Iterates over ``calibration``."""
            self.clips = iter(calibration)

        def get_next(self):
            """The next clip's inputs, or None when done.

            Returns
            -------
            dict or None
                ``wav`` and ``mask``, ``[1, samples]``.
            """
            clip = next(self.clips, None)
            if clip is None:
                return None
            wav = clip.detach().float().reshape(1, -1).cpu().numpy()
            return {"wav": wav, "mask": torch.ones(wav.shape,
                                                   dtype=torch.long).numpy()}

    try:
        with _without_quantiser_advice():
            quantize_static(str(resolved), str(target), _Clips(),
                            quant_format=QuantFormat.QOperator,
                            op_types_to_quantize=["Conv"],
                            nodes_to_quantize=nodes,
                            activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
    except Exception as err:  # onnxruntime's quantiser, on a new graph
        logger.warning("int8: the encoder's convolutions stay fp32 (ONNX "
                       "Runtime could not quantise them: %s)", err)
        return False
    return True


def _frames(path):
    """Length at 16 kHz (as :func:`read_audio` returns it), or raises
    ValueError for unusable files.

    Parameters
    ----------
    path : pathlib.Path
        An audio file.

    Returns
    -------
    int
        Its length in samples at 16 kHz.

    Raises
    ------
    ValueError
        For a missing or empty file, or one shorter than
        ``MIN_DURATION``.
    """
    if not path.exists():
        raise ValueError("no such file")
    info = sf.info(str(path))
    if info.frames == 0:
        raise ValueError("empty audio (no samples)")
    if info.frames < MIN_DURATION * info.samplerate:
        raise ValueError(f"too short ({info.frames / info.samplerate:.3f} "
                         f"s, under {MIN_DURATION:g} s)")
    return math.ceil(info.frames * SAMPLE_RATE / info.samplerate)


def model_outputs(clf):
    """What a loaded model predicts: emotion classes, dimensions, both.

    The regressor is detected in the model's modules (a ``regressor``,
    as exported from dimensional and both runs); its emotion classes
    count unless its hparams say ``task: dimensional`` (the classifier
    is then untrained).

    Parameters
    ----------
    clf : speechbrain.inference.classifiers.EncoderClassifier
        The loaded model.

    Returns
    -------
    classes : bool
        Whether the emotion classes are trained.
    dimensions : bool
        Whether there is a regressor.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> clf = SimpleNamespace(mods=torch.nn.ModuleDict(),
    ...                       hparams=SimpleNamespace())
    >>> model_outputs(clf)
    (True, False)
    >>> clf.mods["regressor"] = torch.nn.Sigmoid()
    >>> clf.hparams.task = "dimensional"
    >>> model_outputs(clf)
    (False, True)
    """
    dimensions = "regressor" in clf.mods
    task = getattr(clf.hparams, "task", None)
    classes = not (dimensions and task == "dimensional")
    return classes, dimensions


def _autocast(clf, precision):
    """bfloat16 autocast on ``clf``'s device for ``precision="bf16"`` (a
    warning, once, where that device has no bfloat16 kernels), a no-op
    otherwise."""
    device_type = clf.device.split(":")[0]
    if precision == "bf16":
        warn_slow_bf16(device_type, "prediction")
    return torch.autocast(device_type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")


def _split(clf):
    """Whether ``clf`` has the exported layout: an encoder, then an
    ``embedding_model`` whose first module is the pooling."""
    return "compute_features" in clf.mods and "embedding_model" in clf.mods


def _quantised(module):
    """Whether ``module`` runs in int8 (:func:`quantize_int8`): its
    activations are then quantised with scales of the whole batch."""
    return any(isinstance(m, OnnxInt8Encoder)
               or "quantized" in type(m).__module__
               for m in module.modules())


def pooled(clf, wavs, lens):
    """A padded batch through the encoder and its pooling: each clip's
    pooled features ``[batch, 1, dim]`` before the normalisation.

    A Hugging Face encoder is given the lengths and encodes each clip as
    if alone (:func:`speechbrain_grl.nnet.exact_padding.encode`): batched
    predictions are then those of one file at a time, and of the recipe's
    test pass. Other encoders (the int8 one) are called as
    ``encode_batch`` calls them, seeing the padding. The pooling is the
    first module of ``embedding_model`` (mean pooling, or none for an
    encoder that pools itself); the recipe normalises after it, as
    :func:`head` does. A model of another layout gives its
    ``encode_batch`` embedding, which :func:`head` keeps.
    """
    if not _split(clf):
        return clf.encode_batch(wavs, lens)
    mods = clf.mods
    wavs, lens = wavs.to(clf.device).float(), lens.to(clf.device)
    if handles(mods.compute_features):
        feats, frames = encode(mods.compute_features, wavs, lens)
    else:
        feats, frames = mods.compute_features(wavs), lens
    return next(iter(mods.embedding_model.children()))(feats, frames)


def head(clf, feats):
    """Pooled features ``[n, 1, dim]`` (:func:`pooled`) to utterance
    embeddings: the model's normalisation (the prior, or the speaker mean
    that :mod:`~speechbrain_grl.inference.adaptation` set in
    ``mean_var_norm``), then the rest of ``embedding_model``. Mean pooling
    is linear, so this is ``encode_batch``'s embedding, normalised after
    the pooling as in training."""
    if not _split(clf):
        return feats
    x = clf.mods.mean_var_norm(feats, torch.ones(len(feats),
                                                 device=feats.device))
    for layer in list(clf.mods.embedding_model.children())[1:]:
        x = layer(x)
    return x


class Windows:
    """Every window of some files through the encoder and pooling, once:
    what :func:`predict` classifies, and what a speaker's statistics are
    made of (:func:`encode_windows`).

    Attributes
    ----------
    feats : dict
        ``{file index: [windows, dim]}`` pooled features (float32, CPU)
        of the file's windows that are not silent, before normalisation.
    errors : dict
        ``{file index: one-line error}`` for files that cannot be read.
    silent : dict
        ``{file index: windows left out as silent}``.
    whole : set
        Files read as one window, untrimmed, and encoded as if alone
        (an exact fp32 or bf16 encoder, or a batch of one): their
        features are the whole clip's, those
        :func:`~speechbrain_grl.inference.adaptation.pooled_features`
        gives.
    """

    def __init__(self):
        self.feats, self.errors, self.silent, self.whole = {}, {}, {}, set()


def encode_windows(clf, files, window_seconds=10.0, batch_seconds=60.0,
                   progress=True, precision="fp32", trim_silence=False):
    """Reads ``files`` in windows and batches and encodes each window once
    (:func:`pooled`); the arguments are :func:`predict`'s.

    Returns
    -------
    Windows
        The pooled features, per file.
    """
    out = Windows()
    frames = []
    for i, path in enumerate(files):
        try:
            frames.append(_frames(Path(path)))
        except Exception as err:  # noqa: BLE001 - reported as a row
            out.errors[i] = _one_line(err)
            frames.append(0)
    usable = [i for i in range(len(files)) if i not in out.errors]
    window = max(1, int(window_seconds * SAMPLE_RATE))
    plan = plan_batches([frames[i] for i in usable], window,
                        int(batch_seconds * SAMPLE_RATE))
    found = {i: [] for i in usable}
    out.silent = dict.fromkeys(usable, 0)
    pending = dict.fromkeys(usable, 0)
    for batch in plan:
        for j, _, _ in batch:
            pending[usable[j]] += 1
    cache = {}
    bar = tqdm(total=sum(len(b) for b in plan), unit="window",
               disable=not progress, file=sys.stderr)
    exact = (_split(clf) and handles(clf.mods.compute_features)
             and not _quantised(clf.mods.compute_features))
    for batch in plan:
        segs, whole = [], []
        for j, start, stop in batch:
            i = usable[j]
            if i in out.errors:
                continue
            if i not in cache:
                try:
                    cache[i] = read_audio(str(files[i]), SAMPLE_RATE)
                except Exception as err:  # noqa: BLE001
                    out.errors[i] = _one_line(err)
                    continue
            sig = cache[i][start:stop]
            if not len(sig):  # shorter than its header said
                continue
            if is_silent(sig):
                out.silent[i] += 1
                continue
            if trim_silence:
                sig = _trim(sig, min_samples=MIN_SAMPLES)
            segs.append((i, sig))
            whole.append(not trim_silence and start == 0
                         and stop >= len(cache[i]))
        if segs:
            longest = max(len(s) for _, s in segs)
            # A clip's features are its own when the encoder is exact or
            # the clip is alone: the ONNX int8 encoder sees the padding,
            # and both int8 encoders quantise with the batch's scales.
            out.whole.update(i for (i, _), w in zip(segs, whole)
                             if w and (exact or len(segs) == 1))
            wavs = torch.stack([
                torch.nn.functional.pad(s, (0, longest - len(s)))
                for _, s in segs])
            lens = torch.tensor([len(s) / longest for _, s in segs])
            with torch.no_grad(), _autocast(clf, precision):
                feats = pooled(clf, wavs, lens).reshape(len(segs), -1)
            for (i, _), row in zip(segs, feats.float().cpu()):
                found[i].append(row)
        for j, _, _ in batch:
            i = usable[j]
            pending[i] -= 1
            if pending[i] == 0:
                cache.pop(i, None)
        bar.update(len(batch))
    bar.close()
    out.feats = {i: torch.stack(rows) for i, rows in found.items()
                 if rows and i not in out.errors}
    out.whole &= set(out.feats)
    return out


#: Windows classified at once by :func:`classify_windows`.
HEAD_BATCH = 4096


def classify_windows(clf, windows, index=None, precision="fp32"):
    """The heads on encoded windows, with the model's normalisation as it
    is now (:func:`head`): each file's probabilities and dimensions
    averaged over its windows.

    Parameters
    ----------
    clf : speechbrain.inference.classifiers.EncoderClassifier
        The loaded model.
    windows : Windows
        From :func:`encode_windows`.
    index : list of int, optional
        The files to classify (default: every file with a window).
    precision : str
        ``bf16`` runs the heads under bfloat16 autocast.

    Returns
    -------
    dict
        ``{file index: (probabilities [labels], dimensions [3] or [0])}``.
    """
    dimensions = "regressor" in clf.mods
    index = [i for i in (sorted(windows.feats) if index is None else index)
             if i in windows.feats]
    if not index:
        return {}
    feats = torch.cat([windows.feats[i] for i in index])
    probs, dims = [], []
    with torch.no_grad(), _autocast(clf, precision):
        for chunk in feats.split(HEAD_BATCH):
            emb = head(clf, chunk.to(clf.device).unsqueeze(1))
            probs.append(clf.mods.classifier(emb).squeeze(1).float().exp()
                         .cpu())
            dims.append(clf.mods.regressor(emb).squeeze(1).float().cpu()
                        if dimensions else torch.zeros(len(chunk), 0))
    counts = [len(windows.feats[i]) for i in index]
    return {i: (p.mean(0), d.mean(0)) for i, p, d in zip(
        index, torch.cat(probs).split(counts), torch.cat(dims).split(counts))}


def prediction_rows(clf, files, windows, outputs):
    """:func:`predict`'s rows from :func:`classify_windows`'s
    ``outputs`` (files not in them get their error, ``silent audio`` or
    ``no audio``)."""
    classes, dimensions = model_outputs(clf)
    labels = clf.hparams.label_encoder.decode_ndim(
        list(range(len(clf.hparams.label_encoder))))
    rows = []
    for i, path in enumerate(files):
        row = {"path": str(path)}
        if classes:
            row.update({"label": "", "score": ""})
            row.update({f"prob_{lab}": "" for lab in labels})
        if dimensions:
            row.update(dict.fromkeys(DIMENSIONS, ""))
        done = i not in windows.errors and i in outputs
        if done:
            probs, vad = outputs[i]
            if classes:
                best = int(probs.argmax())
                row["label"] = labels[best]
                row["score"] = round(float(probs[best]), 6)
                for lab, p in zip(labels, probs):
                    row[f"prob_{lab}"] = round(float(p), 6)
            if dimensions:
                for dim, x in zip(DIMENSIONS, vad):
                    row[dim] = round(float(x), 6)
        row["error"] = windows.errors.get(
            i, "" if done else SILENT if windows.silent.get(i)
            else "no audio")
        rows.append(row)
    return rows


def predict(clf, files, window_seconds=10.0, batch_seconds=60.0,
            progress=True, precision="fp32", trim_silence=False):
    """Predictions for ``files``, one dict per file, in input order.

    Each dict has ``path``, ``label``, ``score`` (the averaged probability
    of the label), ``prob_<label>`` for every label and ``error`` (empty
    when the file was classified). A model with a regressor (see
    :func:`model_outputs`) adds ``valence``, ``arousal`` and
    ``dominance`` before ``error``, each normalised to [0, 1] and
    averaged over the file's windows; a dimensional-only model has no
    ``label``, ``score`` or ``prob_*`` keys. ``precision="bf16"`` runs
    the model under bfloat16 autocast: about 2.5x faster on CPUs with
    AVX512-BF16 or AMX, with outputs that differ slightly from fp32. For
    ``int8`` pass a model that went through :func:`quantize_int8`.

    Windows that are digital silence throughout (peak under -80 dBFS)
    are not classified; a file with no other window gets the error
    ``silent audio``. The steps are :func:`encode_windows`,
    :func:`classify_windows` and :func:`prediction_rows`.

    Parameters
    ----------
    clf : speechbrain.inference.classifiers.EncoderClassifier
        The loaded model.
    files : list of pathlib.Path
        Audio files.
    window_seconds : float
        Longer files are cut into equal windows of at most this.
    batch_seconds : float
        Padded audio per batch (0: one window per batch).
    progress : bool
        Show a progress bar on stderr.
    precision : str
        ``fp32``, ``bf16`` or ``int8``.
    trim_silence : bool
        Cut leading and trailing digital silence off each window before
        it is classified (keeping at least 0.05 s around the sound). Off
        by default, as in training and the recipe's test pass.

    Returns
    -------
    list of dict
        One row per file.
    """
    files = [Path(f) for f in files]
    windows = encode_windows(clf, files, window_seconds, batch_seconds,
                             progress, precision, trim_silence)
    return prediction_rows(clf, files, windows, classify_windows(
        clf, windows, precision=precision))


def _one_line(err):
    """An error as one line of at most 300 characters.

    Parameters
    ----------
    err : Exception
        The error.

    Returns
    -------
    str
        Its message on one line (its type's name when empty).

    Example
    -------
    >>> _one_line(ValueError("bad\\n  file"))
    'bad file'
    """
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]


def write_rows(rows, output=None):
    """Writes rows as CSV (stdout or ``*.csv``) or JSON (``*.json``).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`predict` (the first one's keys are the columns).
    output : str or pathlib.Path, optional
        The file; None: CSV on stdout.
    """
    if output is not None and str(output).lower().endswith(".json"):
        with open(output, "w", encoding="utf-8") as fout:
            json.dump(rows, fout, indent=2)
        return
    fout = (open(output, "w", newline="", encoding="utf-8")
            if output else sys.stdout)
    try:
        writer = csv.DictWriter(fout, fieldnames=list(rows[0]) if rows
                                else ["path", "label", "score", "error"])
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if output:
            fout.close()


def main(argv=None):
    """The ``speechbrain-grl-predict`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0, or 1 when a file failed.
    """
    parser = argparse.ArgumentParser(
        prog="speechbrain-grl-predict",
        description="Emotion of audio files with an exported model: "
        "label and probabilities, and for models trained on dimensions "
        "valence, arousal and dominance normalised to [0, 1].",
    )
    parser.add_argument("--model", required=True,
                        help="a folder written by "
                        "speechbrain_grl.inference.export")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="audio files or folders (*.wav, *.flac)")
    parser.add_argument("--output", default=None,
                        help="preds.csv or preds.json (default: CSV on "
                        "stdout)")
    parser.add_argument("--batch-seconds", type=float, default=60.0,
                        help="padded audio per batch (default 60; "
                        "each file's probabilities are those it gets "
                        "alone, except with --precision int8, whose "
                        "encoder quantises with the batch's scales); 0: "
                        "one file or window at a time")
    parser.add_argument("--window-seconds", type=float, default=10.0,
                        help="files longer than this are classified in "
                        "windows whose probabilities are averaged (default "
                        "10: bounded memory on long recordings; the "
                        "recipe's test pass reads whole utterances, which "
                        "in IEMOCAP are at most ~35 s: pass 40 to match "
                        "it there)")
    parser.add_argument("--trim-silence", action="store_true",
                        help="cut leading and trailing digital silence "
                        "(under -80 dBFS) off each window before it is "
                        "classified (default: audio as it is, as in "
                        "training)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS,
                        default="fp32",
                        help="bf16: autocast, faster on CPUs with "
                        "AVX512-BF16/AMX and on GPUs (far slower on CPUs "
                        "without AVX-512: a warning says so); int8: the "
                        "encoder's matrix products in int8, and with ONNX "
                        "Runtime installed its convolutions after the "
                        "waveform's too, calibrated on the first 8 files "
                        "(else PyTorch dynamic quantisation), CPU only; "
                        "both give slightly different probabilities "
                        "(default fp32)")
    parser.add_argument("--speakers", default=None, metavar="MAP_CSV",
                        help="CSV with the columns path,speaker: adapt a "
                        "model trained with speaker normalisation to each "
                        "speaker from their clips")
    parser.add_argument("--adapt_clips", "--adapt-clips", type=int,
                        default=None, metavar="K",
                        help="with --speakers: at most K clips per speaker "
                        "for their statistics (default: all; 0: the prior)")
    parser.add_argument("--seed", type=int, default=0,
                        help="with --adapt_clips: the draw of the clips")
    parser.add_argument("--recenter", action="store_true",
                        help="a model trained with speaker normalisation: "
                        "re-centre its prior on the files being "
                        "classified (their average, no label)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    prog = parser.prog
    if args.window_seconds <= 0 or args.batch_seconds < 0:
        parser.error("--window-seconds must be > 0 and --batch-seconds "
                     ">= 0")
    if args.precision == "int8" and args.device != "cpu":
        parser.error("--precision int8 runs on the CPU only; use bf16 on "
                     f"{args.device}")
    if args.adapt_clips is not None and (args.adapt_clips < 0
                                         or not args.speakers):
        parser.error("--adapt_clips takes a count >= 0, with --speakers")
    if args.output and not str(args.output).lower().endswith(
            (".csv", ".json")):
        parser.error(f"--output {args.output}: use a .csv or .json name")
    logging.basicConfig(level=logging.WARNING)
    files = find_audio(args.paths)
    if not files:
        sys.exit(f"{prog}: error: no *.wav or *.flac files in "
                 f"{' '.join(args.paths)}")
    try:
        clf = load_model(args.model, device=args.device)
    except ModelError as err:
        sys.exit(f"{prog}: error: {err}")
    if args.precision == "int8":
        quantize_int8(clf, calibration=calibration_audio(files))
    options = dict(window_seconds=args.window_seconds,
                   batch_seconds=args.batch_seconds,
                   progress=not args.no_progress, precision=args.precision,
                   trim_silence=args.trim_silence)
    if args.speakers or args.recenter:
        from speechbrain_grl.inference.adaptation import (
            AdaptationError,
            normalised,
            predict_speakers,
            read_speaker_map,
        )
        flag = "--speakers" if args.speakers else "--recenter"
        if not normalised(clf):
            sys.exit(f"{prog}: error: {flag}: {args.model} was trained "
                     "without speaker normalisation, so it cannot adapt to "
                     f"speakers; drop {flag}")
        try:
            speakers = (read_speaker_map(args.speakers) if args.speakers
                        else {})
            rows = predict_speakers(clf, files, speakers, args.adapt_clips,
                                    args.seed, recenter=args.recenter,
                                    **options)
        except AdaptationError as err:
            sys.exit(f"{prog}: error: {err}")
    else:
        rows = predict(clf, files, **options)
    write_rows(rows, args.output)
    failed = [r for r in rows if r["error"]]
    for row in failed:
        print(f"{prog}: {row['path']}: {row['error']}", file=sys.stderr)
    print(f"{prog}: {len(rows) - len(failed)} files classified, "
          f"{len(failed)} failed", file=sys.stderr)
    return 1 if failed else 0


def cli():
    """``speechbrain-grl-predict``: :func:`main`, exit unswept."""
    from speechbrain_grl.utils.process import run_command
    run_command(main)


if __name__ == "__main__":
    cli()
