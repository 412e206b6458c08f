"""Non-uniform minima (Wu, Ma & E, NeurIPS 2018): equal sharpness, different spread of curvatures.

Near minimum k (at c_0 = -1 and c_1 = +1) every example's loss is a quadratic with the
same minimum: l_i(theta) = a_ik (theta - c_k)^2 / 2. The full loss there is
a (theta - c_k)^2 / 2 with a = mean_i a_ik the same for both (equal sharpness); what
differs is the spread s_k = std_i a_ik. With e = theta - c_k one SGD step is
e' = (1 - lr a_B) e, a_B the batch mean of the a_ik, so for iid batches
E e'^2 = rho_k E e^2 with

    rho_k = (1 - lr a)^2 + lr^2 s_k^2 c_B,

c_B = (N - B) / (B (N - 1)) for B distinct examples (1/B with replacement). The mean square
shrinks iff rho_k <= 1 (exact for quadratics, iid batches; shuffled epochs are not covered).
Gradient descent (c_B = 0) is stable at both when lr a < 2; SGD at small B leaves the
non-uniform one.

The landscape is periodic with period 4 (minima at -1 + 4j and 1 + 4j, kinks at the even
integers, L = a/2 there), so a chain thrown out of a basin lands in a neighbouring one
instead of running off to infinity. The steepest-descent map is which piece a point is on.

Curvatures: a_ik is 0 for some examples and a N / n_k for the other n_k = round(N a^2 /
(a^2 + s_k^2)): every l_i is convex, the mean is exactly a and the spread about s_k (the
exact value is reported); the curvature sits in a few examples.
"""

from __future__ import annotations

import numpy as np
import torch

from bsim.problems.base import DATA_STREAM, cpu_generator
from bsim.problems.landscape import Basin, LandscapeProblem

DEFAULTS = {"sharpness": 1.0, "spreads": (3.0, 0.2), "start_offset": 0.1}
PERIOD = 4.0
CENTRES = (-1.0, 1.0)


def curvatures(n: int, a: float, s: float, gen: torch.Generator) -> np.ndarray:
    """N per-example curvatures of mean exactly a and spread about s (module docstring), in a random order."""
    sharp = max(1, min(n, round(n * a * a / (a * a + s * s))))
    v = np.zeros(n)
    v[:sharp] = a * n / sharp
    return v[torch.randperm(n, generator=gen).numpy()]


class NonUniformMinima(LandscapeProblem):
    kind = "nonuniform"
    dim = 1

    def __init__(self, sc, device, dtype):
        super().__init__(sc, device, dtype)
        spec = sc.problem
        self.sharpness = float(spec.sharpness if spec.sharpness is not None else DEFAULTS["sharpness"])
        spreads = tuple(spec.spreads or DEFAULTS["spreads"])
        self.start_offset = float(spec.start_offset if spec.start_offset is not None else DEFAULTS["start_offset"])
        self.start_basin = int(spec.start_basin or 0)
        gen = cpu_generator(sc.seed, DATA_STREAM)
        a = np.stack([curvatures(spec.n_train, self.sharpness, s, gen) for s in spreads], axis=1)
        self.curv64 = a
        #: s_k measured on the examples (population std): what rho uses
        self.spreads = tuple(float(s) for s in a.std(0))
        to = dict(device=device, dtype=dtype)
        self.X = torch.as_tensor(a, **to)
        self.y = torch.zeros(len(a), **to)
        self._a_mean = self.X.mean(0)      # (2,): the mean curvature at each minimum
        a_mean = float(a.mean(0).mean())
        labels = ("non-uniform", "uniform") if self.spreads[0] > self.spreads[1] else ("uniform", "non-uniform")
        self.saddle_loss = 0.5 * a_mean
        self.saddles = ((0.0,),)
        self.basins = tuple(Basin(k, labels[k], (c,), 0.0, (a_mean,), self.saddle_loss, self.spreads[k])
                            for k, c in enumerate(CENTRES))
        self.x_range = (-3.0, 3.0)

    def _piece(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(basin (K,), e = theta - nearest c_k (K,)) of every point."""
        u = torch.remainder(theta[:, 0] + 2.0, PERIOD)
        left = u < 2.0
        return (~left).long(), torch.where(left, u - 1.0, u - 3.0)

    def example_losses(self, theta, rows):
        basin, e = self._piece(theta)
        a = torch.where(basin[:, None] == 0, rows[..., 0], rows[..., 1])
        return 0.5 * a * (e * e)[:, None]

    def grad_many(self, theta, rows):
        basin, e = self._piece(theta)
        a = torch.where(basin[:, None] == 0, rows[..., 0], rows[..., 1]).mean(1)
        return (a * e)[:, None]

    def full_loss_many(self, theta):
        basin, e = self._piece(theta)
        return 0.5 * self._a_mean[basin] * e * e

    def full_grad_many(self, theta):
        basin, e = self._piece(theta)
        return (self._a_mean[basin] * e)[:, None]

    def component(self, theta):
        return self._piece(theta)[0]

    def component_and_loss(self, theta):
        basin, e = self._piece(theta)
        return basin, 0.5 * self._a_mean[basin] * e * e

    def basin_of(self, theta):
        """The piece a point is on: exactly the steepest-descent map of this landscape."""
        return self._piece(theta)[0]

    def init_params(self, seed: int) -> torch.Tensor:
        """theta_0 = c_start + start_offset (towards the kink at 0 for basin 0, away from it for basin 1)."""
        return torch.tensor([CENTRES[self.start_basin] + self.start_offset], device=self.device, dtype=self.dtype)

    def rho(self, basin: int, lr: float, c_b: float) -> float:
        """(1 - lr a)^2 + lr^2 s_k^2 c_B: the factor of E e^2 per step at minimum k (iid batches)."""
        a = self.basins[basin].curvature[0]
        return (1.0 - lr * a) ** 2 + lr * lr * self.spreads[basin] ** 2 * c_b
