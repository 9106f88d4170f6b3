"""The package layout: its contract with the recipe, old import paths,
one error type, the shipped inference template."""

import ast
import pathlib
import warnings

import torch
from hyperpyyaml import load_hyperpyyaml

import speechbrain_grl
from speechbrain_grl.brain import BRAIN_HPARAMS, REQUIRED
from speechbrain_grl.dataio import DATA_HPARAMS
from speechbrain_grl.inference.export import template_path

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN = REPO / "recipes" / "IEMOCAP" / "emotion_recognition_grl" / "train.py"


def _dict_keys(function):
    """Keys of the dict literal that ``function`` in train.py returns."""
    tree = ast.parse(TRAIN.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and isinstance(sub.value,
                                                              ast.Dict):
                    return {k.value for k in sub.value.keys}
    raise AssertionError(f"{function} returns no dict literal")


def test_train_py_passes_exactly_the_declared_hparams():
    """One source of truth: the data pipelines get exactly the keys the
    library declares; the Brain gets the whole yaml (no per-key dict) and
    every recipe yaml has each key the Brain requires, and the objects
    that configure the task and the method."""
    assert _dict_keys("data_hparams") == set(DATA_HPARAMS)
    tree = ast.parse(TRAIN.read_text())
    assert not any(isinstance(n, ast.FunctionDef)
                   and n.name == "brain_hparams" for n in ast.walk(tree))
    required = {k for k, v in BRAIN_HPARAMS.items() if v is REQUIRED}
    required -= {"label_encoder", "spk_encoder", "class_counts"}
    for yaml in sorted(TRAIN.parent.glob("hparams/*.yaml")):
        keys = {line.split(":")[0] for line in yaml.read_text().splitlines()
                if line[:1].isalpha()}
        assert required | {"emotion_task", "speaker_method",
                           "opt_class"} <= keys, yaml.name


def test_old_module_paths_still_load_saved_yaml(tmp_path):
    """A hyperparams.yaml saved by version 0.1 names the flat modules."""
    old = tmp_path / "hyperparams.yaml"
    old.write_text(
        "norm: !new:speechbrain_grl.running_norm.RunningNorm\n"
        "    input_size: 4\n"
        "schedule: !new:speechbrain_grl.grl.LambdaSchedule\n"
        "    lambda_max: 0.5\n"
        "prep: !name:speechbrain_grl.iemocap.prepare_iemocap\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hp = load_hyperpyyaml(old.read_text())
    from speechbrain_grl.nnet.grl import LambdaSchedule
    from speechbrain_grl.nnet.running_norm import RunningNorm

    assert isinstance(hp["norm"], RunningNorm)
    assert isinstance(hp["schedule"], LambdaSchedule)
    assert hp["schedule"].value == 0.5
    assert hp["norm"](torch.ones(2, 1, 4)).shape == (2, 1, 4)
    from speechbrain.utils.importutils import DeprecatedModuleRedirect

    from speechbrain_grl.utils.jsonio import write_json_atomic

    old_module = __import__("sys").modules["speechbrain_grl.jsonio"]
    assert isinstance(old_module, DeprecatedModuleRedirect)
    assert old_module.write_json_atomic is write_json_atomic


def test_every_input_error_is_a_grl_error():
    from speechbrain_grl.dataio.iemocap import IEMOCAPError
    from speechbrain_grl.evaluation.protocols import ProtocolError
    from speechbrain_grl.inference.export import ExportError
    from speechbrain_grl.inference.predict import ModelError
    from speechbrain_grl.utils.hparams_checks import RecipeError

    for err in (IEMOCAPError, ProtocolError, ExportError, ModelError,
                RecipeError):
        assert issubclass(err, speechbrain_grl.GRLError), err


def test_shipped_template_is_the_root_hparams_file():
    packaged = template_path()
    assert packaged.is_file() and not packaged.is_symlink()
    root = REPO / "hparams" / packaged.name
    assert packaged.read_bytes() == root.read_bytes()


def test_package_map_names_every_subpackage():
    doc = speechbrain_grl.__doc__
    pkg = REPO / "speechbrain_grl"
    subpackages = sorted(p.name for p in pkg.iterdir()
                         if (p / "__init__.py").is_file())
    assert subpackages == ["dataio", "evaluation", "inference", "methods",
                           "nnet", "testing", "utils"]
    for name in subpackages + ["brain", "tasks"]:
        assert f"``{name}``" in doc, name
    assert speechbrain_grl.__version__ == "0.2.0"
