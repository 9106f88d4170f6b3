"""Data: corpus preparation with true speakers (``prepare``: one entry
point; ``iemocap``, ``crema_d``, ``ravdess``, ``emodb``, ``msp_podcast``,
``csv_corpus``; shared ``labels``, ``manifests``, ``splits``), audio
pipelines and batching (``audio``), low-resource subsets (``subset``).

The names of the former ``speechbrain_grl.dataio`` module are exported
here too, so ``from speechbrain_grl.dataio import dataio_prep`` works.
"""

from speechbrain_grl.dataio.audio import (  # noqa: F401
    DATA_HPARAMS,
    audio_dataset,
    data_hparams,
    dataio_prep,
    eval_dataset,
    quantile_boundaries,
    read_audio,
)
