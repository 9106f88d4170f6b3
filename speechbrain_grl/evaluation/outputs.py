"""The files a training run writes about its evaluations.

``valid_summary.json`` (the selection metric per epoch: what sweeps read,
never the test) and ``test_predictions.json`` / ``test_metrics.json``.
"""

import json
import os

from speechbrain.utils.distributed import main_process_only

from speechbrain_grl.utils.jsonio import write_json_atomic

__all__ = ["update_valid_summary", "write_test_outputs"]


@main_process_only
def update_valid_summary(path, key, epoch, value, number_of_epochs):
    """Adds ``epoch``'s validation ``key`` to the summary at ``path``.

    The summary holds ``valid_<key>`` per epoch, the best value and
    epoch (the checkpoint that will be tested); a resumed run that redoes
    epochs forgets the later ones first. Written by the main process.

    Example
    -------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "valid_summary.json")
    >>> _ = update_valid_summary(path, "UA", 1, 50.0, 2)
    >>> update_valid_summary(path, "UA", 2, 40.0, 2)["best_epoch"]
    1
    """
    field = f"valid_{key}"
    summary = {field: {}}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fin:
            summary = json.load(fin)
    summary.setdefault(field, {})[str(epoch)] = value
    summary[field] = {k: v for k, v in summary[field].items()
                      if int(k) <= epoch}  # a resumed run redoes
    best = max(summary[field].items(), key=lambda kv: kv[1])
    summary.update({f"best_{field}": best[1]}, best_epoch=int(best[0]),
                   selected_on=key, epochs_done=epoch,
                   number_of_epochs=number_of_epochs)
    write_json_atomic(summary, path)
    return summary


def write_test_outputs(folder, labels, ids, logp, metrics, vad=None):
    """Writes ``test_predictions.json`` (log-probabilities per utterance,
    ``[n, classes]``, and V/A/D ``[n, 3]`` when given) and
    ``test_metrics.json`` (``metrics``) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    out = {"labels": list(labels), "log_probs": _rows(ids, logp)}
    if vad is not None:
        out["vad"] = _rows(ids, vad)
    write_json_atomic(out, os.path.join(folder, "test_predictions.json"))
    write_json_atomic(metrics, os.path.join(folder, "test_metrics.json"))


def _rows(ids, values):
    return {utt: [round(float(v), 6) for v in row]
            for utt, row in zip(ids, values)}
