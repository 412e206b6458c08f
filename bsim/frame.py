"""A frame: one snapshot of the simulation's metrics, what every view reads.

``CSV_COLUMNS`` is the metrics-CSV contract (docs/usage.md, "The metrics CSV"), in order. A value
of None is a quantity that does not exist for the problem (an empty cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # types only: frame.py stays at the bottom of the layering (no torch, no bsim.stats)
    from bsim.controls import RunnerState
    from bsim.landscape.info import LandscapeInfo
    from bsim.stats.info import BallInfo, BallLaw, ProbeResult, StatsInfo

CSV_COLUMNS = (
    "step", "epoch", "samples", "batch_size", "lr", "batch_loss", "train_loss", "test_loss",
    "grad_norm", "full_grad_norm", "cos_to_full", "grad_noise", "grad_noise_theory",
    "noise_scale", "dist_to_opt", "ball_radius_theory", "samples_per_sec",
    # appended by the noise statistics (bsim.stats); the contract columns above keep their places
    "ball_radius", "trace_sigma", "temperature", "full_grad_every",
    # the kind of ball_radius_theory: exact, reshuffled, linearised or none (bsim.stats.ball.KINDS)
    "ball_theory",
    # logistic regression's fraction classified right, on the training and the test set (empty otherwise)
    "train_acc", "test_acc",
    # the adaptive batch size's test statistic at its last check (bsim.schedule.adaptive; empty otherwise)
    "batch_test",
    # the landscapes (bsim.landscape.escape; empty for other problems): fraction of the chains in each basin,
    # chains that left the starting basin, escapes per chain-step survived, its se, the prediction and its kind
    "basin_0_frac", "basin_1_frac", "escaped", "escape_rate", "escape_rate_se", "escape_rate_theory",
    "escape_theory",
)
#: appended after every other column when the run has an ensemble (chains = K > 1; bsim.ensemble)
CHAINS_COLUMNS = ("chains", "chains_ball_radius", "chains_train_loss",
                  # the RMS over the chains and the steps of the last whole epochs (bsim.ensemble.epoch_window)
                  "chains_ball_radius_epoch")


def csv_columns(chains: int = 1) -> tuple[str, ...]:
    """The metrics CSV's columns: the chains' columns come last, only with an ensemble (K > 1)."""
    return CSV_COLUMNS + (CHAINS_COLUMNS if chains > 1 else ())


@dataclass
class Frame:
    # counters
    step: int = 0                 # iterations since the last reset
    tick: int = 0                 # iterations since the run began (timeline events are keyed by it)
    epoch: float = 0.0            # samples / n_train
    epochs_done: int = 0
    batch_in_epoch: int = 0
    batches_per_epoch: int = 0
    samples: int = 0
    n_train: int = 0
    # settings in force for the step just taken
    batch_size: int = 0
    lr: float = 0.0
    momentum: float = 0.0
    lr_scaling: str = "none"
    sampling: str = "shuffle"
    problem: str = ""
    device: str = "cpu"
    title: str = ""               # the scenario's title (a problem switch changes it)
    n_params: int = 0
    # the settings the next step will use (an action since the step just taken shows here first)
    next_batch_size: int = 0
    next_lr: float = 0.0
    # measured quantities (None: not defined for this problem / not yet)
    batch_loss: float | None = None
    train_loss: float | None = None
    test_loss: float | None = None
    train_acc: float | None = None     # fraction classified right (classifiers only: logreg)
    test_acc: float | None = None
    grad_norm: float | None = None
    full_grad_norm: float | None = None
    cos_to_full: float | None = None
    grad_noise: float | None = None
    grad_noise_theory: float | None = None
    noise_scale: float | None = None
    dist_to_opt: float | None = None
    ball_radius_theory: float | None = None
    samples_per_sec: float | None = None
    steps_per_sec: float | None = None
    # noise statistics (bsim.stats; None without them). ball_radius: measured RMS distance to theta*
    # (LSTM: to the running average) over the window after burn-in; trace_sigma: tr(Sigma) at the step's
    # parameters; temperature: lr (N/B - 1) / (1 - momentum) for B distinct examples (zero at B = N), lr N / (B (1 -
    # momentum)) with replacement (bsim.stats.cfactor.temperature)
    # (with replacement lr N / (B (1 - momentum))); full_grad_every: K, the full gradient enters
    # the averages every K steps (1: every step). More in stats, ball and probe below: see bsim/stats/info.py.
    ball_radius: float | None = None
    trace_sigma: float | None = None
    temperature: float | None = None
    full_grad_every: int | None = None
    ball_theory: str | None = None
    # the ensemble (bsim.ensemble; None without chains = K > 1): chains alive (chain 0 is the run); the ball
    # across chains at this step, sqrt(mean_k |theta_k - theta*|^2) (LSTM: spread around the chains' mean);
    # their mean train loss and its 10% / 90% quantiles; dropped: chains that diverged; their (K, d) parameters
    chains: int | None = None
    chains_ball_radius: float | None = None
    # sqrt of the mean of |theta_k - theta*|^2 over the chains and the steps of the last whole epochs, one
    # setting only (None until a whole window is in): under shuffle it does not depend on the epoch's phase
    chains_ball_radius_epoch: float | None = None
    chains_train_loss: float | None = None
    chains_train_loss_q10: float | None = None
    chains_train_loss_q90: float | None = None
    chains_dropped: int | None = None
    chains_notice: str = ""
    chains_theta: object = None            # numpy array (K_alive, d) for d <= 8, else None
    chains_gap: object = None              # bsim.ensemble.gap.Gap: train - test accuracy over the chains, its se
    # the landscapes (bsim.landscape; None for other problems): the CSV's columns, and what the panel draws
    basin_0_frac: float | None = None
    basin_1_frac: float | None = None
    escaped: int | None = None
    escape_rate: float | None = None
    escape_rate_se: float | None = None
    escape_rate_theory: float | None = None
    escape_theory: str | None = None
    landscape: LandscapeInfo | None = None
    # [schedule] (bsim.schedule): the adaptive batch size's statistic at its last check, noise / (theta^2 signal)
    # (B grows above 1; None without it), what it is ("norm test, theta 0.5"), and the next change and when
    batch_test: float | None = None
    batch_test_label: str = ""
    schedule_next: str = ""
    # state
    status: str = "running"       # running | diverged
    message: str = ""
    theta: tuple[float, ...] = ()          # parameters (only for small problems, for the plane view)
    theta_star: tuple[float, ...] | None = None
    theta_prev: tuple[float, ...] | None = None   # where the step just taken started (small problems)
    runner: RunnerState | None = None      # the runner's own state (paused, speed, recording, replay, ...)
    # the statistics' detail for the views (None without statistics; probe: None until one is asked for)
    stats: StatsInfo | None = None
    ball: BallInfo | None = None
    probe: ProbeResult | None = None
    # the ball's radius against batch size (None for problems without a ball theory, e.g. the LSTM)
    ball_law: BallLaw | None = None

    def csv_row(self, columns: tuple[str, ...] = CSV_COLUMNS) -> list[str]:
        return [_cell(getattr(self, c)) for c in columns]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)
