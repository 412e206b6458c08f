"""Helpers shared by the tests (not tests themselves): paths, the app driver, small sweeps."""

from pathlib import Path

#: the repository's root and the tests' data folder
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def linreg_100(seed: int, batch_size: int, sampling: str = "shuffle", extra: str = ""):
    """Least squares on N = 100 examples (no test set), lr 0.05: small enough that counts check by hand.
    ``extra``: more [optimizer] keys and tables (drop_last, a timeline) as TOML lines."""
    from bsim.scenario import parse_scenario
    return parse_scenario(f"""
seed = {seed}
device = "cpu"
[problem]
kind = "linreg"
n_train = 100
n_test = 0
[optimizer]
lr = 0.05
batch_size = {batch_size}
sampling = "{sampling}"
{extra}
""", "linreg-100.toml")
