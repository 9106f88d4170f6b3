"""A training process's start and end, without the waits that are not work.

Two costs of every run that train nothing (``benchmarks/startup.md``):

- SpeechBrain's ``env.log`` lists the installed packages with a
  ``pip freeze`` subprocess, 0.7-1.1 s of a 2-core machine; the same
  list comes from ``importlib.metadata`` in about 0.1 s
  (:func:`environment_description`).
- Importing torch, SpeechBrain and transformers builds millions of
  objects that live as long as the process. Python's garbage collector
  sweeps all of them in each full collection: several times while they
  are imported (about 1 s in all), and at exit, where the interpreter's
  last sweeps took 1.5-2.4 s. The recipe keeps the collector off while
  it imports and builds the model, then moves what exists to the
  permanent generation (:func:`settle_heap`), which no collection
  visits; it freezes once more as it ends. The command-line tools freeze
  before they exit (:func:`run_command`). Objects still die by reference
  count; what stays until exit is the cyclic garbage of the imports
  (a few hundred objects in the collections measured).
"""

import gc
import json
import os
import subprocess
import sys
from importlib import metadata

import torch

__all__ = ["environment_description", "write_environment_log",
           "settle_heap", "run_command"]

#: What ``pip freeze`` leaves out of its list.
PIP_OWN = {"pip", "setuptools", "wheel", "distribute"}


def _normalise(name):
    """A project name as pip compares them (PEP 503)."""
    return name.lower().replace("_", "-").replace(".", "-")


def installed_packages():
    """The lines of ``pip freeze``, from the installed distributions'
    metadata: ``name==version``, an editable install as ``-e <folder>``
    after a comment (pip writes a clone's as ``-e git+<remote>@<commit>``;
    ``env.log``'s Git revision gives the commit), sorted by name. Of two
    copies of a name on ``sys.path`` (a project's own ``.egg-info``
    beside pip's record of its editable install), pip's record wins, else
    the first.

    Returns
    -------
    list of str

    Example
    -------
    >>> lines = installed_packages()
    >>> any(line.startswith("torch==") for line in lines)
    True
    >>> any(line.startswith("pip==") for line in lines)
    False
    """
    found = {}  # the first of each name, or the first that pip installed
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        key = _normalise(name) if name else None
        if key is None or key in PIP_OWN:
            continue
        url = dist.read_text("direct_url.json")
        if key not in found or (url and not found[key][2]):
            found[key] = (name, dist.version, url)
    rows = []
    for name, version, url in found.values():
        line = f"{name}=={version}"
        info = json.loads(url) if url else {}
        if info.get("dir_info", {}).get("editable"):
            folder = info["url"].removeprefix("file://")
            line = f"# Editable install ({line})\n-e {folder}"
        rows.append((name.lower(), line))
    return [line for _, line in sorted(rows)]


def _git_revision():
    """The short hash of the working folder's commit, or why not."""
    try:
        res = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "Could not get git revision"
    if res.returncode != 0:
        return "Could not get git revision"
    return "Git revision:\n" + res.stdout


def environment_description():
    """SpeechBrain's ``env.log`` text
    (``speechbrain.utils.logger.get_environment_description``), with the
    package list read from the installed metadata instead of a
    ``pip freeze`` subprocess.

    Returns
    -------
    str

    Example
    -------
    >>> text = environment_description()
    >>> text.splitlines()[0]
    'SpeechBrain system description'
    >>> "Installed Python packages:" in text
    True
    """
    if torch.cuda.is_available():
        cuda = ("ROCm version:\n" + torch.version.hip
                if torch.version.cuda is None
                else "CUDA version:\n" + torch.version.cuda)
    else:
        cuda = "CUDA not available"
    rule = "==============================\n"
    packages = "".join(line + "\n" for line in installed_packages())
    return (
        "SpeechBrain system description\n" + rule
        + "Python version:\n" + sys.version + "\n" + rule
        + "Installed Python packages:\n" + packages + rule
        + _git_revision() + rule + cuda
    )


def write_environment_log(folder):
    """Writes :func:`environment_description` to ``<folder>/env.log``,
    where ``sb.create_experiment_directory(..., save_env_desc=False)``
    leaves it out.

    Arguments
    ---------
    folder : str
        The experiment folder.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> write_environment_log(tmp)
    >>> (tmp / "env.log").read_text().startswith("SpeechBrain system")
    True
    """
    with open(os.path.join(folder, "env.log"), "w", encoding="utf-8") as fo:
        fo.write(environment_description())


def settle_heap():
    """With the garbage collector held off (``gc.disable()`` before the
    imports), moves every object that exists to its permanent generation
    and turns it on; with the collector on, does nothing.

    A script calls it once the imports and the model are built, and
    ``gc.freeze()`` as it ends: later collections, and the interpreter's
    at exit, then sweep only what was made afterwards. A process that
    imports the script as a module keeps its collector as it was.

    Example
    -------
    >>> import gc
    >>> settle_heap()  # the collector is on: nothing happens
    >>> gc.get_freeze_count()
    0
    >>> gc.disable()
    >>> settle_heap()
    >>> gc.isenabled() and gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()
    """
    if gc.isenabled():
        return
    gc.freeze()
    gc.enable()


def run_command(main):
    """A console script: runs ``main()`` and exits with what it returns,
    the heap frozen first so that the interpreter's exit sweeps none of
    it (the exit of a process that loaded torch, SpeechBrain and
    transformers: 0.25x as long, ``benchmarks/startup.md``). A test that
    calls ``main`` itself keeps its collector.

    Arguments
    ---------
    main : callable
        The command's entry point: no arguments, returns an exit code.

    Example
    -------
    >>> import gc, pytest
    >>> with pytest.raises(SystemExit) as out:
    ...     run_command(lambda: 3)
    >>> out.value.code, gc.get_freeze_count() > 0
    (3, True)
    >>> gc.unfreeze()
    """
    code = main()
    gc.freeze()
    sys.exit(code)
