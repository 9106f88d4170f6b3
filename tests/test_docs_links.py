"""The documentation's links lead somewhere.

Every relative link of the repository's Markdown files names a file or
folder that exists, and a ``#fragment`` into a Markdown file names one of
its headings (GitHub's anchors). The benchmark indexes also name reports
in backticks (``adaptation.md``/``.json``): each such name is a file of
the index's folder, or of the folder above for the adaptation search's
index, so that moving a report cannot leave its description behind.
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folders that runs, installs and tools write into the clone.
SKIP = {"build", "dist", "results", "demo_assets", "site-packages"}
LINK = re.compile(r"\]\(([^)\s]+)\)")
REPORT = re.compile(r"`([A-Za-z0-9_.]+\.(?:md|json|png))`")
# Names in backticks that are not reports of the folder: files a run
# writes elsewhere (an experiment folder, a model folder, a workdir).
NOT_REPORTS = {"README.md", "adaptation_curve.json",
               "adaptation_curve_latest.json", "env.log", "timing.json"}


def markdown_files():
    """The repository's Markdown files: those git tracks, or without git
    every one outside hidden folders (a virtual environment such as CI's
    ``.ci-venv``) and the folders of SKIP."""
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    if listed.returncode == 0 and listed.stdout.strip():
        return sorted(REPO / name for name in listed.stdout.splitlines())
    return sorted(
        p for p in REPO.rglob("*.md")
        if not any(part.startswith(".") or part in SKIP
                   or part.endswith(".egg-info")
                   for part in p.relative_to(REPO).parts))


def anchors(path):
    """GitHub's anchors for the headings of a Markdown file."""
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{1,6} +(.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower())
            found.add(slug.replace(" ", "-"))
    return found


def broken_links(path):
    """The relative links of one Markdown file that lead nowhere."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"),
                  flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        name, _, fragment = target.partition("#")
        dest = (path.parent / name).resolve() if name else path
        if not dest.exists():
            broken.append(target)
        elif fragment and dest.suffix == ".md" and (
                fragment not in anchors(dest)):
            broken.append(target)
    return broken


def test_markdown_files_are_found():
    names = {p.relative_to(REPO).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/evidence.md", "benchmarks/README.md",
            "benchmarks/adaptation_search/README.md"} <= names


@pytest.mark.parametrize(
    "path", markdown_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "a.md").write_text("# Top\n\n## Two (`x.py`)\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](a.md) [ok](a.md#two-xpy) [ok](#here)\n# Here\n"
                   "[gone](b.md) [bad](a.md#three) [web](https://x.org/y)\n"
                   "```\n[code](c.md)\n```\n")
    assert broken_links(doc) == ["b.md", "a.md#three"]


@pytest.mark.parametrize("index, folders", [
    ("benchmarks/README.md", ["benchmarks"]),
    ("benchmarks/adaptation_search/README.md",
     ["benchmarks/adaptation_search", "benchmarks"]),
])
def test_benchmark_indexes_name_existing_reports(index, folders):
    text = (REPO / index).read_text(encoding="utf-8")
    missing = sorted(
        name for name in set(REPORT.findall(text)) - NOT_REPORTS
        if not any((REPO / folder / name).exists() for folder in folders))
    assert missing == []
