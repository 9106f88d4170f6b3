"""Data pipelines: manifests to batches of 16 kHz mono waveforms and labels.

Audio is read where it lies (never copied), mixed down to mono, resampled
to the model's rate and, for training, cropped to ``max_train_duration`` so
that memory stays bounded on long files. The training and validation
sets keep their decoded clips in memory for the next epochs, up to 1 GiB
(:class:`AudioCache`).

Real files (``tests/test_real_files.py``):

- any rate libsndfile reads (22.05, 44.1, 48 kHz...) is resampled to
  16 kHz: ``n`` frames at rate ``r`` give ``ceil(n * 16000 / r)`` samples;
- several channels are averaged into one (out-of-phase channels cancel);
- clips of at least ``MIN_DURATION`` (0.05 s) are kept whole by the
  preparations, shorter ones are dropped and counted (``too_short_wav``);
- training reads a random window of ``max_train_duration`` seconds of
  longer clips (only the window is decoded); validation and test read
  whole clips, whatever their length;
- digital silence (leading, trailing or all of a clip) is kept as it is:
  nothing is trimmed in training or evaluation, and an all-silent clip
  gives finite losses. :func:`trim_silence` is there for inference, where
  ``speechbrain-grl-predict --trim-silence`` uses it.
"""

import functools
import logging
import math

import soundfile as sf
import speechbrain as sb
import torch
import torchaudio
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder
from speechbrain.dataio.sampler import DynamicBatchSampler
from torch.utils.data import get_worker_info

from speechbrain_grl.dataio.subset import subsample_per_class
from speechbrain_grl.utils.hparams_checks import RecipeError

logger = logging.getLogger(__name__)

__all__ = ["read_audio", "AudioCache", "audio_dataset", "clips", "readable",
           "dataio_prep", "trim_silence", "is_silent", "SILENCE",
           "quantile_boundaries", "DATA_HPARAMS", "data_hparams"]

#: Peak amplitude under which audio counts as digital silence (-80 dBFS,
#: about 3 LSB of 16-bit PCM: dithered silence is silence too).
SILENCE = 1e-4


def quantile_boundaries(lengths, num_buckets):
    """Bucket boundaries at the quantiles of the training lengths.

    SpeechBrain's ``DynamicBatchSampler`` otherwise spreads its buckets
    up to ``max_batch_length`` (log-normal warping): when a batch holds
    many utterances (``max_batch_length`` far above the longest crop),
    most buckets lie beyond every utterance and the few left pad heavily
    (48% padding measured at 240 s batches of 12 s crops). Quantiles put
    the same number of utterances in every bucket whatever the batch size.

    Arguments
    ---------
    lengths : list of float
        Training lengths (seconds, after the crop).
    num_buckets : int
        How many buckets.

    Returns
    -------
    list of float
        Ascending, distinct; the last one is the longest length.

    Example
    -------
    >>> quantile_boundaries([1, 2, 3, 4, 5, 6, 7, 8], 4)
    [2.75, 4.5, 6.25, 8.0]
    >>> quantile_boundaries([3, 3, 3], 4)
    [3.0]
    """
    import numpy as np

    qs = np.linspace(1.0 / num_buckets, 1.0, num_buckets)
    bounds = np.unique(np.quantile(np.asarray(lengths, dtype=float), qs))
    return [round(float(b), 6) for b in bounds]


def read_audio(path, sample_rate=16000, max_duration=None, generator=None):
    """Reads a file as a mono float tensor at ``sample_rate``.

    Channels are averaged; a file at another rate is resampled
    (``torchaudio.functional.resample``), ``n`` frames at rate ``r``
    giving ``ceil(n * sample_rate / r)`` samples. Nothing is trimmed.

    Arguments
    ---------
    path : str
        Audio file (any format libsndfile reads).
    sample_rate : int
        Target rate; other rates are resampled.
    max_duration : float, optional
        If set and the file is longer, a random window of this many seconds
        is read (only that window is decoded): ``ceil(max_duration * r)``
        frames at the file's rate ``r``, uniformly placed inside the file,
        so ``max_duration * sample_rate`` samples when that is a whole
        number. Shorter files are read whole.
    generator : torch.Generator, optional
        Source of randomness for the window's start.

    Returns
    -------
    torch.Tensor
        Shape ``[samples]``, float32.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sig = np.stack([np.ones(8000), -np.ones(8000)], axis=1) * 0.5
    >>> sf.write(tmp / "st.wav", sig, 8000)
    >>> read_audio(str(tmp / "st.wav")).shape  # stereo 8 kHz, 1 s
    torch.Size([16000])
    >>> float(read_audio(str(tmp / "st.wav")).abs().max()) < 1e-6
    True
    """
    with sf.SoundFile(path) as fin:  # one open: header, then the window
        rate = fin.samplerate
        start, stop = _window(fin.frames, rate, max_duration, generator)
        if start:
            fin.seek(start)
        data = fin.read(stop - start, dtype="float32", always_2d=True)
    return _at_rate(torch.from_numpy(data).mean(dim=1), rate, sample_rate)


def _window(frames, rate, max_duration=None, generator=None):
    """``(start, stop)`` frames of a file of ``frames`` at ``rate`` to
    read: all of it, or a random ``max_duration`` window of a longer one
    (one draw from ``generator``)."""
    start, stop = 0, frames
    if max_duration is not None:
        crop = int(math.ceil(max_duration * rate))
        if frames > crop:
            start = int(torch.randint(0, frames - crop + 1, (1,),
                                      generator=generator))
            stop = start + crop
    return start, stop


def _at_rate(sig, rate, sample_rate):
    """A mono signal at ``rate`` resampled to ``sample_rate``."""
    if rate != sample_rate:
        sig = torchaudio.functional.resample(sig, rate, sample_rate)
    return sig


#: The default memory budget of :class:`AudioCache` (float32 mono at the
#: files' rates: about 4.6 hours of 16 kHz audio).
AUDIO_CACHE_BYTES = 1 << 30


class AudioCache:
    """Decoded clips kept in memory, so that epochs after the first read
    none from disk: :func:`read_audio`'s results, sample for sample.

    A clip is kept as its mono mix at the file's own rate; a call takes
    its training window (the same random draw as :func:`read_audio`)
    and resamples it, as :func:`read_audio` does. The demo's 1,500 clips
    read 16 times took 6.7 s from disk (0.28 ms a clip, 2 cores) and
    1.1 s kept, in 160 MB (``benchmarks/audio_cache.md``).

    Clips are kept while they fit in ``max_bytes``; the rest are read
    from disk every time. Data-loader workers read from disk: each
    would fill a copy of its own (the CPU loads in the main process,
    ``utils.loader_opts``).

    Arguments
    ---------
    max_bytes : int
        Memory budget of the kept clips.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.linspace(-0.5, 0.5, 8000), 8000)
    >>> cache = AudioCache()
    >>> a = cache.read(str(tmp / "a.wav"), 16000)
    >>> b = cache.read(str(tmp / "a.wav"), 16000)
    >>> bool(torch.equal(a, read_audio(str(tmp / "a.wav"))))
    True
    >>> cache.hits, cache.misses, cache.nbytes
    (1, 1, 32000)
    """

    def __init__(self, max_bytes=AUDIO_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = self.misses = 0
        self._clips = {}  # path -> (mono float32 at the file's rate, rate)
        self._full = False

    def read(self, path, sample_rate=16000, max_duration=None,
             generator=None):
        """:func:`read_audio`'s signal for these arguments."""
        clip = self._clips.get(path)
        if clip is None:
            self.misses += 1
            if self._full or get_worker_info() is not None:
                return read_audio(path, sample_rate, max_duration,
                                  generator)
            clip = self._keep(path)
        else:
            self.hits += 1
        mono, rate = clip
        start, stop = _window(len(mono), rate, max_duration, generator)
        return _at_rate(mono[start:stop].clone(), rate, sample_rate)

    def _keep(self, path):
        """Decodes a whole file; keeps it if it fits in the budget."""
        with sf.SoundFile(path) as fin:
            rate = fin.samplerate
            data = fin.read(dtype="float32", always_2d=True)
        mono = torch.from_numpy(data).mean(dim=1)
        size = mono.numel() * mono.element_size()
        if self.nbytes + size <= self.max_bytes:
            self._clips[path] = (mono, rate)
            self.nbytes += size
        else:
            self._full = True
        return mono, rate


def is_silent(sig, level=SILENCE):
    """Whether a signal is empty or digital silence throughout.

    Arguments
    ---------
    sig : torch.Tensor
        A waveform in [-1, 1].
    level : float
        Peak amplitude under which it is silent (default -80 dBFS).

    Returns
    -------
    bool

    Example
    -------
    >>> is_silent(torch.zeros(16000)), is_silent(torch.tensor([0, 0.1]))
    (True, False)
    """
    return sig.numel() == 0 or float(sig.abs().max()) < level


def trim_silence(sig, level=SILENCE, min_samples=0):
    """Cuts leading and trailing digital silence off a waveform.

    Samples before the first and after the last one whose magnitude
    reaches ``level`` are dropped; silence inside is kept. The result is
    widened around the sound, as far as the signal allows, to at least
    ``min_samples``, so that an encoder still gets a frame out of a
    click.

    Arguments
    ---------
    sig : torch.Tensor
        A waveform, ``[samples]``.
    level : float
        Peak amplitude under which a sample is silent (default -80 dBFS).
    min_samples : int
        Shortest result (unless the signal itself is shorter).

    Returns
    -------
    torch.Tensor
        A view of ``sig``; empty when it is silent throughout.

    Example
    -------
    >>> sig = torch.tensor([0.0, 0.0, 0.5, 0.0, -0.5, 0.0, 0.0, 0.0])
    >>> trim_silence(sig).tolist()
    [0.5, 0.0, -0.5]
    >>> len(trim_silence(sig, min_samples=6)), len(trim_silence(sig * 0))
    (6, 0)
    """
    loud = torch.nonzero(sig.abs() >= level).flatten()
    if loud.numel() == 0:
        return sig[:0]
    start, stop = int(loud[0]), int(loud[-1]) + 1
    if stop - start < min_samples:
        start = max(0, start - (min_samples - (stop - start)) // 2)
        stop = min(len(sig), start + min_samples)
        start = max(0, stop - min_samples)
    return sig[start:stop]


def readable(wavs, lens):
    """``[batch]`` booleans: the clips of a padded batch that hold at
    least one sample (an unreadable file's pipeline gives an empty one).

    Example
    -------
    >>> readable(torch.zeros(2, 4), torch.tensor([0.0, 1.0])).tolist()
    [False, True]
    """
    return lens * wavs.shape[-1] >= 1


def clips(batch):
    """A SpeechBrain ``PaddedBatch`` split into batches of one clip each,
    unpadded (for instance to evaluate the good clips of a batch that
    holds a bad one).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch([{"id": "a", "sig": torch.ones(3)},
    ...                      {"id": "b", "sig": torch.ones(5)}])
    >>> [(one.id, one.sig.data.shape[1]) for one in clips(batch)]
    [(['a'], 3), (['b'], 5)]
    """
    keys = [k for k in vars(batch) if not k.startswith("_PaddedBatch__")]
    examples = [{} for _ in range(len(batch))]
    for key in keys:
        value = batch[key]
        for i, example in enumerate(examples):
            if isinstance(value, sb.dataio.batch.PaddedData):
                n = int(torch.round(value.lengths[i] * value.data.shape[1]))
                example[key] = value.data[i, :n]
            else:
                example[key] = value[i]
    return [sb.dataio.batch.PaddedBatch([e]) for e in examples]


def audio_dataset(json_path, data_folder, sample_rate=16000,
                  max_duration=None, select=None, skip_unreadable=False,
                  cache=None):
    """A manifest as a dataset whose dynamic item ``sig`` is the audio.

    Arguments
    ---------
    json_path : str
        A SpeechBrain JSON manifest with ``wav`` paths.
    data_folder : str
        Replaces ``{data_root}`` in the paths (audio is read in place).
    sample_rate : int
        Rate of the encoder.
    max_duration : float, optional
        Random crop of longer files (training).
    select : callable, optional
        ``entries -> entries`` applied to the manifest first, e.g. a
        subsample or a speaker filter.
    skip_unreadable : bool
        Evaluation sets: a file that cannot be read (changed since the
        preparation) gives an empty signal, with a warning, which the
        Brain skips and counts, instead of an exception that would lose
        the finished training.
    cache : AudioCache, optional
        Keeps the decoded clips for the next epochs (a set read once
        needs none).

    Returns
    -------
    DynamicItemDataset

    Example
    -------
    >>> import json, numpy as np, soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.zeros(8000), 8000)
    >>> _ = (tmp / "m.json").write_text(json.dumps(
    ...     {"a": {"wav": "{data_root}/a.wav", "duration": 1.0}}))
    >>> data = audio_dataset(tmp / "m.json", tmp)
    >>> data.set_output_keys(["id", "sig"])
    >>> data[0]["sig"].shape
    torch.Size([16000])
    """
    data = DynamicItemDataset.from_json(
        json_path=str(json_path),
        replacements={"data_root": str(data_folder)},
    )
    if select is not None:
        data = DynamicItemDataset(select(data.data))

    read = read_audio if cache is None else cache.read

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio(wav):
        """The waveform, randomly cropped if ``max_duration`` is set."""
        if not skip_unreadable:
            return read(wav, sample_rate, max_duration=max_duration)
        try:
            return read(wav, sample_rate, max_duration=max_duration)
        except (RuntimeError, OSError, ValueError) as err:
            logger.warning("cannot read %s (%s); it is skipped", wav, err)
            return torch.zeros(0)

    sb.dataio.dataset.add_dynamic_item([data], audio)
    return data


def _add_labels(data, label_encoder, spk_encoder, task="categorical"):
    """Add the encoded emotion and speaker (and, for a dimensional task,
    the ``vad`` targets) and set the output keys."""
    dimensional = task != "categorical"

    @sb.utils.data_pipeline.takes("emo", "spk_id")
    @sb.utils.data_pipeline.provides("emo_encoded", "spk_encoded")
    def labels(emo, spk_id):
        """Emotion index, and speaker index (-1 outside training)."""
        if dimensional:  # clips outside the classes (keep_all) get -1
            yield torch.LongTensor([label_encoder.lab2ind.get(emo, -1)])
        else:
            yield label_encoder.encode_label_torch(emo)
        # Speakers outside training (valid/test in speaker-independent
        # splits, other corpora) get -1: they never enter the speaker loss.
        index = spk_encoder.lab2ind.get(spk_id, -1)
        yield torch.LongTensor([index])

    keys = ["id", "sig", "emo_encoded", "spk_encoded", "emo", "spk_id"]
    sb.dataio.dataset.add_dynamic_item([data], labels)
    if dimensional:
        @sb.utils.data_pipeline.takes("vad")
        @sb.utils.data_pipeline.provides("vad_target")
        def vad(values):
            """Valence, arousal, dominance in [0, 1]."""
            return torch.tensor(values, dtype=torch.float32)

        sb.dataio.dataset.add_dynamic_item([data], vad)
        keys.append("vad_target")
    sb.dataio.dataset.set_output_keys([data], keys)


def _with_vad(select, path):
    """``select`` followed by dropping clips without ``vad`` (logged); a
    manifest with none at all is an error that says what to do."""
    def keep(entries):
        """Only clips with dimensional labels."""
        if select is not None:
            entries = select(entries)
        kept = {u: e for u, e in entries.items() if e.get("vad")}
        if entries and not kept:
            raise RecipeError(
                f"{path} has no valence/arousal/dominance labels (the "
                "corpus has none, or they are out of range); use task: "
                "categorical")
        if len(kept) < len(entries):
            logger.warning("%s: %d clips without valence/arousal/dominance "
                           "are left out", path, len(entries) - len(kept))
        return kept
    return keep


def eval_dataset(json_path, data_folder, label_encoder, spk_encoder,
                 sample_rate=16000, task="categorical"):
    """A test set from another manifest, e.g. a whole other corpus for a
    zero-shot cross-corpus test, encoded like :func:`dataio_prep`'s.

    Clips whose class the label encoder does not know are left out with a
    warning (another corpus prepared with other ``emotions``).

    Example
    -------
    >>> import json, numpy as np, soundfile as sf
    >>> from speechbrain.dataio.encoder import CategoricalEncoder
    >>> tmp = getfixture("tmp_path")
    >>> sf.write(tmp / "a.wav", np.zeros(8000), 16000)
    >>> _ = (tmp / "all.json").write_text(json.dumps({"a": {
    ...     "wav": "{data_root}/a.wav", "duration": 0.5, "emo": "sad",
    ...     "spk_id": "x"}}))
    >>> emo, spk = CategoricalEncoder(), CategoricalEncoder()
    >>> emo.update_from_iterable(["neu", "sad"])
    >>> spk.update_from_iterable(["s1"])
    >>> item = eval_dataset(tmp / "all.json", tmp, emo, spk)[0]
    >>> int(item["emo_encoded"]), int(item["spk_encoded"])
    (1, -1)
    """
    def known(entries):
        """Only the classes the model has."""
        kept = {u: e for u, e in entries.items()
                if e["emo"] in label_encoder.lab2ind}
        if len(kept) < len(entries):
            logger.warning("%s: %d clips of classes the model lacks are "
                           "left out", json_path, len(entries) - len(kept))
        return kept

    if task != "categorical":
        known = _with_vad(known, json_path)
    data = audio_dataset(json_path, data_folder, sample_rate, select=known,
                         skip_unreadable=True)
    _add_labels(data, label_encoder, spk_encoder, task)
    return data.filtered_sorted(sort_key="duration")


#: The hparams :func:`dataio_prep` takes, with their defaults (``None``
#: for the required ones); the recipe passes them explicitly.
DATA_HPARAMS = {
    "train_annotation": None, "valid_annotation": None,
    "test_annotation": None, "data_folder": None, "emotions": None,
    "n_speakers": None, "sample_rate": 16000, "max_train_duration": None,
    "train_per_class": None, "train_subset_seed": 0,
    "dynamic_batching": False, "max_batch_length": None, "num_buckets": 20,
    "bucketing": "quantile", "seed": 0, "task": "categorical",
}


def data_hparams(hparams):
    """The :data:`DATA_HPARAMS` picked from a loaded recipe yaml (tests and
    benchmarks; the recipe reads them one by one)."""
    return {k: hparams[k] for k in DATA_HPARAMS if k in hparams}


def _class_counts(dataset, emotions):
    """Utterances per class of a dataset."""
    counts = dict.fromkeys(emotions, 0)
    for entry in dataset.data.values():
        counts[entry["emo"]] = counts.get(entry["emo"], 0) + 1
    return counts


def _valid_quota(annotations, per_class):
    """Per-class validation sizes in the proportion N / (training size of
    the class), at least 1 per class present."""
    import json

    counts = {}
    for split in ("train", "valid"):
        with open(annotations[split], encoding="utf-8") as fin:
            for entry in json.load(fin).values():
                key = (split, entry["emo"])
                counts[key] = counts.get(key, 0) + 1
    quota = {}
    for (split, emo), n in counts.items():
        if split == "valid":
            train = counts.get(("train", emo), 0)
            share = min(1.0, per_class / train) if train else 1.0
            quota[emo] = max(1, round(n * share))
    return quota


def dataio_prep(train_annotation, valid_annotation, test_annotation,
                data_folder, emotions, n_speakers, sample_rate=16000,
                max_train_duration=None, train_per_class=None,
                train_subset_seed=0, dynamic_batching=False,
                max_batch_length=None, num_buckets=20, bucketing="quantile",
                seed=0, task="categorical"):
    """Builds the train, valid and test datasets and their label encoders.

    Each dataset gets the dynamic items ``sig`` (waveform),
    ``emo_encoded`` and ``spk_encoded``. The emotion encoder follows
    ``emotions``; the speaker encoder covers the training speakers only.

    Arguments
    ---------
    train_annotation, valid_annotation, test_annotation : str
        SpeechBrain JSON manifests.
    data_folder : str
        Replaces ``{data_root}`` in their paths (audio is read in place).
    emotions : list of str
        The classes, in the order of the emotion head's outputs.
    n_speakers : int
        Outputs of the speaker head (at least the training speakers).
    sample_rate : int
        Rate of the encoder.
    max_train_duration : float, optional
        Random crop of longer training files (seconds); validation and
        test clips are always read whole.
    train_per_class, train_subset_seed : int, optional
        Low-resource training: keep N utterances per class, drawn with
        this seed; the validation set is cut in the same proportion per
        class.
    dynamic_batching : bool
        Batch the training set by duration (``max_batch_length`` seconds
        per batch, ``num_buckets`` buckets, ``bucketing`` ``quantile`` or
        SpeechBrain's ``warping``), shuffled with ``seed``.
    task : str
        ``categorical``, ``dimensional`` or ``both``: the last two add the
        item ``vad_target`` (valence, arousal, dominance in [0, 1] from the
        manifests' ``vad``) and leave out clips without it (a manifest
        without any is an error).

    Returns
    -------
    dict
        ``train``, ``valid``, ``test`` datasets, ``label_encoder``,
        ``spk_encoder``, ``class_counts`` (utterances per class of each
        set, as used) and, with dynamic batching, ``train_sampler``.
    """
    # Manifests name audio as {data_root}/Session1/..., relative to the
    # data folder exactly as it was given to the preparation.
    root = data_folder
    rate = sample_rate
    crop = max_train_duration
    annotations = {"train": train_annotation, "valid": valid_annotation,
                   "test": test_annotation}
    select = {}
    if train_per_class:  # low-resource: train on N per class...
        select["train"] = functools.partial(
            subsample_per_class, per_class=train_per_class,
            seed=train_subset_seed or 0)
        # ... and select on a validation set cut in the same proportion,
        # not on the full one (which would hold many more labels).
        select["valid"] = functools.partial(
            subsample_per_class,
            per_class=_valid_quota(annotations, train_per_class),
            seed=train_subset_seed or 0)
    cache = AudioCache()  # every epoch reads train and valid again
    datasets = {
        split: audio_dataset(
            annotations[split], root, rate,
            max_duration=crop if split == "train" else None,
            select=(select.get(split) if task == "categorical" else
                    _with_vad(select.get(split), annotations[split])),
            skip_unreadable=split != "train",
            cache=cache if split != "test" else None,
        )
        for split in ("train", "valid", "test")
    }

    label_encoder = CategoricalEncoder()
    label_encoder.update_from_iterable(emotions)
    label_encoder.expect_len(len(emotions))
    spk_encoder = CategoricalEncoder()
    spk_encoder.update_from_iterable(
        sorted({d["spk_id"] for d in datasets["train"].data.values()})
    )
    spk_encoder.expect_len(len(spk_encoder))
    if len(spk_encoder) > n_speakers:
        raise RecipeError(
            f"the training set has {len(spk_encoder)} speakers but "
            f"n_speakers is {n_speakers}; pass "
            f"--n_speakers={len(spk_encoder)}"
        )

    for data in datasets.values():
        _add_labels(data, label_encoder, spk_encoder, task)
    out = dict(datasets, label_encoder=label_encoder,
               spk_encoder=spk_encoder,
               class_counts={split: _class_counts(datasets[split], emotions)
                             for split in ("train", "valid", "test")})
    if dynamic_batching:
        train = datasets["train"]
        lengths = [
            min(d["duration"], crop or math.inf) for d in train.data.values()
        ]
        buckets = {"num_buckets": num_buckets}
        if bucketing == "quantile":
            buckets = {"bucket_boundaries": quantile_boundaries(
                lengths, num_buckets)}
        out["train_sampler"] = DynamicBatchSampler(
            train,
            max_batch_length=max_batch_length,
            lengths_list=lengths,
            **buckets,
            shuffle=True,
            batch_ordering="random",
            seed=seed,
        )
    # Evaluation sets run shortest first: less padding, same results.
    for split in ("valid",):
        out[split] = datasets[split].filtered_sorted(sort_key="duration")
    return out
