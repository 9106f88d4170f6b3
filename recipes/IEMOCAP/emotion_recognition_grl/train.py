#!/usr/bin/env python3
"""Speaker-normalised emotion recognition on IEMOCAP with an SSL encoder.

An SSL encoder (wav2vec2, HuBERT, WavLM) is fine-tuned for 4-class emotion
while an adversary removes the speaker from its utterance embedding
(Gat et al., "Speaker Normalization for Self-supervised Speech Emotion
Recognition", ICASSP 2022). The hparam ``adversary`` selects the baseline
(``none``), a gradient reversal layer (``grl``) or the paper's alternating
ascent (``tap``, ``snp``).

To run this recipe, do the following:
> python train.py hparams/wav2vec2_grl.yaml \
>     --data_folder=/path/to/IEMOCAP_full_release

The embedded demo needs no data and no network:
> python train.py hparams/demo_grl.yaml
"""

import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from iemocap_prepare import prepare_iemocap
from speechbrain.utils.distributed import run_on_main

from speechbrain_grl.brain import SpeakerAdversarialBrain
from speechbrain_grl.checks import (
    RecipeError,
    check_hparams,
    check_ranks_in_sync,
)
from speechbrain_grl.dataio import dataio_prep
from speechbrain_grl.iemocap import IEMOCAPError
from speechbrain_grl.loader_opts import loader_options
from speechbrain_grl.probe import probe_after, probe_before

if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    try:
        check_hparams(hparams_file, overrides)
    except RecipeError as err:
        sys.exit(f"train.py: error: {err}")
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)

    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )

    # Manifests with the true speaker of every utterance (rank 0 only).
    try:
        run_on_main(
            prepare_iemocap,
            kwargs={
                "data_folder": hparams["data_folder"],
                "save_folder": hparams["output_folder"],
                "split": hparams["split"],
                "test_session": hparams["test_session"],
                "test_speaker": hparams["test_speaker"],
                "valid_from": hparams.get("valid_from"),
                "valid_ratio": hparams["valid_ratio"],
                "seed": hparams["seed"],
                "sessions": hparams["sessions"],
                "emotions": hparams["emotions"],
                "skip_prep": hparams.get("skip_prep", False),
            },
        )
    except IEMOCAPError as err:
        sys.exit(f"train.py: error: {err}")
    datasets = dataio_prep(hparams)
    hparams["label_encoder"] = datasets["label_encoder"]
    hparams["spk_encoder"] = datasets["spk_encoder"]

    try:
        brain = SpeakerAdversarialBrain(
            modules=hparams["modules"],
            hparams=hparams,
            run_opts=run_opts,
            checkpointer=hparams["checkpointer"],
        )
    except ValueError as err:  # e.g. --precision=fp16 on a CPU
        sys.exit(f"train.py: error: {err}")
    # Speaker probe of the untrained model, once (a resumed run keeps it).
    if hparams.get("probe_speakers", False):
        run_on_main(probe_before, args=[brain, hparams])
    train_loader_kwargs = hparams["dataloader_options"]
    if "train_sampler" in datasets:
        train_loader_kwargs = {"batch_sampler": datasets["train_sampler"]}
    # Workers and pinned memory on a GPU only (see loader_opts).
    workers = hparams.get("num_workers", 2)
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
    if hparams.get("run_test", True):
        brain.evaluate(
            test_set=datasets["test"],
            max_key="UA",
            test_loader_kwargs=loader_options(
                hparams["test_dataloader_options"], brain.device, workers
            ),
        )
        if hparams.get("probe_speakers", False):
            run_on_main(probe_after, args=[brain, hparams])
    if torch.distributed.is_initialized():  # a clean exit for every rank
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
