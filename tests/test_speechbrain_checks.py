"""SpeechBrain's docstring rule, applied unmodified to this repository.

``tests/utils/check_docstrings.py`` is upstream's checker, byte for byte
(see tests/consistency/README.md); upstream's yaml and recipe tests run
from ``tests/consistency`` as they are.
"""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_public_function_and_class_has_a_docstring(monkeypatch):
    path = REPO / "tests" / "utils" / "check_docstrings.py"
    spec = importlib.util.spec_from_file_location("sb_check_docstrings",
                                                  path)
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    monkeypatch.chdir(REPO)
    assert checker.check_docstrings(".", ["speechbrain_grl",
                                          "recipes/IEMOCAP"])
