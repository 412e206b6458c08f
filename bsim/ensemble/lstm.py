"""The LSTM of ``bsim.problems.lstm`` for K parameter vectors at once, with its gradient by hand.

theta is (K, P) in the problem's flat layout (torch.nn.LSTM's: gates i, f,
g, o; two biases; a linear read-out). Forward, per time step t:
  a_t = x_t w_ih + b_ih + b_hh + h_{t-1} W_hh^T,   i, f, o = sigmoid(a),  g = tanh(a_g)
  c_t = f c_{t-1} + i g,   h_t = o tanh(c_t);   f(x) = h_T . w_out + b_out
(inside, the gates run i, f, o, g and tanh is computed as 2 sigmoid(2 z) - 1). The loss
of chain k on its batch is L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2, and
its gradient is back-propagation through time written out (the standard LSTM
derivatives: dc += dh o (1 - tanh^2 c), di = dc g, df = dc c_{t-1}, dg = dc i,
do = dh tanh c, then through the sigmoid and tanh), one batched matmul per
step for dh and one for all of dW_hh. Checked against torch.func on the
unrolled cell in tests/test_ensemble_engine.py.
"""

from __future__ import annotations

import torch


def _unpack(problem, theta: torch.Tensor) -> list[torch.Tensor]:
    K = theta.shape[0]
    return [part.reshape(K, *shape) for part, (_, shape) in zip(theta.split(problem._sizes, dim=1), problem.shapes)]


def _reorder(H: int, device) -> torch.Tensor:
    """Gate rows i, f, g, o -> i, f, o, g: the three sigmoid gates contiguous, then the tanh one."""
    r = torch.arange(4 * H, device=device)
    return torch.cat([r[:2 * H], r[3 * H:], r[2 * H:3 * H]])


def _buffer(work: dict | None, name: str, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """A scratch tensor kept in ``work`` between calls (large fresh allocations cost page faults every step)."""
    if work is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    buf = work.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = work[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return buf


def _tanh(z: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """tanh z = 2 sigmoid(2 z) - 1 (on CPU builds where tanh is several times slower than sigmoid)."""
    out = torch.sigmoid(z * 2, out=out)
    return out.mul_(2).sub_(1)


def forward(problem, theta: torch.Tensor, x: torch.Tensor, keep: bool = False, work: dict | None = None):
    """f(x_kb; theta_k) for theta (K, P) and x (K, B, T) or (B, T) shared; with ``keep`` also what backward
    needs (in the scratch tensors of ``work``, reused from call to call). Gates in the order i, f, o, g;
    the g block's pre-activation is doubled, so that one sigmoid gives all four: g = 2 sigmoid(2 a_g) - 1."""
    H = problem.hidden
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = _unpack(problem, theta)
    order = _reorder(H, theta.device)
    scale = torch.ones(4 * H, dtype=theta.dtype, device=theta.device)
    scale[3 * H:] = 2.0
    w_in = w_ih[:, order, 0] * scale                           # (K, 4H)
    bias = (b_ih + b_hh)[:, order] * scale                     # (K, 4H)
    w_hhT = (w_hh[:, order] * scale[:, None]).transpose(1, 2)  # (K, H, 4H)
    K, T = theta.shape[0], x.shape[-1]
    if x.dim() == 2:
        x = x.expand(K, -1, -1)
    B = x.shape[1]
    x_steps, w_in, bias = x.permute(2, 0, 1)[..., None], w_in[:, None, :], bias[:, None, :]   # (T, K, B, 1)
    if keep:   # every step's gates (i, f, o as sigmoids, g itself), cells, tanh(cells) and states
        s_all = _buffer(work, "s", (T, K, B, 4 * H), theta)
        c_all, h_all = _buffer(work, "c", (T + 1, K, B, H), theta), _buffer(work, "h", (T + 1, K, B, H), theta)
        tc_all = _buffer(work, "tc", (T, K, B, H), theta)
        c_all[0].zero_()
        h_all[0].zero_()
    h = c = theta.new_zeros(K, B, H)
    for t in range(T):
        a = torch.baddbmm(torch.addcmul(bias, x_steps[t], w_in), h, w_hhT)
        s = torch.sigmoid(a, out=s_all[t] if keep else None)
        i, f, o, g = s.split(H, dim=-1)
        g.mul_(2).sub_(1)
        c = torch.addcmul(f * c, i, g, out=c_all[t + 1] if keep else None)
        tc = _tanh(c, out=tc_all[t] if keep else None)
        h = torch.mul(o, tc, out=h_all[t + 1] if keep else None)
    pred = torch.baddbmm(b_out[:, None, None], h, w_out[:, :, None])[..., 0]
    return (pred, (s_all, c_all, tc_all, h_all, x)) if keep else pred


def batch_grads(problem, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, work: dict | None = None) -> torch.Tensor:
    """(K, P) gradients of L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2, x (K, B, T), y (K, B)."""
    H = problem.hidden
    K, B, T = x.shape
    with torch.no_grad():
        pred, (s_all, c_all, tc_all, h_all, x) = forward(problem, theta, x, keep=True, work=work)
        _, w_hh, _, _, w_out, _ = _unpack(problem, theta)
        order = _reorder(H, theta.device)
        w_hh = w_hh[:, order]                                        # (K, 4H, H), gates i, f, o, g
        dpred = (pred - y) / B                                       # (K, B)
        d_w_out = torch.bmm(dpred[:, None, :], h_all[T])[:, 0]       # (K, H)
        d_b_out = dpred.sum(1)                                       # (K,)
        dh = dpred[..., None] * w_out[:, None, :]                    # (K, B, H)
        dc = torch.zeros_like(dh)
        d_w_hh = theta.new_zeros(K, 4 * H, H)                        # rows i, f, o, g
        d_w_ih = theta.new_zeros(K, 4 * H, 1)
        d_bias = theta.new_zeros(K, 4 * H)
        x_steps = x.permute(2, 0, 1)[..., None]                      # (T, K, B, 1)
        da = _buffer(work, "da", (K, B, 4 * H), theta)
        deriv = _buffer(work, "deriv", (K, B, 4 * H), theta)
        for t in range(T - 1, -1, -1):   # each step's derivatives computed here, while they are in cache
            s = s_all[t]
            i, f, o, g = s.split(H, dim=-1)
            tc = tc_all[t]
            dc = torch.addcmul(dc, dh * o, 1 - tc * tc)                # d tanh(c) / dc = 1 - tanh(c)^2
            torch.cat([dc * g, dc * c_all[t], dh * tc, dc * i], dim=-1, out=da)   # d i, d f, d o, d g
            # d gate / d pre-activation: s (1 - s) for i, f, o; 1 - g^2 for g
            torch.mul(s, s, out=deriv).neg_().add_(s)
            torch.mul(g, g, out=deriv[..., 3 * H:]).neg_().add_(1)
            da *= deriv
            daT = da.transpose(1, 2)
            d_w_hh.baddbmm_(daT, h_all[t])                           # + da^T h_{t-1}, while da is in cache
            d_w_ih.baddbmm_(daT, x_steps[t])
            d_bias += da.sum(1)
            dc = dc * f
            dh = torch.bmm(da, w_hh)                                  # (K, B, H)
        back = torch.argsort(order)                                  # i, f, o, g -> the layout's i, f, g, o
        d_w_ih, d_w_hh, d_bias = d_w_ih[:, back, 0], d_w_hh[:, back], d_bias[:, back]
        return torch.cat([d_w_ih, d_w_hh.reshape(K, -1), d_bias, d_bias, d_w_out, d_b_out[:, None]], dim=1)
