"""The ball's law: the predicted radius against batch size, and what was measured at each setting visited.

Like the variance panel's 1/B law: the curve is the prediction of ``ball``
(exact iid, reshuffled, or linearised) at batch sizes 1, 2, 4, ... below N,
for the sampling in force, with lr following the lr scaling in force from the
current (B, lr): lr(B') = lr factor(B' / B) (``lrscaling``); the other curve
is the other sampling's (iid when shuffle is in force, reshuffled otherwise).
The curves are computed once per change of what they depend on (sampling,
momentum, scaling, lr / factor(B)), never per frame, and only where a view
draws them (``with_curves``: the app, not a headless run, a race lane or a
sweep) and the problem is small: a prediction solves a d^2 x d^2 system, so
20 of them take 0.3 s at d = 8 and 40 s at d = 32 (measured); above
CURVE_MAX_DIM the chart shows the visited settings with their own
predictions and no curve.

Each point is one setting (B, lr, momentum, sampling) with its own
measurements only: the trail's window and the ensemble's counted epochs both
restart at a change and count after the burn-in. A setting visited again keeps
its earlier measurement until the new visit has one.
"""

from __future__ import annotations

from dataclasses import replace

from bsim.lrscaling import scaling_factor
from bsim.stats.ball import BallCache
from bsim.stats.info import BallLaw, BallLawPoint, RadiusMeasure
from bsim.stats.strategy import Settings

#: settings kept on the chart (the most recently visited)
MAX_POINTS = 12
#: the largest dimension whose curves are computed (d = 12: about 0.5 s a change on 2 cores; d = 16: 2.6 s)
CURVE_MAX_DIM = 12


def curve_batch_sizes(n_train: int) -> tuple[int, ...]:
    """1, 2, 4, ... below N (at B = N the ball is a point: c_B = 0)."""
    sizes, b = [], 1
    while b < n_train:
        sizes.append(b)
        b *= 2
    return tuple(sizes)


def other_sampling(sampling: str) -> str:
    """The sampling of the faint curve: exact iid beside shuffle, reshuffled beside iid or replacement."""
    return "iid" if sampling == "shuffle" else "shuffle"


class BallLawTracker:
    """Owns the points of the settings visited (at most MAX_POINTS, latest visit last) and the curves of
    the setting in force; reads predictions from the strategy's ``BallCache``; touches nothing else."""

    def __init__(self, balls: BallCache, n_train: int, drop_last: bool):
        self.balls, self.n, self.drop_last = balls, n_train, drop_last
        self.sizes = curve_batch_sizes(n_train)
        self._points: dict[Settings, BallLawPoint] = {}
        self._curves_key: tuple | None = None
        self._curves: tuple = ((), "none", (), "none")

    def _theory(self, s: Settings):
        return self.balls.get(s.batch_size, s.lr, s.momentum, s.sampling, self.drop_last)

    def _curve(self, sampling: str, batch_size: int, lr: float, momentum: float, scaling: str):
        # under shuffle a quick prediction (fewer sampled permutations) but at the batch size in force
        radii = tuple(self.balls.get(b, lr * scaling_factor(scaling, b, batch_size), momentum, sampling,
                                     self.drop_last, quick=b != batch_size).radius for b in self.sizes)
        kind = self.balls.get(batch_size, lr, momentum, sampling, self.drop_last).kind
        return radii, kind

    def curves(self, current: Settings, scaling: str, with_curves: bool = True) -> tuple:
        """(curve, its kind, other curve, its kind), recomputed only when the curves would change.

        Without curves (not wanted, or d > CURVE_MAX_DIM) both are None at every batch size; the kind
        stays the prediction's in force, which the shrink's predicted ratio is labelled with."""
        if not with_curves or self.balls.model.dim > CURVE_MAX_DIM:
            none = (None,) * len(self.sizes)
            return none, self._theory(current).kind, none, "none"
        key = (current.sampling, current.momentum, scaling, current.lr / scaling_factor(scaling, current.batch_size, 1))
        if key != self._curves_key:
            args = (current.batch_size, current.lr, current.momentum, scaling)
            self._curves = (*self._curve(current.sampling, *args), *self._curve(other_sampling(current.sampling), *args))
            self._curves_key = key
        return self._curves

    def measured(self, settings: Settings, trail: RadiusMeasure | None = None,
                 chains: RadiusMeasure | None = None) -> None:
        """Record the latest measurements at ``settings`` (None keeps what the point had)."""
        old = self._points.pop(settings, None)
        if old is None:
            th = self._theory(settings)
            old = BallLawPoint(batch_size=settings.batch_size, lr=settings.lr, momentum=settings.momentum,
                               sampling=settings.sampling, theory=th.radius, theory_kind=th.kind, trail=None,
                               chains=None, current=False)
        self._points[settings] = replace(old, trail=trail or old.trail, chains=chains or old.chains)
        while len(self._points) > MAX_POINTS:
            self._points.pop(next(iter(self._points)))

    def law(self, current: Settings, scaling: str, with_curves: bool = True) -> BallLaw:
        """The law as the frame carries it: the points (the setting in force marked) and the curves."""
        if current not in self._points:
            self.measured(current)
        else:   # the setting in force is the latest visited
            self._points[current] = self._points.pop(current)
        points = tuple(replace(p, current=s == current) for s, p in self._points.items())
        curve, kind, other, other_kind = self.curves(current, scaling, with_curves)
        return BallLaw(points=points, curve_batch_sizes=self.sizes, curve=curve, curve_kind=kind,
                       other_curve=other, other_kind=other_kind)
