"""What the statistics put into a frame for the views to draw.

frame.stats: StatsInfo, frame.ball: BallInfo, and, after a probe was asked
for, frame.probe: ProbeResult. All values are plain floats, ints, strings and
tuples (None where a quantity does not exist). This module imports nothing
heavy (``bsim.frame`` names these types for type checkers only).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bsim.stats.cfactor import VarianceTheory, theory_batch_sizes


@dataclass(frozen=True)
class VariancePoint:
    """The measured grad_noise = |g_B - G|^2 averaged over the steps taken at one batch size."""

    batch_size: int
    sampling: str
    steps: int                     # steps averaged (every step for linear models, every K for the LSTM)
    grad_noise_mean: float
    grad_noise_se: float | None    # standard error of the mean against theory_mean (None: settling; window.py)
    theory_mean: float             # mean of c_B tr(Sigma) over the same steps


@dataclass(frozen=True)
class StatsInfo:
    """Gradient-noise quantities at the parameters of the step just taken.

    trace_sigma: tr(Sigma); exact for linear models, the two-batch estimate for
    the LSTM (``trace_sigma_label`` says which). noise_scale: B_simple =
    tr(Sigma) / |G|^2. temperature: lr (N/B - 1) / (1 - momentum) for B distinct
    examples, lr N / (B (1 - momentum)) with replacement, at the current settings
    (``cfactor.temperature``). variance_theory(B) = c_B tr(Sigma) at any B; variance_line holds
    (B, c_B tr(Sigma)) at about 96 batch sizes log-spaced from 1 to N (the
    theory line of the variance plot); variance_measured holds the measured points at the batch sizes
    visited under the current sampling. full_grad_every: the full gradient (and
    grad_noise in the averages) is computed every K steps (1 = every step).
    """

    trace_sigma: float | None
    trace_sigma_label: str
    full_grad_norm2: float | None
    noise_scale: float | None
    temperature: float
    c_b: float
    batch_size: int
    sampling: str
    n_train: int
    variance_theory: VarianceTheory | None
    variance_measured: tuple[VariancePoint, ...]
    full_grad_every: int
    note: str
    full_grad: tuple[float, ...] | None = None    # G itself (small problems: d <= SMALL_PARAMS), for the arrow
    batch_grad: tuple[float, ...] | None = None   # g_B itself (small problems)
    # B_simple as the views show it: a ratio of means over the last noise_scale_window steps (the one value
    # the counters and the variance panel read; the CSV's noise_scale stays the step's own)
    noise_scale_smoothed: float | None = None
    noise_scale_window: int = 0
    # cos(g_B, G) averaged over the last cos_to_full_window steps that took the full gradient (one step's
    # cosine flips sign near theta*; the CSV's cos_to_full stays the step's own)
    cos_to_full_mean: float | None = None
    cos_to_full_window: int = 0
    # the temperature's formula for the sampling in force (``cfactor.TEMPERATURE_FORMULA``), shown beside it
    temperature_formula: str = ""

    @cached_property
    def variance_line(self) -> tuple[tuple[int, float], ...]:
        """(B, c_B tr(Sigma)) at about 96 batch sizes log-spaced from 1 to N (computed when first read)."""
        if self.variance_theory is None:
            return ()
        return tuple(self.variance_theory.points(theory_batch_sizes(max(self.n_train, 2))))


@dataclass(frozen=True)
class BallInfo:
    """The epsilon-ball: predicted against measured spread of the iterates.

    center: theta* (linear models), or the running average of the iterates
    (LSTM), given only for small problems (SMALL_PARAMS); center_label
    says which. radius_theory: sqrt(tr S) of the exact (least squares) or
    linearised (logreg) stationary equation for the settings in force, None
    when there is none (note says why: unstable, LSTM, too many parameters).
    covariance: S as rows (small problems), for drawing the predicted ellipse
    (x - theta*)^T S^-1 (x - theta*) = 1 in two dimensions. radius_measured:
    RMS distance to the center over ``window_steps`` steps after a burn-in of
    ``burn_in`` steps (``burn_in_left`` still to go); the window restarts when
    B, lr, momentum or sampling change.
    """

    label: str
    sampling: str
    center: tuple[float, ...] | None
    center_label: str
    radius_theory: float | None
    radius_measured: float | None
    radius_se: float | None
    window_steps: int
    burn_in: int
    burn_in_left: int
    covariance: tuple[tuple[float, ...], ...] | None
    radius_additive: float | None
    radius_small_lr: float | None
    lr_limit: float | None
    spectral_radius: float | None
    stable: bool | None
    note: str
    kind: str = "none"                 # what radius_theory is: exact, reshuffled, linearised or none
    radius_iid: float | None = None    # the iid prediction beside a reshuffled one (= radius_theory otherwise)
    limit_fraction: float | None = None   # lr / the stability limit
    holds_from: int | None = None      # B changed mid-epoch (shuffle): the step whole epochs at the new B begin
    settles_at: int | None = None      # ... and the step E|e|^2 is within 5% of the new ball (about; noise_stats)
    # interpolation (least squares, rank X = N <= d: every example fitted, radius_theory 0): E|e|^2 is
    # multiplied by ``rate`` per step (rho of the second-moment operator in the row space; bsim.stats.interpolation),
    # rate_label says how exact it is; critical_batch: m* = max|x_i|^2 / lambda_max(H) (Ma, Bassily & Belkin 2018)
    rate: float | None = None
    rate_label: str = ""
    critical_batch: float | None = None
    # ... and (where the app draws them) the rate at B = 1, 2, 4, ... and N, lr following the lr scaling in force
    rates: tuple[tuple[int, float | None], ...] = ()
    # under shuffle (bsim.stats.shuffled_ball): radius_theory is computed numerically over sampled
    # permutations, with its standard error; the analytic approximation beside it; lr_limit is then the
    # shuffled stability limit (with its SE) and lr_limit_iid the iid one beside it
    radius_theory_se: float | None = None
    radius_approx: float | None = None
    lr_limit_iid: float | None = None
    lr_limit_se: float | None = None


@dataclass(frozen=True)
class RadiusMeasure:
    """One measured ball radius and its standard error.

    se = SE(mean |e|^2) / (2 radius) (the delta method); None while too few
    independent samples are behind it ("settling"). samples: the independent
    samples behind it (relaxation times for the trail, chains for the ensemble).
    """

    radius: float
    se: float | None
    samples: float


@dataclass(frozen=True)
class BallLawPoint:
    """One visited setting of the ball's law: its prediction and what was measured at it (at it only)."""

    batch_size: int
    lr: float
    momentum: float
    sampling: str
    theory: float | None               # predicted radius at this setting
    theory_kind: str                   # exact | reshuffled | linearised | none (bsim.stats.ball.KINDS)
    trail: RadiusMeasure | None        # the run's own iterates (windowed RMS after burn-in)
    chains: RadiusMeasure | None       # the ensemble, epoch-averaged (None without chains)
    current: bool                      # the setting in force


@dataclass(frozen=True)
class BallLaw:
    """The ball's radius against batch size: visited settings and the predicted curves.

    points: the settings visited, oldest first (the latest measurement per setting).
    curve: the predicted radius at curve_batch_sizes for the sampling in force, lr
    following the lr scaling in force from the current (B, lr); other_curve: the
    other sampling's prediction (iid exact under shuffle, reshuffled under iid or
    replacement). None where a setting has no prediction (unstable).
    """

    points: tuple[BallLawPoint, ...]
    curve_batch_sizes: tuple[int, ...]
    curve: tuple[float | None, ...]
    curve_kind: str
    other_curve: tuple[float | None, ...]
    other_kind: str


@dataclass(frozen=True)
class ProbeResult:
    """K fresh batches at the current parameters (PROBE stream): their spread against c_B tr(Sigma).

    batch_grads and full_grad are given for problems with at most 8 parameters
    (to draw the cloud of batch gradients around G).
    """

    step: int
    batch_size: int
    sampling: str
    batches: int
    grad_noise_mean: float
    grad_noise_se: float
    predicted: float | None
    trace_sigma: float | None
    ratio: float | None            # grad_noise_mean / predicted
    full_grad: tuple[float, ...] | None
    batch_grads: tuple[tuple[float, ...], ...] | None
