"""Packaging: bsim --version, the version in one place, the licence and the declared dependencies."""

import os
import re
import subprocess
import sys
import tomllib

import pytest
from support import ROOT

import bsim


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.slow
def test_bsim_version_prints_the_package_version():
    run = subprocess.run([sys.executable, "-m", "bsim", "--version"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"bsim {bsim.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", bsim.__version__)


def test_the_version_is_kept_in_one_place():
    project = pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bsim.__version__"}


def test_the_licence_and_the_project_metadata():
    project = pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the bsim developers" in text
    assert project["authors"] and any(c.startswith("Programming Language :: Python :: 3.11")
                                      for c in project["classifiers"])


def test_rich_is_declared_and_textual_plotext_is_a_range():
    deps = pyproject()["project"]["dependencies"]
    names = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0] for d in deps}
    assert "rich" in names
    (plotext_pin,) = [d for d in deps if d.startswith("textual-plotext")]
    assert "==" not in plotext_pin and ">=1.0.1" in plotext_pin


def test_every_subpackage_is_in_the_package_list():
    """A wheel holds only the listed packages: a new folder under bsim/ must be listed (bsim.ensemble once was not)."""
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bsim").rglob("__init__.py")}
    assert found <= listed
