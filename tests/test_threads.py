"""Thread settings: torch's and the BLAS's pools, and child processes."""

import json
import subprocess
import sys

from speechbrain_grl.utils.threads import (
    child_env,
    cpu_cores,
    threads_per_process,
)

PROBE = """
import json, torch, threadpoolctl
import numpy, scipy.linalg  # load the BLAS before sizing it
from speechbrain_grl.utils.threads import configure_threads
n = configure_threads({args})
blas = [p["num_threads"] for p in threadpoolctl.threadpool_info()
        if p["user_api"] == "blas"]
print(json.dumps({{"n": n, "torch": torch.get_num_threads(),
                  "blas": blas}}))
"""


def _configure(args="", **env):
    """``configure_threads(args)`` in a fresh process with ``env``."""
    base = child_env(1)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        base.pop(var, None)
    base.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args)],
                         env=base, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_run_alone_takes_every_core_and_one_blas_thread():
    out = _configure()
    assert out["n"] == out["torch"] == cpu_cores()
    assert out["blas"] and set(out["blas"]) == {1}


def test_the_launchers_count_wins():
    """OMP_NUM_THREADS (a launcher sharing the cores) and DDP's local
    world size both lower the count; an explicit count beats both."""
    assert _configure(OMP_NUM_THREADS="1")["torch"] == 1
    assert _configure(LOCAL_WORLD_SIZE=str(cpu_cores()))["torch"] == 1
    assert _configure("3", OMP_NUM_THREADS="1")["torch"] == 3


def test_child_env_shares_the_cores():
    jobs = 2
    threads = threads_per_process(jobs, cores=4)
    env = child_env(threads, {"PATH": "/bin"})
    assert threads == 2 and env["PATH"] == "/bin"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "2"
    # A child with every core spins as usual; a user's policy is kept.
    assert "OMP_WAIT_POLICY" not in child_env(cpu_cores(), {})
    policy = child_env(1, {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"]
    assert policy == "ACTIVE"
