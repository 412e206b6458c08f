"""The LSTM ensemble's C kernel (bsim.ensemble.native): the gradient it computes, its build and cache,
and the torch code it falls back to.

The reference for a gradient is torch.func's grad of the problem's own unrolled cell
(Problem.predict), mapped over chains in float64: independent of both hand-written backward passes.
"""

from __future__ import annotations

import pytest
import torch

from bsim.ensemble import lstm as batched_lstm
from bsim.ensemble import native
from bsim.problems import make_problem
from bsim.scenario import apply_overrides, find_scenario
from bsim.simulation import Simulation


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bsim-cache")


@pytest.fixture(autouse=True)
def fresh_kernels(monkeypatch, module_cache):
    """Each test starts with no library loaded; they build into one cache folder of this module's (the tests of
    the cache itself use their own, ``own_cache``)."""
    monkeypatch.setenv("BSIM_CACHE", str(module_cache))
    monkeypatch.delenv("BSIM_NATIVE", raising=False)
    monkeypatch.setattr(native, "_kernels", {})
    monkeypatch.setattr(native, "_why_not", {})


@pytest.fixture
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def lstm_problem(hidden=16, seq_len=16, dtype="float32"):
    sc = find_scenario("lstm").copy()
    sc.problem.hidden, sc.problem.seq_len, sc.dtype = hidden, seq_len, dtype
    return make_problem(sc, torch.device("cpu"), getattr(torch, dtype))


def reference_grads(p, theta, x, y):
    """(K, P) float64 gradients of (1/2B) sum_b (f(x_b) - y_b)^2 per chain, by torch.func on the unrolled cell."""
    def loss(th, xb, yb):
        d = p.predict(th, xb) - yb
        return 0.5 * (d * d).mean()
    return torch.func.vmap(torch.func.grad(loss))(theta.double(), x.double(), y.double())


def chains_batch(p, chains, batch_size, seed=1, spread=0.5):
    gen = torch.Generator().manual_seed(seed)
    theta = p.init_params(0) + spread * torch.randn(chains, p.n_params, generator=gen).to(p.dtype)
    idx = torch.randint(p.n_train, (chains, batch_size), generator=gen)
    return theta, p.X[idx], p.y[idx]


@pytest.mark.parametrize("hidden, seq_len, chains, batch_size", [
    (16, 16, 5, 9),     # the bundled size; a batch that is not a multiple of the kernel's 4-row blocks
    (5, 7, 3, 4),       # an odd hidden size (20 gates) and a short sequence
    (16, 16, 2, 1),     # one example per batch
])
def test_the_c_kernel_gives_the_gradient_of_the_unrolled_cell(hidden, seq_len, chains, batch_size):
    p = lstm_problem(hidden, seq_len)
    theta, x, y = chains_batch(p, chains, batch_size)
    kernel = native.kernel_for(p, theta)
    assert kernel is not None, native.engine_name(p, theta)
    got = kernel.batch_grads(theta, x, y)
    expected = reference_grads(p, theta, x, y)
    assert got.dtype == torch.float32 and got.shape == (chains, p.n_params)
    # float32 arithmetic against float64: a few ulps of the largest component
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=2e-6 * float(expected.abs().max()))
    torch_code = batched_lstm.batch_grads(p, theta, x, y)
    torch.testing.assert_close(got, torch_code, rtol=1e-4, atol=2e-6 * float(expected.abs().max()))


def test_a_chain_that_left_the_finite_numbers_spoils_only_its_own_row():
    p = lstm_problem()
    theta, x, y = chains_batch(p, 4, 8)
    theta[2, 5] = float("nan")
    got = native.kernel_for(p, theta).batch_grads(theta, x, y)
    assert not torch.isfinite(got[2]).all()
    assert torch.isfinite(got[[0, 1, 3]]).all()


def test_the_library_is_built_once_into_the_cache_and_reused(own_cache):
    p = lstm_problem()
    theta = p.init_params(0)[None]
    assert native.kernel_for(p, theta) is not None
    built = list(own_cache.iterdir())
    assert sorted(f.suffix for f in built) == [".sha256", ".so"], "one library and its digest, no temporary file"
    library = next(f for f in built if f.suffix == ".so")
    stamp = library.stat().st_mtime_ns
    native._kernels.clear()                     # a new process: loads the file, does not compile again
    assert native.kernel_for(p, theta) is not None
    assert library.stat().st_mtime_ns == stamp
    assert native.engine_name(p, theta).startswith("C kernel")


def test_a_damaged_library_in_the_cache_is_built_again(own_cache):
    p = lstm_problem()
    theta, x, y = chains_batch(p, 2, 8)
    library = native._library_path(p.hidden, native._compiler(), native._flags())
    library.parent.mkdir(parents=True, exist_ok=True)
    library.write_bytes(b"not a library")           # what a build cut off by a full disk might leave
    got = native.kernel_for(p, theta).batch_grads(theta, x, y)
    torch.testing.assert_close(got.double(), reference_grads(p, theta, x, y), rtol=1e-4, atol=1e-6)
    assert library.stat().st_size > 1000


@pytest.mark.parametrize("setting, says", [
    ({"BSIM_NATIVE": "0"}, "BSIM_NATIVE=0"),
    ({"CC": "/nonexistent/cc"}, "no C compiler"),
    ({"CC": "false"}, "failed"),                # a compiler that fails: its message, then the torch code
])
def test_without_the_kernel_the_chains_run_on_the_torch_code(monkeypatch, own_cache, setting, says):
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    sc = apply_overrides(find_scenario("lstm"), chains=4, batch_size=8, device="cpu")
    sim = Simulation(sc, stats=False)
    assert native.kernel_for(sim.problem, sim.ensemble.theta) is None
    assert says in native.engine_name(sim.problem, sim.ensemble.theta)
    sim.run(3)
    assert torch.isfinite(sim.ensemble.theta).all()
    assert not list(native.cache_dir().glob("*.so"))


def test_float64_and_other_devices_use_the_torch_code():
    p = lstm_problem(dtype="float64")
    theta = p.init_params(0)[None]
    assert native.kernel_for(p, theta) is None and native.engine_name(p, theta) == "torch"


def test_a_hidden_size_where_torch_is_faster_uses_the_torch_code():
    p = lstm_problem(hidden=native.MAX_HIDDEN + 1)
    theta = p.init_params(0)[None]
    assert native.kernel_for(p, theta) is None and "hidden size above 16" in native.engine_name(p, theta)
    small = lstm_problem(hidden=native.MAX_HIDDEN)
    assert native.kernel_for(small, small.init_params(0)[None]) is not None


def test_the_same_run_gives_the_same_chains_bit_for_bit():
    def chains_after(steps):
        sc = apply_overrides(find_scenario("lstm"), chains=6, batch_size=8, device="cpu")
        sim = Simulation(sc, stats=False)
        sim.run(steps)
        return sim.ensemble.theta.clone()
    first, second = chains_after(12), chains_after(12)
    assert native.kernel_for(lstm_problem(), first) is not None
    assert torch.equal(first, second)


def test_the_two_engines_follow_the_same_chains(monkeypatch):
    """Twenty steps on each: the chains agree to float32 rounding (not bit for bit, and not required to)."""
    def chains_after(steps):
        sc = apply_overrides(find_scenario("lstm"), chains=4, batch_size=8, device="cpu")
        sim = Simulation(sc, stats=False)
        sim.run(steps)
        return sim.ensemble.theta.clone(), sim.theta.clone()
    c_chains, c_run = chains_after(20)
    monkeypatch.setenv("BSIM_NATIVE", "0")
    t_chains, t_run = chains_after(20)
    assert torch.equal(c_run, t_run), "chain 0, the run itself, never goes through either engine"
    torch.testing.assert_close(c_chains, t_chains, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("hidden", [16, 5])
def test_the_chains_training_loss_from_the_c_kernel_is_the_problem_s_loss(hidden):
    """chains_train_loss (the frame's band and chains_train_loss column) goes through the kernel's forward pass;
    the reference is the problem's own loss on its fused torch.lstm kernel, in float64, chain by chain."""
    from bsim.ensemble.steps import chains_train_loss
    p = lstm_problem(hidden=hidden)
    theta, _x, _y = chains_batch(p, 6, 1, spread=0.3)
    kernel = native.kernel_for(p, theta)
    assert kernel is not None
    got = chains_train_loss(p, theta)
    expected = torch.stack([p.loss(t.double(), p.X.double(), p.y.double()) for t in theta])
    assert got.dtype == torch.float32 and got.shape == (6,)
    torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=0)
    assert torch.equal(got, kernel.losses(theta, p.X, p.y))
