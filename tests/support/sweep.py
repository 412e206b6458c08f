"""A small sweep for the tests: its scenario, its spec, rows without their wall-clock times."""

from __future__ import annotations

from pathlib import Path

from bsim.scenario import load_scenario
from bsim.sweep import state
from bsim.sweep.spec import SweepSpec

SMALL = """title = "small least squares"
description = "a small problem for sweep tests"
seed = 0
[problem]
kind = "linreg"
n_train = 256
n_test = 64
dim = 4
condition = 4.0
noise = 0.5
[optimizer]
lr = 0.05
batch_size = 4
"""

TINY_LSTM = """title = "tiny lstm"
description = "a tiny LSTM for sweep tests"
seed = 0
dtype = "float32"
[problem]
kind = "lstm"
n_train = 64
n_test = 16
hidden = 4
seq_len = 4
[optimizer]
lr = 0.5
batch_size = 8
"""


def write_small(folder) -> Path:
    """The SMALL scenario as ``folder/small.toml``."""
    path = Path(folder) / "small.toml"
    path.write_text(SMALL)
    return path


def spec_of(path, **kw) -> SweepSpec:
    base = dict(scenario=load_scenario(path), scenario_name="small", batch_sizes=(1, 4, 16, 64), target=0.05,
                excess=True, seeds=(0, 1), lr_rule="linear", max_steps=4000)
    base.update(kw)
    return SweepSpec(**base)


def without_wall(rows):
    return sorted(({k: v for k, v in r.items() if k != "wall_s"} for r in rows), key=state.row_key)
