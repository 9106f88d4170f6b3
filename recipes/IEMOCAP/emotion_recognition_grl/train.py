#!/usr/bin/env python3
"""Speaker-normalised emotion recognition with an SSL encoder.

An SSL encoder (wav2vec2, HuBERT, WavLM) is fine-tuned for 4-class emotion
while an adversary removes the speaker from its utterance embedding
(Gat et al., "Speaker Normalization for Self-supervised Speech Emotion
Recognition", ICASSP 2022). The hparam ``adversary`` selects the baseline
(``none``), a gradient reversal layer (``grl``), the paper's alternating
ascent (``tap``, ``snp``) or per-speaker normalisation (``spknorm``).

To run this recipe, do the following:
> python train.py hparams/wav2vec2_grl.yaml \
>     --data_folder=/path/to/IEMOCAP_full_release

Other corpora (crema_d, ravdess, emodb, msp_podcast, or your own csv),
and a zero-shot test on a second corpus:
> python train.py hparams/wav2vec2_grl.yaml --corpus=crema_d \
>     --data_folder=/path/to/CREMA-D --n_speakers=91 \
>     --test_corpus=ravdess --test_data_folder=/path/to/RAVDESS

The embedded demo needs no data and no network:
> python train.py hparams/demo_grl.yaml

The yaml is the one source of configuration: it builds the model and the
method that removes the speaker (``speaker_method``), and the Brain reads
what it needs of it (``speechbrain_grl.brain_hparams.BRAIN_HPARAMS``).
"""

import gc
import os
import sys

if __name__ == "__main__":
    # The imports and the model build make millions of objects that live
    # as long as the process: the garbage collector stays off until they
    # exist, then never sweeps them (settle_heap; benchmarks/startup.md).
    gc.disable()
# Torch's OpenMP threads wait for work passively (set before torch loads):
# beside a second run, spinning threads made an epoch 9x slower
# (benchmarks/threads.md). OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import dataio_prep, eval_dataset
from speechbrain_grl.dataio.prepare import prepare_corpus
from speechbrain_grl.evaluation.probe import probe_after, probe_before
from speechbrain_grl.utils.ddp import end_distributed
from speechbrain_grl.utils.errors import GRLError
from speechbrain_grl.utils.hparams_checks import (
    check_augmenter,
    check_hparams,
    check_ranks_in_sync,
)
from speechbrain_grl.utils.loader_opts import loader_options
from speechbrain_grl.utils.process import settle_heap, write_environment_log
from speechbrain_grl.utils.threads import configure_threads
from speechbrain_grl.utils.timing import PhaseTimer


def data_hparams(hparams):
    """The data pipelines' settings, read from the yaml (as SpeechBrain
    recipes read them for their data preparation)."""
    return {
        "train_annotation": hparams["train_annotation"],
        "valid_annotation": hparams["valid_annotation"],
        "test_annotation": hparams["test_annotation"],
        "data_folder": hparams["data_folder"],
        "emotions": hparams["emotions"],
        "n_speakers": hparams["n_speakers"],
        "sample_rate": hparams["sample_rate"],
        "max_train_duration": hparams["max_train_duration"],
        "train_per_class": hparams["train_per_class"],
        "train_subset_seed": hparams["train_subset_seed"],
        "dynamic_batching": hparams["dynamic_batching"],
        "max_batch_length": hparams["max_batch_length"],
        "num_buckets": hparams["num_buckets"],
        "bucketing": hparams["bucketing"],
        "seed": hparams["seed"],
        "task": hparams["task"],
    }


def prepare_hparams(hparams):
    """The corpus preparation's settings, read from the yaml."""
    kwargs = {
        "corpus": hparams["corpus"],
        "data_folder": hparams["data_folder"],
        "save_folder": hparams["output_folder"],
        "split": hparams["split"],
        "fold": hparams["fold"],
        "n_folds": hparams["n_folds"],
        "valid_from": hparams["valid_from"],
        "valid_ratio": hparams["valid_ratio"],
        "seed": hparams["seed"],
        "emotions": hparams["emotions"],
        "skip_prep": hparams.get("skip_prep", False),
        "min_duration": hparams["min_duration"],
    }
    if hparams["corpus"] == "iemocap":
        kwargs.update(
            sessions=hparams["sessions"],
            test_session=hparams["test_session"],
            test_speaker=hparams["test_speaker"],
        )
        if hparams["keep_all_emotions"]:  # dimensional work: every clip
            kwargs["keep_all_emotions"] = True
    return kwargs


def test_other_corpora(brain, hparams, datasets, loader_kwargs):
    """Zero-shot cross-corpus test: the selected checkpoint on the whole
    of each ``test_corpus`` (comma-separated, with as many
    ``test_data_folder`` entries), into ``cross_corpus/<name>/``."""
    names = hparams["test_corpus"]
    if not names:
        return
    names = [n.strip() for n in str(names).split(",")]
    folders = hparams["test_data_folder"]
    folders = [] if folders is None else str(folders).split(",")
    if len(folders) != len(names):
        raise GRLError(
            f"test_corpus names {len(names)} corpora but test_data_folder "
            f"{len(folders)}; pass one folder per corpus, comma-separated")
    for name, folder in zip(names, folders):
        target = os.path.join(hparams["output_folder"], "cross_corpus", name)
        run_on_main(prepare_corpus, kwargs={
            "corpus": name, "data_folder": folder, "save_folder": target,
            "split": "all", "emotions": hparams["emotions"],
            "min_duration": hparams["min_duration"],
        })
        test_set = eval_dataset(
            os.path.join(target, "all.json"), folder,
            datasets["label_encoder"], datasets["spk_encoder"],
            hparams["sample_rate"], hparams["task"])
        brain.set_test_target(target, test_corpus=name,
                              train_corpus=hparams["corpus"],
                              class_counts=None)
        brain.evaluate(test_set=test_set, max_key=brain.selection_key,
                       test_loader_kwargs=loader_kwargs)
    brain.set_test_target(None)


def main(argv):
    """Prepares the data, trains, tests and probes one model."""
    timer = PhaseTimer()  # where the time goes: <output_folder>/timing.json
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    configure_threads()  # cores / processes on this machine (threads.py)
    sb.utils.distributed.ddp_init_group(run_opts)
    check_hparams(hparams_file, overrides)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    check_augmenter(hparams.get("wav_augment"))  # keeps a batch's clips

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
        save_env_desc=False,  # env.log: below, without a pip subprocess
    )
    run_on_main(write_environment_log, args=[hparams["output_folder"]])

    # Manifests with the true speaker of every utterance (rank 0 only).
    with timer.phase("data"):
        run_on_main(prepare_corpus, kwargs=prepare_hparams(hparams))
        datasets = dataio_prep(**data_hparams(hparams))
    for key in ("label_encoder", "spk_encoder", "class_counts"):
        hparams[key] = datasets[key]

    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.timer = timer  # the Brain adds its train/valid/test stages
    settle_heap()  # the collector on, for what is made from here
    # Speaker probe of the untrained model, once (a resumed run keeps it).
    if hparams["probe_speakers"]:
        with timer.phase("probe"):
            run_on_main(probe_before, args=[brain])
    train_loader_kwargs = hparams["dataloader_options"]
    if "train_sampler" in datasets:
        train_loader_kwargs = {"batch_sampler": datasets["train_sampler"]}
    # Workers and pinned memory on a GPU only (see loader_opts).
    workers = hparams["num_workers"]
    brain.fit(
        epoch_counter=hparams["epoch_counter"],
        train_set=datasets["train"],
        valid_set=datasets["valid"],
        train_loader_kwargs=loader_options(
            train_loader_kwargs, brain.device, workers
        ),
        valid_loader_kwargs=loader_options(
            hparams["valid_dataloader_options"], brain.device, workers
        ),
    )
    check_ranks_in_sync(brain.modules)  # DDP: all processes agree
    # Model selection reads validation only: the checkpoint with the best
    # validation UA (or CCC, per task and select_on) is tested.
    # Sweeps train with run_test: False and test only the value they pick.
    if hparams["run_test"]:
        test_loader_kwargs = loader_options(
            hparams["test_dataloader_options"], brain.device, workers
        )
        brain.set_test_target(None, test_corpus=hparams["corpus"])
        brain.evaluate(
            test_set=datasets["test"],
            max_key=hparams["emotion_task"].selection_key,
            test_loader_kwargs=test_loader_kwargs,
        )
        if hparams["probe_speakers"]:
            with timer.phase("probe"):
                run_on_main(probe_after, args=[brain],
                            kwargs={"train_logger": hparams["train_logger"]})
        test_other_corpora(brain, hparams, datasets, test_loader_kwargs)
    run_on_main(timer.write, args=[
        os.path.join(hparams["output_folder"], "timing.json")])
    end_distributed(brain.modules)  # DDP: a clean exit for every rank


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except GRLError as err:  # one line that says what to do, no traceback
        sys.exit(f"train.py: error: {err}")
    finally:
        gc.freeze()  # the interpreter's exit sweeps none of it
