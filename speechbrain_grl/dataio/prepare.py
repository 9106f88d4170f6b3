"""One preparation entry point for every corpus.

``prepare_corpus("crema_d", data_folder, save_folder, split=...)`` from
Python or ``train.py`` (``--corpus=crema_d``), and the console script::

    speechbrain-grl-prepare crema_d --data_folder D --save_folder S \\
        [--split speaker_kfold --fold 1 --n_folds 5] [--mapping DIS=dis ...]

Corpora: ``iemocap``, ``crema_d``, ``ravdess``, ``emodb``,
``msp_podcast`` and ``csv`` (a user's own data; ``data_folder`` is the
CSV file). Each writes SpeechBrain JSON manifests whose entries hold
``wav``, ``duration``, ``emo`` and ``spk_id`` (the true speaker), plus
``gender``, ``session``/``group`` and ``valence``/``arousal``/
``dominance`` where the corpus has them, and ``vad`` (the three
normalised to [0, 1], see :mod:`speechbrain_grl.dataio.dimensions`) for
IEMOCAP, MSP-Podcast and CSV clips with dimensional labels; their
``prepare_summary.json`` then records the scale (``vad_scale``) and the
clips kept without usable ones (``bad_vad``).

Splits (``split``):

- ``speaker_kfold`` (every corpus; the default except for IEMOCAP and
  MSP-Podcast): speaker-disjoint folds, see
  :func:`speechbrain_grl.dataio.splits.speaker_kfold`;
- ``session``, ``speaker``, ``random``: IEMOCAP's own splits
  (:func:`speechbrain_grl.dataio.iemocap.make_splits`);
- ``official``: MSP-Podcast's ``Split_Set`` (its default);
- ``all``: ``all.json`` with every kept utterance, for zero-shot
  cross-corpus testing.

Manifests are reused while options and files are unchanged, and written
atomically (see :mod:`speechbrain_grl.dataio.manifests`).
"""

import argparse
import dataclasses
import logging
import pathlib
import sys
from typing import Callable

from speechbrain_grl.dataio import (
    crema_d,
    csv_corpus,
    emodb,
    iemocap,
    msp_podcast,
    ravdess,
)
from speechbrain_grl.dataio.dimensions import check_scale
from speechbrain_grl.dataio.labels import EMOTIONS
from speechbrain_grl.dataio.manifests import (
    MIN_DURATION,
    SPLITS,
    PrepareError,
    fingerprint,
    prepare_manifests,
)
from speechbrain_grl.dataio.splits import (
    UNKNOWN_SPEAKER,
    official_split,
    speaker_kfold,
)
from speechbrain_grl.utils.errors import GRLError

logger = logging.getLogger(__name__)

__all__ = ["CORPORA", "SPLIT_NAMES", "prepare_corpus", "manifest_names",
           "main"]

#: IEMOCAP's own splits, prepared by :func:`iemocap.prepare_iemocap`.
IEMOCAP_SPLITS = ("session", "speaker", "random")
SPLIT_NAMES = IEMOCAP_SPLITS + ("speaker_kfold", "official", "all")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """How to read one corpus: ``scan(data_folder, mapping, emotions,
    min_duration, **options) -> (entries, summary)`` and ``files``
    (what its fingerprint hashes)."""

    scan: Callable
    files: Callable
    default_split: str
    options: tuple = ()


def _scan_iemocap(data_folder, mapping=None, emotions=EMOTIONS,
                  min_duration=MIN_DURATION, sessions=(1, 2, 3, 4, 5),
                  keep_all_emotions=False):
    """IEMOCAP through the common scan signature."""
    return iemocap.scan_corpus(data_folder, sessions, emotions, mapping,
                               min_duration, keep_all_emotions)


def _iemocap_files(data_folder):
    """IEMOCAP's label files and wavs."""
    root = iemocap._find_root(data_folder)
    files = list(root.glob("Session*/dialog/EmoEvaluation/*.txt"))
    files += [p for p in root.glob("Session*/sentences/wav/*/*.wav")
              if not p.name.startswith("._")]
    return files


CORPORA = {
    "iemocap": Corpus(_scan_iemocap, _iemocap_files, "session",
                      ("sessions", "test_session", "test_speaker",
                       "keep_all_emotions")),
    "crema_d": Corpus(crema_d.scan_crema_d, crema_d.crema_d_files,
                      "speaker_kfold"),
    "ravdess": Corpus(ravdess.scan_ravdess, ravdess.ravdess_files,
                      "speaker_kfold", ("include_song",)),
    "emodb": Corpus(emodb.scan_emodb, emodb.emodb_files, "speaker_kfold"),
    "msp_podcast": Corpus(msp_podcast.scan_msp_podcast,
                          msp_podcast.msp_podcast_files, "official"),
    "csv": Corpus(csv_corpus.scan_csv, csv_corpus.csv_files,
                  "speaker_kfold", ("vad_range",)),
}


def manifest_names(split):
    """The manifests a split writes.

    Example
    -------
    >>> manifest_names("all"), manifest_names("speaker_kfold")
    (('all',), ('train', 'valid', 'test'))
    """
    return ("all",) if split == "all" else SPLITS


def _check(corpus, split):
    """Return the corpus and the split to use, or raise one line."""
    if corpus not in CORPORA:
        raise PrepareError(f"corpus={corpus!r} is unknown; use one of "
                           f"{', '.join(CORPORA)}")
    split = split or CORPORA[corpus].default_split
    allowed = ["speaker_kfold", "all"]
    allowed += list(IEMOCAP_SPLITS) if corpus == "iemocap" else []
    allowed += ["official"] if corpus == "msp_podcast" else []
    if split not in allowed:
        raise PrepareError(f"split={split!r} does not apply to {corpus}; "
                           f"use one of {', '.join(allowed)}")
    return CORPORA[corpus], split


def prepare_corpus(corpus, data_folder, save_folder, split=None, fold=1,
                   n_folds=5, valid_from=None, valid_ratio=0.2, seed=1234,
                   emotions=EMOTIONS, mapping=None,
                   min_duration=MIN_DURATION, skip_prep=False, **options):
    """Prepare the manifests of one corpus.

    Parameters
    ----------
    corpus : str
        A key of :data:`CORPORA`.
    data_folder : str or pathlib.Path
        The corpus as released (``csv``: the CSV file).
    save_folder : str or pathlib.Path
        Where the manifests go.
    split : str, optional
        One of :data:`SPLIT_NAMES` that applies to the corpus; default
        the corpus's own (IEMOCAP ``session``, MSP-Podcast ``official``,
        else ``speaker_kfold``).
    fold, n_folds : int
        The ``speaker_kfold`` fold and number of folds.
    valid_from : str, optional
        ``held_out_speakers`` or ``training_speakers`` (see
        :func:`~speechbrain_grl.dataio.splits.speaker_kfold`).
    valid_ratio, seed
        Held-out fraction and split seed.
    emotions : sequence of str
        The classes kept.
    mapping : dict, optional
        Native code to class, replacing the corpus's default mapping
        (:data:`~speechbrain_grl.dataio.labels.DEFAULT_MAPPINGS`).
    min_duration : float
        Shorter clips are dropped and counted.
    skip_prep : bool
        Only load existing manifests.
    **options
        Corpus options: IEMOCAP ``sessions``, ``test_session``,
        ``test_speaker``, ``keep_all_emotions`` (also keep the clips
        outside ``emotions``, with their own code, for dimensional
        work); RAVDESS ``include_song``; CSV ``vad_range`` (the scale of
        its valence, arousal and dominance columns, default
        ``(1.0, 5.0)``).

    Returns
    -------
    dict
        ``{manifest name: {utt_id: entry}}``; see :func:`manifest_names`.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_emodb_corpus
    >>> tmp = getfixture("tmp_path")
    >>> root = make_emodb_corpus(tmp / "emodb")
    >>> out = prepare_corpus("emodb", root, tmp / "m", n_folds=4)
    >>> sorted(out)
    ['test', 'train', 'valid']
    >>> sets = [{e["spk_id"] for e in out[k].values()} for k in out]
    >>> any(a & b for i, a in enumerate(sets) for b in sets[i + 1:])
    False
    """
    spec, split = _check(corpus, split)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise PrepareError(f"{corpus} takes no option {unknown}; its "
                           f"options are {list(spec.options) or 'none'}")
    if corpus == "iemocap" and split in IEMOCAP_SPLITS:
        return iemocap.prepare_iemocap(
            data_folder, save_folder, split=split, valid_ratio=valid_ratio,
            seed=seed, emotions=emotions, merge=mapping,
            skip_prep=skip_prep, valid_from=valid_from,
            min_duration=min_duration, **options)
    names = manifest_names(split)
    if skip_prep:
        return prepare_manifests(save_folder, {}, None, names, True, corpus)
    scan_options = _scan_options(options)
    data_folder = pathlib.Path(data_folder)
    if not data_folder.exists():
        raise PrepareError(f"data_folder {data_folder} does not exist; pass "
                           f"--data_folder=<the {corpus} corpus>")
    opts = {
        "corpus": corpus, "data_folder": str(data_folder.resolve()),
        "split": split, "fold": fold, "n_folds": n_folds,
        "valid_from": valid_from, "valid_ratio": valid_ratio, "seed": seed,
        "emotions": list(emotions),
        "mapping": None if mapping is None else dict(sorted(
            mapping.items())),
        "min_duration": min_duration, "options": scan_options,
        "fingerprint": fingerprint(
            data_folder if data_folder.is_dir() else data_folder.parent,
            spec.files(data_folder)),
    }

    def build():
        """Scan the corpus and split it."""
        entries, summary = spec.scan(data_folder, mapping, emotions,
                                     min_duration, **scan_options)
        if not entries:
            raise PrepareError(
                f"{corpus}: no usable clip in {data_folder} (summary: "
                f"{_nonzero(summary)}); check --data_folder and the "
                "label mapping")
        logger.info("%s kept %d clips per class %s; skipped %s", corpus,
                    summary["kept"], summary["per_class"],
                    _nonzero(summary))
        if split == "all":
            out = {"all": entries}
        elif split == "official":
            out = official_split(entries)
        else:
            out = speaker_kfold(entries, fold, n_folds, valid_from,
                                valid_ratio, seed, classes=emotions)
        summary["unknown_speaker_clips"] = sum(
            e["spk_id"] == UNKNOWN_SPEAKER for e in entries.values())
        summary["per_split"] = {
            name: {"clips": len(part),
                   "speakers": len({e["spk_id"] for e in part.values()})}
            for name, part in out.items()}
        return out, summary

    return prepare_manifests(save_folder, opts, build, names, False, corpus)


def _scan_options(options):
    """The options a scan takes, as stored in ``prepare_opts.json``:
    without IEMOCAP's split options, ``keep_all_emotions`` only when
    True (stamps prepared without it stay valid) and ``vad_range`` as a
    list of floats (as JSON reads it back).

    Example
    -------
    >>> _scan_options({"test_session": 5, "keep_all_emotions": False,
    ...                "vad_range": (1, 7)})
    {'vad_range': [1.0, 7.0]}
    """
    out = {k: v for k, v in options.items()
           if k not in ("test_session", "test_speaker")}
    if not out.get("keep_all_emotions", True):
        del out["keep_all_emotions"]
    if "vad_range" in out:
        out["vad_range"] = list(check_scale(out["vad_range"]))
    return out


def _nonzero(summary):
    """The non-zero integer counters of a summary."""
    return {k: v for k, v in summary.items()
            if isinstance(v, int) and v and k != "kept"}


def _mapping(text):
    """Parse ``CODE=class,CODE=class`` into a dict."""
    pairs = [p for p in text.split(",") if p.strip()]
    if not all("=" in p for p in pairs):
        raise PrepareError(f"--mapping {text!r}: write CODE=class pairs "
                           "separated by commas, e.g. NEU=neu,HAP=hap")
    return {k.strip(): v.strip() for k, v in (p.split("=", 1)
                                              for p in pairs)}


def _vad_range(text):
    """Parse ``LO,HI`` into two floats."""
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise PrepareError(f"--vad_range {text!r}: write LO,HI, e.g. "
                           "1,5") from None
    return check_scale((lo, hi), "--vad_range")


def _parser():
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="speechbrain-grl-prepare",
        description="Prepare SpeechBrain JSON manifests (wav, duration, "
                    "emo, true spk_id) of an emotion corpus.")
    parser.add_argument("corpus", choices=sorted(CORPORA))
    parser.add_argument("--data_folder", required=True,
                        help="the corpus as released (csv: the CSV file)")
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--split", choices=SPLIT_NAMES,
                        help="default: iemocap session, msp_podcast "
                             "official, others speaker_kfold")
    parser.add_argument("--fold", type=int, default=1)
    parser.add_argument("--n_folds", type=int, default=5)
    parser.add_argument("--valid_from",
                        choices=("held_out_speakers", "training_speakers"))
    parser.add_argument("--valid_ratio", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--emotions", default=",".join(EMOTIONS),
                        help="classes kept, comma-separated")
    parser.add_argument("--mapping", type=str,
                        help="CODE=class pairs replacing the default "
                             "mapping, e.g. NEU=neu,HAP=hap,ANG=ang,SAD=sad"
                             ",DIS=dis")
    parser.add_argument("--min_duration", type=float, default=MIN_DURATION)
    parser.add_argument("--include_song", action="store_true",
                        help="ravdess: also the song clips")
    parser.add_argument("--sessions", help="iemocap: e.g. 1,2,3,4,5")
    parser.add_argument("--test_session", type=int,
                        help="iemocap, split session")
    parser.add_argument("--test_speaker", help="iemocap, split speaker")
    parser.add_argument("--keep_all_emotions", action="store_true",
                        help="iemocap: also the clips outside --emotions, "
                             "with their own code (dimensional work)")
    parser.add_argument("--vad_range",
                        help="csv: the scale LO,HI of the valence, arousal "
                             "and dominance columns (default 1,5)")
    return parser


def main(argv=None):
    """``speechbrain-grl-prepare``: prepare one corpus, print the counts.

    Example
    -------
    >>> from speechbrain_grl.testing.acted_corpora import make_emodb_corpus
    >>> tmp = getfixture("tmp_path")
    >>> root = make_emodb_corpus(tmp / "emodb")
    >>> main(["emodb", "--data_folder", str(root), "--save_folder",
    ...       str(tmp / "m"), "--split", "all"])  # doctest: +ELLIPSIS
    all: ... clips, 4 speakers, per class {'neu': ...}
    0
    """
    args = _parser().parse_args(argv)
    options = {}
    if args.corpus == "ravdess" and args.include_song:
        options["include_song"] = True
    if args.corpus == "iemocap":
        if args.sessions:
            options["sessions"] = [int(s) for s in args.sessions.split(",")]
        if args.test_session is not None:
            options["test_session"] = args.test_session
        if args.test_speaker:
            options["test_speaker"] = args.test_speaker
        if args.keep_all_emotions:
            options["keep_all_emotions"] = True
    emotions = tuple(e.strip() for e in args.emotions.split(",")
                     if e.strip())
    try:
        if args.corpus == "csv" and args.vad_range:
            options["vad_range"] = _vad_range(args.vad_range)
        mapping = _mapping(args.mapping) if args.mapping else None
        out = prepare_corpus(
            args.corpus, args.data_folder, args.save_folder, args.split,
            args.fold, args.n_folds, args.valid_from, args.valid_ratio,
            args.seed, emotions, mapping, args.min_duration, **options)
    except GRLError as err:
        print(f"speechbrain-grl-prepare: error: {err}", file=sys.stderr)
        return 2
    for name, entries in out.items():
        per_class = {e: sum(x["emo"] == e for x in entries.values())
                     for e in emotions}
        speakers = len({x["spk_id"] for x in entries.values()})
        print(f"{name}: {len(entries)} clips, {speakers} speakers, "
              f"per class {per_class}")
    return 0


def cli():
    """``speechbrain-grl-prepare``: :func:`main`, exit unswept."""
    from speechbrain_grl.utils.process import run_command
    run_command(main)


if __name__ == "__main__":
    cli()
