"""Speaker-leakage probe: how much speaker a fresh attacker recovers.

The adversary's own speaker head understates the speaker information left
in an embedding: it was trained against a moving encoder. The probe trains
a *fresh* scikit-learn logistic regression on frozen utterance embeddings
(standardised) and reports its out-of-fold **balanced accuracy** next to
chance, the balanced accuracy of a ``DummyClassifier`` on the same folds.

What it must not measure:

- **the dialog or its channel**: folds are grouped by dialog
  (``StratifiedGroupKFold``), so a dialog's utterances are never on both
  sides of a fold;
- **the emotion**: when speakers carry an emotion shortcut, knowing the
  emotion narrows down the speaker. ``given_emotion`` compares a probe
  that sees the embedding *and* the emotion label with one that sees the
  emotion label alone (its "chance"): the gap is the speaker information
  that the embedding adds beyond the emotion, which is what a speaker
  shortcut needs and what a conditional adversary removes;
- **the gender** alone (which gives 50% between two speakers):
  ``per_gender`` runs it among the speakers of each gender.
"""

import json
import logging
import os
import warnings

import numpy as np
import speechbrain as sb
import torch
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechbrain_grl.dataio.audio import audio_dataset
from speechbrain_grl.nnet.exact_padding import encode
from speechbrain_grl.nnet.speaker_norm import speaker_stats
from speechbrain_grl.utils.ddp import unwrap
from speechbrain_grl.utils.jsonio import write_json_atomic
from speechbrain_grl.utils.rng import rng_state, set_rng_state

logger = logging.getLogger(__name__)

__all__ = ["speaker_probe", "probe_dataset", "extract_embeddings",
           "run_probe", "probe_before", "probe_after", "dialog_of"]


def dialog_of(utt_id):
    """The dialog of an IEMOCAP utterance id (all but the last part).

    Example
    -------
    >>> dialog_of("Ses01F_script01_1_M003")
    'Ses01F_script01_1'
    """
    return utt_id.rsplit("_", 1)[0]


def _folds(labels, groups, n_splits, seed):
    """Stratified folds, grouped when ``groups`` is given."""
    if groups is not None:
        folds = StratifiedGroupKFold(n_splits, shuffle=True,
                                     random_state=seed)
    else:
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    return list(folds.split(np.zeros(len(labels)), labels, groups))


def _probe(emb, speakers, groups, n_splits, seed, baseline=None):
    """One probe: ``accuracy``, ``balanced_accuracy``, ``chance`` (%).

    Out-of-fold predictions are pooled over the folds, then scored once
    (every speaker is then present, however small the folds). ``chance``
    is the balanced accuracy, pooled the same way on the same folds, of a
    ``DummyClassifier`` guessing uniformly (1 / speakers, in
    expectation), or of the probe on ``baseline`` features when given.
    """
    names, counts = np.unique(speakers, return_counts=True)
    n_groups = len(set(groups)) if groups is not None else len(speakers)
    out = {"accuracy": None, "balanced_accuracy": None,
           "chance": 100.0 / max(len(names), 1),
           "n_speakers": int(len(names)), "n_utterances": int(len(speakers)),
           "n_splits": int(min(n_splits, counts.min() if len(counts) else 0,
                               n_groups))}
    if len(names) < 2 or out["n_splits"] < 2:
        return out
    pred = np.empty_like(speakers)
    ref = np.empty_like(speakers)
    for train, test in _folds(speakers, groups, out["n_splits"], seed):
        if len(set(speakers[train])) < 2:
            ref[test] = pred[test] = speakers[train][0]
            continue
        pred[test] = _classifier().fit(
            emb[train], speakers[train]).predict(emb[test])
        if baseline is None:
            ref[test] = DummyClassifier(
                strategy="uniform", random_state=seed).fit(
                emb[train], speakers[train]).predict(emb[test])
        else:
            ref[test] = _classifier().fit(
                baseline[train], speakers[train]).predict(baseline[test])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["accuracy"] = 100.0 * accuracy_score(speakers, pred)
        out["balanced_accuracy"] = 100.0 * balanced_accuracy_score(
            speakers, pred)
        out["chance"] = 100.0 * balanced_accuracy_score(speakers, ref)
    return out


def _classifier():
    """The probe: standardised logistic regression with balanced class
    weights (grouped folds leave a held-out speaker under-represented in
    training; unweighted, the intercepts alone would push it below
    chance)."""
    return make_pipeline(StandardScaler(), LogisticRegression(
        max_iter=2000, class_weight="balanced"))


def speaker_probe(embeddings, speakers, groups=None, emotions=None,
                  genders=None, n_splits=5, seed=0):
    """Out-of-fold speaker recognition by a fresh classifier.

    Arguments
    ---------
    embeddings : array-like
        ``[n_utterances, dim]`` frozen embeddings.
    speakers : list of str
        The speaker of each utterance.
    groups : list of str, optional
        The dialog (or session, or recording) of each utterance: folds
        never split a group. None: plain stratified folds.
    emotions : list of str, optional
        The emotion of each utterance: adds ``given_emotion``.
    genders : list of str, optional
        The gender of each utterance: adds ``per_gender``.
    n_splits : int
        Folds; lowered to the size of the smallest speaker or the number
        of groups if needed (at least 2).
    seed : int
        Shuffling seed of the folds.

    Returns
    -------
    dict
        ``accuracy`` and ``balanced_accuracy`` (%, of the out-of-fold
        predictions, None if too few speakers or utterances to
        cross-validate), ``chance`` (%, a ``DummyClassifier``'s balanced
        accuracy on the same folds),
        ``n_speakers``, ``n_utterances``, ``n_splits``, ``grouped``;
        ``given_emotion`` (the probe on the embedding plus the one-hot
        emotion, whose ``chance`` is the probe on the emotion alone) and
        ``per_gender`` (a probe per gender) when asked for.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> spk = ["a"] * 10 + ["b"] * 10 + ["c"] * 4
    >>> emb = rng.normal(size=(24, 3)) + 5 * np.eye(3)[[ord(s) - 97
    ...                                                   for s in spk]]
    >>> out = speaker_probe(emb, spk)
    >>> out["n_speakers"], out["n_splits"]
    (3, 4)
    >>> out["balanced_accuracy"] > 90
    True
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    speakers = np.asarray(list(speakers))
    if emb.ndim != 2 or len(emb) != len(speakers):
        raise ValueError("embeddings must be [n, dim] with one speaker each")
    groups = None if groups is None else np.asarray(list(groups))
    out = _probe(emb, speakers, groups, n_splits, seed)
    out["grouped"] = groups is not None
    if out["balanced_accuracy"] is None:
        logger.warning("speaker probe skipped: %d speakers, %d splits",
                       out["n_speakers"], out["n_splits"])
    if emotions is not None:
        emotions = np.asarray(list(emotions))
        onehot = (emotions[:, None] == np.unique(emotions)[None, :])
        onehot = onehot.astype(np.float64)
        out["given_emotion"] = _probe(
            np.concatenate([emb, onehot], axis=1), speakers, groups,
            n_splits, seed, baseline=onehot)
    if genders is not None:
        genders = np.asarray(list(genders))
        out["per_gender"] = {
            str(g): _probe(emb[genders == g], speakers[genders == g],
                           None if groups is None else groups[genders == g],
                           n_splits, seed)
            for g in sorted(set(genders))}
    return out


def probe_dataset(annotation, data_folder, sample_rate=16000,
                  speakers=None):
    """A dataset of whole utterances (``id``, ``sig``, ``spk_id``).

    Arguments
    ---------
    annotation : str
        A SpeechBrain JSON manifest with ``wav`` and ``spk_id``.
    data_folder : str
        Replaces ``{data_root}`` in the manifest.
    sample_rate : int
        Rate of the encoder.
    speakers : set of str, optional
        Keep only these speakers' utterances.
    """
    def keep(entries):
        """Only the given speakers' utterances."""
        return {u: e for u, e in entries.items() if e["spk_id"] in speakers}

    data = audio_dataset(annotation, data_folder, sample_rate,
                         select=None if speakers is None else keep)
    sb.dataio.dataset.set_output_keys([data],
                                      ["id", "sig", "spk_id", "emo"])
    return data.filtered_sorted(sort_key="duration")


@torch.no_grad()
def extract_embeddings(brain, dataset, batch_size=1):
    """Pooled projection outputs (``brain.embed``) of a dataset, frozen;
    each clip of a padded batch as if alone (:func:`encode`).

    Runs the unwrapped modules (no DDP collective), in eval mode, and
    restores their training flags and torch's random state afterwards (a
    probe before training leaves the training as it would be without).

    Returns
    -------
    (numpy.ndarray, list of str, list of str, list of str)
        ``[n, emb_dim]`` embeddings, and the speaker, id and emotion of
        each row.
    """
    names = ("ssl", "pooling", "projection")
    mods = {n: unwrap(brain.modules[n]) for n in names}
    flags = {n: m.training for n, m in mods.items()}
    for m in mods.values():
        m.eval()
    loader = sb.dataio.dataloader.make_dataloader(
        dataset, batch_size=batch_size, shuffle=False
    )
    pooled, spks, ids, emos = [], [], [], []
    state = rng_state()
    try:
        for batch in loader:
            batch = batch.to(brain.device)
            wavs, lens = batch.sig
            feats, frames = encode(mods["ssl"], wavs, lens)
            pooled.append(mods["pooling"](feats, frames).reshape(
                len(wavs), -1))
            spks.extend(batch.spk_id)
            ids.extend(batch.id)
            emos.extend(batch.emo)
        pooled = torch.cat(pooled)
        if getattr(brain.method, "normalizes", False):
            # The probe set's own speaker statistics (as evaluation uses).
            stats = speaker_stats(pooled.float(), spks)
            mean = torch.stack([stats[s][0] for s in spks])
            std = torch.stack([stats[s][1] for s in spks])
            pooled = (pooled - mean.to(pooled.dtype)) / std.to(pooled.dtype)
        embs = mods["projection"](pooled.unsqueeze(1)).squeeze(1)
    finally:
        for n, m in mods.items():
            m.train(flags[n])
        set_rng_state(state)
    return embs.float().cpu().numpy(), spks, ids, emos


def run_probe(brain, train_annotation, valid_annotation, data_folder,
              output_folder, sample_rate=16000, batch_size=1):
    """Probe of ``brain`` on the training speakers' utterances.

    The probe set is every utterance of the training speakers in the
    training and validation manifests, uncropped (``probe_set``:
    ``train+valid``, or ``train`` when validation holds none of them, as
    with ``valid_from: held_out_speakers``): the speakers the adversary
    was trained to forget, on enough utterances for grouped folds. The
    probe is a fresh classifier, cross-validated over dialogs (never
    trained and tested on one dialog); ``given_emotion`` and
    ``per_gender`` are included (genders from the manifests' ``gender``
    field, or IEMOCAP's speaker ids).

    Arguments
    ---------
    brain : SpeakerAdversarialBrain
        The model to probe (its current weights).
    train_annotation, valid_annotation : str
        The run's manifests.
    data_folder : str
        Their ``{data_root}``.
    output_folder : str
        The run folder (the probe set is written to ``probe/``).
    sample_rate : int
        Rate of the encoder.
    batch_size : int
        Clips per encoder pass (duration-sorted; padding changes no
        embedding, see :func:`~speechbrain_grl.nnet.exact_padding.encode`).

    Returns
    -------
    dict
        :func:`speaker_probe`'s result plus ``probe_set``.
    """
    entries, used = {}, []
    annotations = {"train": train_annotation, "valid": valid_annotation}
    for name in ("train", "valid"):
        with open(annotations[name], encoding="utf-8") as fin:
            found = json.load(fin)
        if name == "train":
            known = {e["spk_id"] for e in found.values()}
        found = {u: e for u, e in found.items() if e["spk_id"] in known}
        if found:
            entries.update(found)
            used.append(name)
    folder = os.path.join(output_folder, "probe")
    os.makedirs(folder, exist_ok=True)
    manifest = os.path.join(folder, "probe_set.json")
    write_json_atomic(entries, manifest)
    data = probe_dataset(manifest, data_folder, sample_rate)
    emb, spk, ids, emos = extract_embeddings(brain, data, batch_size)
    genders = [entries[u].get("gender") or _iemocap_gender(s)
               for u, s in zip(ids, spk)]
    if any(g is None for g in genders):
        genders = None
    dialogs = [entries[u].get("dialog") or dialog_of(u) for u in ids]
    result = speaker_probe(emb, spk, groups=dialogs, emotions=emos,
                           genders=genders)
    return dict(result, probe_set="+".join(used))


def _iemocap_gender(speaker):
    """``F``/``M`` from an IEMOCAP speaker id (``Ses01F``), else None."""
    return speaker[-1] if speaker[-1:] in ("F", "M") else None


#: What the probe reads of the recipe's hparams (``brain.hparams``).
PROBE_HPARAMS = ("train_annotation", "valid_annotation", "data_folder",
                 "output_folder", "sample_rate")


def _probe_args(brain, probe_args):
    """``probe_args``, or the :data:`PROBE_HPARAMS` of ``brain.hparams``
    and the batch size of its ``valid_dataloader_options``."""
    if probe_args:
        return probe_args
    valid = getattr(brain.hparams, "valid_dataloader_options", None) or {}
    return dict({k: getattr(brain.hparams, k) for k in PROBE_HPARAMS},
                batch_size=valid.get("batch_size", 1))


def probe_before(brain, **probe_args):
    """Probes the model as built, before any training step, once.

    Call it before ``fit`` (the modules then hold the initial weights,
    also on a resumed run). The result goes to
    ``<output_folder>/speaker_probe_before.json``; an existing file is
    kept, so a resumed run never recomputes it. ``probe_args`` are those
    of :func:`run_probe` (default: read from ``brain.hparams``).
    """
    probe_args = _probe_args(brain, probe_args)
    path = os.path.join(probe_args["output_folder"],
                        "speaker_probe_before.json")
    if os.path.isfile(path):
        return
    write_json_atomic(run_probe(brain, **probe_args), path)


def probe_after(brain, train_logger=None, **probe_args):
    """Probes the tested model; adds ``speaker_probe`` and
    ``speaker_probe_before`` to ``<output_folder>/test_metrics.json``
    and, given a ``train_logger``, its balanced accuracy to the log."""
    probe_args = _probe_args(brain, probe_args)
    folder = probe_args["output_folder"]
    result = run_probe(brain, **probe_args)
    path = os.path.join(folder, "test_metrics.json")
    with open(path, encoding="utf-8") as fin:
        metrics = json.load(fin)
    metrics["speaker_probe"] = result
    before = os.path.join(folder, "speaker_probe_before.json")
    if os.path.isfile(before):
        with open(before, encoding="utf-8") as fin:
            metrics["speaker_probe_before"] = json.load(fin)
    write_json_atomic(metrics, path)
    logger.info("speaker probe: %s", result)
    if train_logger is not None:
        train_logger.log_stats(
            {"speaker probe": "trained model"},
            test_stats={k: result[k] for k in ("balanced_accuracy", "chance")
                        if k in result})
