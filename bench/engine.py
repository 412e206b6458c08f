"""Engine speed: steps per second of a headless bsim run against a bare PyTorch SGD loop.

Both arms train the same problem on the same data, batch size, dtype and
device, with one thread. bsim runs the way ``bsim run --headless --every K``
does (the Simulation built as the command line builds it, a CSV row every K
steps, statistics hooks included when the command line attaches any); the
bare loop is hand-written: ``torch.optim.SGD``, autograd, ``nn.Linear(bias=False)``
or ``nn.LSTM`` + ``nn.Linear``, a fresh ``randperm`` each epoch and consecutive
slices of it (the same sampling as bsim's shuffle mode). The arms alternate
over repeats; the table shows the median steps/s of each and their ratio
(bsim / bare, higher is better). Goals: >= 1.0 for linreg, >= 0.9 for the LSTM.

A third arm, "engine", is the same headless run without the noise statistics
(``Simulation(..., stats=False)``): the SGD step alone, for comparison. The
goals are judged on the full run, statistics included.

    python bench/engine.py [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.headless import write_rows  # noqa: E402
from bsim.scenario import apply_overrides, find_scenario  # noqa: E402
from bsim.simulation import Simulation  # noqa: E402

CASES = [
    # name, bundled scenario, problem overrides, batch size, goal
    ("linreg d=2", "default", {"dim": 2}, 32, 1.0),
    ("linreg d=50", "default", {"dim": 50}, 32, 1.0),
    ("lstm h=16 T=16", "lstm", {"hidden": 16, "seq_len": 16}, 32, 0.9),
]


def make_sim(name: str, problem: dict, batch_size: int, stats: bool = True) -> Simulation:
    """The simulation as ``bsim run NAME --batch-size B --device cpu --headless`` builds it
    (``stats=False``: without the noise statistics)."""
    sc = apply_overrides(find_scenario(name), batch_size=batch_size, device="cpu")
    for k, v in problem.items():
        setattr(sc.problem, k, v)
    return Simulation(sc, stats=stats)


def bsim_arm(sim: Simulation, steps: int, every: int) -> float:
    """Seconds for ``steps`` steps of a headless run writing a row every ``every`` steps."""
    t0 = time.perf_counter()
    write_rows(sim, steps, io.StringIO(), every=every, timing=True)
    return time.perf_counter() - t0


class Bare:
    """A hand-written PyTorch SGD loop on the same data, batch size, lr and dtype."""

    def __init__(self, sim: Simulation, batch_size: int):
        p = sim.problem
        self.X, self.y, self.B = p.X, p.y, batch_size
        self.n = self.X.shape[0]
        dt, dev = p.dtype, p.device
        if p.kind == "lstm":
            self.lstm = torch.nn.LSTM(1, p.hidden, batch_first=True).to(device=dev, dtype=dt)
            self.head = torch.nn.Linear(p.hidden, 1).to(device=dev, dtype=dt)
            params = [*self.lstm.parameters(), *self.head.parameters()]
            self.forward = self._lstm_forward
        else:
            self.lin = torch.nn.Linear(self.X.shape[1], 1, bias=False).to(device=dev, dtype=dt)
            torch.nn.init.zeros_(self.lin.weight)
            params = list(self.lin.parameters())
            self.forward = lambda xb: self.lin(xb).squeeze(-1)
        self.opt = torch.optim.SGD(params, lr=sim.lr)
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(0)
        self.perm, self.pos = None, self.n

    def _lstm_forward(self, xb):
        out, _ = self.lstm(xb.unsqueeze(-1))
        return self.head(out[:, -1]).squeeze(-1)

    def run(self, steps: int) -> float:
        t0 = time.perf_counter()
        X, y, B, n, opt = self.X, self.y, self.B, self.n, self.opt
        for _ in range(steps):
            if self.pos >= n:
                self.perm, self.pos = torch.randperm(n, generator=self.gen, device=X.device), 0
            idx = self.perm[self.pos:self.pos + B]
            self.pos += B
            loss = 0.5 * ((self.forward(X[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return time.perf_counter() - t0


def measure(case, repeats: int, steps: int, every: int) -> dict:
    label, name, problem, B, goal = case
    sim, engine = make_sim(name, problem, B), make_sim(name, problem, B, stats=False)
    bare = Bare(sim, B)
    bsim_arm(sim, min(steps, 200), every)  # warm-up every arm
    bsim_arm(engine, min(steps, 200), every)
    bare.run(min(steps, 200))
    t_bsim, t_engine, t_bare = [], [], []
    for _ in range(repeats):  # interleaved, so drifts of the machine hit every arm alike
        t_bsim.append(steps / bsim_arm(sim, steps, every))
        t_engine.append(steps / bsim_arm(engine, steps, every))
        t_bare.append(steps / bare.run(steps))
    a, e, b = statistics.median(t_bsim), statistics.median(t_engine), statistics.median(t_bare)
    return {"case": label, "dtype": str(sim.dtype).replace("torch.", ""), "B": B, "bsim": a, "engine": e,
            "bare": b, "ratio": a / b, "engine_ratio": e / b, "goal": goal,
            "diverged": sim.diverged or engine.diverged, "stats": bool(sim.observers)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=2000, help="steps per repeat and arm")
    ap.add_argument("--every", type=int, default=2000, help="bsim's CSV row every K steps")
    ap.add_argument("--quick", action="store_true", help="3 repeats of 500 steps, a row every 500")
    ap.add_argument("--smoke", action="store_true",
                    help="CI: 1 repeat of 50 steps; checks that every arm runs, judges no speed goal")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.every = 3, 500, 500
    if args.smoke:
        args.repeats, args.steps, args.every = 1, 50, 50
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, cpu; {args.repeats} interleaved repeats of {args.steps} steps, "
          f"bsim writes a row every {args.every} steps; median steps/s")
    print(f"{'case':<15} {'dtype':<7} {'B':>3} {'bsim':>8} {'engine':>8} {'bare':>8} "
          f"{'ratio':>6} {'engine':>7}  goal (on ratio)")
    ok = True
    for case in CASES:
        r = measure(case, args.repeats, args.steps, args.every)
        met = r["ratio"] >= r["goal"] and not r["diverged"]
        ok &= met
        print(f"{r['case']:<15} {r['dtype']:<7} {r['B']:>3} {r['bsim']:>8,.0f} {r['engine']:>8,.0f} {r['bare']:>8,.0f} "
              f"{r['ratio']:>6.2f} {r['engine_ratio']:>7.2f}  >= {r['goal']:.1f} {'met' if met else 'MISSED'}"
              f"{'' if r['stats'] else ' (no statistics attached)'}", flush=True)
    print("steps/s: bsim = the headless run with its statistics, engine = without them, bare = hand-written "
          "PyTorch; ratio = bsim / bare, engine = engine / bare")
    if args.smoke:
        print("smoke run: every arm ran; the speed goals are judged only in a full run")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
