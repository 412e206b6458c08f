"""Chains in groups: S datasets (a sweep's seeds) x L learning rates, one batched SGD step for all.

Chain (s, l) trains on dataset s (X[s], y[s]) with its own lr[l]; the L chains of a group s take the
same batch idx[s] (one sampling stream per dataset: a sweep's task draws its batches from its seed's
stream, whatever its lr). A linear model's step for every chain at once (bsim.stats.chains.chain_step,
with a dataset per group and an lr per chain):

    z = X_b theta^T  (S, B, L),  r = dl/dz,  g = (1/B) r^T X_b (+ l2 theta),  v = m v + g,  theta -= lr v

two bmm per step whatever S and L (without momentum or l2: theta - (lr/B) r^T X_b as one baddbmm). Used by the sweep's batched tasks (bsim.sweep.batched).
"""

from __future__ import annotations

import torch

#: the most numbers one gather of several steps' batches holds (a few MB in float64)
GATHER_ELEMENTS = 1 << 19


class Groups:
    """The stacked data of S linear problems of one kind and shape, and their chains' losses."""

    def __init__(self, problems: list):
        p0 = problems[0]
        self.problem = p0                       # link_residual and point_loss are the same for every dataset
        self.l2 = float(p0.l2)
        self.n = p0.n_train
        self.X = torch.stack([p.X for p in problems])          # (S, N, d)
        self.y = torch.stack([p.y for p in problems])          # (S, N)
        test = [p.X_test for p in problems]
        self.X_test = torch.stack(test) if all(t is not None for t in test) else None
        self.y_test = torch.stack([p.y_test for p in problems]) if self.X_test is not None else None
        self._offsets = torch.arange(len(problems), device=self.X.device)[:, None] * self.n

    def select(self, rows: torch.Tensor) -> Groups:
        """The same groups restricted to the datasets ``rows`` (the others' chains have all stopped)."""
        out = object.__new__(Groups)
        out.problem, out.l2, out.n = self.problem, self.l2, self.n
        out.X, out.y = self.X[rows], self.y[rows]
        out.X_test = self.X_test[rows] if self.X_test is not None else None
        out.y_test = self.y_test[rows] if self.y_test is not None else None
        out._offsets = torch.arange(len(rows), device=self.X.device)[:, None] * self.n
        return out

    def steps(self, theta: torch.Tensor, velocity: torch.Tensor | None, batches, lr: torch.Tensor, momentum: float,
              out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Take one step per (S, b) batch of ``batches`` (a list, or an (m, S, b) tensor); out[i] gets theta after
        step i; (theta, v) at the end.

        Runs of equal-sized batches are gathered at once (at most GATHER_ELEMENTS numbers a gather), and
        without momentum or l2 a step is z = X_b theta^T, r = dl/dz, theta' = theta - (lr/b) r^T X_b (baddbmm)."""
        i, m = 0, len(batches)
        S, N, d = self.X.shape
        while i < m:
            b = batches[i].shape[1]
            j = i + 1
            per_step = S * b * d
            while j < m and batches[j].shape[1] == b and (j - i + 1) * per_step <= GATHER_ELEMENTS:
                j += 1
            block = batches[i:j] if isinstance(batches, torch.Tensor) else torch.stack(batches[i:j])
            flat = (block + self._offsets).reshape(-1)
            Xs = self.X.view(S * N, d).index_select(0, flat).view(j - i, S, b, d)
            ys = self.y.view(-1).index_select(0, flat).view(j - i, S, b, 1)
            if momentum or self.l2:
                for k in range(j - i):
                    theta, velocity = self._step(theta, velocity, Xs[k], ys[k], lr, momentum)
                    out[i + k] = theta
            else:
                scale = (lr / -b).view(1, 1, -1)
                outs, Xl = out[i:j].unbind(0), Xs.unbind(0)
                if self.problem.least_squares:      # r = z - y as one baddbmm: -y + X_b theta^T
                    neg_y = ys.neg().unbind(0)
                    for k in range(j - i):
                        r = torch.baddbmm(neg_y[k], Xl[k], theta.transpose(1, 2)).mul_(scale)
                        theta = torch.baddbmm(theta, r.transpose(1, 2), Xl[k], out=outs[k])
                else:
                    yl = ys.unbind(0)
                    for k in range(j - i):
                        r = self.problem.link_residual(torch.bmm(Xl[k], theta.transpose(1, 2)), yl[k]).mul_(scale)
                        theta = torch.baddbmm(theta, r.transpose(1, 2), Xl[k], out=outs[k])
            i = j
        return theta, velocity

    def _step(self, theta, velocity, Xb, yb, lr, momentum):
        B = Xb.shape[1]
        r = self.problem.link_residual(torch.bmm(Xb, theta.transpose(1, 2)), yb)       # (S, B, L)
        g = torch.bmm(r.transpose(1, 2), Xb) / B                                        # (S, L, d)
        if self.l2:
            g = g + self.l2 * theta
        v = momentum * velocity + g if momentum else g
        return theta - lr[:, None] * v, v

    def logits(self, theta: torch.Tensor, which: str = "train") -> torch.Tensor:
        """z = X theta^T for every chain: theta (S, M, d) -> (S, N, M) on the train or test set."""
        X = self.X if which == "train" else self.X_test
        return torch.bmm(X, theta.transpose(1, 2))

    def losses(self, theta: torch.Tensor, which: str = "train") -> torch.Tensor:
        """(S, M) mean loss of every chain, L = (1/N) sum_i l(z_i, y_i) (+ l2/2 |theta|^2)."""
        y = self.y if which == "train" else self.y_test
        out = self.problem.point_loss(self.logits(theta, which), y[:, :, None]).mean(1)
        if self.l2:
            out = out + 0.5 * self.l2 * (theta * theta).sum(-1)
        return out

    def accuracies(self, theta: torch.Tensor, which: str = "train") -> torch.Tensor:
        """(S, M) fraction classified right, [x_i . theta > 0] == y_i (binary logistic regression)."""
        y = self.y if which == "train" else self.y_test
        z = self.logits(theta, which)
        return ((z > 0).to(y.dtype) == y[:, :, None]).to(theta.dtype).mean(1)
