"""Evaluation protocols: fold definitions and resumable fold runs.

Every fold is a normal training run of the recipe's ``train.py`` into
``<output_folder>/<fold>/`` with the protocol's overrides. A fold whose
``test_metrics.json`` is complete is not rerun; an interrupted one resumes
from its checkpoints (SpeechBrain's Checkpointer, same folder).

- ``session`` (IEMOCAP): leave-one-session-out over the prepared
  sessions (speaker independent).
- ``speaker`` (IEMOCAP): leave-one-speaker-out; validation is the other
  speaker of the test session, training the 8 others.
- ``random`` (IEMOCAP): speaker dependent, 5 seeds of a stratified random
  split.
- ``lowres`` (IEMOCAP): the session split with test session 5, trained on
  N utterances per class, several random draws per N.
- ``speaker_kfold`` (any corpus): the ``n_folds`` speaker-disjoint folds.
- ``cross_corpus`` (any corpus): the corpus's own split, one run per seed,
  each also tested zero-shot on the whole of every ``--test_corpus``.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

from speechbrain_grl.utils import hparams_checks
from speechbrain_grl.utils.errors import GRLError
from speechbrain_grl.utils.threads import child_env, threads_per_process

__all__ = ["PROTOCOLS", "Fold", "make_folds", "select_folds",
           "parse_overrides", "resolve_hparams", "fold_complete",
           "valid_complete", "run_folds", "parse_sweep", "sweep_tag",
           "pick_by_valid", "best_valid",
           "ProtocolError"]

PROTOCOLS = ("session", "speaker", "random", "lowres", "speaker_kfold",
             "cross_corpus")
#: The protocols built on IEMOCAP's own splits.
IEMOCAP_PROTOCOLS = ("session", "speaker", "random", "lowres")
LOWRES_SIZES = (50, 100, 200, 500, 1000)
#: Keys a protocol sets per fold; the user may not override them.
PROTOCOL_KEYS = ("split", "test_session", "test_speaker", "seed",
                 "train_per_class", "train_subset_seed", "fold")


class ProtocolError(GRLError, ValueError):
    """A one-line problem with the protocol options, saying what to do."""


@dataclasses.dataclass
class Fold:
    """One run of a protocol: its folder name and its hparam overrides."""

    name: str
    overrides: dict


def make_folds(protocol, lowres_sizes=LOWRES_SIZES, lowres_draws=5,
               lowres_sessions=(5,), sessions=(1, 2, 3, 4, 5),
               speakers=(), n_folds=5, seeds=3):
    """The folds of a protocol, in order.

    ``lowres`` runs every size N, draw and test session in
    ``lowres_sessions`` (fold names gain ``_s<k>`` with several).
    ``session`` tests each of ``sessions``, ``speaker`` each of
    ``speakers``, ``speaker_kfold`` each of ``n_folds`` folds, and
    ``cross_corpus`` trains seeds 1 to ``seeds``.

    Example
    -------
    >>> [f.name for f in make_folds("session")]
    ['fold_1', 'fold_2', 'fold_3', 'fold_4', 'fold_5']
    >>> make_folds("speaker", speakers=["Ses01F", "Ses01M"])[1].overrides
    {'split': 'speaker', 'test_speaker': 'Ses01M'}
    >>> [f.name for f in make_folds("lowres", [5, 10], 2)]
    ['n5_draw1', 'n5_draw2', 'n10_draw1', 'n10_draw2']
    >>> [f.name for f in make_folds("lowres", [5], 1, [1, 5])]
    ['n5_s1_draw1', 'n5_s5_draw1']
    >>> make_folds("speaker_kfold", n_folds=3)[2].overrides
    {'split': 'speaker_kfold', 'fold': 3}
    >>> [f.name for f in make_folds("cross_corpus", seeds=2)]
    ['seed_1', 'seed_2']
    """
    if protocol == "session":
        return [Fold(f"fold_{k}", {"split": "session", "test_session": k})
                for k in sorted({int(s) for s in sessions})]
    if protocol == "speaker":
        return [Fold(f"fold_{k}", {"split": "speaker", "test_speaker": spk})
                for k, spk in enumerate(speakers, 1)]
    if protocol == "random":
        return [Fold(f"fold_{k}", {"split": "random", "seed": k})
                for k in range(1, 6)]
    if protocol == "lowres":
        sessions = sorted({int(s) for s in lowres_sessions})
        tag = (lambda s: f"_s{s}") if len(sessions) > 1 else (lambda s: "")
        return [Fold(f"n{n}{tag(s)}_draw{d}",
                     {"split": "session", "test_session": s,
                      "train_per_class": n, "train_subset_seed": d})
                for n in sorted(lowres_sizes) for s in sessions
                for d in range(1, lowres_draws + 1)]
    if protocol == "speaker_kfold":
        return [Fold(f"fold_{k}", {"split": "speaker_kfold", "fold": k})
                for k in range(1, int(n_folds) + 1)]
    if protocol == "cross_corpus":
        return [Fold(f"seed_{k}", {"seed": k})
                for k in range(1, int(seeds) + 1)]
    raise ProtocolError(
        f"--protocol {protocol}: unknown; use one of {', '.join(PROTOCOLS)}")


def select_folds(folds, spec):
    """Keeps the folds numbered (from 1) in ``spec``, e.g. ``"1,3"``.

    Example
    -------
    >>> [f.name for f in select_folds(make_folds("session"), "1,3")]
    ['fold_1', 'fold_3']
    """
    if not spec:
        return folds
    try:
        wanted = sorted({int(x) for x in str(spec).split(",") if x.strip()})
    except ValueError:
        raise ProtocolError(f"--folds {spec}: use numbers like 1,3") from None
    bad = [k for k in wanted if not 1 <= k <= len(folds)]
    if bad or not wanted:
        raise ProtocolError(
            f"--folds {spec}: this protocol has folds 1..{len(folds)}")
    return [folds[k - 1] for k in wanted]


def parse_overrides(args):
    """``--key=value`` / ``--key value`` arguments → ``{key: str}``.

    Example
    -------
    >>> parse_overrides(["--a=1", "--b", "x", "--flag"])
    {'a': '1', 'b': 'x', 'flag': 'True'}
    """
    out, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ProtocolError(f"unexpected argument {arg!r}; overrides "
                                "look like --key=value")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            key, value = arg[2:], args[i + 1]
            i += 1
        else:
            key, value = arg[2:], "True"
        out[key] = value
        i += 1
    return out


def resolve_hparams(hparams_file, overrides=None):
    """:func:`speechbrain_grl.utils.hparams_checks.resolve_hparams`, with
    its errors as one-line :class:`ProtocolError`."""
    try:
        return hparams_checks.resolve_hparams(hparams_file, overrides)
    except OSError as err:
        raise ProtocolError(f"{hparams_file}: {err.strerror}") from None
    except ValueError as err:
        raise ProtocolError(
            f"{hparams_file}: {err}; pass it as --key=value") from None


def _metrics(path):
    """A metrics file, or None if missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as fin:
            return json.load(fin)
    except (OSError, ValueError):
        return None


def fold_complete(folder, need_probe=True, cross=()):
    """True if ``folder/test_metrics.json`` holds a finished test (and the
    speaker probe when ``need_probe``), and so does
    ``cross_corpus/<name>/test_metrics.json`` for each name in ``cross``.
    """
    def keys(m):
        """What a finished test of this task holds."""
        task = m.get("task", "categorical")
        out = [] if task == "dimensional" else [
            "WA", "UA", "macro_F1", "confusion_matrix"]
        return out + ([] if task == "categorical" else ["CCC_mean"])

    metrics = _metrics(os.path.join(folder, "test_metrics.json"))
    if metrics is None or not all(
            k in metrics
            for k in keys(metrics) + ["speaker_probe"] * need_probe):
        return False
    for name in cross:
        other = _metrics(os.path.join(folder, "cross_corpus", name,
                                      "test_metrics.json"))
        if other is None or not all(k in other for k in keys(other)):
            return False
    return True


def valid_complete(folder):
    """The fold's ``valid_summary.json`` if its training finished, else
    None (what a sweep reads: never the test metrics)."""
    path = os.path.join(folder, "valid_summary.json")
    try:
        with open(path, encoding="utf-8") as fin:
            summary = json.load(fin)
    except (OSError, ValueError):
        return None
    done = summary.get("epochs_done") == summary.get("number_of_epochs")
    return summary if done else None


def _run_parallel(commands, output_folder, jobs, complete):
    """Runs ``{fold name: command}``, ``jobs`` at a time (the first
    alone), each with its share of the cores; raises
    :class:`ProtocolError` for the first fold that failed, once every
    started fold has ended."""
    env = child_env(threads_per_process(jobs))
    names, running, failed, started = list(commands), [], [], 0
    while names or running:
        # The first fold runs alone: it may build shared files.
        alone = started == 0 or (started == 1 and running)
        while names and len(running) < (1 if alone else jobs):
            name = names.pop(0)
            started += 1
            folder = os.path.join(output_folder, name)
            os.makedirs(folder, exist_ok=True)
            log = open(os.path.join(folder, "stdout.txt"), "w",
                       encoding="utf-8")
            print(f"{name}: running ({jobs} at a time, output in "
                  f"{folder}/stdout.txt)", flush=True)
            proc = subprocess.Popen(commands[name], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
            running.append((proc, name, log, time.time()))
        time.sleep(0.5)
        for item in list(running):
            proc, name, log, start = item
            if proc.poll() is None:
                continue
            log.close()
            running.remove(item)
            folder = os.path.join(output_folder, name)
            if proc.returncode != 0 or not complete(folder):
                failed.append(f"fold {name} failed (exit {proc.returncode})"
                              f"; see {folder}/stdout.txt, then rerun to "
                              "resume it")
                names.clear()  # no new fold; the running ones finish
            else:
                print(f"{name}: done in {time.time() - start:.0f} s",
                      flush=True)
    if failed:
        raise ProtocolError(failed[0])


def run_folds(train_script, hparams_file, folds, output_folder,
              extra_args=(), need_probe=True, stop=None, test=True,
              cross=(), jobs=1):
    """Runs (or skips, if complete) each fold; returns their metrics.

    Arguments
    ---------
    train_script : str
        The recipe's ``train.py``.
    hparams_file : str
        Its yaml.
    folds : list of Fold
        Folds to run, in order.
    output_folder : str
        Parent of the fold folders.
    extra_args : list of str
        Passed to every run before the fold's overrides.
    need_probe : bool
        Whether a complete fold must carry the speaker probe.
    stop : callable, optional
        ``stop(fold, metrics)`` → True skips the remaining folds.
    test : bool
        False: train and validate only (``--run_test=False``); the
        results are then the folds' ``valid_summary.json``, and no test
        metric is computed or read.
    cross : sequence of str
        Test corpora of a zero-shot test (``--test_corpus``); their
        metrics are added to each fold's under ``cross_corpus``.
    jobs : int
        Folds trained at once, sharing the cores (each gets cores / jobs
        threads, :mod:`speechbrain_grl.utils.threads`; its output goes to
        ``<fold>/stdout.txt``). The first missing fold runs alone (it may
        build shared files, such as the demo's corpus). With ``stop``,
        folds run one at a time.

    Returns
    -------
    dict
        ``{fold name: test metrics}`` (or validation summaries), in fold
        order.
    """
    results = {}
    if test:
        def complete(folder):
            """Whether a fold's test metrics (and probe) are complete."""
            return fold_complete(folder, need_probe, cross)
    else:
        complete = valid_complete
        extra_args = [*extra_args, "--run_test=False"]

    def command(fold):
        """The fold's ``train.py`` command line."""
        return [sys.executable, train_script, hparams_file, *extra_args,
                *[f"--{k}={v}" for k, v in fold.overrides.items()],
                f"--output_folder={os.path.join(output_folder, fold.name)}"]

    ran = set()
    if jobs > 1 and stop is None:
        todo = [f for f in folds
                if not complete(os.path.join(output_folder, f.name))]
        _run_parallel({f.name: command(f) for f in todo}, output_folder,
                      jobs, complete)
        ran = {f.name for f in todo}
    for i, fold in enumerate(folds, 1):
        folder = os.path.join(output_folder, fold.name)
        tag = f"[{i}/{len(folds)}] {fold.name}"
        if fold.name in ran:
            pass
        elif complete(folder):
            print(f"{tag}: complete, skipped", flush=True)
        else:
            args = [f"--{k}={v}" for k, v in fold.overrides.items()]
            cmd = command(fold)
            print(f"{tag}: running {' '.join(args)}", flush=True)
            start = time.time()
            res = subprocess.run(cmd)
            if res.returncode != 0 or not complete(folder):
                raise ProtocolError(
                    f"fold {fold.name} failed (exit {res.returncode}); see "
                    f"{folder}/log.txt, then rerun to resume it")
            print(f"{tag}: done in {time.time() - start:.0f} s", flush=True)
        if not test:
            results[fold.name] = valid_complete(folder)
            print(f"{tag}: best valid "
                  f"{best_valid(results[fold.name]):.2f}", flush=True)
            continue
        m = results[fold.name] = _metrics(
            os.path.join(folder, "test_metrics.json"))
        if cross:
            m["cross_corpus"] = {
                name: _metrics(os.path.join(folder, "cross_corpus", name,
                                            "test_metrics.json"))
                for name in cross}
        probe = m.get("speaker_probe") or {}
        probe = probe.get("balanced_accuracy", probe.get("accuracy"))
        scores = "".join(f"{k} {m[k]:.2f} " for k in ("UA", "WA")
                         if k in m)
        if "CCC_mean" in m:
            scores += f"CCC {m['CCC_mean']:.3f} "
        print(f"{tag}: {scores}probe "
              f"{probe if probe is None else round(probe, 2)}", flush=True)
        if stop is not None and stop(fold, m):
            break
    return results


def parse_sweep(specs):
    """``["lambda_max=0.1,0.3"]`` → the grid of override dicts.

    Example
    -------
    >>> parse_sweep(["lambda_max=0.1,0.3", "adversary=grl"])
    [{'lambda_max': '0.1', 'adversary': 'grl'}, \
{'lambda_max': '0.3', 'adversary': 'grl'}]
    """
    grid = [{}]
    for spec in specs:
        key, sep, values = spec.partition("=")
        values = [v for v in values.split(",") if v.strip()]
        if not sep or not key or not values:
            raise ProtocolError(f"--sweep {spec}: use KEY=V1,V2,...")
        if key in PROTOCOL_KEYS:
            raise ProtocolError(f"--sweep {key}: set per fold by the "
                                "protocol; sweep another key")
        grid = [dict(g, **{key: v}) for g in grid for v in values]
    return grid


def sweep_tag(values):
    """A folder name for one point of a sweep.

    Example
    -------
    >>> sweep_tag({"lambda_max": "0.3", "adversary": "tap"})
    'lambda_max-0.3_adversary-tap'
    """
    return "_".join(f"{k}-{v}" for k, v in values.items()).replace("/", "-")


def best_valid(summary):
    """The best validation value of a run's selection metric (UA, or CCC
    / score per ``select_on``).

    Example
    -------
    >>> best_valid({"best_valid_CCC": 0.5, "selected_on": "CCC"})
    0.5
    """
    return summary[f"best_valid_{summary.get('selected_on', 'UA')}"]


def pick_by_valid(results):
    """The sweep point with the best mean validation UA over its folds.

    Arguments
    ---------
    results : dict
        ``{tag: {fold: valid_summary}}``.

    Returns
    -------
    (str, dict)
        The tag picked, and ``{tag: mean best validation UA}``.

    Example
    -------
    >>> pick_by_valid({"a": {"f1": {"best_valid_UA": 60.0}},
    ...                "b": {"f1": {"best_valid_UA": 70.0}}})
    ('b', {'a': 60.0, 'b': 70.0})
    """
    means = {tag: sum(best_valid(f) for f in folds.values())
             / len(folds) for tag, folds in results.items()}
    return max(means, key=lambda t: (means[t], -list(means).index(t))), means
