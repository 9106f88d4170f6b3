"""SpeechBrain's consistency checks on this recipe (fast, no training).

Every hparams file is listed in ``tests/recipes/<Dataset>.csv`` with debug
flags, the listed files exist, and the committed sample data are small
and reproducible. Upstream's yaml-key and docstring rules run unmodified
from tests/consistency and tests/test_speechbrain_checks.py.
"""

import pathlib
import re

import pytest
from recipe_checks import (
    COLUMNS,
    RECIPE_CSVS,
    REPO,
    read_rows,
)

CSVS = sorted(RECIPE_CSVS.glob("*.csv"))
ROWS = [row for f in CSVS for row in read_rows(f)]
SAMPLES = REPO / "tests" / "samples"
# Folders under recipes/<Dataset>/ that hold outputs, not hparams files.
NOT_HPARAMS = {"results", "demo_assets", "save"}


def _rel(path):
    return pathlib.Path(path).resolve().relative_to(REPO).as_posix()


def test_csvs_exist_with_speechbrain_columns():
    assert CSVS, f"no recipe CSV in {RECIPE_CSVS}"
    for csv_file in CSVS:
        header = csv_file.read_text().splitlines()[0].split(",")
        assert header == COLUMNS, f"{csv_file.name}: columns {header}"
        for row in read_rows(csv_file):
            assert row["Dataset"] == csv_file.stem, row["id"]


def test_every_hparams_file_is_listed_with_debug_flags():
    for csv_file in CSVS:
        rows = read_rows(csv_file)
        listed = {row["Hparam_file"] for row in rows}
        on_disk = {
            _rel(p) for p in (REPO / "recipes" / csv_file.stem).rglob("*.yaml")
            if not NOT_HPARAMS & set(p.relative_to(REPO).parts)
        }
        assert on_disk, f"no hparams files for {csv_file.stem}"
        assert not on_disk - listed, (
            f"hparams files missing from {csv_file.name}: "
            f"{sorted(on_disk - listed)}")
        for row in rows:
            assert row["test_debug_flags"], f"{row['id']}: no debug flags"
            assert "--debug" in row["test_debug_flags"].split(), row["id"]
            assert "file_exists=[" in row["test_debug_checks"], row["id"]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_listed_files_exist(row):
    for field in ("Script_file", "Hparam_file", "Data_prep_file",
                  "Readme_file"):
        for name in row[field].split():
            assert (REPO / name).exists(), f"{row['id']} {field}: {name}"
    # Sample data and models named in the flags (repository-relative).
    for name in re.findall(r"=(tests/\S+)", row["test_debug_flags"]):
        assert (REPO / name).exists(), f"{row['id']} flags: {name}"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_readme_links_results_and_models(row):
    readme = (REPO / row["Readme_file"]).read_text()
    for field in ("Result_url", "HF_repo"):
        for link in row[field].split():
            assert link in readme, f"{row['Readme_file']} lacks {link}"


def test_samples_are_small():
    files = [p for p in SAMPLES.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    assert (SAMPLES / "IEMOCAP_full_release").is_dir()
    assert total <= 2 * 2**20, f"tests/samples holds {total} bytes"


def test_samples_are_reproducible(tmp_path):
    """The committed samples are exactly what make_samples.py builds."""
    import torch
    from make_samples import make_samples
    from safetensors.torch import load_file

    make_samples(tmp_path)

    def listing(root):
        return sorted(
            p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        )

    assert listing(SAMPLES) == listing(tmp_path)
    corpus = [n for n in listing(SAMPLES) if n.startswith("IEMOCAP")]
    for name in corpus:
        assert (SAMPLES / name).read_bytes() == (
            tmp_path / name).read_bytes(), name
    for name in listing(SAMPLES):
        if name.endswith(".safetensors"):
            ours, fresh = (load_file(str(r / name))
                           for r in (SAMPLES, tmp_path))
            assert ours.keys() == fresh.keys(), name
            for key in ours:
                assert torch.equal(ours[key], fresh[key]), f"{name}:{key}"
