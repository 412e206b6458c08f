"""The escape target of a sweep (``--on escape``): steps until a fraction of the chains left the starting basin.

A task runs the landscape scenario's ensemble (its ``chains``, or ESCAPE_CHAINS when it has
none) at one (B, lr) from the start and checks after every step the fraction of chains whose
committed basin (``bsim.landscape.escape``) is no longer the starting one; ``steps`` is the
first step at which it reaches the target (``--target 0.5``: half the chains). Beside it the
row keeps x = 1 / (lr c_B) and, for the tilted wells, Kramers' prediction of the same
quantity: the escape times are exponential with mean n(B, lr), so a fraction f has left after
n ln(1 / (1 - f)) steps (0.69 n for half). log(steps) against x is then a line of slope
2 dU / sigma_b^2 (``report``), up to the prefactor's 1 / lr.
"""

from __future__ import annotations

import math
import time

import torch

from bsim.stats.cfactor import c_factor

#: chains of a task when the scenario runs none (chains = 1)
ESCAPE_CHAINS = 256


def escape_columns(problem, batch_size: int, lr: float, sampling: str, fraction: float) -> tuple[float, float | None]:
    """(1 / (lr c_B), Kramers' steps for ``fraction`` of the chains to escape; None without a Kramers prediction)."""
    from bsim.landscape.theory import predict
    c_b = c_factor(problem.n_train, min(batch_size, problem.n_train), sampling)
    x = 1.0 / (lr * c_b) if c_b > 0 else math.inf
    pred = predict(problem, batch_size, lr, 0.0, sampling)
    if pred.kind != "kramers" or not pred.rate:
        return x, None
    return x, math.log(1.0 / (1.0 - fraction)) / pred.rate


def run_escape_task(spec, task):
    """One (B, seed, lr) of an escape sweep: its row (the columns of run_task's) and its curve, which
    bsim.sweep.task.run_task wraps in a TaskResult."""
    from bsim.simulation import Simulation
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sc = spec.task_scenario(task)
    sim = Simulation(sc, stats=False)
    meter, start = sim.escape, sim.problem.start_basin
    steps = None
    samples = 0
    curve = [(0, 0, float(sim.problem.train_loss(sim.theta)), None, None, None)]
    while sim.step_count < spec.max_steps:
        if not sim.step():
            break
        samples += sim.last_batch_size
        left = float((meter.committed != start).double().mean())
        if left >= spec.target:
            steps = sim.step_count
            break
    with torch.no_grad():
        loss = float(sim.problem.train_loss(sim.theta))
    curve.append((sim.step_count, samples, loss, None, None, None))
    x, theory = escape_columns(sim.problem, task.batch_size, task.lr, sc.optimizer.sampling, spec.target)
    stop = "target" if steps is not None else ("diverged" if sim.diverged else "max_steps")
    row = {
        "batch_size": task.batch_size, "seed": task.seed, "lr": task.lr, "reached": steps is not None,
        "diverged": sim.diverged, "stop": stop, "steps": steps, "samples": samples if steps is not None else None,
        "steps_run": sim.step_count, "target_loss": None, "train_loss": loss, "test_loss": None,
        "b_simple": None, "b_noise": None, "check_every": 1, "wall_s": time.perf_counter() - t0,
        "train_acc": None, "test_acc": None, "m_star": None, "inv_lr_cb": x, "kramers_steps": theory,
    }
    return row, curve


def report(rows: list[dict], width: int = 72, height: int = 16) -> str:
    """log10(steps to escape) against 1 / (lr c_B): 'o' measured (mean over seeds), '-' Kramers' prediction."""
    by: dict[tuple, list] = {}
    for r in rows:
        if r.get("inv_lr_cb") is not None:
            by.setdefault((r["batch_size"], r["lr"]), []).append(r)
    pts = []
    for (b, lr), rs in sorted(by.items()):
        reached = [r["steps"] for r in rs if r["reached"] and r["steps"]]
        measured = sum(reached) / len(reached) if len(reached) == len(rs) else None
        pts.append((rs[0]["inv_lr_cb"], measured, rs[0].get("kramers_steps"), b, lr, len(rs) - len(reached)))
    lines = ["Steps until the target fraction of chains escaped, against 1/(lr c_B) (o measured, mean over seeds; "
             "- Kramers, an approximation: barrier >= 5 T, lr U'' small)"]
    ys = [math.log10(v) for p in pts for v in (p[1], p[2]) if v]
    xs = [p[0] for p in pts if math.isfinite(p[0])]
    if ys and xs:
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
        grid = [[" "] * width for _ in range(height)]
        def put(x, v, ch):
            if v and math.isfinite(x):
                i = round((x - x0) / (x1 - x0) * (width - 1))
                j = height - 1 - round((math.log10(v) - y0) / (y1 - y0) * (height - 1))
                if grid[j][i] == " " or ch == "o":
                    grid[j][i] = ch
        for x, m, k, *_ in pts:
            put(x, k, "-")
            put(x, m, "o")
        for j, row in enumerate(grid):
            label = f"{10 ** (y1 - j * (y1 - y0) / (height - 1)):>9.3g} |" if j % 4 == 0 else " " * 9 + " |"
            lines.append(label + "".join(row))
        lines.append(" " * 10 + "+" + "-" * width)
        lines.append(" " * 11 + f"{x0:<.4g}" + " " * max(1, width - 20) + f"{x1:>.4g}   1/(lr c_B)")
    lines.append(f"{'B':>6} {'lr':>8} {'1/(lr c_B)':>11} {'measured':>10} {'Kramers':>10} {'ratio':>7}")
    for x, m, k, b, lr, missing in pts:
        ratio = f"{m / k:.2f}" if m and k else ""
        ms = f"{m:,.0f}" if m else f"({missing} not reached)"
        ks = f"{k:,.0f}" if k else "none"
        lines.append(f"{b:>6} {lr:>8.4g} {x:>11.4g} {ms:>10} {ks:>10} {ratio:>7}")
    return "\n".join(lines)
