"""Atomic JSON files: a reader never sees a half-written manifest or
metrics file, even if the writer is killed."""

import json
import os
import pathlib
import tempfile

__all__ = ["write_json_atomic"]


def write_json_atomic(obj, path):
    """Writes ``obj`` as JSON to ``path`` through a temporary file.

    The temporary file lies in the same folder and replaces ``path`` in one
    step; on any error it is removed and ``path`` is left as it was.

    Example
    -------
    >>> p = getfixture("tmp_path") / "x.json"
    >>> write_json_atomic({"a": 1}, p)
    >>> p.read_text()
    '{\\n  "a": 1\\n}\\n'
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fout:
            json.dump(obj, fout, indent=2)
            fout.write("\n")
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
