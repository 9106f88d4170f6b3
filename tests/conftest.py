"""Shared fixtures: the demo corpus, the tiny SSL model, recipe runs."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

# pytest-xdist (pytest.ini: -n auto) runs tests in several processes: each
# one, and the recipe runs it starts, gets its share of the cores, and
# OpenMP threads wait passively (benchmarks/threads.md), before torch loads.
_CORES = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
          else os.cpu_count() or 1)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _CORES // _WORKERS)))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "IEMOCAP" / "emotion_recognition_grl"
DEMO_YAML = RECIPE / "hparams" / "demo_grl.yaml"


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory):
    """A demo corpus and a tiny wav2vec2, built once per test session.

    Pass ``--demo_folder=<this>`` to the demo recipe so runs reuse them.
    """
    from speechbrain_grl.testing.demo import demo_corpus, demo_ssl

    folder = tmp_path_factory.mktemp("demo_assets")
    demo_corpus(folder / "corpus")
    demo_ssl(folder / "tiny_wav2vec2")
    return folder


def recipe_env():
    """The environment for recipe subprocesses: this checkout first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env["HF_HUB_OFFLINE"] = "1"
    return env


def run_benchmark(script, *args, timeout=600):
    """Runs ``benchmarks/<script>`` with ``args`` in the recipe
    environment (:func:`run_python`); returns the result, output captured
    as text."""
    return run_python(REPO / "benchmarks" / script, *args, timeout=timeout)


def benchmark_report(script, out, *args, timeout=600):
    """:func:`run_benchmark` with ``--out out``, which must exit 0 (else
    the test fails with the output's tail); returns its JSON report,
    ``<out>/<script's stem>.json``."""
    res = run_benchmark(script, *args, "--out", out, timeout=timeout)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return json.loads((pathlib.Path(out) / f"{pathlib.Path(script).stem}"
                       ".json").read_text())


_FORKSERVER = None


def _forkserver():
    """This test process's :class:`forked_runs.Forkserver` (started on
    first use, stopped at exit)."""
    global _FORKSERVER
    if _FORKSERVER is None:
        import atexit

        from forked_runs import Forkserver

        _FORKSERVER = Forkserver(recipe_env())
        atexit.register(_FORKSERVER.close)
    return _FORKSERVER


def run_recipe(script, *args, timeout=600, check=True, launcher=None,
               fresh=False):
    """Runs a recipe script from the recipe folder; returns the result.

    Arguments
    ---------
    script : str
        File name in the recipe folder, e.g. ``"train.py"``.
    *args : str
        Its command-line arguments.
    timeout : float
        Seconds before the run is killed.
    check : bool
        Fail the test, showing the output's tail, on a non-zero exit.
    launcher : list of str, optional
        Replaces ``[sys.executable]``, e.g. a torchrun command.
    fresh : bool
        A fresh Python process. Default: a fork of a process that has
        imported the libraries already (``forked_runs.py``; half the time
        of a one-epoch demo run), whose runs share its hash seed.
        ``GRL_TESTS_FRESH=1`` in the environment makes every run fresh.
    """
    if launcher:
        cmd = launcher + [script, *map(str, args)]
        res = _fresh_run(cmd, RECIPE, timeout)
    else:
        res = run_python(script, *args, cwd=RECIPE, timeout=timeout,
                         fresh=fresh)
        cmd = res.args
    if check and res.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {res.returncode}:\n"
            f"{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
        )
    return res


def run_python(*argv, cwd=REPO, timeout=600, fresh=False):
    """``python argv...`` in ``cwd`` with the recipe environment, as
    :func:`subprocess.run` returns it (output captured as text):
    forked from the forkserver unless ``fresh`` (see :func:`run_recipe`).
    """
    import tempfile

    cmd = [sys.executable, *map(str, argv)]
    if fresh or os.environ.get("GRL_TESTS_FRESH") == "1":
        return _fresh_run(cmd, cwd, timeout)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = pathlib.Path(tmp, "out"), pathlib.Path(tmp, "err")
        code = _forkserver().run(cmd[1:], cwd, out, err, timeout)
        stdout, stderr = out.read_text(), err.read_text()
    if code is None:
        raise subprocess.TimeoutExpired(cmd, timeout, stdout, stderr)
    return subprocess.CompletedProcess(cmd, code, stdout, stderr)


def _fresh_run(cmd, cwd, timeout):
    """``cmd`` as a fresh process in ``cwd`` with the recipe
    environment, output captured as text."""
    return subprocess.run(cmd, cwd=cwd, env=recipe_env(),
                          capture_output=True, text=True, timeout=timeout)


def demo_args(demo_assets, output_folder, *extra):
    """Arguments for a short demo run that reuses the shared assets."""
    return [
        DEMO_YAML,
        f"--demo_folder={demo_assets}",
        f"--output_folder={output_folder}",
        *extra,
    ]
