"""The LSTM of ``bsim.problems.lstm`` for K parameter vectors at once, with its gradient by hand.

theta is (K, P) in the problem's flat layout (torch.nn.LSTM's: gates i, f,
g, o; two biases; a linear read-out). Forward, per time step t:
  a_t = x_t w_ih + b_ih + b_hh + h_{t-1} W_hh^T,   i, f, o = sigmoid(a),  g = tanh(a_g)
  c_t = f c_{t-1} + i g,   h_t = o tanh(c_t);   f(x) = h_T . w_out + b_out.
The loss of chain k on its batch is L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2,
or for the character LSTM (``bsim.problems.charlstm``: x_t a one-hot row of V inputs, V logits
z = W_out h_T + b_out) the cross-entropy L_k = (1/B) sum_b (logsumexp z_kb - z_kb,y_kb), whose
gradient with respect to z is (softmax z - onehot y) / B; and its gradient is back-propagation through time written out (the standard
LSTM derivatives: Hochreiter & Schmidhuber 1997; Graves 2012, ch. 4).

How it is computed (one batched matmul per time step each way, about a dozen
element-wise operations, nothing allocated in the loop):
- z_t = [h_{t-1}, x_t, 1] and W = [W_hh^T; w_ih^T; b_ih + b_hh] (K, H+I+1, 4H), I inputs: the
  pre-activations are one bmm, a_t = z_t W, and all weight gradients one bmm
  after the loop, dW = sum_t z_t^T da_t;
- the g block of W is doubled so that one sigmoid gives all four gates,
  g = tanh(a_g) = 2 sigmoid(2 a_g) - 1 (on CPU builds tanh is several times
  slower than sigmoid); the cell state is carried doubled, c' = 2 c, so that
  tanh c = 2 sigmoid(c') - 1 needs no product either: c' = f c'_{t-1} + i (2 g);
- the forward pass keeps what the backward pass multiplies by,
  Q = s (1 - s) * [2 g, c'_{t-1}, 4 i, tanh c] (s the four sigmoids; 4 i is
  dc'/dg = 2 i times dg/d(2 a_g) / s(1 - s) = 2), R = o (1 - tanh^2 c) and f, so that
  backward through a step is, with dc' = dL/dc' = dL/dc / 2:
    dc' += dh R / 2,   da = [dc', dc', dc', dh] * Q,   dc' *= f,   dh = da W_hh;
  the g block's gradient is doubled back at the end.
Checked against torch.func on the unrolled cell (tests/core/test_ensemble_engine.py).
"""

from __future__ import annotations

import torch


#: grad_input = grad_output * s (1 - s) for s = sigmoid(a): the product the forward pass keeps, in one pass
_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input


def _unpack(problem, theta: torch.Tensor) -> list[torch.Tensor]:
    K = theta.shape[0]
    return [part.reshape(K, *shape) for part, (_, shape) in zip(theta.split(problem._sizes, dim=1), problem.shapes)]


def _gate_scale(H: int, like: torch.Tensor) -> torch.Tensor:
    """(4H,): 1 for the gates i, f, o, 2 for g (g = 2 sigmoid(2 a_g) - 1)."""
    scale = torch.ones(4 * H, dtype=like.dtype, device=like.device)
    scale[2 * H:3 * H] = 2.0
    return scale


def _fill_weights(problem, theta: torch.Tensor, w_aug: torch.Tensor) -> tuple:
    """Writes W = [W_hh^T; w_ih^T; b_ih + b_hh] (g block doubled) into w_aug (K, H+I+1, 4H);
    (scale, w_hh, w_out, b_out)."""
    H, inputs = problem.hidden, problem.n_inputs
    w_ih, w_hh, b_ih, b_hh, w_out, b_out = _unpack(problem, theta)
    scale = _gate_scale(H, theta)
    torch.mul(w_hh.transpose(1, 2), scale, out=w_aug[:, :H])
    torch.mul(w_ih.transpose(1, 2), scale, out=w_aug[:, H:H + inputs])
    torch.add(b_ih, b_hh, out=w_aug[:, H + inputs]).mul_(scale)
    return scale, w_hh, w_out, b_out


def _put_inputs(problem, u: torch.Tensor, x: torch.Tensor) -> None:
    """The inputs x (..., ) into their columns u (..., I) of z: the value (I = 1), or one-hot character indices."""
    if problem.n_inputs == 1:
        u[..., 0] = x
    else:
        u.zero_().scatter_(-1, x[..., None], 1.0)


def _read_out(problem, h: torch.Tensor, w_out: torch.Tensor, b_out: torch.Tensor) -> torch.Tensor:
    """f = h . w_out + b_out (K, B), or the logits W_out h + b_out (K, B, V) of the character LSTM."""
    if problem.n_outputs == 1:
        return torch.baddbmm(b_out[:, None, None], h, w_out[:, :, None])[..., 0]
    return torch.baddbmm(b_out[:, None, :], h, w_out.transpose(1, 2))


def forward(problem, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(K, B) predictions f(x_kb; theta_k) (the character LSTM: (K, B, V) logits) for theta (K, P) and
    x (K, B, T), or (B, T) shared by all chains."""
    H, inputs = problem.hidden, problem.n_inputs
    K, T = theta.shape[0], x.shape[-1]
    if x.dim() == 2:
        x = x.expand(K, -1, -1)
    B = x.shape[1]
    w_aug = theta.new_empty(K, H + inputs + 1, 4 * H)
    _, _, w_out, b_out = _fill_weights(problem, theta, w_aug)
    z = theta.new_empty(K, B, H + inputs + 1)       # [h_{t-1}, x_t, 1]
    z[..., :H] = 0
    z[..., H + inputs] = 1
    c = theta.new_zeros(K, B, H)
    s = theta.new_empty(K, B, 4 * H)
    for t in range(T):
        _put_inputs(problem, z[..., H:H + inputs], x[..., t])
        torch.bmm(z, w_aug, out=s).sigmoid_()
        i, f, g, o = s.split(H, dim=-1)
        g.mul_(2).sub_(1)
        c.mul_(f).addcmul_(i, g)
        torch.mul(c, 2, out=g).sigmoid_().mul_(2).sub_(1)   # tanh c_t, in g's place
        torch.mul(o, g, out=z[..., :H])
    return _read_out(problem, z[..., :H], w_out, b_out)


class _Saved:
    """Owns the scratch tensors of one (H, I, K, B, T) and their per-step views, built once, reused every step."""

    def __init__(self, H: int, K: int, B: int, T: int, like: torch.Tensor, inputs: int = 1):
        new = dict(dtype=like.dtype, device=like.device)
        self.key = (H, inputs, K, B, T, like.dtype, like.device)
        self.w_aug = torch.empty(K, H + inputs + 1, 4 * H, **new)
        self.w_hh2 = torch.empty(K, 4 * H, H, **new)          # W_hh, g rows doubled (for dh = da W_hh)
        self.z = torch.empty(K, T + 1, B, H + inputs + 1, **new)   # z_t = [h_{t-1}, x_t, 1]; h_T in z[:, T]
        self.q = torch.empty(K, T, B, 4 * H, **new)          # Q_t, then da_t in place
        self.r = torch.empty(T, K, B, H, **new)              # R_t = o (1 - tanh^2 c_t)
        self.f = torch.empty(T, K, B, H, **new)              # the forget gates
        s = torch.empty(K, B, 4 * H, **new)                  # the four sigmoids of the step at hand
        ring = torch.empty(2, K, B, 4, H, **new)             # [2 g, c'_{t-1}, 4 i, tanh c], two steps
        self.dh, self.dc = torch.empty(K, B, H, **new), torch.empty(K, B, H, **new)
        self.z[:, 0, :, :H].zero_()
        self.z[:, :T, :, H + inputs].fill_(1)
        self.ring0_c = ring[0, :, :, 1]
        self.x_cols = self.z[:, :T, :, H:H + inputs]      # (K, T, B, I)
        self.h_last = self.z[:, T, :, :H]
        self.z_rows = self.z[:, :T].reshape(K, T * B, H + inputs + 1).transpose(1, 2)
        self.da_rows = self.q.view(K, T * B, 4 * H)
        self.steps = []
        for t in range(T):
            part, nxt = ring[t % 2], ring[(t + 1) % 2]
            q = self.q[:, t]
            self.steps.append((self.z[:, t], s, *s.split(H, dim=-1), *part.unbind(2), nxt[:, :, 1],
                               self.z[:, t + 1, :, :H], self.r[t], self.f[t], q, part.view(K, B, 4 * H),
                               *q.split(H, dim=-1)))
        # constants as 0-dim tensors: a Python number is wrapped into a new tensor at every call
        self.minus_one, self.minus_two, self.four, self.half = (torch.tensor(v, **new) for v in (-1.0, -2.0, 4.0, 0.5))


def _saved(work: dict | None, H: int, K: int, B: int, T: int, like: torch.Tensor, inputs: int = 1) -> _Saved:
    key = (H, inputs, K, B, T, like.dtype, like.device)
    saved = work.get("saved") if work is not None else None
    if saved is None or saved.key != key:
        saved = _Saved(H, K, B, T, like, inputs)
        if work is not None:
            work["saved"] = saved
    return saved


def batch_grads(problem, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, work: dict | None = None) -> torch.Tensor:
    """(K, P) gradients of L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2, x (K, B, T), y (K, B)
    (the character LSTM: the cross-entropy of the logits, x and y character indices).

    ``work``: a dict kept by the caller, where the scratch tensors stay from call to call.
    """
    H, inputs = problem.hidden, problem.n_inputs
    K, B, T = x.shape
    with torch.no_grad():
        sv = _saved(work, H, K, B, T, theta, inputs)
        scale, w_hh, w_out, b_out = _fill_weights(problem, theta, sv.w_aug)
        torch.mul(w_hh, scale[:, None], out=sv.w_hh2)
        _put_inputs(problem, sv.x_cols, x.transpose(1, 2))
        sv.ring0_c.zero_()
        minus_one, minus_two, four, w_aug = sv.minus_one, sv.minus_two, sv.four, sv.w_aug
        for z, s, i, f, sg, o, g2, c_prev, i4, tc, c, h, r, f_kept, q, partners, *_ in sv.steps:
            torch.bmm(z, w_aug, out=s).sigmoid_()
            torch.add(minus_two, sg, alpha=4, out=g2)         # 2 g = 4 sigmoid(2 a_g) - 2
            torch.mul(i, four, out=i4)
            torch.mul(f, c_prev, out=c).addcmul_(i, g2)       # c' = f c'_{t-1} + i (2 g)
            f_kept.copy_(f)
            torch.add(minus_one, torch.sigmoid(c, out=tc), alpha=2, out=tc)   # tanh c = 2 sigmoid(c') - 1
            torch.mul(o, tc, out=h)
            torch.addcmul(o, h, tc, value=-1, out=r)           # o (1 - tanh^2 c)
            _sigmoid_backward(partners, s, grad_input=q)       # s (1 - s) * partners, in one pass
        h_last = sv.h_last
        pred = _read_out(problem, h_last, w_out, b_out)
        grad = theta.new_empty(K, problem.n_params)                   # fresh: the caller may keep it (velocity)
        g_w_ih, g_w_hh, g_b_ih, g_b_hh, g_w_out, g_b_out = grad.split(problem._sizes, dim=1)
        dh, dc = sv.dh, sv.dc
        if problem.n_outputs == 1:
            dpred = (pred - y) / B                                         # (K, B)
            torch.bmm(dpred[:, None, :], h_last, out=g_w_out[:, None, :])  # d w_out = sum_b dpred_b h_T,b
            torch.sum(dpred, 1, out=g_b_out[:, 0])
            torch.mul(dpred[..., None], w_out[:, None, :], out=dh)
        else:                                                              # dL/dz = (softmax z - onehot y) / B
            dz = torch.softmax(pred, -1).scatter_add_(-1, y[..., None], pred.new_full((K, B, 1), -1.0)).div_(B)
            V = problem.n_outputs
            torch.bmm(dz.transpose(1, 2), h_last, out=g_w_out.view(K, V, H))   # d W_out = sum_b dz_b h_T,b^T
            torch.sum(dz, 1, out=g_b_out)
            torch.bmm(dz, w_out, out=dh)
        for t in range(T - 1, -1, -1):
            *_, r, f, da, _, da_i, da_f, da_g, da_o = sv.steps[t]
            if t == T - 1:
                torch.mul(dh, r, out=dc).mul_(sv.half)
            else:
                dc.addcmul_(dh, r, value=0.5)                          # dc' += dh o (1 - tanh^2 c) / 2
            da_i.mul_(dc)                                              # three products, not one broadcast
            da_f.mul_(dc)                                              # over a (K, B, 3, H) view: that runs
            da_g.mul_(dc)                                              # rows of H and is twice as slow
            da_o.mul_(dh)
            if t:
                dc.mul_(f)
                torch.bmm(da, sv.w_hh2, out=dh)
        d_w = torch.bmm(sv.z_rows, sv.da_rows)                         # (K, H+I+1, 4H): sum_t z_t^T da_t
        torch.mul(d_w[:, H:H + inputs].transpose(1, 2), scale[:, None],  # the g block's doubling, undone
                  out=g_w_ih.view(K, 4 * H, inputs))
        torch.mul(d_w[:, :H].transpose(1, 2), scale[:, None], out=g_w_hh.view(K, 4 * H, H))
        torch.mul(d_w[:, H + inputs], scale, out=g_b_ih)
        g_b_hh.copy_(g_b_ih)
        return grad
