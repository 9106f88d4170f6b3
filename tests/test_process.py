"""A training process's start and end (speechbrain_grl.utils.process)."""

import gc
import importlib.util
import subprocess
import sys

from conftest import RECIPE, benchmark_report, demo_args, run_recipe

from speechbrain_grl.utils.process import installed_packages


def _pip_freeze():
    out = subprocess.run([sys.executable, "-m", "pip", "freeze"],
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_the_package_list_is_pip_freezes():
    """Every ``name==version`` that pip freeze lists and nothing else, and
    as many editable installs (pip words those from the folder's version
    control: ``-e git+<remote>@<commit>#egg=...`` in a clone)."""
    def packages(lines):
        return {line for line in lines if not line.startswith(("#", "-e "))}

    def editable(lines):
        return sum(line.startswith("-e ") for line in lines)

    ours = [row for line in installed_packages() for row in line.split("\n")]
    theirs = _pip_freeze()
    assert packages(ours) == packages(theirs)
    assert editable(ours) == editable(theirs)


def test_a_run_writes_its_environment_log(demo_assets, tmp_path):
    """The run's env.log has SpeechBrain's sections and pip's packages."""
    run_recipe("train.py", *demo_args(
        demo_assets, tmp_path / "run", "--number_of_epochs=1",
        "--probe_speakers=False", "--run_test=False"))
    text = (tmp_path / "run" / "env.log").read_text()
    assert text.startswith("SpeechBrain system description\n")
    for section in ("Python version:", "Installed Python packages:",
                    "CUDA"):
        assert section in text
    listed = set(text.splitlines())
    assert {line for line in _pip_freeze()
            if "==" in line and not line.startswith("#")} <= listed


def test_importing_the_recipe_leaves_the_collector_alone():
    """Only ``python train.py`` holds the collector off while it imports:
    a process that imports train.py as a module keeps collecting."""
    assert gc.isenabled()
    spec = importlib.util.spec_from_file_location(
        "_train_for_gc", RECIPE / "train.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_startup_benchmark_writes_its_report(tmp_path):
    """benchmarks/startup.py, one round: every number is there, and both
    env.log makers list the same packages."""
    out = benchmark_report("startup.py", tmp_path, "--rounds", "1",
                           timeout=300)
    for mode in ("as_it_comes", "settled"):
        times = out["process"][mode]
        assert 0 < times["work_s"] < times["total_s"]
        assert times["exit_s"] > 0
    env = out["env_log"]
    assert env["speechbrain_s"] > 0 and env["metadata_s"] > 0
    assert env["only_pip_freeze"] == env["only_metadata"] == []
    assert "| settled |" in (tmp_path / "startup.md").read_text()


def test_the_console_scripts_exit_through_run_command():
    """Each console script is a module's ``cli``, which exits with its
    ``main``'s code (``--help``: 0) after freezing the heap."""
    import importlib
    from importlib import metadata

    scripts = {e.name: e.value for e in metadata.entry_points(
        group="console_scripts") if e.name.startswith("speechbrain-grl-")}
    assert set(scripts) == {"speechbrain-grl-export",
                            "speechbrain-grl-predict",
                            "speechbrain-grl-prepare"}
    for value in scripts.values():
        module, func = value.split(":")
        assert func == "cli"
        importlib.import_module(module)
        res = subprocess.run([sys.executable, "-m", module, "--help"],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "usage:" in res.stdout
