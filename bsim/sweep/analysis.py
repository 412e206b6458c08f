"""From a sweep's rows to its answer: the lr kept per batch size, the fit, the noise scale.

Under ``tuned`` the lr kept for a batch size is the one whose seeds reach the
target most often, then in the fewest steps on average (Shallue et al. 2018);
under the other rules each batch size has one lr. The fit uses the tasks at
the kept lr that reached the target (diverged and unfinished tasks are counted
and reported, not fitted). The measured noise scales are the medians over
those tasks of B_simple and (linear problems) B_noise at the parameters where
each reached the target.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from bsim.errors import shown
from bsim.sweep.fit import Fit, Spread, bootstrap_b_crit, fit_tradeoff
from bsim.sweep.state import finite


#: batch sizes within this factor of the fastest time are named beside it (a calibration scatters by
#: ~20% on a shared machine: bsim.sweep.calibrate)
NEAR = 1.1


@dataclass
class PerB:
    batch_size: int
    lr: float
    n: int                       # tasks (seeds) at the kept lr
    reached: int
    diverged: int
    steps: list[float] = field(default_factory=list)
    samples: list[float] = field(default_factory=list)
    b_simple: list[float] = field(default_factory=list)
    b_noise: list[float] = field(default_factory=list)
    seconds_per_step: float | None = None     # this machine's, calibrated (bsim.sweep.calibrate); None: not measured

    @property
    def mean_steps(self) -> float | None:
        return statistics.fmean(self.steps) if self.steps else None

    @property
    def time_to_target(self) -> float | None:
        """Seconds to the target on the calibrated machine: mean S x t_step."""
        if self.seconds_per_step is None or not self.steps:
            return None
        return self.mean_steps * self.seconds_per_step

    @property
    def mean_samples(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


@dataclass
class Summary:
    rows: list[dict]
    per_b: list[PerB]
    fit: Fit
    spread: Spread | None
    b_simple: float | None          # medians over the fitted tasks
    b_noise: float | None
    m_star: float | None = None     # interpolating least squares: m* = max|x_i|^2 / lambda_max(H), median over tasks

    @property
    def meta(self) -> dict:
        return self.rows[0] if self.rows else {}

    def fastest(self) -> PerB | None:
        """The batch size whose every seed reached the target in the least calibrated wall-clock time."""
        timed = [pb for pb in self.per_b if pb.time_to_target is not None and pb.reached == pb.n]
        return min(timed, key=lambda pb: (pb.time_to_target, pb.batch_size), default=None)

    def fastest_line(self) -> str:
        """One line: the batch size fastest in wall-clock time on the calibrated machine, beside B_crit."""
        crit = f"; B_crit = {self.fit.b_crit:.3g} (the fit)" if self.fit.ok else ""
        cal = next((r for r in self.rows if r.get("seconds_per_step") is not None), None)
        if cal is None:
            return ("fastest on this machine: not measured (no calibration: --no-calibration, or a sweep saved "
                    "before bsim timed steps; the time columns are empty)" + crit)
        best = self.fastest()
        where = f"on this machine ({shown(cal['calibration_device'])})"
        how = f"(calibrated: {cal['calibration_steps']} steps per B)"
        if best is None:
            return f"fastest {where}: none, no batch size reached the target at every seed {how}{crit}"
        near = [pb.batch_size for pb in self.per_b if pb is not best and pb.reached == pb.n
                and pb.time_to_target is not None and pb.time_to_target <= NEAR * best.time_to_target]
        tie = f", within {NEAR - 1:.0%}: B = {', '.join(map(str, near))}" if near else ""
        return (f"fastest {where}: B = {best.batch_size}, {_seconds(best.time_to_target)} to target{tie} "
                f"{how}{crit}")

    def best_lr(self):
        """Under ``tuned``: the best lr per B, its slopes and McCandlish et al.'s law (bsim.sweep.bestlr); else None."""
        if self.meta.get("lr_rule") != "tuned":
            return None
        from bsim.sweep.bestlr import best_lr
        return best_lr(self.rows, self.fit.b_crit if self.fit.ok else None, self.b_noise)

    def lines(self) -> list[str]:
        m = self.meta
        seeds = sorted({r["seed"] for r in self.rows})
        on = shown(m.get("on", ""))
        until = (f"the {on.removesuffix('_acc')} accuracy >= {_target_words(m.get('target', ''))}"
                 if on.endswith("_acc") else f"the {on} loss <= {_target_words(m.get('target', ''))}")
        out = [f"sweep of {shown(m.get('scenario'))} ({shown(m.get('problem'))}): steps until {until}, lr rule "
               f"{shown(m.get('lr_rule'))}, "
               f"{len(seeds)} seed(s), {len(self.per_b)} batch sizes, max {m.get('max_steps')} steps",
               f"{'B':>6} {'lr':>10} {'reached':>8} {'S (mean)':>10} {'E (mean)':>11} {'ms/step':>8} {'T (s)':>8} "
               f"{'B_simple':>9} {'B_noise':>9}"]
        for pb in self.per_b:
            s = f"{pb.mean_steps:,.0f}" if pb.steps else "-"
            e = f"{pb.mean_samples:,.0f}" if pb.samples else "-"
            ms = f"{pb.seconds_per_step * 1e3:.3g}" if pb.seconds_per_step is not None else "-"
            t = f"{pb.time_to_target:.3g}" if pb.time_to_target is not None else "-"
            bs = f"{statistics.median(pb.b_simple):.3g}" if pb.b_simple else "-"
            bn = f"{statistics.median(pb.b_noise):.3g}" if pb.b_noise else "-"
            note = f"  ({pb.diverged} diverged)" if pb.diverged else ""
            out.append(f"{pb.batch_size:>6} {pb.lr:>10.4g} {pb.reached:>5}/{pb.n:<2} {s:>10} {e:>11} {ms:>8} {t:>8} "
                       f"{bs:>9} {bn:>9}{note}")
        f = self.fit
        if f.ok:
            line = (f"fit (S/S_min - 1)(E/E_min - 1) = 1: S_min = {f.s_min:,.1f} steps, E_min = {f.e_min:,.0f} examples, "
                    f"B_crit = E_min/S_min = {f.b_crit:.3g}")
            if self.spread is None:
                line += " (one seed per batch size: no spread; use --seeds 3 or more)"
            elif self.spread.n_ok:
                over = "seeds and the lr grid's spacing" if self.spread.grid else "seeds"
                line += (f" (68% bootstrap interval over {over} {self.spread.lo:.3g}..{self.spread.hi:.3g}, "
                         f"{self.spread.n_ok}/{self.spread.n} resamples fitted)")
            else:
                line += " (no bootstrap resample could be fitted: no spread)"
            out.append(line)
            if f.reason:
                out.append(f"  caution: {f.reason}")
        else:
            out.append(f"no fit: {f.reason}")
        out.append(self.fastest_line())
        if any(pb.seconds_per_step is not None for pb in self.per_b):
            out.append("  T = S x ms/step: this machine's seconds per training step at each B, timed after the tasks")
        law = self.best_lr()
        if law is not None:
            out.extend(law.lines())
        if self.m_star is not None:
            out.append(f"every example fitted (least squares, d >= N): m* = max|x_i|^2/lambda_max(H) = {self.m_star:.3g} "
                       f"(Ma, Bassily & Belkin 2018: past it a step at B is worth about one full-gradient step)"
                       + (f"; B_crit / m* = {f.b_crit / self.m_star:.2f}" if f.ok else ""))
        n = sum(len(p.b_simple) for p in self.per_b)
        for name, v, what in (("B_simple", self.b_simple, "tr(Sigma)/|G|^2"),
                              ("B_noise", self.b_noise, "tr(H Sigma)/(G^T H G)")):
            if v is None:
                continue
            out.append(f"measured {name} = {what} where each task reached the target: {v:.3g} (median of {n})")
            if f.ok:
                out.append(f"  B_crit / {name} = {f.b_crit / v:.2f}   (McCandlish et al. 2018: B_crit ~ B_noise)")
        return out


def _seconds(v: float) -> str:
    if v < 1:
        return f"{v * 1e3:.3g} ms"
    return f"{v:.3g} s" if v < 100 else f"{v:,.0f} s"


def _target_words(text: str) -> str:
    if text.startswith("opt+"):
        return f"(its value at theta*) + {float(text[4:]):g}"
    return f"{float(text):g}" if text else "?"


def kept_lrs(rows: list[dict]) -> dict[int, float]:
    """Batch size -> the lr whose seeds reach the target most often, then in the fewest mean steps."""
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[r["batch_size"]][r["lr"]].append(r)
    out = {}
    for b, lrs in by.items():
        def score(item):
            lr, rs = item
            steps = [r["steps"] for r in rs if r["reached"]]
            return (-len(steps) / len(rs), statistics.fmean(steps) if steps else float("inf"), lr)
        out[b] = min(lrs.items(), key=score)[0]
    return out


def grid_drops(rows: list[dict], kept: dict[int, float]) -> dict[int, float]:
    """Batch size -> how far ln S may fall between the lr grid's points around the kept lr (tuned).

    In x = ln lr, y = ln(mean steps), with the kept lr at (x0, y0) and its grid neighbours at
    (x-, y-), (x+, y+), a V whose arms have the steeper neighbour's slope passes through all three;
    its vertex lies below y0 by drop = d |s- - s+| / 2, where s-, s+ are the neighbours' secant
    slopes (rise away from x0) and d the grid step on the shallower side. A neighbour that reached
    the target less often than the kept lr (or diverged), or none (the grid's edge), counts as flat:
    drop = d s / 2 with s the other side's slope, 1 when neither side is known (S ~ 1/lr, the
    deterministic regime). One lr per batch size (rules none, linear, sqrt): no grid, no entry.
    """
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[r["batch_size"]][r["lr"]].append(r)
    out = {}
    for b, lr_kept in kept.items():
        lrs = sorted(by[b])
        if len(lrs) < 2:
            continue
        k = lrs.index(lr_kept)

        def point(j, b=b, lrs=lrs, lr_kept=lr_kept):   # used within this iteration only
            rs = by[b][lrs[j]]
            steps = [r["steps"] for r in rs if r["reached"]]
            ref = by[b][lr_kept]
            if len(steps) * len(ref) < sum(bool(r["reached"]) for r in ref) * len(rs) or not steps:
                return None                 # reached less often than the kept lr: no slope from it
            return math.log(lrs[j]), math.log(statistics.fmean(steps))

        if point(k) is None:
            continue                        # the kept lr never reached the target: not in the fit
        x0, y0 = point(k)
        steps_ = [math.log(lrs[j + 1] / lrs[j]) for j in range(len(lrs) - 1)]
        d_lo = steps_[k - 1] if k > 0 else steps_[0]
        d_hi = steps_[k] if k < len(lrs) - 1 else steps_[-1]
        lo = point(k - 1) if k > 0 else None
        hi = point(k + 1) if k < len(lrs) - 1 else None
        s_lo = (lo[1] - y0) / (x0 - lo[0]) if lo else None
        s_hi = (hi[1] - y0) / (hi[0] - x0) if hi else None
        if s_lo is not None and s_hi is not None:
            drop = (d_hi if s_hi < s_lo else d_lo) * abs(s_lo - s_hi) / 2
        elif s_lo is not None:
            drop = d_hi * max(s_lo, 0.0) / 2
        elif s_hi is not None:
            drop = d_lo * max(s_hi, 0.0) / 2
        else:
            drop = min(d_lo, d_hi) / 2
        out[b] = max(drop, 0.0)
    return out


def summarize(rows: list[dict]) -> Summary:
    kept = kept_lrs(rows)
    per_b = []
    groups: dict[int, list[tuple[float, float]]] = {}
    for b in sorted(kept):
        rs = [r for r in rows if r["batch_size"] == b and r["lr"] == kept[b]]
        ok = [r for r in rs if r["reached"]]
        pb = PerB(b, kept[b], len(rs), len(ok), sum(bool(r["diverged"]) for r in rs),
                  [r["steps"] for r in ok], [r["samples"] for r in ok],
                  [r["b_simple"] for r in ok if finite(r["b_simple"])],
                  [r["b_noise"] for r in ok if finite(r["b_noise"])],
                  next((r["seconds_per_step"] for r in rs if finite(r.get("seconds_per_step"))), None))
        per_b.append(pb)
        groups[b] = [(r["steps"], r["samples"]) for r in ok]
    S = [s for g in groups.values() for s, _ in g]
    E = [e for g in groups.values() for _, e in g]
    B = [b for b, g in groups.items() for _ in g]
    fit = fit_tradeoff(S, E, B)
    spread = bootstrap_b_crit(groups, grid_drop=grid_drops(rows, kept)) if fit.ok else None
    simple = [v for pb in per_b for v in pb.b_simple]
    noise = [v for pb in per_b for v in pb.b_noise]
    m_star = [r["m_star"] for r in rows if finite(r.get("m_star"))]
    return Summary(rows, per_b, fit, spread, statistics.median(simple) if simple else None,
                   statistics.median(noise) if noise else None, statistics.median(m_star) if m_star else None)
