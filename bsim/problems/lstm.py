"""A tiny LSTM on noisy sine continuation: see T noisy values, predict the next.

The parameters are one flat vector laid out as ``torch.nn.LSTM``'s (gate
order i, f, g, o; two bias vectors) plus a linear read-out. The training
step runs the fused LSTM kernel (``torch.lstm``, what ``nn.LSTM`` calls) on
views of that vector, with no module in between; ``predict`` is the same
function as an unrolled cell, which ``torch.func.vmap`` can map ``grad``
over. The loss is l_i = (1/2)(f(x_i; theta) - y_i)^2.
There is no known optimum: the app shows the spread around the running
average of the iterates instead.
"""

from __future__ import annotations

import math

import torch

from bsim.problems.base import DATA_STREAM, INIT_STREAM, Problem, cpu_generator
from bsim.scenario import Scenario


def sine_sequences(n: int, seq_len: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """x_t = sin(w t + phi) + noise * eps for t < T; the target is x_T (noisy too)."""
    w = 0.2 + 0.4 * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    phi = 2 * math.pi * torch.rand(n, 1, generator=gen, dtype=torch.float64)
    t = torch.arange(seq_len + 1, dtype=torch.float64)[None, :]
    s = torch.sin(w * t + phi) + noise * torch.randn(n, seq_len + 1, generator=gen, dtype=torch.float64)
    return s[:, :seq_len], s[:, seq_len]


class LSTMProblem(Problem):
    kind = "lstm"
    has_optimum = False
    per_example_loss = True
    optimum_label = "no known optimum (non-convex): spread around the running average"
    #: input and output units per time step (the character LSTM: the vocabulary's size)
    n_inputs = n_outputs = 1

    def __init__(self, sc: Scenario, device: torch.device, dtype: torch.dtype):
        super().__init__(device, dtype)
        spec = sc.problem
        self.hidden, self.seq_len = spec.hidden, spec.seq_len
        gen = cpu_generator(sc.seed, DATA_STREAM)
        noise = min(spec.noise, 0.5) * 0.2  # a clean-ish task: the scenario noise is for linreg's scale
        X, y = sine_sequences(spec.n_train + spec.n_test, spec.seq_len, noise, gen)
        to = dict(device=device, dtype=dtype)
        self.X, self.y = X[: spec.n_train].to(**to), y[: spec.n_train].to(**to)
        self.X_test = X[spec.n_train:].to(**to) if spec.n_test else None
        self.y_test = y[spec.n_train:].to(**to) if spec.n_test else None
        self.source = "synthetic noisy sines"
        H = self.hidden
        self.shapes = [("weight_ih_l0", (4 * H, 1)), ("weight_hh_l0", (4 * H, H)), ("bias_ih_l0", (4 * H,)),
                       ("bias_hh_l0", (4 * H,)), ("w_out", (H,)), ("b_out", ())]
        self._sizes = [math.prod(shape) for _, shape in self.shapes]
        self._zeros: dict[int, torch.Tensor] = {}

    @property
    def n_params(self) -> int:
        H = self.hidden
        return 4 * H + 4 * H * H + 8 * H + H + 1

    def init_params(self, seed: int) -> torch.Tensor:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) as torch.nn.LSTM does, from the init stream."""
        gen = cpu_generator(seed, INIT_STREAM)
        k = 1.0 / math.sqrt(self.hidden)
        theta = (torch.rand(self.n_params, generator=gen, dtype=torch.float64) * 2 - 1) * k
        return theta.to(device=self.device, dtype=self.dtype)

    def unpack(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """Views of theta, one per tensor of ``shapes`` (one split: its backward is one cat)."""
        return [part.view(shape) for part, (_, shape) in zip(theta.split(self._sizes), self.shapes)]

    def predict(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """f(x; theta) for x of shape (..., T): the unrolled LSTM cell, then a linear read-out."""
        w_ih, w_hh, b_ih, b_hh, w_out, b_out = self.unpack(theta)
        H = self.hidden
        w_ih, b = w_ih[:, 0], b_ih + b_hh
        h = x.new_zeros(x.shape[:-1] + (H,))
        c = h
        w_hhT = w_hh.T
        for t in range(x.shape[-1]):
            gates = x[..., t:t + 1] * w_ih + h @ w_hhT + b
            i, f, g, o = gates.split(H, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h @ w_out + b_out

    def predict_fused(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The same f(x; theta) as ``predict`` for x of shape (B, T), on the fused LSTM kernel."""
        w_ih, w_hh, b_ih, b_hh, w_out, b_out = self.unpack(theta)
        B = x.shape[0]
        h0 = self._zeros.get(B)
        if h0 is None:  # the initial state, never written to: one per batch size
            h0 = self._zeros[B] = x.new_zeros(1, B, self.hidden)
        # torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        # returns (output, h_T, c_T); h_T is the output's last step
        _, h_last, _ = torch.lstm(x.unsqueeze(-1), (h0, h0), [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, True, False, True)
        return h_last[0] @ w_out + b_out

    def loss(self, theta, X, y):
        return 0.5 * ((self.predict_fused(theta, X) - y) ** 2).mean()

    def loss_and_grad(self, theta, idx):
        """L_B = (1/2B) |f(X_B; theta) - y_B|^2 and its gradient by autograd through the fused kernel."""
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            d = self.predict_fused(t, self.X[idx]) - self.y[idx]
            loss = d.dot(d) * (0.5 / d.shape[0])
            (g,) = torch.autograd.grad(loss, t)
        return loss.detach(), g

    def chains_point_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(k,) mean loss (1/2N) sum_n (pred_kn - y_n)^2 of k chains' predictions pred (k, N)."""
        return 0.5 * ((pred - y) ** 2).mean(1)

    def example_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """l_i for one example (x of shape (T,)): what torch.func maps over."""
        return 0.5 * (self.predict(theta, x) - y) ** 2
