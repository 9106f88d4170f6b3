"""Builds the small sample data of the recipe tests (``tests/samples``).

The recipe tests (``tests/recipes/IEMOCAP.csv``) run every hparams file
in ``--debug`` mode on:

- ``tests/samples/IEMOCAP_full_release``: a mini corpus in the IEMOCAP
  release layout, made by :func:`speechbrain_grl.testing.demo_corpus.
  make_demo_corpus` (5 sessions, 10 speakers, 4 labelled turns per
  speaker, seed 1: the session split then has every emotion in train,
  valid and test), with every wav cut to its first ``CROP_SECONDS`` to
  keep the committed data small (16 kHz is kept);
- ``tests/samples/tiny_wav2vec2`` and ``tests/samples/tiny_hubert``:
  tiny random SSL models by
  :func:`speechbrain_grl.testing.tiny_ssl.make_tiny_ssl`, which stand in
  for the hub ids of the real hparams files.

Run from the repository root to rebuild them::

    python tests/make_samples.py [--out tests/samples]
"""

import argparse
import pathlib
import shutil
import sys

import soundfile as sf

from speechbrain_grl.testing.demo_corpus import RELEASE, STAMP, make_demo_corpus
from speechbrain_grl.testing.tiny_ssl import make_tiny_ssl

MARKER = ".demo_corpus"  # written by make_demo_corpus into the release
UTTS_PER_SPEAKER = 4
CORPUS_SEED = 1
CROP_SECONDS = 0.75
MODELS = {"tiny_wav2vec2": "wav2vec2", "tiny_hubert": "hubert"}


def make_sample_corpus(folder):
    """Writes the cropped mini corpus to ``folder/IEMOCAP_full_release``.

    Arguments
    ---------
    folder : str or pathlib.Path
        Parent folder of the release folder (replaced if present).

    Returns
    -------
    pathlib.Path
        The release folder.
    """
    folder = pathlib.Path(folder)
    root = folder / RELEASE
    if root.exists() and not (root / MARKER).is_file():
        raise SystemExit(
            f"make_samples: error: {root} was not made by make_demo_corpus; "
            "choose another --out")
    shutil.rmtree(root, ignore_errors=True)
    root = make_demo_corpus(
        folder, utts_per_speaker=UTTS_PER_SPEAKER, seed=CORPUS_SEED,
        overwrite=True,
    )
    # The generator's stamp names uncropped data: drop it so that
    # make_demo_corpus never reuses this folder as its own.
    (folder / STAMP).unlink(missing_ok=True)
    for wav in sorted(root.glob("Session*/sentences/wav/*/Ses*.wav")):
        data, rate = sf.read(str(wav), dtype="int16")
        sf.write(str(wav), data[: int(CROP_SECONDS * rate)], rate,
                 subtype="PCM_16")
    return root


def make_samples(out):
    """Writes the mini corpus and the tiny SSL models under ``out``.

    Arguments
    ---------
    out : str or pathlib.Path
        The samples folder, usually ``tests/samples``.

    Returns
    -------
    list of pathlib.Path
        The corpus folder and the model folders.
    """
    out = pathlib.Path(out)
    paths = [make_sample_corpus(out)]
    for name, kind in MODELS.items():
        paths.append(pathlib.Path(
            make_tiny_ssl(out / name, kind=kind, overwrite=True)))
    return paths


def main(argv=None):
    """Parses ``--out`` and builds the samples there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="tests/samples")
    args = parser.parse_args(argv)
    for path in make_samples(args.out):
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(f"{path}: {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
