"""SpeechBrain's recipe and consistency checks, for this repository.

SpeechBrain accepts a recipe when ``tests/recipes/<Dataset>.csv`` lists
every hparams file with debug flags that run on ``tests/samples``, the
listed files exist, every yaml key is used, and every public function and
class has a docstring. SpeechBrain 1.1.2 does not ship those checkers (they
live in its ``tests/utils``), so this module re-implements them with the
same semantics:

- :func:`read_rows` / :func:`recipe_command` / :func:`check_files` /
  :func:`check_performance` follow ``tests/utils/recipe_tests.py``
  (``file_exists=[...]`` and ``performance_check=[file, key, <=x,
  epoch: n]``);
- the yaml-key and docstring rules are not re-implemented: upstream's
  own checkers run unmodified from ``tests/consistency`` and
  ``tests/utils`` (see tests/consistency/README.md).
"""

import csv
import pathlib
import re
import shlex
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
RECIPE_CSVS = REPO / "tests" / "recipes"
COLUMNS = [
    "Task", "Dataset", "Script_file", "Hparam_file", "Data_prep_file",
    "Readme_file", "Result_url", "HF_repo", "test_debug_flags",
    "test_debug_checks", "performance",
]
PACKAGE = "speechbrain_grl"


def read_rows(csv_file):
    """Returns the rows of a recipe CSV as dicts with stripped values.

    Arguments
    ---------
    csv_file : str or pathlib.Path
        A ``tests/recipes/<Dataset>.csv`` file.

    Returns
    -------
    list of dict
        One dict per row, plus ``id`` (``<Dataset>_row_<NN>`` as
        SpeechBrain names them, NN being the line number).

    Example
    -------
    >>> p = getfixture("tmp_path") / "X.csv"
    >>> _ = p.write_text("Task,Hparam_file\\nASR, a.yaml \\n")
    >>> read_rows(p)
    [{'Task': 'ASR', 'Hparam_file': 'a.yaml', 'id': 'X_row_02'}]
    """
    csv_file = pathlib.Path(csv_file)
    with open(csv_file, newline="", encoding="utf-8") as fin:
        reader = csv.DictReader(fin, skipinitialspace=True)
        rows = []
        for i, row in enumerate(reader):
            row = {k: (v or "").strip() for k, v in row.items()}
            row["id"] = f"{csv_file.stem}_row_{i + 2:02d}"
            rows.append(row)
    return rows


def recipe_command(row, output_folder, python=sys.executable):
    """The command SpeechBrain's recipe tests run for one CSV row.

    ``python <Script_file> <Hparam_file> <test_debug_flags> --device=cpu
    --output_folder=<output_folder>``, run from the repository root.

    Example
    -------
    >>> row = {"Script_file": "r/train.py", "Hparam_file": "r/h.yaml",
    ...        "test_debug_flags": "--a=1 --debug"}
    >>> recipe_command(row, "out", python="python")
    ['python', 'r/train.py', 'r/h.yaml', '--a=1', '--debug', \
'--device=cpu', '--output_folder=out']
    """
    return [
        python, row["Script_file"], row["Hparam_file"],
        *shlex.split(row["test_debug_flags"]), "--device=cpu",
        f"--output_folder={output_folder}",
    ]


def check_files(check_str, output_folder):
    """The files of ``file_exists=[a,b,...]`` missing in ``output_folder``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "a.txt").write_text("x")
    >>> check_files("file_exists=[a.txt,b.txt]", tmp)
    ['b.txt']
    """
    match = re.search(r"file_exists=\[(.*?)\]", check_str)
    if match is None:
        return []
    names = [n.strip() for n in match.group(1).split(",") if n.strip()]
    return [n for n in names if not (pathlib.Path(output_folder) / n).exists()]


def _compare(value, threshold):
    ops = {"<=": float.__le__, ">=": float.__ge__, "==": float.__eq__,
           "<": float.__lt__, ">": float.__gt__}
    for op, fn in ops.items():  # two-character operators first
        if threshold.startswith(op):
            return fn(value, float(threshold[len(op):]))
    raise ValueError(f"bad threshold {threshold!r}: use <=x, <x, ==x, ...")


def check_performance(check_str, output_folder):
    """Checks ``performance_check=[file, key, <=x, epoch: n]``.

    Reads the first line of ``file`` that contains ``epoch: n`` (the last
    non-empty line for ``epoch: -1``) and compares the number after
    ``key:`` with the threshold.

    Returns
    -------
    str or None
        None if the check passes (or there is none), else why it failed.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "log.txt").write_text("epoch: 2, valid loss: 1.25\\n")
    >>> chk = "performance_check=[log.txt, valid loss, <=1.5, epoch: 2]"
    >>> check_performance(chk, tmp) is None
    True
    >>> check_performance(chk.replace("<=1.5", "<1"), tmp)
    'valid loss = 1.25 in log.txt violates <1'
    """
    match = re.search(r"performance_check=\[(.*?)\]", check_str)
    if match is None:
        return None
    name, key, threshold, epoch = (
        p.strip() for p in match.group(1).split(",")
    )
    path = pathlib.Path(output_folder) / name
    if not path.is_file():
        return f"{name} does not exist"
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if int(epoch.split(":")[-1]) == -1:
        lines = lines[-1:]
    else:
        lines = [ln for ln in lines if epoch in ln]
    if not lines:
        return f"no line with {epoch!r} in {name}"
    number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    found = re.search(rf"{re.escape(key)}\s*:\s*({number})", lines[0])
    if found is None:
        return f"no numeric {key!r} in {name}: {lines[0]!r}"
    value = float(found.group(1))
    if not _compare(value, threshold):
        return f"{key} = {value:g} in {name} violates {threshold}"
    return None


# -- yaml keys versus the code that reads them ------------------------------
_TOP_KEY = re.compile(r"^([A-Za-z_][\w.-]*)\s*:")
_REF = re.compile(r"<([A-Za-z_]\w*)")


