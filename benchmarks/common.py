"""Shared helpers of the benchmarks: the Brain, fixed batches, statistics.

The Brain is built in-process from the recipe's demo yaml with overrides,
exactly as ``train.py`` builds it, so the benchmarks time the code users
run.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile

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


# the instruction sets that decide CPU kernels' speed (fp32, bf16, int8)
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                "amx_bf16", "amx_int8")


def machine():
    """Where the numbers come from: CPU model, cores, versions, GPU."""
    import speechbrain
    import torch

    cpu = platform.processor() or platform.machine()
    features = []
    ids = {}  # family and model: machines sold under one name differ
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fin:
            for line in fin:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("cpu family", "model"):
                    ids[key] = value.strip()
                elif key == "model name":
                    cpu = value.strip()
                elif key == "flags":
                    flags = value.split()
                    features = [f for f in CPU_FEATURES if f in flags]
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cpu_features": features,
        "cpu_family_model": (f"{ids['cpu family']}/{ids['model']}"
                             if len(ids) == 2 else None),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "speechbrain": speechbrain.__version__,
        "python": platform.python_version(),
        "gpu": gpu,
    }


def cpu_text(m):
    """A report's words for ``machine()``'s CPU: its model, family and
    model numbers, and the vector features read.

    Example
    -------
    >>> cpu_text({"cpu": "AMD EPYC", "cpu_family_model": "25/17",
    ...           "cpu_features": ["avx2", "avx512f"]})
    'AMD EPYC, family/model 25/17 (avx2, avx512f)'
    >>> cpu_text({"cpu": "AMD EPYC"})
    'AMD EPYC (no flags read)'
    """
    ids = m.get("cpu_family_model")
    return (f"{m.get('cpu')}{f', family/model {ids}' if ids else ''} "
            f"({', '.join(m.get('cpu_features', [])) or 'no flags read'})")


def command(script, argv=None):
    """The report's first line: the command that wrote it (``argv``, or
    this process's arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join([f"`python benchmarks/{script}", *args]) + "`"


#: CPU step benchmarks (conv_backend.py, front_end.py): encoder size,
#: clips per training batch, repetitions per timing; and clip seconds.
STEP_SHAPES = (("tiny", 8, 10), ("base", 2, 3))
STEP_SECONDS = 3.0


def step_args(doc, rounds, argv=None):
    """A CPU step benchmark's command line: ``--rounds`` (interleaved),
    ``--threads`` and ``--out``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks"))
    return parser.parse_args(argv)


def per_size(measure, args):
    """``{size: measure(size, batch, reps, rounds, folder)}`` (plus
    ``batch``) over :data:`STEP_SHAPES`, with the threads pinned and the
    random encoders built in a temporary folder."""
    set_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size, batch, reps in STEP_SHAPES:
            results[size] = dict(
                measure(size, batch, reps, args.rounds,
                        str(pathlib.Path(tmp) / size)), batch=batch)
            print(size, results[size], flush=True)
    return results


def write_step_report(args, name, title, what, table, results):
    """Writes a CPU step benchmark's ``<name>.json`` (``results`` and the
    machine) and ``<name>.md``: ``title``, the command, ``what`` followed
    by the rounds, the machine and the threads, then the ``table`` lines.
    """
    host = machine()
    lines = [
        f"# {title}", "", command(f"{name}.py"), "",
        f"{what} Median over {args.rounds} interleaved rounds. Machine: "
        f"{cpu_text(host)}, {host['cores']} cores, torch {host['torch']}, "
        f"{args.threads} threads.", "", *table]
    write_report(args.out, name, dict(results, machine=host), lines)


def write_report(out, name, results, lines):
    """Writes ``<out>/<name>.json`` (``results``) and ``<name>.md`` (the
    Markdown ``lines``), and prints the Markdown."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def set_threads(n):
    """Pins torch's intra-op threads (all modes use the same count)."""
    import torch

    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def demo_run(work, adversary, epochs, utts=None, export=False):
    """A demo recipe run in ``work/run`` (``--demo_utts_per_speaker`` when
    ``utts`` is given, probes off) and, with ``export``, its exported model
    in ``work/model``; each reused when already there. Returns the run
    folder, or ``(run, model)`` with ``export``."""
    import subprocess

    work = pathlib.Path(work)
    run, model = work / "run", work / "model"
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    if not (run / "test_metrics.json").exists():
        subprocess.run(
            [sys.executable, "train.py", str(DEMO_YAML),
             f"--output_folder={run}", f"--demo_folder={work / 'assets'}",
             *([f"--demo_utts_per_speaker={utts}"] if utts else []),
             f"--number_of_epochs={epochs}", "--probe_speakers=False",
             f"--adversary={adversary}"],
            cwd=RECIPE, check=True, capture_output=True, env=env)
    if not export:
        return run
    if not (model / "hyperparams.yaml").exists():
        subprocess.run([sys.executable, "export.py", f"--from={run}",
                        f"--to={model}"], cwd=RECIPE, check=True,
                       capture_output=True, env=env)
    return run, model


def _recipe_train():
    """The recipe's ``train.py`` as a module (its data preparation's
    settings, :func:`prepare_hparams`, are what a run prepares)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_recipe_train", RECIPE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_manifests(folder, overrides, demo_folder):
    """Prepares a demo run's manifests in ``folder`` without training.

    ``overrides`` are the run's ``--key=value`` arguments; the demo yaml
    is loaded with them (building the demo corpus in ``demo_folder`` if
    needed) and the corpus is prepared as ``train.py`` prepares it, so
    the manifests are exactly the run's (same corpus, split and seed).
    Returns ``folder`` (``train.json``, ``valid.json``, ``test.json``,
    ``prepare_opts.json``; with ``--test_corpus``, each test corpus's
    ``cross_corpus/<name>/all.json``) and the loaded hparams.
    """
    import yaml
    from hyperpyyaml import load_hyperpyyaml

    values = {}
    for arg in overrides:
        key, _, value = arg.lstrip("-").partition("=")
        values[key] = yaml.safe_load(value)
    values.update(output_folder=str(folder), demo_folder=str(demo_folder))
    with open(DEMO_YAML, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, values)
    train = _recipe_train()
    pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
    from speechbrain_grl.dataio.prepare import prepare_corpus

    prepare_corpus(**train.prepare_hparams(hparams))
    # The zero-shot test corpora, as train.py's test_other_corpora
    # prepares them (<folder>/cross_corpus/<name>/all.json).
    names = hparams.get("test_corpus")
    if names:
        names = [n.strip() for n in str(names).split(",")]
        folders = str(hparams["test_data_folder"]).split(",")
        for name, data in zip(names, folders, strict=True):
            prepare_corpus(name, data,
                           pathlib.Path(folder) / "cross_corpus" / name,
                           split="all", emotions=hparams["emotions"],
                           min_duration=hparams["min_duration"])
    return pathlib.Path(folder), hparams


def classic_scores(run, task="categorical", tests=None):
    """The classic baseline on a run's folds (plain and per-speaker
    z-norm; :func:`speechbrain_grl.evaluation.classic.evaluate`): fitted
    on ``<run>/train.json``, tested on ``<run>/test.json`` or, with
    ``tests`` (``{name: manifest}``), on each of those. Cached in
    ``<run>/classic.json``; None when the run has no manifests (a run
    that was never prepared)."""
    import json

    from speechbrain_grl.evaluation.classic import evaluate, run_split

    run = pathlib.Path(run)
    if not (run / "train.json").is_file():
        return None
    key = {"task": task, "tests": {k: str(v) for k, v in
                                   sorted((tests or {}).items())}}
    cache = run / "classic.json"
    if cache.is_file():
        old = json.loads(cache.read_text(encoding="utf-8"))
        if old.get("key") == key:
            return old["scores"]
    train = run_split(run, "train")
    if tests is None:
        scores = evaluate(train, run_split(run, "test"), task)
    else:
        scores = {name: evaluate(train, run_split(run, None, path), task)
                  for name, path in tests.items()}
    cache.write_text(json.dumps({"key": key, "scores": scores}, indent=1),
                     encoding="utf-8")
    return scores


def classic_only_run(workdir, overrides):
    """A demo run's manifests, prepared (once) without training under
    ``<workdir>/classic/`` for the run's ``overrides``: what
    ``--classic_only`` scores the classic baseline on."""
    import hashlib

    tag = hashlib.sha1(" ".join(sorted(overrides)).encode()).hexdigest()
    folder = pathlib.Path(workdir).resolve() / "classic" / tag[:12]
    if not (folder / "train.json").is_file():
        demo_manifests(folder, overrides, folder.parent / "demo_assets")
        (folder / "overrides.txt").write_text(" ".join(overrides) + "\n",
                                              encoding="utf-8")
    return folder
