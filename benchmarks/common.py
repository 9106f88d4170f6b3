"""Shared helpers of the benchmarks: the Brain, fixed batches, statistics.

The Brain is built in-process from the recipe's demo yaml with overrides,
exactly as ``train.py`` builds it, so the benchmarks time the code users
run.
"""

import os
import pathlib
import platform
import statistics
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "IEMOCAP" / "emotion_recognition_grl"
DEMO_YAML = RECIPE / "hparams" / "demo_grl.yaml"
if str(REPO) not in sys.path:  # runnable from a fresh clone
    sys.path.insert(0, str(REPO))

MODES = ("none", "grl", "tap", "snp")
ENCODER_DIM = {"tiny": 32, "base": 768}


def make_encoder(folder, size):
    """A random wav2vec2 (``tiny`` or ``base``), built once in ``folder``."""
    from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl

    return make_tiny_ssl(pathlib.Path(folder) / f"w2v_{size}", size=size)


def load_hparams(encoder, size, workdir, adversary="none", **overrides):
    """The demo yaml's hparams with ``encoder`` as the SSL model."""
    from hyperpyyaml import load_hyperpyyaml

    base = {
        "adversary": adversary,
        "output_folder": str(pathlib.Path(workdir) / "out"),
        "data_folder": str(workdir),  # the demo corpus is not built
        "ssl_hub": str(encoder),
        "encoder_dim": ENCODER_DIM[size],
        # One turn per fit_batch, so that emotion and speaker turns are
        # timed apart (same_batch runs both in one call: same cost).
        "alternate": "next_batch",
    }
    base.update(overrides)
    with open(DEMO_YAML, encoding="utf-8") as fin:
        return load_hyperpyyaml(fin, base)


def build_brain(hparams, device="cpu", precision="fp32"):
    """A ``SpeakerAdversarialBrain`` ready for ``fit_batch``."""
    import speechbrain as sb

    from speechbrain_grl.brain import SpeakerAdversarialBrain

    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"],
        hparams=hparams,
        run_opts={"device": device, "precision": precision},
        checkpointer=None,
    )
    brain.on_fit_start()
    brain.modules.train()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    return brain


def use_method(brain, mode, step=0):
    """Switches ``brain`` to the method ``mode`` (built once per Brain
    from its yaml's flat keys, all sharing its λ schedule) and sets the
    schedule's step (0: the next TAP/SNP step is an emotion step)."""
    from speechbrain_grl.methods import method_from_hparams

    cache = brain.__dict__.setdefault("_methods", {})
    if mode not in cache:
        cache[mode] = method_from_hparams(dict(vars(brain.hparams),
                                               adversary=mode))
    brain.method = cache[mode]
    brain.hparams.lambda_schedule.current_step = step
    return brain.method


def fixed_batches(n_batches, batch_size, seconds, n_speakers=8, seed=0):
    """Random-waveform batches with labels; one utterance per row.

    Lengths step down from ``seconds`` to ``0.8 * seconds`` inside each
    batch, so every batch has some padding, as real batches do.
    """
    import torch
    from speechbrain.dataio.batch import PaddedBatch

    gen = torch.Generator().manual_seed(seed)
    batches = []
    for b in range(n_batches):
        rows = []
        for i in range(batch_size):
            frac = 1.0 - 0.2 * i / max(batch_size - 1, 1)
            n = int(16000 * seconds * frac)
            rows.append({
                "id": f"b{b}_{i}",
                "sig": 0.1 * torch.randn(n, generator=gen),
                "emo_encoded": torch.LongTensor([(b + i) % 4]),
                "spk_encoded": torch.LongTensor([(b * 3 + i) % n_speakers]),
                "emo": "neu",
            })
        batches.append(PaddedBatch(rows))
    return batches


def summary(values):
    """Median and interquartile range of a list of numbers."""
    values = sorted(values)
    if len(values) < 2:
        return {"median": values[0], "iqr": 0.0, "n": len(values)}
    q = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "iqr": q[2] - q[0],
            "n": len(values)}


def machine():
    """Where the numbers come from: CPU model, cores, versions, GPU."""
    import speechbrain
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fin:
            for line in fin:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "speechbrain": speechbrain.__version__,
        "python": platform.python_version(),
        "gpu": gpu,
    }


def set_threads(n):
    """Pins torch's intra-op threads (all modes use the same count)."""
    import torch

    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
