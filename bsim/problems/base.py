"""The interface every problem implements.

Parameters are one flat vector theta of length ``n_params`` so that the
simulation, the statistics and the views treat every problem alike.
"""

from __future__ import annotations

import torch

# Separate generator streams derived from the scenario seed.
DATA_STREAM, INIT_STREAM, SAMPLE_STREAM, PROBE_STREAM = 1, 2, 3, 4

#: problems with at most this many parameters are "small": frames carry their parameter vectors
#: (theta, theta*, G, g_B, the ball's covariance) for the plane view and the arrows
SMALL_PARAMS = 8


def stream_seed(seed: int, stream: int) -> int:
    """Seed of an independent RNG stream (data, init, sampling, probes)."""
    return (seed * 1_000_003 + stream * 7_919) % (2**63 - 1)


def cpu_generator(seed: int, stream: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_seed(seed, stream))
    return g


class Problem:
    """A dataset, a model and a per-example loss; the class attributes declare what it can do.

    Capabilities (read these instead of probing for methods):
      has_optimum           theta* is known (``theta_star``, ``theta_star64``), exactly or to machine precision
      closed_form_per_example  ``per_example_grads(theta, idx)`` is a closed form g_i = r_i x_i (+ l2 theta),
                            and ``X64``, ``y64``, ``link_residual`` exist (a linear model)
      least_squares         the loss is (1/2)(x . theta - y)^2 with no l2 term: the Hessian is the same at
                            every theta (G and tr(Sigma) follow from moments of the data)
      per_example_loss      ``example_loss(theta, x, y)`` can be mapped over examples by torch.func
    """

    kind: str = "?"
    #: True when theta* is known (exactly or to machine precision)
    has_optimum: bool = False
    closed_form_per_example: bool = False
    least_squares: bool = False
    per_example_loss: bool = False
    #: the l2 coefficient (0: none)
    l2: float = 0.0
    #: human words for what dist_to_opt is measured against
    optimum_label: str = "no known optimum"

    X: torch.Tensor
    y: torch.Tensor
    X_test: torch.Tensor | None
    y_test: torch.Tensor | None
    theta_star: torch.Tensor | None = None

    def __init__(self, device: torch.device, dtype: torch.dtype):
        self.device = device
        self.dtype = dtype

    @property
    def n_train(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_params(self) -> int:
        raise NotImplementedError

    @property
    def small(self) -> bool:
        """At most SMALL_PARAMS parameters: frames carry the parameter vectors themselves."""
        return self.n_params <= SMALL_PARAMS

    def init_params(self, seed: int) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss over the rows of X (a 0-dim tensor on the device)."""
        raise NotImplementedError

    def loss_and_grad(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch loss and batch gradient g_B = (1/B) sum_{i in B} grad l_i(theta)."""
        raise NotImplementedError

    def full_grad(self, theta: torch.Tensor) -> torch.Tensor:
        """The full gradient G = (1/N) sum_i grad l_i(theta) over the training set."""
        return self.loss_and_grad(theta, torch.arange(self.n_train, device=self.device))[1]

    def train_loss(self, theta: torch.Tensor) -> torch.Tensor:
        return self.loss(theta, self.X, self.y)

    def test_loss(self, theta: torch.Tensor) -> torch.Tensor | None:
        if self.X_test is None or self.X_test.shape[0] == 0:
            return None
        return self.loss(theta, self.X_test, self.y_test)

    def accuracy(self, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Fraction of the rows of X classified right (a 0-dim tensor); None: the problem is not a classifier."""
        return None

    def train_accuracy(self, theta: torch.Tensor) -> torch.Tensor | None:
        return self.accuracy(theta, self.X, self.y)

    def test_accuracy(self, theta: torch.Tensor) -> torch.Tensor | None:
        if self.X_test is None or self.X_test.shape[0] == 0:
            return None
        return self.accuracy(theta, self.X_test, self.y_test)

    def loss_grid(self, x0: float, x1: float, y0: float, y1: float, nx: int, ny: int):
        """Train loss at every point of an nx x ny grid of the parameter plane (2 parameters only, else None).

        A numpy array (ny, nx): row j is y = y0 + j (y1 - y0)/(ny - 1), column i is x likewise.
        """
        import numpy as np
        if self.n_params != 2:
            return None
        xs = torch.linspace(x0, x1, nx, dtype=self.dtype, device=self.device)
        ys = torch.linspace(y0, y1, ny, dtype=self.dtype, device=self.device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        thetas = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
        with torch.no_grad():
            try:
                losses = torch.func.vmap(lambda th: self.loss(th, self.X, self.y))(thetas)
            except Exception:  # noqa: BLE001 - a loss vmap cannot batch: one at a time
                losses = torch.stack([self.loss(th, self.X, self.y) for th in thetas])
        return np.asarray(losses.reshape(ny, nx).cpu().numpy(), dtype=float)
