"""Schedules against a fixed batch size: Smith et al.'s race, and the adaptive batch size's cost to a target.

Part 1, "increase the batch size instead of decaying the learning rate" (Smith, Kindermans, Ying & Le,
ICLR 2018), on the bundled grow-batch scenario (least squares, N = 4096, B = 8, lr 0.1, iid batches):
the lane decay-lr cuts lr by 4 every 4 epochs, the lane grow-batch multiplies B by 4 instead. At each
whole epoch both lanes' train loss (the mean over K chains, bsim.ensemble) and its excess over the
optimum's, the predicted ball (bsim's exact iid radius, the frame's ball_radius_theory), and the steps
taken. While B << N the two balls agree (c_B ~ 1/B); as B nears N they part (c_B = (N - B) / (B (N - 1))).

Part 2, steps and samples until the train loss is within --eps of the optimum's and stays there to
the end of the budget (--epochs), from B = 8 at lr 0.1 on the same problem: fixed B = 8, fixed B = 64, the two schedules, and
the adaptive batch size (the norm test at theta 1; the inner-product test at theta 0.5: near theta*
its statistic tends to lambda(Sigma) / tr(Sigma) <= 1 when g_B is mostly noise, so at theta 1 it stops
growing at B = 32 on this problem). A run that does not reach it within
--epochs epochs says so.

    python bench/schedule.py [--smoke] [--epochs E] [--chains K] [--eps EPS]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bsim.race.race import Race  # noqa: E402
from bsim.scenario import find_scenario  # noqa: E402
from bsim.simulation import Simulation  # noqa: E402

LANES = ("decay-lr", "grow-batch")


def scenario(smoke: bool):
    sc = find_scenario("grow-batch")
    if smoke:   # N = 1024, switches every epoch: a few seconds
        sc.problem.n_train = 1024
        for lane in sc.schedule["lane"].values():
            for key in ("batch_size", "lr"):
                if isinstance(lane.get(key), dict):
                    lane[key] = {**lane[key], "every_epochs": 1.0}
    return sc


def race_by_epoch(sc, epochs: int, chains: int) -> dict:
    """{epoch: [(train loss, excess, B, lr, ball theory, steps) per lane]} at each whole epoch."""
    race = Race(sc, [sc.optimizer.batch_size] * len(LANES), names=list(LANES), chains=chains)
    race.set_limit("samples", epochs * race.n_train)
    problem = race.lanes[0].sim.problem
    with torch.no_grad():
        opt_loss = float(problem.train_loss(problem.theta_star))
    rows: dict[int, list] = {}
    while race.step():
        lane = race.last_lane
        sim = lane.sim
        if sim.sampler.samples % sim.n_train:
            continue
        f = sim.frame(timing=False)
        loss = f.chains_train_loss if f.chains_train_loss is not None else f.train_loss
        epoch = sim.sampler.samples // sim.n_train
        rows.setdefault(epoch, [None] * len(LANES))[race.lanes.index(lane)] = (
            loss, loss - opt_loss, f.batch_size, f.lr, f.ball_radius_theory, sim.step_count)
    return rows


def print_race(rows: dict, n_train: int, every: int) -> tuple[float, int, int]:
    """The table; returns (worst |ratio - 1| of the train loss after a switch with B <= N/16, steps of each lane)."""
    print(f"{'epoch':>5} {'B':>5} {'lr decay':>9}  {'loss decay':>11} {'loss grow':>11} {'ratio':>6}  "
          f"{'excess decay':>12} {'excess grow':>12}  {'ball decay':>10} {'ball grow':>10} {'ratio':>6}  "
          f"{'steps':>6} {'steps':>6}")
    worst = 0.0
    for epoch in sorted(rows):
        d, g = rows[epoch]
        if d is None or g is None:
            continue
        ratio = g[0] / d[0]
        if epoch > every and g[2] <= n_train // 16:      # after the first switch, while B <= N/16
            worst = max(worst, abs(ratio - 1))
        print(f"{epoch:>5} {g[2]:>5} {d[3]:>9.3g}  {d[0]:>11.6g} {g[0]:>11.6g} {ratio:>6.3f}  "
              f"{d[1]:>12.3e} {g[1]:>12.3e}  {d[4]:>10.4g} {g[4]:>10.4g} {g[4] / d[4]:>6.3f}  {d[5]:>6} {g[5]:>6}")
    last = rows[max(rows)]
    return worst, last[0][5], last[1][5]


def to_target(sc, schedule, batch_size: int, eps: float, epochs: int) -> tuple[int | None, int | None, int]:
    """(steps, samples) from which the train loss stays within eps of the optimum's to the end of the budget
    (a noisy run can dip below once and leave again: that is not reaching it), and the final B; (None, None,
    B) when the last step is still above."""
    sc = copy.deepcopy(sc)
    sc.schedule = schedule
    sc.optimizer.batch_size = batch_size
    sim = Simulation(sc, stats=False)
    p = sim.problem
    since = None
    with torch.no_grad():
        target = float(p.train_loss(p.theta_star)) + eps
        while sim.sampler.samples < epochs * sim.n_train and sim.step():
            if float(p.train_loss(sim.theta)) <= target:
                since = since or (sim.step_count, sim.sampler.samples)
            else:
                since = None
    return (*(since or (None, None)), sim.batch_size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a few seconds: N = 1024, a switch every epoch, 6 epochs")
    ap.add_argument("--epochs", type=int, help="epochs of the race and the budget to the target (default 20)")
    ap.add_argument("--chains", type=int, help="chains per lane whose mean loss is compared (default 16; smoke 1)")
    ap.add_argument("--eps", type=float, default=2e-5, help="the target: train loss within EPS of the optimum's")
    args = ap.parse_args()
    torch.set_num_threads(1)
    epochs = args.epochs or (6 if args.smoke else 20)
    chains = args.chains or (1 if args.smoke else 16)
    sc = scenario(args.smoke)
    n = sc.problem.n_train
    every = int(sc.schedule["lane"]["grow-batch"]["batch_size"]["every_epochs"])
    t0 = time.perf_counter()
    print(f"# decay-lr against grow-batch: N = {n}, B0 = {sc.optimizer.batch_size}, lr0 = {sc.optimizer.lr}, x4 every "
          f"{every} epochs, iid batches; loss = mean over {chains} chain(s); ball = exact iid prediction")
    rows = race_by_epoch(sc, epochs, chains)
    worst, steps_decay, steps_grow = print_race(rows, n, every)
    print(f"after each switch while B <= N/16: train losses within {100 * worst:.2f}% (goal 10%); "
          f"steps {steps_decay} (decay-lr) against {steps_grow} (grow-batch): {steps_decay / steps_grow:.1f}x fewer")
    print(f"\n# to a train loss within {args.eps:g} of the optimum's for good (to the end of {epochs} epochs), "
          f"from B = 8")
    lanes = sc.schedule["lane"]
    arms = [("fixed B = 8", None, 8), ("fixed B = 64", None, 64),
            (f"decay-lr (lr/4 every {every} epochs)", lanes["decay-lr"], 8),
            (f"grow-batch (Bx4 every {every} epochs)", lanes["grow-batch"], 8),
            ("adaptive, norm test, theta 1", {"batch_size": "adaptive", "adaptive": {"test": "norm", "theta": 1.0}}, 8),
            ("adaptive, inner-product, theta 0.5",
             {"batch_size": "adaptive", "adaptive": {"test": "inner_product", "theta": 0.5}}, 8)]
    print(f"{'run':<34} {'steps':>8} {'samples':>10} {'epochs':>7} {'final B':>8}")
    for name, schedule, b in arms:
        steps, samples, final_b = to_target(sc, schedule, b, args.eps, epochs)
        if steps is None:
            print(f"{name:<34} {'not reached':>8}  (B {final_b} after {epochs} epochs)")
        else:
            print(f"{name:<34} {steps:>8} {samples:>10} {samples / n:>7.2f} {final_b:>8}")
    print(f"\n{time.perf_counter() - t0:.1f} s" + ("  (smoke run: the figures are judged only in a full run)"
                                                   if args.smoke else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
