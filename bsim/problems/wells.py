"""Tilted wells: l_i(theta) = U(theta) + b_i . theta, a double well U and tilts b_i of mean zero.

The batch gradient is U'(theta) + (mean of the batch's tilts): its noise does not depend on
theta, has covariance c_B Cov(b) = c_B sigma_b^2 I, and SGD is a discretised Langevin
dynamics at temperature T = lr c_B sigma_b^2 / 2 (time lr per step). The tilts are centred
(and in 2-D whitened) by construction, so the full loss is U itself.

U (1-D) is C^1 and piecewise quadratic: an inverted parabola -k_s t^2 / 2 over the saddle at 0
(U = 0 there) joined to a well -dU_k + k_k (t - m_k)^2 / 2 on each side. Matching value and
slope at the joint x_k = m_k k_k / (k_k + k_s) gives dU_k = k_s k_k m_k^2 / (2 (k_k + k_s)), so
the scenario's barriers and curvatures fix m_k = +- sqrt(2 dU_k (k_k + k_s) / (k_k k_s)).
Basin 0 is on the left, basin 1 on the right.

2-D: U(x, y) = U_1(x) + kappa(x) y^2 / 2 with kappa(x) = k_0 + (k_1 - k_0) s(x / w), s the
logistic function: each minimum (m_k, 0) is as sharp across as along (Hessian diag(k_k, kappa(m_k))),
the saddle (0, 0) has Hessian diag(-k_s, kappa(0)); U(0, y) >= 0 = U(saddle) for every y, so
{U < 0} is two pieces, x < 0 and x > 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bsim.problems.base import DATA_STREAM, cpu_generator
from bsim.problems.landscape import Basin, LandscapeProblem, standardized

#: the defaults of the [problem] keys of the wells (the `escape` scenario's landscape)
DEFAULTS = {"barriers": (0.4, 1.0), "curvatures": (4.0, 0.5), "saddle_curvature": 2.0, "tilt_scale": 4.0}


def well_geometry(barriers, curvatures, ks: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """((m_0, m_1), (x_0, x_1)): the minima and the joints of the 1-D double well (module docstring)."""
    (d0, d1), (k0, k1) = barriers, curvatures
    m0 = -math.sqrt(2 * d0 * (k0 + ks) / (k0 * ks))
    m1 = math.sqrt(2 * d1 * (k1 + ks) / (k1 * ks))
    return (m0, m1), (m0 * k0 / (k0 + ks), m1 * k1 / (k1 + ks))


class TiltedWells(LandscapeProblem):
    kind = "wells"
    dim = 1

    def __init__(self, sc, device, dtype):
        super().__init__(sc, device, dtype)
        spec = sc.problem
        self.barriers = tuple(spec.barriers or DEFAULTS["barriers"])
        self.curvatures = tuple(spec.curvatures or DEFAULTS["curvatures"])
        self.ks = float(spec.saddle_curvature or DEFAULTS["saddle_curvature"])
        self.start_basin = int(spec.start_basin or 0)
        (self.m0, self.m1), (self.x0, self.x1) = well_geometry(self.barriers, self.curvatures, self.ks)
        if spec.tilts is not None:
            tilts = np.asarray(spec.tilts, dtype=np.float64).reshape(len(spec.tilts), -1)
        else:
            gen = cpu_generator(sc.seed, DATA_STREAM)
            raw = torch.randn(spec.n_train, self.dim, generator=gen, dtype=torch.float64).numpy()
            scale = float(spec.tilt_scale if spec.tilt_scale is not None else DEFAULTS["tilt_scale"])
            tilts = standardized(raw if self.dim > 1 else raw[:, 0]).reshape(spec.n_train, self.dim) * scale
        self.tilts64 = tilts
        #: sigma_b^2: the tilts' variance per coordinate (the mean over coordinates; exact for generated tilts)
        self.sigma2 = float(tilts.var(0).mean())
        to = dict(device=device, dtype=dtype)
        self.X = torch.as_tensor(tilts, **to)
        self.y = torch.zeros(len(tilts), **to)
        self.tilt_mean = self.X.mean(0)
        self._setup_shape()

    # ------------------------------------------------ the shape
    def _setup_shape(self) -> None:
        k0, k1 = self.curvatures
        labels = ("sharp", "flat") if k0 > k1 else ("flat", "sharp")
        self.saddles = ((0.0,),)
        self.saddle_hessian = (-self.ks,)
        self.basins = tuple(Basin(k, labels[k], (m,), -d, (c,), d)
                            for k, (m, d, c) in enumerate(zip((self.m0, self.m1), self.barriers, self.curvatures)))
        span = self.m1 - self.m0
        self.x_range = (self.m0 - 0.25 * span, self.m1 + 0.25 * span)

    def U1(self, t: torch.Tensor) -> torch.Tensor:
        (d0, d1), (k0, k1), ks = self.barriers, self.curvatures, self.ks
        u = -0.5 * ks * t * t
        u = torch.where(t < self.x0, -d0 + 0.5 * k0 * (t - self.m0) ** 2, u)
        return torch.where(t > self.x1, -d1 + 0.5 * k1 * (t - self.m1) ** 2, u)

    def dU1(self, t: torch.Tensor) -> torch.Tensor:
        (k0, k1), ks = self.curvatures, self.ks
        g = -ks * t
        g = torch.where(t < self.x0, k0 * (t - self.m0), g)
        return torch.where(t > self.x1, k1 * (t - self.m1), g)

    def U(self, theta: torch.Tensor) -> torch.Tensor:
        """(K,) U at (K, d) points."""
        return self.U1(theta[:, 0])

    def dU(self, theta: torch.Tensor) -> torch.Tensor:
        """(K, d) the gradient of U."""
        return self.dU1(theta[:, :1])

    # ------------------------------------------------ the losses
    def example_losses(self, theta, rows):
        return self.U(theta)[:, None] + (rows * theta[:, None, :]).sum(-1)

    def grad_many(self, theta, rows):
        return self.dU(theta) + rows.mean(1)

    def full_loss_many(self, theta):
        return self.U(theta) + theta @ self.tilt_mean

    def full_grad_many(self, theta):
        return self.dU(theta) + self.tilt_mean

    def component(self, theta):
        return self.component_and_loss(theta)[0]

    def component_and_loss(self, theta):
        u = self.U(theta)
        side = (theta[:, 0] > 0).long()
        return torch.where(u < self.saddle_loss, side, side.clamp(max=-1)), u + theta @ self.tilt_mean

    def init_params(self, seed: int) -> torch.Tensor:
        """theta_0: the minimum of the starting basin."""
        start = self.basins[self.start_basin].minimum
        return torch.tensor(start + (0.0,) * (self.dim - len(start)), device=self.device, dtype=self.dtype)

    # ------------------------------------------------ Kramers' prefactor
    def saddle_factor(self, basin: int) -> float:
        """sqrt(det H_min |det H_saddle|^-1 ...)'s extra factor beyond 1-D: 1 here (2-D: sqrt(kappa(0)/kappa(m)))."""
        return 1.0


class TiltedWells2D(TiltedWells):
    """The 2-D wells (module docstring): x along the double well, y across, each minimum as sharp across."""

    kind = "wells2d"
    dim = 2

    def _setup_shape(self) -> None:
        k0, k1 = self.curvatures
        self.width = 0.5 * min(-self.x0, self.x1)
        labels = ("sharp", "flat") if k0 > k1 else ("flat", "sharp")
        self.saddles = ((0.0, 0.0),)
        self.kappa_saddle = self.kappa_at(0.0)
        self.saddle_hessian = (-self.ks, self.kappa_saddle)
        self.basins = tuple(Basin(k, labels[k], (m, 0.0), -d, (c, self.kappa_at(m)), d)
                            for k, (m, d, c) in enumerate(zip((self.m0, self.m1), self.barriers, self.curvatures)))
        span = self.m1 - self.m0
        self.x_range = (self.m0 - 0.2 * span, self.m1 + 0.2 * span)
        h = 0.35 * (self.x_range[1] - self.x_range[0])
        self.y_range = (-h, h)

    def kappa_at(self, x: float) -> float:
        k0, k1 = self.curvatures
        return k0 + (k1 - k0) / (1.0 + math.exp(-x / self.width))

    def _kappa(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k0, k1 = self.curvatures
        s = torch.sigmoid(x / self.width)
        return k0 + (k1 - k0) * s, (k1 - k0) * s * (1 - s) / self.width

    def U(self, theta):
        x, y = theta[:, 0], theta[:, 1]
        return self.U1(x) + 0.5 * self._kappa(x)[0] * y * y

    def dU(self, theta):
        x, y = theta[:, 0], theta[:, 1]
        kappa, dkappa = self._kappa(x)
        return torch.stack([self.dU1(x) + 0.5 * dkappa * y * y, kappa * y], dim=1)

    def saddle_factor(self, basin: int) -> float:
        """Langer's extra factor sqrt(kappa(0) / kappa(m_k)): the stable direction's curvatures at saddle and minimum."""
        return math.sqrt(self.kappa_saddle / self.basins[basin].curvature[1])
