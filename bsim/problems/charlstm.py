"""A character-level LSTM: see T characters of a text, predict the next one.

``[problem] kind = "lstm"`` with ``data = "train.txt"`` (and ``test_data = "test.txt"``): the
text's characters are the examples' alphabet. The vocabulary is the set of characters of the
training text (sorted); a test text with a character outside it is an error (one line, exit 2).
Example i is the window c_i .. c_{i+T-1} of the text and its target c_{i+T}; every window of
the text is an example (N = len(text) - T).

The model is ``bsim.problems.lstm``'s cell with a one-hot input of V = |vocabulary| units
(w_ih is (4H, V)) and a read-out to V logits, z = W_out h_T + b_out; the loss is the
cross-entropy l_i = logsumexp(z) - z_{c_{i+T}} (nats), and the accuracy is next-character
accuracy, mean_i [argmax z = c_{i+T}]. The unigram entropy of the training text,
-sum_c p_c ln p_c, is the loss of the best model that ignores the context: a model that
learned something from the context goes below it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bsim.errors import BsimInputError, quote, read_user_text
from bsim.problems.lstm import LSTMProblem
from bsim.scenario import Scenario

#: the largest text read (the windows are views of it, so memory grows as the text, not as T times it)
MAX_TEXT_BYTES = 1 << 20
#: the most distinct characters of a training text (each is an input and an output unit)
MAX_VOCAB = 256
EXPECTED = "a UTF-8 text file (lstm: next-character prediction)"


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def encode(text: str, vocab: str, path) -> torch.Tensor:
    """The text as vocabulary indices; a character outside the vocabulary is a BsimInputError (file:line)."""
    index = {c: i for i, c in enumerate(vocab)}
    ids = []
    for pos, c in enumerate(text):
        i = index.get(c)
        if i is None:
            raise BsimInputError(f"{path}:{_line_of(text, pos)}: character {quote(c)} is not in the training "
                                 f"text's vocabulary ({len(vocab)} characters); expected a test text made of "
                                 f"the training text's characters")
        ids.append(i)
    return torch.tensor(ids, dtype=torch.int64)


def unigram_entropy(ids: torch.Tensor, vocab_size: int) -> float:
    """-sum_c p_c ln p_c (nats) of the character frequencies p_c of a text."""
    p = torch.bincount(ids, minlength=vocab_size).double() / ids.numel()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


class CharLSTM(LSTMProblem):
    """Next-character prediction on a text file (see the module docstring)."""

    kind = "lstm"

    def __init__(self, sc: Scenario, device: torch.device, dtype: torch.dtype):   # noqa: D107
        from bsim.problems.base import Problem
        Problem.__init__(self, device, dtype)
        spec = sc.problem
        self.hidden, self.seq_len = spec.hidden, spec.seq_len
        T = self.seq_len
        train_path = sc.resolve(spec.data)
        text = read_user_text(train_path, EXPECTED, limit=MAX_TEXT_BYTES)
        self.vocab = "".join(sorted(set(text)))
        V = len(self.vocab)
        if V > MAX_VOCAB:
            raise BsimInputError(f"{train_path}: {V} distinct characters; expected at most {MAX_VOCAB} "
                                 f"(each is an input and an output unit of the character LSTM)")
        if len(text) <= T:
            raise BsimInputError(f"{train_path}: {len(text)} characters; expected more than seq_len = {T} "
                                 f"(an example is {T} characters and the next one)")
        ids = encode(text, self.vocab, train_path)
        self.entropy = unigram_entropy(ids, V)
        self.text_ids = ids.to(device)
        self.X, self.y = self.text_ids.unfold(0, T, 1)[:-1], self.text_ids[T:]   # windows: views of the text
        self.X_test = self.y_test = None
        self.test_ids = None
        if spec.test_data:
            test_path = sc.resolve(spec.test_data)
            test = read_user_text(test_path, EXPECTED, limit=MAX_TEXT_BYTES)
            if len(test) <= T:
                raise BsimInputError(f"{test_path}: {len(test)} characters; expected more than seq_len = {T}")
            self.test_ids = encode(test, self.vocab, test_path).to(device)
            self.X_test, self.y_test = self.test_ids.unfold(0, T, 1)[:-1], self.test_ids[T:]
        self.n_vocab = V
        self.n_inputs = self.n_outputs = V
        self.source = f"{train_path.name}: {len(text):,} characters, {V} distinct"
        H = self.hidden
        self.shapes = [("weight_ih_l0", (4 * H, V)), ("weight_hh_l0", (4 * H, H)), ("bias_ih_l0", (4 * H,)),
                       ("bias_hh_l0", (4 * H,)), ("w_out", (V, H)), ("b_out", (V,))]
        self._sizes = [math.prod(shape) for _, shape in self.shapes]
        self._zeros: dict[int, torch.Tensor] = {}

    @property
    def n_params(self) -> int:
        H, V = self.hidden, self.n_vocab
        return 4 * H * V + 4 * H * H + 8 * H + V * H + V

    def predict(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) for x (..., T) of character indices: the unrolled cell, its input a row of w_ih^T."""
        w_ih, w_hh, b_ih, b_hh, w_out, b_out = self.unpack(theta)
        H = self.hidden
        w_ihT, b, w_hhT = w_ih.T, b_ih + b_hh, w_hh.T
        h = theta.new_zeros(x.shape[:-1] + (H,))
        c = h
        for t in range(x.shape[-1]):
            gates = F.embedding(x[..., t], w_ihT) + h @ w_hhT + b     # one-hot x_t times w_ih^T: a row
            i, f, g, o = gates.split(H, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h @ w_out.T + b_out

    def predict_fused(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The same logits as ``predict`` for x (B, T), on the fused LSTM kernel with one-hot inputs."""
        w_ih, w_hh, b_ih, b_hh, w_out, b_out = self.unpack(theta)
        B = x.shape[0]
        h0 = self._zeros.get(B)
        if h0 is None:
            h0 = self._zeros[B] = theta.new_zeros(1, B, self.hidden)
        u = F.one_hot(x, self.n_vocab).to(theta.dtype)
        _, h_last, _ = torch.lstm(u, (h0, h0), [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, True, False, True)
        return h_last[0] @ w_out.T + b_out

    def loss(self, theta, X, y):
        return F.cross_entropy(self.predict_fused(theta, X), y)

    def loss_and_grad(self, theta, idx):
        """L_B = (1/B) sum_b (logsumexp z_b - z_b,y_b) and its gradient by autograd through the fused kernel."""
        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            loss = F.cross_entropy(self.predict_fused(t, self.X[idx]), self.y[idx])
            (g,) = torch.autograd.grad(loss, t)
        return loss.detach(), g

    def example_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """l_i = logsumexp(z) - z_y for one example (x of shape (T,)): what torch.func maps over."""
        z = self.predict(theta, x)
        return z.logsumexp(-1) - z.gather(-1, y[None])[0]

    def chains_point_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(k,) mean cross-entropy of k chains' logits pred (k, N, V) against y (N,)."""
        target = pred.gather(-1, y.expand(pred.shape[0], -1)[..., None])[..., 0]
        return (pred.logsumexp(-1) - target).mean(1)

    def accuracy(self, theta, X, y):
        """Next-character accuracy: mean_i [argmax_c z_c(x_i) = y_i]."""
        return (self.predict_fused(theta, X).argmax(-1) == y).to(theta.dtype).mean()

    def generate(self, theta: torch.Tensor, prompt: torch.Tensor, n: int, temperature: float = 0.0,
                 seed: int = 0) -> str:
        """n characters continuing ``prompt`` (indices, at least T of them), each from the last T:
        greedy (the most likely character) at temperature 0, else drawn from softmax(z / temperature)
        with a generator seeded by ``seed``."""
        T = self.seq_len
        ids = prompt[-T:].to(self.device).clone()
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed)
        out = []
        with torch.no_grad():
            for _ in range(n):
                z = self.predict_fused(theta, ids[None])[0]
                if temperature > 0:
                    p = torch.softmax(z.double().cpu() / temperature, -1)
                    nxt = int(torch.multinomial(p, 1, generator=gen))
                else:
                    nxt = int(z.argmax())
                out.append(self.vocab[nxt])
                ids = torch.cat([ids[1:], ids.new_tensor([nxt])])
        return "".join(out)
