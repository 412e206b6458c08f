"""The landscapes (issue 20): the per-example losses, the tilts, the basins, the checks of a scenario."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bsim.actions import SetBatchSize
from bsim.frame import CSV_COLUMNS
from bsim.scenario import find_scenario, parse_scenario
from bsim.simulation import Simulation
from tests.support.cli import run_cli

WELLS = '[problem]\nkind = "{kind}"\nn_train = 256\nbarriers = [0.3, 1.0]\ncurvatures = [4.0, 0.5]\n' \
        'saddle_curvature = 2.0\ntilt_scale = 3.0\n[optimizer]\nlr = 0.05\nbatch_size = 4\nsampling = "replacement"\n'


def double_well(t, d0=0.3, d1=1.0, k0=4.0, k1=0.5, ks=2.0):
    """The C^1 piecewise-quadratic well written out here: minima where U' = 0 and U = -d_k, top at 0."""
    m0, m1 = -math.sqrt(2 * d0 * (k0 + ks) / (k0 * ks)), math.sqrt(2 * d1 * (k1 + ks) / (k1 * ks))
    x0, x1 = m0 * k0 / (k0 + ks), m1 * k1 / (k1 + ks)
    t = np.asarray(t, dtype=float)
    return np.where(t < x0, -d0 + k0 * (t - m0) ** 2 / 2, np.where(t > x1, -d1 + k1 * (t - m1) ** 2 / 2, -ks * t * t / 2))


def sim_of(text: str, chains: int = 1) -> Simulation:
    return Simulation(parse_scenario(f"chains = {chains}\n" + text), stats=False)


def test_the_wells_full_loss_is_the_double_well_and_the_barriers_and_curvatures_are_the_scenarios():
    p = sim_of(WELLS.format(kind="wells")).problem
    ts = np.linspace(-2, 3, 1001)
    full = p.full_loss_numpy(ts[:, None])
    assert np.allclose(full, double_well(ts), atol=1e-12)
    (m0,), (m1,) = p.basins[0].minimum, p.basins[1].minimum
    h = 1e-4
    for m, depth, k in ((m0, 0.3, 4.0), (m1, 1.0, 0.5)):
        u = double_well([m - h, m, m + h])
        assert u[1] == pytest.approx(-depth) and (u[0] - 2 * u[1] + u[2]) / h**2 == pytest.approx(k, rel=1e-6)
    assert [b.label for b in p.basins] == ["sharp", "flat"]


def test_the_tilts_average_to_zero_and_the_batch_gradient_is_the_mean_of_the_examples():
    p = sim_of(WELLS.format(kind="wells2d")).problem
    b = p.tilts64
    assert np.abs(b.mean(0)).max() < 1e-12 and np.allclose(b.T @ b / len(b), 9.0 * np.eye(2))
    theta = np.array([0.3, -0.2])
    idx = [3, 17, 17, 200]
    _, g = p.loss_and_grad(torch.as_tensor(theta), torch.tensor(idx))
    e, h = np.eye(2), 1e-6     # grad l_i = grad L + b_i: the full loss's gradient by central differences
    full = np.array([(p.full_loss_numpy((theta + h * e[i])[None]) - p.full_loss_numpy((theta - h * e[i])[None]))[0]
                     / (2 * h) for i in range(2)])
    assert np.allclose(g.numpy(), full + b[idx].mean(0), atol=1e-7)


def wells_2d_gradient(z, d0=0.3, d1=1.0, k0=4.0, k1=0.5, ks=2.0):
    """grad of U(x, y) = U_1(x) + kappa(x) y^2 / 2, kappa(x) = k0 + (k1 - k0) / (1 + exp(-x / w)), written out here."""
    m0, m1 = -math.sqrt(2 * d0 * (k0 + ks) / (k0 * ks)), math.sqrt(2 * d1 * (k1 + ks) / (k1 * ks))
    x0, x1 = m0 * k0 / (k0 + ks), m1 * k1 / (k1 + ks)
    w = 0.5 * min(-x0, x1)
    x, y = z[:, 0], z[:, 1]
    du1 = np.where(x < x0, k0 * (x - m0), np.where(x > x1, k1 * (x - m1), -ks * x))
    s = 1 / (1 + np.exp(-x / w))
    return np.stack([du1 + (k1 - k0) * s * (1 - s) / w * y * y / 2, (k0 + (k1 - k0) * s) * y], axis=1), (m0, m1)


def test_the_basin_of_a_point_above_the_saddle_is_where_the_steepest_descent_goes_not_its_side():
    p = sim_of(WELLS.format(kind="wells2d")).problem
    # points above the saddle's level on both sides, some near the y axis where the curved flow crosses sides
    pts = np.array([[0.05, 1.2], [-0.05, 1.2], [0.3, 0.9], [-0.4, -1.1], [0.02, -1.5], [1.0, 1.6], [-0.9, 1.4]])
    z = pts.copy()
    for _ in range(6000):      # an independent flow: small Euler steps of the gradient written above
        g, (m0, m1) = wells_2d_gradient(z)
        z = z - 0.005 * g
    flowed = [0 if abs(a - m0) < 1e-3 else 1 if abs(a - m1) < 1e-3 else -1 for a in z[:, 0]]
    assert p.basin_of(torch.as_tensor(pts)).tolist() == flowed
    assert flowed != [int(x > 0) for x in pts[:, 0]]     # the side of the saddle would be wrong for some


def test_nonuniform_minima_are_equally_sharp_with_the_spreads_asked_for():
    p = sim_of('[problem]\nkind = "nonuniform"\nsharpness = 1.0\nspreads = [3.0, 0.2]\n').problem
    a = p.curv64
    assert np.allclose(a.mean(0), 1.0) and (a >= 0).all()
    assert a[:, 0].std() == pytest.approx(3.0, rel=0.02) and a[:, 1].std() == pytest.approx(0.2, rel=0.05)
    assert [b.label for b in p.basins] == ["non-uniform", "uniform"]
    # the periodic landscape: a point 4 away is in the same basin
    t = torch.tensor([[-1.3], [2.7], [0.4], [4.4], [-3.6]], dtype=torch.float64)
    assert p.basin_of(t).tolist() == [0, 0, 1, 1, 1]


def test_the_escape_scenario_starts_every_chain_in_the_sharp_basin_and_labels_its_prediction():
    sim = Simulation(find_scenario("escape"), stats=False)
    sim.step()
    f = sim.frame()
    assert (f.basin_0_frac, f.basin_1_frac, f.escaped) == (1.0, 0.0, 0)
    assert f.escape_theory == "kramers" and f.landscape.positions.shape == (256, 1)
    assert f.landscape.curve is not None and len(f.landscape.curve[0]) == 201
    assert "Kramers approx." in f.landscape.theory_note and "in its regime: barrier 256 T" in f.landscape.theory_note
    sim.apply(SetBatchSize(4))
    sim.step()
    assert "OUTSIDE its regime: barrier 4 T (" in sim.frame().landscape.theory_note


def test_other_problems_leave_the_landscape_columns_empty():
    sim = Simulation(find_scenario("default"), stats=False)
    sim.step()
    f = sim.frame()
    columns = ("basin_0_frac", "basin_1_frac", "escaped", "escape_rate", "escape_rate_se", "escape_rate_theory",
               "escape_theory")
    assert set(columns) <= set(CSV_COLUMNS) and f.csv_row(columns) == [""] * 7 and f.landscape is None


@pytest.mark.parametrize("key, value, says", [
    ("barriers", "[0.0, 1.0]", "problem.barriers: got [0.0, 1.0], expected two numbers > 0"),
    ("barriers", "[-0.2, 1.0]", "problem.barriers: got [-0.2, 1.0], expected two numbers > 0"),
    ("curvatures", "[2.0, 2.0]", "problem.curvatures: got equal minima"),
    ("curvatures", "[4.0, 0.0]", "problem.curvatures: got [4.0, 0.0], expected two numbers > 0"),
    ("tilts", "[1.0, 2.0, -2.0]", "problem.tilts: the tilts average to 0.333, not 0"),
    ("spreads", "[1.0, 1.0]", "expected it only with kind nonuniform"),
])
def test_bad_landscape_parameters_are_one_line_and_exit_2(tmp_path, capsys, key, value, says):
    text = WELLS.format(kind="wells").replace("tilt_scale = 3.0\n", "" if key == "tilts" else "tilt_scale = 3.0\n")
    text = text.replace(f"{key} = ", f"old_{key} = ") if f"\n{key} = " in text else text
    text = text.replace("[problem]\n", f"[problem]\n{key} = {value}\n").replace(f"old_{key} = ", "# ")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    ran = run_cli(capsys, "run", path, "--headless", "--steps", "1")
    assert ran.code == 2 and ran.err.count("\n") == 1 and "Traceback" not in ran.err
    assert f"{path}:2: " in ran.err and says in ran.err


def test_equal_spreads_of_the_nonuniform_minima_are_refused(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[problem]\nkind = "nonuniform"\nspreads = [1.5, 1.5]\n')
    ran = run_cli(capsys, "run", path, "--headless", "--steps", "1")
    assert ran.code == 2 and f"{path}:3: problem.spreads: got equal minima" in ran.err and ran.err.count("\n") == 1


@pytest.mark.parametrize("name", ["escape", "sharp-flat"])
def test_a_landscape_run_is_the_same_bit_for_bit_and_survives_a_round_trip_through_toml(name):
    from bsim.scenario import scenario_to_toml
    sc = find_scenario(name)
    runs = [Simulation(sc, stats=False), Simulation(parse_scenario(scenario_to_toml(sc)), stats=False)]
    for sim in runs:
        for _ in range(40):
            sim.step()
    a, b = (sim.frame(timing=False) for sim in runs)
    assert a.csv_row() == b.csv_row() and a.escape_theory is not None
    assert runs[0].ensemble.theta.tolist() == runs[1].ensemble.theta.tolist()
