"""The interface every problem implements.

Parameters are one flat vector theta of length ``n_params`` so that the
simulation, the statistics and the views treat every problem alike.
"""

from __future__ import annotations

import torch

# Separate generator streams derived from the scenario seed.
DATA_STREAM, INIT_STREAM, SAMPLE_STREAM, PROBE_STREAM = 1, 2, 3, 4


def stream_seed(seed: int, stream: int) -> int:
    """Seed of an independent RNG stream (data, init, sampling, probes)."""
    return (seed * 1_000_003 + stream * 7_919) % (2**63 - 1)


def cpu_generator(seed: int, stream: int) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed(stream_seed(seed, stream))
    return g


class Problem:
    kind: str = "?"
    #: True when theta* is known (exactly or to machine precision)
    has_optimum: bool = False
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
