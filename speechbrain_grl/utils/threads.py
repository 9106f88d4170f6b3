"""CPU threads: one run uses the machine's cores, several runs share them.

Torch (OpenMP), the BLAS under numpy/scipy/scikit-learn and data-loader
workers each default to every core. Two runs side by side, or a
scikit-learn fit inside a training process, then ask for twice the cores:
OpenMP and OpenBLAS threads spin waiting for a core that another process
holds. Two demo runs side by side on 2 cores, 2 threads each, took 84 s
an epoch with OpenMP's default wait against 9 s with the passive one
(8 s alone; ``benchmarks/threads.md``). The rule here: each process takes
``cores // processes`` torch threads, where ``processes`` counts the
training processes on this machine (DDP ranks, or the parallel jobs of a
benchmark); the BLAS under numpy/scipy takes one; OpenMP threads wait
passively (``OMP_WAIT_POLICY``, set by the recipe's ``train.py`` and
:func:`child_env`).
"""

import os

import torch

__all__ = ["cpu_cores", "threads_per_process", "configure_threads",
           "child_env"]

#: Environment variables that size the thread pools of child processes.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_cores():
    """Cores this process may run on (its affinity, not the machine's).

    Example
    -------
    >>> cpu_cores() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_process(processes=1, cores=None):
    """``cores // processes``, at least 1.

    Arguments
    ---------
    processes : int
        Processes that share the cores.
    cores : int, optional
        Default: :func:`cpu_cores`.

    Example
    -------
    >>> threads_per_process(2, cores=2)
    1
    >>> threads_per_process(1, cores=16), threads_per_process(3, cores=16)
    (16, 5)
    """
    cores = cpu_cores() if cores is None else cores
    return max(1, cores // max(1, processes))


def configure_threads(num_threads=None, processes=None, blas_threads=1):
    """Sizes torch's and the BLAS's thread pools for this process.

    Call it after the imports (the BLAS libraries of numpy and scipy must
    be loaded for their pools to be sized).

    Arguments
    ---------
    num_threads : int, optional
        Threads to use. None: ``OMP_NUM_THREADS`` when the environment
        sets it (a launcher that shares the cores has decided), else
        :func:`threads_per_process` of ``processes``.
    processes : int, optional
        Processes sharing this machine's cores; default the local DDP
        world size (``LOCAL_WORLD_SIZE``), else 1.
    blas_threads : int
        Threads of the BLAS under numpy/scipy/scikit-learn. The speaker
        probe's and the reports' problems are small (hundreds of rows):
        beside other work, one thread ran the probe of a demo run in
        0.8-1.1 s against 3.8-13 s with two (same results).

    Returns
    -------
    int
        The threads now used by torch.

    Example
    -------
    >>> before = torch.get_num_threads()
    >>> configure_threads(1)
    1
    >>> torch.get_num_threads()
    1
    >>> _ = configure_threads(before)
    """
    if num_threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        if env.isdigit() and int(env) > 0:
            num_threads = int(env)
        else:
            if processes is None:
                processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            num_threads = threads_per_process(processes)
    num_threads = max(1, int(num_threads))
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    try:  # numpy/scipy/scikit-learn (the speaker probe, reports)
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads, user_api="blas")
    except ImportError:  # pragma: no cover - scikit-learn brings it
        pass
    return num_threads


def child_env(threads, env=None):
    """The environment for a child process given ``threads`` threads.

    Arguments
    ---------
    threads : int
        Threads of the child (:func:`threads_per_process` of the jobs run
        side by side).
    env : dict, optional
        The environment to extend (default ``os.environ``).

    Returns
    -------
    dict
        ``env`` with the OpenMP/MKL/OpenBLAS thread counts set and, when
        the child shares the cores (fewer threads than cores), OpenMP's
        passive wait policy unless ``env`` sets one.

    Example
    -------
    >>> env = child_env(1, {})
    >>> env["OMP_NUM_THREADS"], env["OMP_WAIT_POLICY"]
    ('1', 'PASSIVE')
    """
    out = dict(os.environ if env is None else env)
    for var in THREAD_VARS:
        out[var] = str(threads)
    if threads < cpu_cores():
        out.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return out
