"""The character LSTM (bsim.problems.charlstm) on the bundled text: its examples, its gradients against
torch.func, its learning against the text's unigram entropy, its generated text and its bad-data errors."""

from __future__ import annotations

import collections
import hashlib
import math

import pytest
import torch

from bsim.ensemble import lstm as batched_lstm
from bsim.ensemble import native
from bsim.ensemble.steps import chains_train_loss
from bsim.problems import make_problem
from bsim.problems.charlstm import CharLSTM
from bsim.scenario import bundled_dir, find_scenario
from bsim.simulation import Simulation
from support.cli import run_cli

TRAIN, TEST = bundled_dir() / "data" / "declaration-train.txt", bundled_dir() / "data" / "declaration-test.txt"


def small(hidden=4, seq_len=5, dtype=torch.float64) -> CharLSTM:
    sc = find_scenario("char-lstm")
    sc.problem.hidden, sc.problem.seq_len = hidden, seq_len
    return make_problem(sc, torch.device("cpu"), dtype)


def test_the_bundled_text_is_the_one_data_md_names():
    """The sha256 of the two files as DATA.md records them (a changed text changes every number measured)."""
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (TRAIN, TEST)}
    data_md = (TRAIN.parent / "DATA.md").read_text()
    for name, digest in digests.items():
        assert digest in data_md, name


def test_examples_are_the_windows_of_the_text_and_the_vocabulary_is_the_training_texts():
    p = small()
    text, test = TRAIN.read_text(), TEST.read_text()
    assert p.vocab == "".join(sorted(set(text)))
    assert p.n_train == len(text) - 5 and p.X_test.shape == (len(test) - 5, 5)
    for i in (0, 1, 1234, p.n_train - 1):
        assert "".join(p.vocab[j] for j in p.X[i].tolist()) == text[i:i + 5]
        assert p.vocab[int(p.y[i])] == text[i + 5]
    assert "".join(p.vocab[j] for j in p.X_test[-1].tolist()) + p.vocab[int(p.y_test[-1])] == test[-6:]


def test_batched_gradients_match_torch_func_per_example_truth():
    """The ensemble's hand-written backward pass (one-hot inputs, softmax read-out) against torch.func's grad
    of the unrolled cell, per example, then averaged: float64, chains at different parameters."""
    p = small()
    K, B = 2, 4
    gen = torch.Generator().manual_seed(3)
    theta = torch.stack([p.init_params(s) for s in range(K)]) * 3
    idx = torch.randint(0, p.n_train, (K, B), generator=gen)
    x, y = p.X[idx], p.y[idx]
    got = batched_lstm.batch_grads(p, theta, x, y)
    per_example = torch.func.vmap(torch.func.grad(p.example_loss), in_dims=(None, 0, 0))
    truth = torch.stack([per_example(theta[k], x[k], y[k]).mean(0) for k in range(K)])
    assert torch.allclose(got, truth, rtol=1e-10, atol=1e-12)
    # the chains' losses (cross-entropy) against the unrolled cell example by example, on 500 windows
    p.X, p.y = p.X[:500], p.y[:500]
    losses = chains_train_loss(p, theta[:, :])
    for k in range(K):
        z = torch.func.vmap(p.predict, in_dims=(None, 0))(theta[k], p.X)     # the unrolled cell, example by example
        assert float(losses[k]) == pytest.approx(float((z.logsumexp(-1) - z[torch.arange(500), p.y]).mean()),
                                                 rel=1e-12)


def test_the_c_kernel_is_not_used_for_characters():
    p = small(dtype=torch.float32)
    theta = p.init_params(0)[None]
    assert native.kernel_for(p, theta) is None
    assert "character inputs" in native.engine_name(p, theta)


@pytest.mark.slow
def test_the_loss_falls_below_the_unigram_entropy_within_the_scenarios_steps():
    """The bundled scenario says so in its description: below the entropy of the character frequencies
    (computed here from the file with a Counter) within 400 steps; accuracy above the most frequent character's.
    With 3 chains and the noise statistics on: the chains learn too, and the two-batch estimates of tr(Sigma)
    and of the batch-gradient variance exist and are positive."""
    sc = find_scenario("char-lstm")
    sc.chains = 3
    text = TRAIN.read_text()
    counts = collections.Counter(text)
    entropy = -sum(c / len(text) * math.log(c / len(text)) for c in counts.values())
    assert "400 steps" in sc.description
    sim = Simulation(sc, device="cpu")
    for _ in range(400):
        sim.step()
    f = sim.frame(timing=False)
    assert f.train_loss < entropy - 0.2 and f.test_loss < entropy - 0.2
    assert f.test_acc > max(counts.values()) / len(text) + 0.05
    assert f.chains == 3 and f.chains_train_loss < entropy - 0.2
    assert f.trace_sigma > 0 and f.grad_noise_theory > 0 and f.noise_scale > 0


def test_generated_text_is_greedy_at_temperature_zero_and_seeded_above():
    p = small()
    theta = p.init_params(1) * 4
    prompt = p.test_ids[:5]
    line = p.generate(theta, prompt, 12)
    ids = prompt.tolist()
    for ch in line:     # greedy: each character the argmax of the logits of the last T
        z = p.predict(theta, torch.tensor(ids[-5:]))
        assert p.vocab[int(z.argmax())] == ch
        ids.append(p.vocab.index(ch))
    warm = [p.generate(theta, prompt, 40, temperature=1.0, seed=s) for s in (7, 7, 8)]
    assert warm[0] == warm[1] != warm[2]


def scenario_with(tmp_path, test_text: str):
    (tmp_path / "train.txt").write_text("the cat sat on the mat. " * 20)
    (tmp_path / "test.txt").write_text(test_text)
    sc = tmp_path / "s.toml"
    sc.write_text('[problem]\nkind = "lstm"\ndata = "train.txt"\ntest_data = "test.txt"\nhidden = 4\nseq_len = 4\n')
    return sc


def test_a_test_character_outside_the_vocabulary_is_one_line_and_exit_2(tmp_path, capsys):
    sc = scenario_with(tmp_path, "the cat sat on the Mat.")
    ran = run_cli(capsys, "run", sc, "--headless", "--steps", "1", "--metrics", tmp_path / "m.csv")
    assert ran.code == 2 and "Traceback" not in ran.err
    assert ran.err.count("\n") == 1
    assert "test.txt:1: character 'M' is not in the training text's vocabulary (11 characters)" in ran.err


def test_a_text_shorter_than_a_window_is_one_line_and_exit_2(tmp_path, capsys):
    sc = scenario_with(tmp_path, "cat")
    ran = run_cli(capsys, "run", sc, "--headless", "--steps", "1", "--metrics", tmp_path / "m.csv")
    assert ran.code == 2 and ran.err.count("\n") == 1
    assert "test.txt: 3 characters; expected more than seq_len = 4" in ran.err
