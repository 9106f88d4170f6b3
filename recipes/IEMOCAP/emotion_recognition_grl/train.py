#!/usr/bin/env python3
"""Speaker-normalised emotion recognition on IEMOCAP with an SSL encoder.

An SSL encoder (wav2vec2, HuBERT, WavLM) is fine-tuned for 4-class emotion
while an adversary removes the speaker from its utterance embedding
(Gat et al., "Speaker Normalization for Self-supervised Speech Emotion
Recognition", ICASSP 2022). The hparam ``adversary`` selects the baseline
(``none``), a gradient reversal layer (``grl``), the paper's alternating
ascent (``tap``, ``snp``) or per-speaker normalisation (``spknorm``).

To run this recipe, do the following:
> python train.py hparams/wav2vec2_grl.yaml \
>     --data_folder=/path/to/IEMOCAP_full_release

The embedded demo needs no data and no network:
> python train.py hparams/demo_grl.yaml

Every hparam the library uses is read here, by name, and passed on (see
``speechbrain_grl.brain.BRAIN_HPARAMS`` and
``speechbrain_grl.dataio.DATA_HPARAMS``): the yaml is the one source of
configuration and this script shows all of it.
"""

import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from iemocap_prepare import prepare_iemocap
from speechbrain.utils.distributed import run_on_main

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.dataio import dataio_prep
from speechbrain_grl.evaluation.probe import probe_after, probe_before
from speechbrain_grl.utils.errors import GRLError
from speechbrain_grl.utils.hparams_checks import (
    check_hparams,
    check_ranks_in_sync,
)
from speechbrain_grl.utils.loader_opts import loader_options


def brain_hparams(hparams, datasets):
    """The hparams the Brain reads, one by one from the yaml."""
    return {
        "adversary": hparams["adversary"],
        "adversary_scale": hparams["adversary_scale"],
        "adversary_input": hparams["adversary_input"],
        "alpha": hparams["alpha"],
        "lambda_schedule": hparams["lambda_schedule"],
        "ascent_ratio": hparams["ascent_ratio"],
        "ascent_step": hparams["ascent_step"],
        "alternate": hparams["alternate"],
        "spk_loss_balance": hparams["spk_loss_balance"],
        "speaker_norm": hparams["speaker_norm"],
        "log_softmax": hparams["log_softmax"],
        "ssl_opt_class": hparams["ssl_opt_class"],
        "heads_opt_class": hparams["heads_opt_class"],
        "spk_opt_class": hparams["spk_opt_class"],
        "lr_annealing_ssl": hparams["lr_annealing_ssl"],
        "lr_annealing_heads": hparams["lr_annealing_heads"],
        "fused_optimizers": hparams.get("fused_optimizers", True),
        "expandable_segments": hparams.get("expandable_segments", True),
        "epoch_counter": hparams["epoch_counter"],
        "train_logger": hparams["train_logger"],
        "output_folder": hparams["output_folder"],
        "keep_checkpoints": hparams["keep_checkpoints"],
        "avg_checkpoints": hparams["avg_checkpoints"],
        "emotions": hparams["emotions"],
        "n_speakers": hparams["n_speakers"],
        "label_encoder": datasets["label_encoder"],
        "spk_encoder": datasets["spk_encoder"],
        "class_counts": datasets["class_counts"],
        "sorting": hparams.get("sorting"),
    }


def data_hparams(hparams):
    """The hparams of the data pipelines, one by one from the yaml."""
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
    }


def main(argv):
    """Prepares the data, trains, tests and probes one model."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    check_hparams(hparams_file, overrides)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    # Manifests with the true speaker of every utterance (rank 0 only).
    run_on_main(
        prepare_iemocap,
        kwargs={
            "data_folder": hparams["data_folder"],
            "save_folder": hparams["output_folder"],
            "split": hparams["split"],
            "test_session": hparams["test_session"],
            "test_speaker": hparams["test_speaker"],
            "valid_from": hparams["valid_from"],
            "valid_ratio": hparams["valid_ratio"],
            "seed": hparams["seed"],
            "sessions": hparams["sessions"],
            "emotions": hparams["emotions"],
            "skip_prep": hparams.get("skip_prep", False),
            "min_duration": hparams["min_duration"],
        },
    )
    datasets = dataio_prep(**data_hparams(hparams))

    brain = SpeakerAdversarialBrain(
        modules=hparams["modules"],
        hparams=brain_hparams(hparams, datasets),
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    probe = {
        "train_annotation": hparams["train_annotation"],
        "valid_annotation": hparams["valid_annotation"],
        "data_folder": hparams["data_folder"],
        "output_folder": hparams["output_folder"],
        "sample_rate": hparams["sample_rate"],
    }
    # Speaker probe of the untrained model, once (a resumed run keeps it).
    if hparams["probe_speakers"]:
        run_on_main(probe_before, args=[brain], kwargs=probe)
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
    # Model selection reads validation only: the best valid UA is tested.
    # Sweeps train with run_test: False and test only the value they pick.
    if hparams["run_test"]:
        brain.evaluate(
            test_set=datasets["test"],
            max_key="UA",
            test_loader_kwargs=loader_options(
                hparams["test_dataloader_options"], brain.device, workers
            ),
        )
        if hparams["probe_speakers"]:
            run_on_main(probe_after, args=[brain], kwargs=probe)
    if torch.distributed.is_initialized():  # a clean exit for every rank
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except GRLError as err:  # one line that says what to do, no traceback
        sys.exit(f"train.py: error: {err}")
