"""Data: corpus preparation (IEMOCAP with true speakers), audio pipelines
and batching, low-resource subsets.

The names of the former ``speechbrain_grl.dataio`` module are exported
here too, so ``from speechbrain_grl.dataio import dataio_prep`` works.
"""

from speechbrain_grl.dataio.audio import (  # noqa: F401
    DATA_HPARAMS,
    audio_dataset,
    data_hparams,
    dataio_prep,
    quantile_boundaries,
    read_audio,
)
