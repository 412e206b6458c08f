"""Problems: the optimum (the full gradient vanishes at theta*), closed-form
gradients against autograd, the LSTM's two forms agreeing, data from CSV."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import DATA

from bsim.errors import BsimInputError
from bsim.problems import make_problem
from bsim.scenario import find_scenario, load_scenario, parse_scenario

CPU = torch.device("cpu")
F64 = torch.float64


def problem(kind="linreg", dtype=F64, **spec):
    sc = find_scenario({"linreg": "default", "logreg": "logreg", "lstm": "lstm"}[kind])
    for k, v in spec.items():
        setattr(sc.problem, k, v)
    return make_problem(sc, CPU, dtype)


def grad_scale(p):
    """|X^T y| / N: the size of a gradient term, to judge 'zero' against."""
    return float(np.linalg.norm(p.X64.T @ p.y64) / len(p.y64)) + 1.0


@pytest.mark.parametrize("kind,spec", [
    ("linreg", {}), ("linreg", {"dim": 20, "condition": 100.0}),
    ("logreg", {}), ("logreg", {"dim": 10, "condition": 10.0}), ("logreg", {"l2": 0.01}),
])
def test_full_gradient_vanishes_at_the_optimum(kind, spec):
    p = problem(kind, **spec)
    G = p.full_grad(p.theta_star)
    # float64 round-off of a sum of N terms: ~1e-16 * sqrt(N) relative; 1e-12 leaves room
    assert float(G.norm()) < 1e-12 * grad_scale(p)
    # and theta* is a minimum: a step away in any direction raises the train loss
    for _ in range(5):
        d = torch.randn(p.n_params, dtype=F64) * 1e-3
        assert p.train_loss(p.theta_star + d) > p.train_loss(p.theta_star)


def test_linreg_optimum_solves_the_normal_equations():
    p = problem("linreg", dim=5)
    X, y = p.X64, p.y64
    assert np.allclose(X.T @ X @ p.theta_star64, X.T @ y, rtol=1e-12, atol=1e-12)
    assert np.allclose(p.hessian(), X.T @ X / len(y), rtol=1e-14)


@pytest.mark.parametrize("kind,spec", [("linreg", {"dim": 4}), ("logreg", {"dim": 3}), ("logreg", {"l2": 0.1})])
def test_closed_form_gradients_match_autograd(kind, spec):
    p = problem(kind, **spec)
    torch.manual_seed(0)
    theta = torch.randn(p.n_params, dtype=F64)
    idx = torch.tensor([3, 17, 17, 100, 5])
    t = theta.clone().requires_grad_(True)
    ref_loss = p.loss(t, p.X[idx], p.y[idx])
    (ref,) = torch.autograd.grad(ref_loss, t)
    loss, g = p.loss_and_grad(theta, idx)
    assert torch.allclose(g, ref, rtol=1e-12, atol=1e-14)
    assert torch.allclose(loss, ref_loss.detach(), rtol=1e-13)
    pe = p.per_example_grads(theta, idx)
    assert pe.shape == (5, p.n_params)
    assert torch.allclose(pe.mean(0), ref, rtol=1e-12, atol=1e-14)
    assert torch.allclose(p.per_example_grads(theta).mean(0), p.full_grad(theta), rtol=1e-12, atol=1e-14)


def test_linreg_loss_is_half_mean_squared_residual():
    p = problem("linreg")
    theta = torch.tensor([0.3, -1.0], dtype=F64)
    r = p.X64 @ theta.numpy() - p.y64
    assert float(p.train_loss(theta)) == pytest.approx(0.5 * np.mean(r ** 2), rel=1e-13)


def test_logreg_test_loss_is_the_data_loss_and_train_loss_the_objective():
    """test_loss: mean log-loss on the held-out rows, no (1/2) l2 |theta|^2 (issue 23); train_loss keeps it."""
    p = problem("logreg", l2=0.1)
    theta = torch.tensor([0.7, -1.3, 0.4][:p.n_params], dtype=F64)
    th = theta.numpy()

    def logloss(X, y):       # log(1 + e^z) - y z, summed one example at a time
        return sum(np.logaddexp(0.0, float(x @ th)) - yi * float(x @ th) for x, yi in zip(X, y)) / len(y)

    Xt, yt = p.X_test.numpy(), p.y_test.numpy()
    assert len(yt) > 0
    assert float(p.test_loss(theta)) == pytest.approx(logloss(Xt, yt), rel=1e-12)
    assert float(p.train_loss(theta)) == pytest.approx(logloss(p.X64, p.y64) + 0.05 * float(th @ th), rel=1e-12)


def test_data_is_split_and_reproducible():
    a, b, c = problem("linreg"), problem("linreg"), problem("linreg")
    assert a.X.shape == (1024, 2) and a.X_test.shape == (256, 2)
    assert torch.equal(a.X, b.X) and torch.equal(a.y_test, b.y_test)
    sc = find_scenario("default")
    sc.seed = 1
    d = make_problem(sc, CPU, F64)
    assert not torch.equal(a.X, d.X)
    assert c.n_train == 1024


def test_synthetic_condition_number_is_roughly_as_asked():
    p = problem("linreg", dim=5, condition=100.0, n_train=20000)
    eig = np.linalg.eigvalsh(p.hessian())
    # population eigenvalues 1 .. 1/100; with N = 20000 the sample ones are within a few percent
    assert eig.max() / eig.min() == pytest.approx(100.0, rel=0.15)


# ------------------------------------------------------------------ CSV data

def test_linreg_from_csv_relative_to_the_scenario(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)                       # paths resolve against the file, not the cwd
    sc = load_scenario(DATA / "csv-linreg.toml")
    p = make_problem(sc, CPU, F64)
    assert p.X.shape == (40, 3) and p.X_test.shape == (8, 3)
    # the file's columns are x1,y,x2,one: y is taken out wherever it sits
    first = (DATA / "linreg-train.csv").read_text().splitlines()[1].split(",")
    assert p.X64[0].tolist() == [float(first[0]), float(first[2]), float(first[3])]
    assert p.y64[0] == float(first[1])
    assert float(p.full_grad(p.theta_star).norm()) < 1e-12 * grad_scale(p)
    # the data were made as y = 1.5 x1 - 0.7 x2 + 0.3 + noise(0.2): theta* is near that
    assert np.allclose(p.theta_star64, [1.5, -0.7, 0.3], atol=0.2)
    assert p.test_loss(p.theta_star) is not None


def test_logreg_from_csv_optimum_and_no_test_set():
    p = make_problem(load_scenario(DATA / "csv-logreg.toml"), CPU, F64)
    assert p.X.shape == (64, 2) and set(p.y64.tolist()) == {0.0, 1.0}
    assert float(p.full_grad(p.theta_star).norm()) < 1e-12 * grad_scale(p)
    assert p.test_loss(p.theta_star) is None


def _write(tmp_path, csv_text, kind="logreg", extra=""):
    (tmp_path / "d.csv").write_text(csv_text)
    path = tmp_path / "s.toml"
    path.write_text(f'[problem]\nkind = "{kind}"\ndata = "d.csv"\n{extra}')
    return load_scenario(path)


SEPARABLE = "x1,x2,y\n1,0.5,1\n2,1,1\n3,-1,1\n-1,0.2,0\n-2,1,0\n-3,-0.5,0\n"


def test_logreg_separable_classes_without_l2_is_a_clear_error(tmp_path):
    sc = _write(tmp_path, SEPARABLE)
    with pytest.raises(BsimInputError, match=r"d\.csv: the two classes separate.*l2 > 0"):
        make_problem(sc, CPU, F64)


def test_logreg_separable_classes_with_l2_have_an_optimum(tmp_path):
    p = make_problem(_write(tmp_path, SEPARABLE, extra="l2 = 0.01\n"), CPU, F64)
    assert float(p.full_grad(p.theta_star).norm()) < 1e-13
    assert np.all(np.abs(p.theta_star64) < 100)


def test_csv_from_a_spreadsheet_with_a_byte_order_mark(tmp_path):
    (tmp_path / "d.csv").write_bytes("y,x\r\n1,1\r\n2,3\r\n4,4\r\n".encode("utf-8-sig"))
    (tmp_path / "s.toml").write_text('[problem]\ndata = "d.csv"\n')
    p = make_problem(load_scenario(tmp_path / "s.toml"), CPU, F64)
    assert p.y64.tolist() == [1.0, 2.0, 4.0] and p.X64[:, 0].tolist() == [1.0, 3.0, 4.0]


def test_linreg_dependent_columns_is_an_error(tmp_path):
    sc = _write(tmp_path, "a,b,y\n1,2,1\n2,4,3\n3,6,2\n", kind="linreg")
    with pytest.raises(BsimInputError, match=r"d\.csv: got linearly dependent features"):
        make_problem(sc, CPU, F64)


# ---------------------------------------------------------------------- LSTM

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_lstm_unrolled_predict_equals_fused_kernel(dtype, tol):
    p = problem("lstm", dtype=dtype)
    torch.manual_seed(1)
    theta = p.init_params(0) + 0.3 * torch.randn(p.n_params, dtype=dtype)
    x = p.X[:64]
    assert torch.allclose(p.predict(theta, x), p.predict_fused(theta, x), rtol=tol, atol=tol)
    assert torch.allclose(p.predict(theta, x[5]), p.predict_fused(theta, x[5:6])[0], rtol=tol, atol=tol)


def test_lstm_gradient_matches_autograd_through_the_unrolled_cell():
    p = problem("lstm", dtype=F64)
    theta = p.init_params(0)
    idx = torch.arange(10, 42)
    t = theta.clone().requires_grad_(True)
    ref_loss = 0.5 * ((p.predict(t, p.X[idx]) - p.y[idx]) ** 2).mean()
    (ref,) = torch.autograd.grad(ref_loss, t)
    loss, g = p.loss_and_grad(theta, idx)
    assert torch.allclose(g, ref, rtol=1e-10, atol=1e-13)
    assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-12)


def test_lstm_per_example_gradients_by_vmap_average_to_the_batch_gradient():
    p = problem("lstm", dtype=F64)
    theta = p.init_params(3)
    idx = torch.arange(16)
    per = torch.func.vmap(torch.func.grad(p.example_loss), in_dims=(None, 0, 0))(theta, p.X[idx], p.y[idx])
    assert per.shape == (16, p.n_params)
    assert torch.allclose(per.mean(0), p.loss_and_grad(theta, idx)[1], rtol=1e-10, atol=1e-13)


def test_lstm_has_no_optimum_and_reproducible_init():
    p = problem("lstm")
    assert p.theta_star is None and not p.has_optimum
    assert p.n_params == 4 * 16 + 4 * 16 * 16 + 8 * 16 + 16 + 1
    a, b = p.init_params(0), p.init_params(0)
    assert torch.equal(a, b) and not torch.equal(a, p.init_params(1))
    assert float(a.abs().max()) <= 1 / 16 ** 0.5   # PyTorch's U(-1/sqrt(H), 1/sqrt(H))


def test_lstm_scenario_parses_with_its_shape():
    sc = parse_scenario('[problem]\nkind = "lstm"\nhidden = 4\nseq_len = 3\nn_train = 10\nn_test = 0\n')
    p = make_problem(sc, CPU, torch.float32)
    assert p.X.shape == (10, 3) and p.X_test is None and p.test_loss(p.init_params(0)) is None
