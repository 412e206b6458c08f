"""What problems declare they can do, and the loss on a grid of the parameter plane (``Problem.loss_grid``)."""

from __future__ import annotations

import pytest
import torch

from bsim.problems import make_problem
from bsim.problems.base import SMALL_PARAMS
from bsim.scenario import find_scenario
from bsim.simulation import Simulation
from bsim.stats.exact import ExactNoise
from bsim.stats.sampled import SampledNoise

CPU, F64 = torch.device("cpu"), torch.float64


def problem(name: str, **spec):
    sc = find_scenario(name)
    for k, v in spec.items():
        setattr(sc.problem, k, v)
    return make_problem(sc, CPU, F64)


@pytest.mark.parametrize("name", ["default", "logreg"])
def test_loss_grid_is_the_train_loss_at_each_point_rows_from_y0(name):
    p = problem(name)
    star = p.theta_star.tolist()
    x0, x1, y0, y1, nx, ny = star[0] - 1.0, star[0] + 2.0, star[1] - 0.5, star[1] + 0.5, 7, 5
    grid = p.loss_grid(x0, x1, y0, y1, nx, ny)
    assert grid.shape == (ny, nx)
    for j, i in [(0, 0), (0, nx - 1), (ny - 1, 0), (2, 3), (ny - 1, nx - 1)]:
        x, y = x0 + i * (x1 - x0) / (nx - 1), y0 + j * (y1 - y0) / (ny - 1)
        direct = float(p.train_loss(torch.tensor([x, y], dtype=F64)))
        assert grid[j, i] == pytest.approx(direct, rel=1e-12)
    # a grid centred on theta* has its smallest loss at the centre (theta* minimises the train loss)
    fine = p.loss_grid(star[0] - 0.3, star[0] + 0.3, star[1] - 0.3, star[1] + 0.3, 11, 11)
    assert fine.argmin() == 5 * 11 + 5


def test_loss_grid_needs_two_parameters():
    assert problem("default", dim=3).loss_grid(0, 1, 0, 1, 4, 4) is None
    assert problem("lstm", n_train=16, hidden=2, seq_len=3).loss_grid(0, 1, 0, 1, 4, 4) is None


def test_capabilities_choose_the_statistics():
    lin, log, lstm = problem("default"), problem("logreg"), problem("lstm", n_train=16, hidden=2, seq_len=3)
    assert lin.closed_form_per_example and lin.least_squares and lin.has_optimum
    assert log.closed_form_per_example and not log.least_squares and log.has_optimum
    assert not lstm.closed_form_per_example and lstm.per_example_loss and not lstm.has_optimum
    assert lin.small and lin.n_params == 2 <= SMALL_PARAMS and not lstm.small
    for name, strategy in (("default", ExactNoise), ("logreg", ExactNoise), ("lstm", SampledNoise)):
        assert isinstance(Simulation(find_scenario(name)).noise_stats.strategy, strategy)
