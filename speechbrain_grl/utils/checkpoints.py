"""Checkpoints that survive a kill in the middle of being written.

SpeechBrain's Checkpointer writes ``CKPT.yaml`` first and the parameter
files after it, so a SIGKILL while saving leaves a folder that looks like
a checkpoint but is empty or truncated; the next run then fails deep in
``recover_if_possible`` or, worse, loads half a model. This module marks
every checkpoint as complete once all its files are written, and removes
unmarked folders before recovery.
"""

import functools
import logging
import os
import re
import shutil

from speechbrain.utils.checkpoints import average_checkpoints
from speechbrain.utils.distributed import ddp_barrier, if_main_process

logger = logging.getLogger(__name__)

__all__ = ["COMPLETE", "average_best", "guard_checkpoints",
           "remove_incomplete", "trim_train_log"]

COMPLETE = "COMPLETE"


def remove_incomplete(checkpointer):
    """Deletes checkpoint folders that have no completion mark.

    Returns the number of folders removed (on the main process).

    Example
    -------
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> ckp = Checkpointer(getfixture("tmp_path"))
    >>> guard_checkpoints(ckp)
    >>> good = ckp.save_checkpoint()
    >>> bad = getfixture("tmp_path") / "CKPT+killed"
    >>> bad.mkdir(); _ = (bad / "CKPT.yaml").write_text("")
    >>> remove_incomplete(ckp)
    1
    >>> [c.path.name for c in ckp.list_checkpoints()] == [good.path.name]
    True
    """
    removed = 0
    if if_main_process() and checkpointer.checkpoints_dir.is_dir():
        for path in sorted(checkpointer.checkpoints_dir.glob("CKPT*")):
            if path.is_dir() and not (path / COMPLETE).is_file():
                logger.warning("removing incomplete checkpoint %s (the run "
                               "was killed while saving it)", path)
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    ddp_barrier()
    return removed


def guard_checkpoints(checkpointer):
    """Marks each checkpoint complete after its last file is written.

    Wraps ``checkpointer.save_checkpoint`` (idempotent) and removes the
    incomplete folders a killed run left behind.
    """
    save = checkpointer.save_checkpoint
    if getattr(save, "_marks_complete", False):
        return
    remove_incomplete(checkpointer)

    @functools.wraps(save)
    def save_and_mark(*args, **kwargs):
        """Saves, then marks the checkpoint complete."""
        ckpt = save(*args, **kwargs)
        if ckpt is not None and if_main_process():
            (ckpt.path / COMPLETE).write_text("")
        ddp_barrier()
        return ckpt

    save_and_mark._marks_complete = True
    checkpointer.save_checkpoint = save_and_mark


def trim_train_log(path, completed_epochs):
    """Drops log lines of epochs that a resumed run will train again.

    A run killed after logging epoch N but before its checkpoint was
    complete resumes inside epoch N and logs it again; removing the stale
    line keeps exactly one line per epoch. Rewrites atomically; returns
    the number of lines dropped.

    Example
    -------
    >>> p = getfixture("tmp_path") / "train_log.txt"
    >>> _ = p.write_text("epoch: 1, a\\nepoch: 2, b\\nEpoch loaded: 1\\n")
    >>> trim_train_log(p, 1)
    1
    >>> p.read_text()
    'epoch: 1, a\\nEpoch loaded: 1\\n'
    """
    if not if_main_process() or not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as fin:
        lines = fin.readlines()
    keep = [line for line in lines if not _logged_after(line,
                                                        completed_epochs)]
    if len(keep) != len(lines):
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fout:
            fout.writelines(keep)
        os.replace(tmp, path)
    return len(lines) - len(keep)


def _logged_after(line, completed_epochs):
    match = re.match(r"epoch: (\d+),", line)
    return bool(match) and int(match.group(1)) > completed_epochs


def average_best(checkpointer, modules, names, k, max_key=None,
                 min_key=None):
    """Loads the average of the ``k`` best checkpoints (by ``max_key`` or
    ``min_key``) into ``modules[name]`` for each of ``names`` (those that
    every one of them holds); returns how many were averaged."""
    ckpts = checkpointer.find_checkpoints(
        max_key=max_key, min_key=min_key, max_num_checkpoints=k)
    for name in names:
        if not all(name in c.paramfiles for c in ckpts):
            continue
        module = modules[name]
        getattr(module, "module", module).load_state_dict(
            average_checkpoints(ckpts, name), strict=True)
    logger.info("testing the average of %d checkpoints", len(ckpts))
    return len(ckpts)
