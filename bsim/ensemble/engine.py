"""The ensemble: K independent chains of the run's problem, stepped after the run's own.

Chain 0 is the run itself (the Simulation, untouched). Chains 1..K-1 live
here as (K-1, P) parameters and velocities; after every step of the run
they take one batched step with the run's batch size, lr and momentum on
their own batches (``ChainsSampler``, one generator seeded from the scenario
seed's chains stream, so chain k >= 1 never repeats chain 0's draws). They
start at the run's theta_0, restart at a reset, follow a sampling change and
are rebuilt at a problem switch. A chain whose parameters leave the finite
numbers is frozen and left out of every statistic (``dropped``).

At frame time (the only host reads): chains alive; the ball across chains,
sqrt(mean_k |theta_k - theta*|^2) (LSTM: sqrt(mean_k |theta_k - mean_j theta_j|^2),
the spread around the chains' mean, as there is no known optimum); the mean,
10% and 90% quantiles of the chains' training loss; a classifier's train minus test accuracy, its
mean and standard error over the chains (``gap``); the (K, d) parameters
for d <= 8; the ball over whole epochs (``epoch_window``: per step, each
chain's |theta_k - centre|^2 is added on the device).
"""

from __future__ import annotations

import numpy as np
import torch

from bsim.ensemble.epoch_window import WINDOW_STEPS, EpochWindow
from bsim.ensemble.gap import generalization_gap
from bsim.ensemble.memory import memory_problem
from bsim.ensemble.sampler import ChainsSampler
from bsim.ensemble.steps import chains_train_loss, is_linear, step_chains
from bsim.errors import BsimInputError
from bsim.problems.base import stream_seed
from bsim.stats.fullgrad import stats_dtype
from bsim.stats.info import RadiusMeasure
from bsim.stats.radius_se import chains_measure
from bsim.stats.strategy import Settings

#: the chains' sampling stream, after the problem streams (data 1, init 2, sample 3, probe 4)
CHAINS_STREAM = 5
#: parameter vectors longer than this are not copied into frames
SMALL = 8


def _max_batch_size(scenario, n: int) -> int:
    sizes = [scenario.optimizer.batch_size] + [ev.batch_size for ev in scenario.timeline if ev.batch_size]
    return min(max(sizes), n)


def _position(sampler) -> tuple:
    """Where a sampler stands in its epoch (the counters every chain shares with the run)."""
    return sampler.samples, sampler.epochs_done, sampler.batch_in_epoch, sampler.epoch_start_samples, sampler.pos


class Ensemble:
    """Owns chains 1..K-1 (parameters, velocities, sampler, alive mask); reads the Simulation, never writes it.

    Attach with ``Ensemble(sim, chains)``: it adds an observer (a step after each
    of the run's) and a frame hook (the chains' columns).
    """

    def __init__(self, sim, chains: int, where: str | None = None):
        if isinstance(chains, bool) or not isinstance(chains, int) or chains < 2:
            raise ValueError(f"an ensemble needs chains >= 2, got {chains!r}")
        self.sim, self.chains = sim, chains
        self.where = where or f"chains = {chains}"
        self.notice = ""          # why the ensemble stopped (a problem switch it does not fit), else ""
        self.active = False
        problem_error = memory_problem(sim.problem, chains, _max_batch_size(sim.scenario, sim.n_train), sim.device)
        if problem_error:
            raise BsimInputError(f"{self.where}: {problem_error}")
        self._setup()
        sim.observers.append(self.observe)
        sim.frame_hooks.append(self.fill)

    # ---------------------------------------------------------------- state
    def _setup(self) -> None:
        """Chains at the run's theta_0, fresh draws from the chains' stream (a start, a reset, a switch)."""
        sim = self.sim
        if sim.problem is not getattr(self, "problem", None):
            self.problem = sim.problem
            error = memory_problem(sim.problem, self.chains, sim.batch_size, sim.device)
            self.active = error is None
            self.notice = "" if error is None else f"ensemble off for this problem: {error}"
            self.linear = is_linear(sim.problem)
        self._run_sampler = sim.sampler
        self._work: dict = {}     # scratch tensors of the batched LSTM, reused from step to step
        self._epoch_id: int | None = None    # the epoch of the run's last step (epoch_window)
        self._finished: dict = {}            # settings -> RadiusMeasure of the windows since the last frame
        if not self.active:
            self.theta = self.velocity = self.alive = self.sampler = self.epochs = None
            return
        self.epochs = EpochWindow(self.chains, sim.device, stats_dtype(sim.device))
        m = self.chains - 1
        self.theta = sim.theta0.expand(m, -1).clone()
        self.velocity = torch.zeros_like(self.theta)
        self.alive = torch.ones(m, dtype=torch.bool, device=sim.device)
        gen = torch.Generator(device=sim.device)
        gen.manual_seed(stream_seed(sim.scenario.seed, CHAINS_STREAM))
        self.sampler = ChainsSampler(sim.n_train, m, sim.sampler.mode, sim.sampler.drop_last, gen, sim.device)

    def _sync(self) -> None:
        """Follow the run: a problem switch or a reset (a new run sampler) restarts the chains."""
        sim = self.sim
        if sim.problem is not self.problem or sim.sampler is not self._run_sampler:
            self._setup()
        if self.active and self.sampler.mode != sim.sampler.mode:
            self.sampler.set_mode(sim.sampler.mode)

    # ---------------------------------------------------------------- steps
    def observe(self, sim) -> None:
        """One step of chains 1..K-1 with the settings of the run's step just taken."""
        self._sync()
        if not self.active:
            return
        saved = self.sampler.counters()
        idx = self.sampler.next_batch(sim.batch_size)
        if _position(self.sampler) != _position(sim.sampler):
            # the run abandoned an epoch unseen here (two sampling changes between steps, back to the same
            # mode): abandon it too and draw again, so that the chains stay in step
            self.sampler.restore_counters(saved)
            mode = self.sampler.mode
            self.sampler.set_mode("iid" if mode != "iid" else "shuffle")
            self.sampler.set_mode(mode)
            idx = self.sampler.next_batch(sim.batch_size)
        if idx.shape[1] != sim.last_batch_size:
            raise RuntimeError(f"chains out of step with the run: batch {idx.shape[1]} vs {sim.last_batch_size}")
        new_theta, new_velocity = step_chains(self.problem, self.theta, self.velocity, idx, sim.last_lr,
                                              sim.momentum, self._work)
        # finite theta' = theta - lr v with finite theta implies a finite velocity: one check;
        # sum_j 0 theta_kj is 0 exactly when every theta_kj is finite, else nan (8x faster than isfinite().all())
        ok = self.alive & new_theta.mul(0).sum(1).eq(0)
        if self.sim.device.type == "cpu" and bool(ok.all()):   # on the CPU a host read is free: skip the selects
            self.theta, self.velocity = new_theta, new_velocity
        else:
            self._keep_finite(ok, new_theta, new_velocity)
        self._add_epoch_step(sim)

    def _keep_finite(self, ok: torch.Tensor, new_theta: torch.Tensor, new_velocity: torch.Tensor) -> None:
        """The step for the chains whose parameters stayed finite; the others stay frozen and drop out."""
        self.theta = torch.where(ok[:, None], new_theta, self.theta)
        self.velocity = torch.where(ok[:, None], new_velocity, self.velocity)
        self.alive = ok

    def _add_epoch_step(self, sim) -> None:
        """Each chain's |theta_k - centre|^2 after the step into the epoch window (device work only).

        Where the step falls in its epoch comes from the run's sampler (the chains share its counters):
        it ended its epoch when no batch of the epoch under way is left drawn (batch_in_epoch 0); it
        began one when it is the epoch's first batch, or ended an epoch other than the last step's.
        """
        samp = sim.sampler
        ended = samp.batch_in_epoch == 0
        epoch_id = samp.epochs_done - 1 if ended else samp.epochs_done
        began = samp.batch_in_epoch == 1 or (ended and epoch_id != self._epoch_id)
        self._epoch_id = epoch_id
        settings = Settings(sim.batch_size, sim.last_lr, sim.momentum, sim.sampling)
        if settings != self.epochs.settings:     # a new window, counted from the end of the trail's burn-in
            self._finish_window()
            self.epochs.start(settings, sim.noise_stats.counted_from() if sim.noise_stats is not None else None)
        with torch.no_grad():
            centre = self._centre(sim.theta[None], self.theta)
            dist2 = torch.cat([((sim.theta - centre) ** 2).sum()[None], ((self.theta - centre) ** 2).sum(1)])
        self.epochs.add(sim.step_count, dist2, began, ended)

    def _finish_window(self) -> None:
        """Keep the measurement of the window that ends (a change of setting) until the next frame."""
        if self.epochs.settings is None:
            return
        self.epochs.drain()
        measure = self._measure()
        if measure is not None:
            self._finished[self.epochs.settings] = measure

    def _centre(self, run: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
        """theta* (linear models), else the mean of the chains given (the LSTM: no known optimum)."""
        if self.linear and self.problem.theta_star is not None:
            return self.problem.theta_star
        return torch.cat([run, chains]).mean(0)

    # ---------------------------------------------------------------- frames
    def live_thetas(self) -> torch.Tensor:
        """(K_alive, P): the run's parameters, then the chains still finite."""
        run = self.sim.theta[None]
        if not self.active:
            return run
        return torch.cat([run, self.theta[self.alive]])

    def fill(self, sim, frame) -> None:
        """The chains' quantities at this step (the host reads the device here)."""
        self._sync()
        with torch.no_grad():
            thetas = self.live_thetas()
            losses = chains_train_loss(self.problem, thetas).double()
            if self.active and not bool(torch.isfinite(losses[1:]).all()):
                thetas, losses = self._drop_infinite_loss(thetas, losses)
            centre = self._centre(thetas[:1], thetas[1:])
            radius = ((thetas - centre) ** 2).sum(1).double().mean().sqrt()
            q10, q90 = torch.quantile(losses, torch.tensor([0.1, 0.9], dtype=torch.float64, device=losses.device))
            frame.chains = int(thetas.shape[0])
            frame.chains_ball_radius = float(radius)
            frame.chains_train_loss = float(losses.mean())
            frame.chains_train_loss_q10, frame.chains_train_loss_q90 = float(q10), float(q90)
            frame.chains_dropped = self.chains - frame.chains if self.active else 0
            frame.chains_gap = generalization_gap(self.problem, thetas)
            if self.problem.n_params <= SMALL:
                frame.chains_theta = thetas.double().cpu().numpy()
        if self.active:
            self.epochs.drain()
            frame.chains_ball_radius_epoch = self.epochs.radius(self._alive_mask())
        if self.notice:
            frame.chains_notice = self.notice
        elif frame.chains_dropped:
            frame.chains_notice = (f"{frame.chains_dropped} of {self.chains} chains diverged (non-finite) and "
                                   f"were dropped; {frame.chains} go on")


    def _drop_infinite_loss(self, thetas: torch.Tensor, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Chains whose parameters are finite but whose loss is not (it overflows first): frozen and dropped
        as chains with non-finite parameters are; the run (row 0) stays. Returns the rows kept."""
        keep = torch.isfinite(losses)
        keep[0] = True
        alive = self.alive.nonzero().squeeze(1)
        self.alive = self.alive.clone()
        self.alive[alive[~keep[1:]]] = False
        return thetas[keep], losses[keep]

    def _alive_mask(self) -> np.ndarray:
        """(K,) booleans: the run (always), then the chains still finite."""
        return np.concatenate([[True], self.alive.cpu().numpy()])

    def _measure(self) -> RadiusMeasure | None:
        per_chain, steps = self.epochs.counted(self._alive_mask())
        return chains_measure(per_chain, steps, WINDOW_STEPS)

    def epoch_measures(self) -> list[tuple[Settings, RadiusMeasure]]:
        """The ensemble's radius over the whole epochs counted (after the burn-in) at each setting whose
        window ended since the last call, then at the window's own: (settings, measure) with its standard
        error from the spread over the chains; [] while nothing is counted (or the ensemble is off)."""
        out, self._finished = list(self._finished.items()), {}
        if self.active and self.epochs.settings is not None:
            self.epochs.drain()
            measure = self._measure()
            if measure is not None:
                out.append((self.epochs.settings, measure))
        return out

    def detach(self) -> None:
        """Stop following the run: the observer and the frame hook go (the chains' memory with them)."""
        sim = self.sim
        if self.observe in sim.observers:
            sim.observers.remove(self.observe)
        if self.fill in sim.frame_hooks:
            sim.frame_hooks.remove(self.fill)
        self.theta = self.velocity = self.alive = self.sampler = self.epochs = None
        self.active = False

    def start_here(self) -> None:
        """Chains 1..K-1 at the run's current parameters, velocity and place in the epoch (a rebuild mid-run).

        Each chain gets its own fresh permutation; under shuffle the first ``pos`` of
        it count as seen, so its epoch ends where the run's does.
        """
        sim = self.sim
        if not self.active:
            return
        m = self.chains - 1
        self.theta = sim.theta.detach().expand(m, -1).clone()
        self.velocity = sim.velocity.detach().expand(m, -1).clone() if sim.velocity is not None \
            else torch.zeros_like(self.theta)
        run, mine = sim.sampler, self.sampler
        mine.set_mode(run.mode)
        mine.samples, mine.epoch_start_samples = run.samples, run.epoch_start_samples
        mine.epochs_done, mine.batch_in_epoch = run.epochs_done, run.batch_in_epoch
        if run.mode == "shuffle" and run.perm is not None:
            mine._new_perm()
            mine.pos = run.pos


def rebuild(sim, chains: int | None = None) -> str:
    """Replace the run's ensemble by one of ``chains`` chains starting at the current step; a notice.

    chains = 1 removes it; None: the next of CHAIN_COUNTS (1, 64, 256, 1024) after the count in force.
    Too many chains for memory: BsimInputError (the run is untouched).
    """
    if chains is None:
        from bsim.actions import CHAIN_COUNTS
        now = sim.ensemble.chains if sim.ensemble is not None else 1
        chains = next((k for k in CHAIN_COUNTS if k > now), CHAIN_COUNTS[0])
    if isinstance(chains, bool) or not isinstance(chains, int) or chains < 1:
        raise BsimInputError(f"chains {chains!r}: expected an integer >= 1")
    new = Ensemble(sim, chains, where=f"chains {chains}") if chains > 1 else None   # raises before detaching
    old = getattr(sim, "ensemble", None)
    if old is not None:
        old.detach()
    if new is not None:
        new.start_here()
    sim.ensemble = new
    return f"chains: {chains} from step {sim.tick:,}" if chains > 1 else "chains: 1 (the run alone)"


def attach(sim) -> Ensemble | None:
    """The ensemble of the scenario's ``chains`` (None for K = 1).

    Bad K (below 1, or more than memory allows as estimated) is a BsimInputError
    naming the scenario file and line, or the --chains flag; so is a timeline
    event's ``chains`` that would not fit.
    """
    chains = sim.scenario.chains
    # a scenario's chains, or a race recording's [race] chains (a lane's scenario), or else the flag
    where = sim.scenario.where("chains", value=chains) or sim.scenario.where("chains", "race", value=chains)
    label = f"{where}: chains = {chains}" if where else f"--chains {chains}"
    if isinstance(chains, bool) or not isinstance(chains, int) or chains < 1:
        raise BsimInputError(f"{label}: expected an integer >= 1")
    for ev in sim.scenario.timeline:   # the timeline's rebuilds, estimated now (on the problem the run starts with)
        error = memory_problem(sim.problem, ev.chains, _max_batch_size(sim.scenario, sim.n_train),
                               sim.device) if ev.chains and ev.chains > 1 else None
        if error:
            raise BsimInputError(f"{sim.scenario.path or 'the timeline'}: the event at step {ev.at}: "
                                 f"chains = {ev.chains}: {error}")
    return Ensemble(sim, chains, where=label) if chains > 1 else None
