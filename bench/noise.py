"""Noise statistics speed: steps/s with statistics every step, against the peers that compute them.

Arms, all in one run, on the same problem, data, batch size, dtype and one CPU thread:

  stats     bsim's Simulation with its noise statistics (the default): every step's full gradient G,
            tr(Sigma) (exact, all N examples; the LSTM: two-batch estimate every step, G every K steps),
            grad_noise, its prediction, the ball window; a frame every --every steps folds them on the host
  nostats   the same Simulation with stats=False (bsim's own step, nothing else)
  bare      a hand-written PyTorch SGD loop, no statistics: nn.Linear / nn.LSTM, autograd, optim.SGD
  vmap      SGD whose batch gradient and within-batch variance come from torch.func per-example
            gradients (vmap of grad over one example's loss) at every step
  loop      the same from a Python loop of one autograd call per example
  backpack  the same from BackPACK's Variance extension (and the gradient it computes alongside)

The vmap, loop and backpack arms give the within-batch spread of the per-example gradients (what
BackPACK's Variance reports); the stats arm gives more: the full gradient and the population tr(Sigma).
Before timing, every arm is checked against an exact reference at the same parameters and batch:
per-example arms against the closed form (linear models) or torch.func (LSTM), the stats arm's G and
tr(Sigma) against all N per-example gradients. Arms alternate over repeats; the table shows medians.

BackPACK is a benchmark-only dependency, not a dependency of bsim:
    pip install --no-deps backpack-for-pytorch einops unfoldNd
Without it the backpack arm is skipped with a message.

    python bench/noise.py [--repeats R] [--steps S] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.scenario import apply_overrides, find_scenario  # noqa: E402
from bsim.simulation import Simulation  # noqa: E402
from bsim.stats.perexample import per_example_grads, per_example_vmap  # noqa: E402
from bsim.stats.noise_stats import NoiseStats  # noqa: E402

try:  # benchmark-only
    from backpack import backpack, extend
    from backpack.custom_module.reduce_tuple import ReduceTuple
    from backpack.custom_module.slicing import Slicing
    from backpack.extensions import Variance
    HAVE_BACKPACK = True
except ImportError:
    HAVE_BACKPACK = False

CASES = [
    # label, bundled scenario, problem overrides, batch size, goal vs bare, goal vs backpack
    ("linreg d=20", "default", {"dim": 20}, 32, 0.8, 5.0),
    ("logreg d=20", "logreg", {"dim": 20}, 256, 0.8, 5.0),
    ("lstm h=16 T=16", "lstm", {}, 32, 0.4, None),
]


def make_sim(name: str, problem: dict, batch_size: int, stats: bool = True) -> Simulation:
    sc = apply_overrides(find_scenario(name), batch_size=batch_size, device="cpu")
    for k, v in problem.items():
        setattr(sc.problem, k, v)
    sim = Simulation(sc, stats=stats)
    if stats and not hasattr(sim.problem, "per_example_grads"):
        # the bar is for statistics EVERY step: the LSTM's default takes the two-batch estimate every
        # LSTM_STRIDE steps (see bench/engine.py for the default cadence); here stride 1, the full gradient every 50
        sim.noise_stats.detach()
        sim.noise_stats = NoiseStats(sim, full_grad_every=50, stride=1)
    return sim


class Shuffle:
    """Consecutive slices of a fresh permutation per epoch (bsim's shuffle mode, B dividing or not)."""

    def __init__(self, n, B, device):
        self.n, self.B, self.gen = n, B, torch.Generator(device=device)
        self.gen.manual_seed(0)
        self.perm, self.pos = None, n

    def next(self):
        if self.pos >= self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen, device=self.gen.device), 0
        idx = self.perm[self.pos:self.pos + self.B]
        self.pos += self.B
        return idx


# ------------------------------------------------------------------ the bsim arms
class SimArm:
    def __init__(self, sim, every):
        self.sim, self.every = sim, every

    def run(self, steps):
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            k = min(self.every, steps - done)
            self.sim.run(k)
            self.sim.frame()
            done += k
        return time.perf_counter() - t0


# ------------------------------------------------------- per-example statistics arms
class PerExampleArm:
    """SGD on theta with g_B and the within-batch variance from per-example gradients every step."""

    def __init__(self, p, lr, B, how):
        self.p, self.lr, self.how = p, lr, how
        self.theta = p.init_params(0).clone()
        self.sampler = Shuffle(p.n_train, B, p.device)
        self.last_var = None

    def example_loss(self, theta, x, y):
        if hasattr(self.p, "example_loss"):
            return self.p.example_loss(theta, x, y)
        return self.p.loss(theta, x[None], y[None])

    def grads(self, theta, idx):
        X, y = self.p.X[idx], self.p.y[idx]
        if self.how == "vmap":
            if not hasattr(self, "_vg"):
                self._vg = torch.func.vmap(torch.func.grad(self.example_loss), in_dims=(None, 0, 0))
            return self._vg(theta, X, y)
        rows = []   # one autograd call per example, on the problem's own (fused) loss of a one-row batch
        for i in range(X.shape[0]):
            t = theta.detach().requires_grad_(True)
            rows.append(torch.autograd.grad(self.p.loss(t, X[i:i + 1], y[i:i + 1]), t)[0])
        return torch.stack(rows)

    def batch_stats(self, theta, idx):
        P = self.grads(theta, idx)
        g = P.mean(0)
        return g, ((P - g) ** 2).sum(1).mean()     # within-batch variance, summed over parameters

    def run(self, steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            g, self.last_var = self.batch_stats(self.theta, self.sampler.next())
            self.theta = self.theta - self.lr * g
        return time.perf_counter() - t0


class BareArm:
    """nn modules, autograd, optim.SGD; no statistics."""

    def __init__(self, p, lr, B, use_backpack=False):
        self.p, self.B, self.use_backpack = p, B, use_backpack
        dt, dev = p.dtype, p.device
        if p.kind == "lstm":
            H = p.hidden
            layers = [torch.nn.LSTM(1, H, batch_first=True), ReduceTuple(0) if use_backpack else _First(),
                      (Slicing if use_backpack else _Slice)((slice(None), -1)), torch.nn.Linear(H, 1)]
            self.unsqueeze = True
        else:
            layers = [torch.nn.Linear(p.n_params, 1, bias=False)]
            self.unsqueeze = False
        self.model = torch.nn.Sequential(*layers).to(device=dev, dtype=dt)
        if use_backpack:
            self.model = extend(self.model)
        self.l2 = float(getattr(p, "l2", 0.0) or 0.0)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.sampler = Shuffle(p.n_train, B, dev)
        self.load(p.init_params(0))

    def load(self, theta):
        """Copy a flat bsim parameter vector into the modules (same layout as bsim's)."""
        with torch.no_grad():
            if self.p.kind == "lstm":
                w_ih, w_hh, b_ih, b_hh, w_out, b_out = self.p.unpack(theta)
                lstm, lin = self.model[0], self.model[3]
                for dst, src in ((lstm.weight_ih_l0, w_ih), (lstm.weight_hh_l0, w_hh), (lstm.bias_ih_l0, b_ih),
                                 (lstm.bias_hh_l0, b_hh), (lin.weight, w_out[None]), (lin.bias, b_out[None])):
                    dst.copy_(src)
            else:
                self.model[0].weight.copy_(theta[None])

    def flat(self, which):
        """Parameters' grad or variance, flattened in bsim's layout."""
        ps = list(self.model.parameters())
        return torch.cat([getattr(q, which).reshape(-1) for q in ps])

    def loss(self, idx):
        X, y = self.p.X[idx], self.p.y[idx]
        z = self.model(X.unsqueeze(-1) if self.unsqueeze else X).squeeze(-1)
        if self.p.kind == "logreg":
            out = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
            if self.l2:
                out = out + 0.5 * self.l2 * sum((q ** 2).sum() for q in self.model.parameters())
            return out
        return 0.5 * ((z - y) ** 2).mean()

    def step(self, idx):
        self.opt.zero_grad()
        loss = self.loss(idx)
        if self.use_backpack:
            with backpack(Variance()):
                loss.backward()
        else:
            loss.backward()
        self.opt.step()

    def batch_stats(self, theta, idx):
        """(g_B, within-batch variance summed) at theta; BackPACK's variance is of g_i / B: times B^2."""
        self.load(theta)
        self.opt.zero_grad()
        with backpack(Variance()):
            self.loss(idx).backward()
        B = idx.shape[0]
        return self.flat("grad"), self.flat("variance").sum() * B * B

    def run(self, steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step(self.sampler.next())
        return time.perf_counter() - t0


class _First(torch.nn.Module):
    def forward(self, x):
        return x[0]


class _Slice(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x[self.s]


# ------------------------------------------------------------------ agreement checks
def reference(p, theta, idx):
    P = per_example_grads(p, theta, idx)
    g = P.mean(0)
    return g, ((P - g) ** 2).sum(1).mean()


def rel(a, b):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


def check(p, sim, arms, B):
    """Largest relative difference of each arm from the reference, at the same theta and batch."""
    theta = p.theta_star + 0.1 if p.theta_star is not None else p.init_params(0)
    idx = torch.randperm(p.n_train, generator=torch.Generator().manual_seed(1))[:B]
    g_ref, v_ref = reference(p, theta, idx)
    out = {}
    for name, arm in arms.items():
        g, v = arm.batch_stats(theta, idx)
        out[name] = max(rel(g, g_ref), rel(v, v_ref))
    # the stats arm: G and tr(Sigma) at theta against all N per-example gradients (vmap for the LSTM)
    ns = sim.noise_stats
    P = p.per_example_grads(theta) if p.closed_form_per_example else per_example_vmap(p, theta, torch.arange(p.n_train))
    G_all = P.mean(0)
    tr_all = ((P - G_all) ** 2).sum(1).mean()
    if p.closed_form_per_example:
        G, tr = ns.strategy.full_grad_and_trace(theta)
        out["stats"] = max(rel(G, G_all), rel(tr, tr_all))
    else:   # the LSTM's G is the problem's full gradient; tr(Sigma) is estimated, not computed
        out["stats"] = rel(p.full_grad(theta), G_all)
    return out


def measure(case, repeats, steps, every):
    label, name, problem, B, goal_bare, goal_bp = case
    sim = make_sim(name, problem, B)
    nostats = make_sim(name, problem, B, stats=False)
    p = sim.problem
    arms = {"stats": SimArm(sim, every), "nostats": SimArm(nostats, every), "bare": BareArm(p, sim.lr, B),
            "vmap": PerExampleArm(p, sim.lr, B, "vmap"), "loop": PerExampleArm(p, sim.lr, B, "loop")}
    if HAVE_BACKPACK:
        arms["backpack"] = BareArm(p, sim.lr, B, use_backpack=True)
    agree = check(p, sim, {k: arms[k] for k in ("vmap", "loop", "backpack") if k in arms}, B)
    # warm-up, and a step count per arm that takes about as long as ``steps`` of the bare loop
    warm = {k: max(5, steps // 20) / arm.run(max(5, steps // 20)) for k, arm in arms.items()}
    budget = steps / warm["bare"]
    counts = {k: max(5, int(budget * r)) if k not in ("stats", "nostats") else steps for k, r in warm.items()}
    rates = {k: [] for k in arms}
    for _ in range(repeats):        # interleaved, so drifts of the machine hit every arm alike
        for k, arm in arms.items():
            rates[k].append(counts[k] / arm.run(counts[k]))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return dict(label=label, B=B, dtype=str(p.dtype).replace("torch.", ""), med=med, agree=agree,
                goal_bare=goal_bare, goal_bp=goal_bp, every=sim.noise_stats.full_every)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3000, help="steps per repeat of the fast arms")
    ap.add_argument("--every", type=int, default=1000, help="a frame (host read) every K steps")
    ap.add_argument("--quick", action="store_true", help="2 repeats of 500 steps")
    ap.add_argument("--smoke", action="store_true",
                    help="CI: 1 repeat of 40 steps; judges the agreement, not the speed goals")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 2, 500
    if args.smoke:
        args.repeats, args.steps = 1, 40
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Full backward hook")     # BackPACK's hooks on an input without grad
    print(f"torch {torch.__version__}, 1 thread, cpu; {args.repeats} interleaved repeats; median steps/s; "
          f"a frame every {args.every} steps")
    if not HAVE_BACKPACK:
        print("backpack arm skipped: BackPACK is not installed "
              "(pip install --no-deps backpack-for-pytorch einops unfoldNd; a benchmark-only dependency)")
    arms = ["stats", "nostats", "bare", "vmap", "loop"] + (["backpack"] if HAVE_BACKPACK else [])
    print(f"{'case':<15} {'B':>4} " + " ".join(f"{a:>9}" for a in arms)
          + f" {'stats/bare':>10} {'stats/nostats':>13} {'stats/bp':>8}  goals")
    ok, agree_rows = True, []
    for case in CASES:
        r = measure(case, args.repeats, args.steps, args.every)
        m = r["med"]
        vs_bare, vs_nostats = m["stats"] / m["bare"], m["stats"] / m["nostats"]
        vs_bp = m["stats"] / m["backpack"] if "backpack" in m else None
        good = vs_bare >= r["goal_bare"] and (r["goal_bp"] is None or vs_bp is None or vs_bp >= r["goal_bp"])
        ok &= good
        goals = f">= {r['goal_bare']}x bare" + (f", >= {r['goal_bp']:g}x backpack" if r["goal_bp"] else "")
        print(f"{r['label']:<15} {r['B']:>4} " + " ".join(f"{m[a]:>9.0f}" for a in arms)
              + f" {vs_bare:>10.2f} {vs_nostats:>13.2f} {(f'{vs_bp:.1f}' if vs_bp else '-'):>8}  {goals}: "
              + ("met" if good else "NOT MET"))
        agree_rows.append((r["label"], r["dtype"], r["agree"], r["every"]))
    print("\nagreement with the exact reference at the same parameters and batch (largest relative difference):")
    for label, dtype, agree, every in agree_rows:
        print(f"  {label:<15} {dtype:<8} " + "  ".join(f"{k} {v:.1e}" for k, v in agree.items())
              + (f"   (LSTM: full gradient every {every} steps, two-batch tr(Sigma) every step)" if every > 1 else ""))
    worst = max(v for _, dtype, a, _ in agree_rows for v in a.values() if dtype == "float64")
    worst32 = max([v for _, dtype, a, _ in agree_rows for v in a.values() if dtype == "float32"], default=0.0)
    agree_ok = worst < 1e-8 and worst32 < 1e-4
    print(f"agreement: {'ok' if agree_ok else 'FAILED'} (float64 < 1e-8, float32 < 1e-4)")
    if args.smoke:
        print("smoke run: the speed goals are judged only in a full run")
        return 0 if agree_ok else 1
    return 0 if ok and agree_ok else 1


if __name__ == "__main__":
    sys.exit(main())
