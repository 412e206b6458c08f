"""Each lane's learning curve: train and test accuracy against epochs, for the figure of ``bsim race --export``.

A ``RaceCurves`` watches a race (``Race.observers``): it takes a point for each lane at theta_0
(epoch 0), then each time the lane has seen another 1/``points_per_epoch`` of the training set, and
at the lane's end. A point is the lane's run (chain 0, the single run at that batch size), its
accuracy on the whole training set and on the test set at that step, measured by the problem's own
``accuracy``. The points depend only on each lane's trajectory, so the figure is the same whatever
the order of the lanes' steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bsim.errors import BsimInputError

#: points of each curve per epoch (and one at theta_0, one at the lane's end)
POINTS_PER_EPOCH = 8


@dataclass
class Curve:
    """One lane's points: epochs seen, train and test accuracy (fractions) at each."""

    key: int | str
    label: str
    batch_size: int
    lr: float
    epochs: list[float] = field(default_factory=list)
    train: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    last_step: int = -1


class RaceCurves:
    """Owns the curves, one per lane in lane order; ``observe(lane)`` after each of its steps."""

    def __init__(self, race, points_per_epoch: int = POINTS_PER_EPOCH):
        problem = race.lanes[0].sim.problem
        if problem.train_accuracy(race.lanes[0].sim.theta) is None or problem.X_test is None:
            what = "no accuracy" if problem.train_accuracy(race.lanes[0].sim.theta) is None else "no test set"
            raise BsimInputError(f"--export: the {problem.kind} problem has {what}; expected a classifier with a "
                                 f"test set (the figure draws train and test accuracy: logreg, softmax, a text for "
                                 f"the lstm)")
        self.points_per_epoch = points_per_epoch
        self.curves: dict[int, Curve] = {}
        self.order: list[int] = []
        for lane in race.lanes:
            self._curve(lane)
        race.observers.append(self.observe)

    def _curve(self, lane) -> Curve:
        c = self.curves.get(id(lane))
        if c is None:
            c = self.curves[id(lane)] = Curve(lane.key, lane.label, lane.batch_size, lane.lr)
            self.order.append(id(lane))
            self._point(c, lane, lane.sim.theta0, 0.0, 0)
        return c

    def _point(self, c: Curve, lane, theta, epoch: float, step: int) -> None:
        p = lane.sim.problem
        c.epochs.append(float(epoch))
        c.train.append(float(p.train_accuracy(theta)))
        c.test.append(float(p.test_accuracy(theta)))
        c.last_step = step

    def observe(self, lane) -> None:
        """After a step of ``lane``: a point when it has passed its next mark, or reached its end."""
        c = self._curve(lane)
        sim = lane.sim
        n = sim.n_train
        mark = n / self.points_per_epoch
        due = sim.sampler.samples // mark > (sim.sampler.samples - sim.last_batch_size) // mark
        if (due or lane.finished) and c.last_step != lane.steps and not lane.diverged:
            self._point(c, lane, sim.theta, sim.sampler.epoch, lane.steps)

    def in_order(self) -> list[Curve]:
        return [self.curves[i] for i in self.order]
