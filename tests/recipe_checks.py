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
- :func:`unused_yaml_keys` follows ``tests/utils/check_yaml.py``, except
  that the hparams are looked up in the script *and* in the library
  modules it imports from ``speechbrain_grl`` (the Brain and the data
  pipeline read ``hparams`` there);
- :func:`missing_docstrings` follows ``tests/utils/check_docstrings.py``
  with the ``ast`` module instead of a line parser.
"""

import ast
import csv
import dataclasses
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


def yaml_top_keys(hparam_file):
    """Top-level keys of a yaml file, except ``__``-prefixed ones.

    Keys starting with ``__`` exist for their side effect only (e.g.
    ``__set_seed``) and are never read.

    Example
    -------
    >>> p = getfixture("tmp_path") / "h.yaml"
    >>> _ = p.write_text("a: 1  # x\\n__s: !apply:f []\\nd:\\n    e: 2\\n")
    >>> yaml_top_keys(p)
    ['a', 'd']
    """
    keys = []
    for line in pathlib.Path(hparam_file).read_text().splitlines():
        match = _TOP_KEY.match(line)
        if match and not match.group(1).startswith("__"):
            keys.append(match.group(1))
    return keys


def yaml_references(hparam_file):
    """Names referenced as ``<name>`` (``!ref``/``!copy``) in a yaml."""
    refs = set()
    for line in pathlib.Path(hparam_file).read_text().splitlines():
        code = line.split(" #", 1)[0]
        if "!ref" in code or "!copy" in code:
            refs.update(_REF.findall(code))
    return refs


def code_files(script_file, extra=()):
    """The script, ``extra`` files and the library modules they import.

    Follows ``speechbrain_grl`` imports transitively, so that hparams read
    by the Brain or the data pipeline count as used.
    """
    todo = [pathlib.Path(script_file), *map(pathlib.Path, extra)]
    seen = []
    pattern = re.compile(rf"^\s*(?:from|import)\s+({PACKAGE}(?:\.\w+)*)",
                         re.M)
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.append(path)
        for module in pattern.findall(path.read_text()):
            parts = module.split(".")
            candidates = [REPO.joinpath(*parts).with_suffix(".py"),
                          REPO.joinpath(*parts, "__init__.py")]
            todo.extend(c for c in candidates if c.is_file())
    return seen


def _used_in(key, text):
    key_re = re.escape(key)
    patterns = [
        rf"""hparams\[\s*["']{key_re}["']\s*\]""",
        rf"""hparams\.get\(\s*["']{key_re}["']""",
        rf"""(?:get|has)attr\(\s*self\.hparams\s*,\s*["']{key_re}["']""",
        rf"\bhparams\.{key_re}\b",
        rf"\bmodules\.{key_re}\b",
        rf"""modules\[\s*["']{key_re}["']\s*\]""",
    ]
    if any(re.search(p, text) for p in patterns):
        return True
    # hparams[f"{split}_annotation"]: the f-string matches the key when
    # each {...} field stands for a word.
    for fstring in re.findall(r"""hparams\[\s*f["']([^"']+)["']\s*\]""",
                              text):
        parts = re.split(r"\{[^}]*\}", fstring)
        if re.fullmatch(r"\w+".join(map(re.escape, parts)), key):
            return True
    return False


def run_option_keys():
    """Names of SpeechBrain's run options (yaml may set them)."""
    from speechbrain.utils.run_opts import RunOptions

    return {f.name for f in dataclasses.fields(RunOptions)}


def unused_yaml_keys(hparam_file, script_file, extra=()):
    """Top-level yaml keys that neither the yaml nor the code uses.

    A key is used if another yaml entry references it (``<key>``), if the
    script, ``extra`` files or the ``speechbrain_grl`` modules they import
    read it (``hparams["key"]``, ``hparams.key``, ``hparams.get("key"``,
    ``getattr(self.hparams, "key"``, ``modules.key`` or a matching
    ``hparams[f"..."]``), or if it is a SpeechBrain run option.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "h.yaml").write_text(
    ...     "a: 1\\nb: !ref <a>\\nc: 3\\nx_file: f\\nlr: 1\\n")
    >>> _ = (tmp / "t.py").write_text(
    ...     'hparams["b"]\\nhparams[f"{s}_file"]\\nself.hparams.lr\\n')
    >>> unused_yaml_keys(tmp / "h.yaml", tmp / "t.py")
    ['c']
    """
    keys = yaml_top_keys(hparam_file)
    refs = yaml_references(hparam_file)
    text = "\n".join(p.read_text() for p in code_files(script_file, extra))
    opts = run_option_keys()
    return [
        k for k in keys
        if k not in refs and k not in opts and not _used_in(k, text)
    ]


# -- docstrings -------------------------------------------------------------
def missing_docstrings(py_file):
    """Public functions, classes and methods of a file without docstring.

    Names starting with ``_`` are private (SpeechBrain's rule); nested
    functions count, as SpeechBrain's line-based checker sees them too.
    The module itself needs a docstring unless it is a dunder file such as
    ``__init__.py``.

    Example
    -------
    >>> p = getfixture("tmp_path") / "m.py"
    >>> _ = p.write_text("'''Doc.'''\\ndef f():\\n    pass\\n"
    ...                  "class C:\\n    '''Doc.'''\\n"
    ...                  "    def g(self):\\n        pass\\n"
    ...                  "    def _h(self):\\n        pass\\n")
    >>> missing_docstrings(p)
    ['f', 'C.g']
    """
    py_file = pathlib.Path(py_file)
    tree = ast.parse(py_file.read_text(), filename=str(py_file))
    missing = []
    if not py_file.name.startswith("__") and ast.get_docstring(tree) is None:
        missing.append("<module>")

    def visit(node, prefix):
        """Collects the undocumented public definitions under ``node``."""
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                      ast.ClassDef)):
                continue
            if child.name.startswith("_"):
                continue
            name = prefix + child.name
            if ast.get_docstring(child) is None:
                missing.append(name)
            visit(child, name + ".")

    visit(tree, "")
    return missing
