"""Speaker-leakage probe: how much speaker a fresh attacker recovers.

The adversary's own speaker head understates the speaker information left
in an embedding: it was trained against a moving encoder. The probe trains
a *fresh* scikit-learn logistic regression on frozen utterance embeddings
(standardised) and reports its stratified cross-validated accuracy next to
chance (1 / number of speakers).
"""

import json
import logging
import os

import numpy as np
import speechbrain as sb
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechbrain_grl.brain import unwrap
from speechbrain_grl.dataio import audio_dataset
from speechbrain_grl.jsonio import write_json_atomic

logger = logging.getLogger(__name__)

__all__ = ["speaker_probe", "probe_dataset", "extract_embeddings",
           "run_probe", "probe_before", "probe_after"]


def speaker_probe(embeddings, speakers, n_splits=5, seed=0):
    """Cross-validated accuracy of a fresh speaker classifier.

    Arguments
    ---------
    embeddings : array-like
        ``[n_utterances, dim]`` frozen embeddings.
    speakers : list of str
        The speaker of each utterance.
    n_splits : int
        Folds of the stratified cross-validation; lowered to the size of
        the smallest speaker if needed (at least 2).
    seed : int
        Shuffling seed of the folds.

    Returns
    -------
    dict
        ``accuracy`` (in %), ``chance`` (in %, 100 / n_speakers),
        ``n_speakers``, ``n_utterances`` and ``n_splits``; ``accuracy`` is
        None when fewer than 2 speakers or a speaker with a single
        utterance leave nothing to cross-validate.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> spk = ["a"] * 10 + ["b"] * 10 + ["c"] * 4
    >>> emb = rng.normal(size=(24, 3)) + 5 * np.eye(3)[[ord(s) - 97
    ...                                                   for s in spk]]
    >>> out = speaker_probe(emb, spk)
    >>> out["n_speakers"], round(out["chance"], 2), out["n_splits"]
    (3, 33.33, 4)
    >>> out["accuracy"] > 90
    True
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    speakers = np.asarray(list(speakers))
    if emb.ndim != 2 or len(emb) != len(speakers):
        raise ValueError("embeddings must be [n, dim] with one speaker each")
    names, counts = np.unique(speakers, return_counts=True)
    out = {
        "accuracy": None,
        "chance": 100.0 / max(len(names), 1),
        "n_speakers": int(len(names)),
        "n_utterances": int(len(speakers)),
        "n_splits": int(min(n_splits, counts.min())) if len(names) else 0,
    }
    if len(names) < 2 or out["n_splits"] < 2:
        logger.warning("speaker probe skipped: %d speakers, smallest has %d "
                       "utterances", len(names), counts.min(initial=0))
        return out
    folds = StratifiedKFold(out["n_splits"], shuffle=True, random_state=seed)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    scores = cross_val_score(clf, emb, speakers, cv=folds)
    out["accuracy"] = 100.0 * float(np.mean(scores))
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
    sb.dataio.dataset.set_output_keys([data], ["id", "sig", "spk_id"])
    return data.filtered_sorted(sort_key="duration")


@torch.no_grad()
def extract_embeddings(brain, dataset, batch_size=1):
    """Pooled projection outputs (``brain.embed``) of a dataset, frozen.

    Runs the unwrapped modules (no DDP collective), in eval mode, and
    restores their training flags afterwards.

    Returns
    -------
    (numpy.ndarray, list of str)
        ``[n, emb_dim]`` embeddings and the speaker of each row.
    """
    names = ("ssl", "pooling", "projection")
    mods = {n: unwrap(brain.modules[n]) for n in names}
    flags = {n: m.training for n, m in mods.items()}
    for m in mods.values():
        m.eval()
    loader = sb.dataio.dataloader.make_dataloader(
        dataset, batch_size=batch_size, shuffle=False
    )
    embs, spks = [], []
    try:
        for batch in loader:
            batch = batch.to(brain.device)
            wavs, lens = batch.sig
            feats = mods["ssl"](wavs, lens)
            emb = mods["projection"](mods["pooling"](feats, lens))
            embs.append(emb.squeeze(1).float().cpu())
            spks.extend(batch.spk_id)
    finally:
        for n, m in mods.items():
            m.train(flags[n])
    return torch.cat(embs).numpy(), spks


def run_probe(brain, hparams):
    """Probe of ``brain`` on the training speakers' held-out utterances.

    Uses the validation utterances of the training speakers; where the
    validation set has none of them (``split=speaker``: validation is an
    unseen speaker) it falls back to the training utterances, uncropped.

    Returns
    -------
    dict
        :func:`speaker_probe`'s result plus ``probe_set``.
    """
    with open(hparams["train_annotation"], encoding="utf-8") as fin:
        known = {e["spk_id"] for e in json.load(fin).values()}
    for name in ("valid", "train"):
        path = hparams[f"{name}_annotation"]
        with open(path, encoding="utf-8") as fin:
            found = {e["spk_id"] for e in json.load(fin).values()}
        if len(found & known) >= 2:
            break
    data = probe_dataset(path, hparams["data_folder"],
                         hparams["sample_rate"], speakers=known)
    emb, spk = extract_embeddings(brain, data)
    return dict(speaker_probe(emb, spk), probe_set=name)


def probe_before(brain, hparams):
    """Probes the model as built, before any training step, once.

    Call it before ``fit`` (the modules then hold the initial weights,
    also on a resumed run). The result goes to
    ``<output_folder>/speaker_probe_before.json``; an existing file is
    kept, so a resumed run never recomputes it.
    """
    path = os.path.join(hparams["output_folder"], "speaker_probe_before.json")
    if os.path.isfile(path):
        return
    write_json_atomic(run_probe(brain, hparams), path)


def probe_after(brain, hparams):
    """Probes the tested model; adds ``speaker_probe`` and
    ``speaker_probe_before`` to ``<output_folder>/test_metrics.json``."""
    folder = hparams["output_folder"]
    result = run_probe(brain, hparams)
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
