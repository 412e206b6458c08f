"""Helpers shared by the tests (not tests themselves): paths, the app driver, small sweeps."""

from pathlib import Path

#: the repository's root and the tests' data folder
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
