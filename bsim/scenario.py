"""Scenario and recording files: TOML, validated with the line of every error.

A scenario names a problem, an optimizer and a timeline of events keyed by
step; an optional ``[sweep]`` table holds the defaults of ``bsim sweep``
(``bsim run`` ignores it). A recording is a scenario whose timeline was written by the app, plus a
``[recording]`` table (see ``bsim.recording``). Unknown keys, wrong types and
values out of range are ``BsimInputError``s naming the file, the line (or the
key) and what is expected.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bsim import __version__
from bsim.errors import BsimInputError, quote, read_user_text
from bsim.tomlcheck import Locator, Rule, check_table, toml_error, toml_value, where

PROBLEMS = ("linreg", "logreg", "lstm")
SAMPLINGS = ("shuffle", "iid", "replacement")
LR_SCALINGS = ("none", "linear", "sqrt")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float64")
SWEEP_LR_RULES = ("none", "linear", "sqrt", "tuned")   # how a sweep's lr follows B (bsim.sweep.spec)
SWEEP_ON = ("train", "test")                              # which loss a sweep's target is on
#: problem kind -> the bundled scenario whose problem and optimizer `--problem` and a problem switch take
PROBLEM_SCENARIOS = {"linreg": "default", "logreg": "logreg", "lstm": "lstm"}


@dataclass
class ProblemSpec:
    kind: str = "linreg"
    n_train: int = 1024
    n_test: int = 256
    dim: int = 2
    condition: float = 10.0     # linreg: ratio of largest to smallest Hessian eigenvalue
    noise: float = 0.5          # linreg: standard deviation of the label noise
    l2: float = 0.0             # logreg: L2 term (l2/2)|theta|^2, needed when classes separate
    hidden: int = 16            # lstm: hidden units
    seq_len: int = 16           # lstm: length of the input sequence
    data: str | None = None     # CSV of the training set (linreg/logreg)
    test_data: str | None = None


@dataclass
class OptimizerSpec:
    lr: float = 0.05
    momentum: float = 0.0
    batch_size: int = 8
    lr_scaling: str = "none"
    sampling: str = "shuffle"
    drop_last: bool = False


@dataclass
class Event:
    """A timeline event, applied when ``at`` steps have been taken."""

    at: int
    batch_size: int | None = None
    lr: float | None = None
    lr_scaling: str | None = None
    momentum: float | None = None
    sampling: str | None = None
    problem: str | None = None
    reset: bool = False
    pause: bool = False
    caption: str | None = None


@dataclass
class Scenario:
    title: str = "Untitled"
    description: str = ""
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    chains: int = 1             # the ensemble: K independent chains of the problem (bsim.ensemble)
    problem: ProblemSpec = field(default_factory=ProblemSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    timeline: list[Event] = field(default_factory=list)
    sweep: dict[str, Any] | None = None       # the [sweep] table (keys as written, lists as tuples); None: absent
    race: dict[str, Any] | None = None        # a race recording's [race] table (bsim.race.recording); None: absent
    recording: dict[str, Any] | None = None
    path: Path | None = None    # where it was read from; data paths are relative to it
    warnings: list[str] = field(default_factory=list)

    def copy(self) -> Scenario:
        return copy.deepcopy(self)

    def resolve(self, relpath: str | None) -> Path | None:
        """A data path from the file, relative to the scenario's folder."""
        if relpath is None:
            return None
        p = Path(relpath)
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def where(self, key: str, table: str | None = None, value: Any = None) -> str | None:
        """``file:line`` of a key in the file this scenario was read from, or None when the file
        does not set it (to ``value``, when given: a command-line flag may have overridden it)."""
        try:
            loc = Locator(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, AttributeError):
            return None
        line = loc.line_of(table, key)
        if line is None or (value is not None and toml_value(value) not in loc.lines[line - 1]):
            return None
        return f"{self.path}:{line}"

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "float32" if self.problem.kind == "lstm" else "float64"


# ---------------------------------------------------------------- validation

MAX_EXAMPLES = 1_000_000   # n_train and n_test: beyond this the data would not fit a laptop's memory


def _pos_int(v): return v >= 1
def _nonneg_int(v): return v >= 0
def _pos(v): return math.isfinite(v) and v > 0
def _nonneg(v): return math.isfinite(v) and v >= 0
def _mom(v): return 0 <= v < 1
def _choice(options): return lambda v: v in options
def _plain_int(v): return isinstance(v, int) and not isinstance(v, bool)
def _plain_num(v): return isinstance(v, (int, float)) and not isinstance(v, bool)


def _sweep_target(v) -> bool:
    """A finite loss, or the string "opt+EPS" with a finite EPS > 0 (EPS above the loss at theta*)."""
    if isinstance(v, str):
        s = v.strip()
        if not s.startswith("opt+"):
            return False
        try:
            eps = float(s[4:])
        except ValueError:
            return False
        return math.isfinite(eps) and eps > 0
    return math.isfinite(v)


_NUM = (int, float)
TOP_RULES: dict[str, Rule] = {
    "title": ((str,), None, "a string"),
    "description": ((str,), None, "a string"),
    "seed": ((int,), _nonneg_int, "an integer >= 0"),
    "device": ((str,), _choice(DEVICES), "one of " + ", ".join(DEVICES)),
    "dtype": ((str,), _choice(DTYPES), "one of " + ", ".join(DTYPES)),
    "chains": ((int,), _pos_int, "an integer >= 1 (the number of chains)"),
}
PROBLEM_RULES: dict[str, Rule] = {
    "kind": ((str,), _choice(PROBLEMS), "one of " + ", ".join(PROBLEMS)),
    "n_train": ((int,), lambda v: 2 <= v <= MAX_EXAMPLES, f"an integer from 2 to {MAX_EXAMPLES:,}"),
    "n_test": ((int,), lambda v: 0 <= v <= MAX_EXAMPLES, f"an integer from 0 to {MAX_EXAMPLES:,}"),
    "dim": ((int,), lambda v: 1 <= v <= 512, "an integer from 1 to 512"),
    "condition": (_NUM, lambda v: math.isfinite(v) and v >= 1, "a finite number >= 1"),
    "noise": (_NUM, _nonneg, "a finite number >= 0"),
    "l2": (_NUM, _nonneg, "a finite number >= 0"),
    "hidden": ((int,), lambda v: 1 <= v <= 256, "an integer from 1 to 256"),
    "seq_len": ((int,), lambda v: 1 <= v <= 256, "an integer from 1 to 256"),
    "data": ((str,), None, "a path to a CSV file"),
    "test_data": ((str,), None, "a path to a CSV file"),
}
OPTIMIZER_RULES: dict[str, Rule] = {
    "lr": (_NUM, _pos, "a finite number > 0"),
    "momentum": (_NUM, _mom, "a number in [0, 1)"),
    "batch_size": ((int,), _pos_int, "an integer >= 1"),
    "lr_scaling": ((str,), _choice(LR_SCALINGS), "one of " + ", ".join(LR_SCALINGS)),
    "sampling": ((str,), _choice(SAMPLINGS), "one of " + ", ".join(SAMPLINGS)),
    "drop_last": ((bool,), None, "true or false"),
}
EVENT_RULES: dict[str, Rule] = {
    "at": ((int,), _nonneg_int, "a step number >= 0"),
    "batch_size": OPTIMIZER_RULES["batch_size"],
    "lr": OPTIMIZER_RULES["lr"],
    "lr_scaling": OPTIMIZER_RULES["lr_scaling"],
    "momentum": OPTIMIZER_RULES["momentum"],
    "sampling": OPTIMIZER_RULES["sampling"],
    "problem": PROBLEM_RULES["kind"],
    "reset": ((bool,), None, "true or false"),
    "pause": ((bool,), None, "true or false"),
    "caption": ((str,), None, "a string"),
}


SWEEP_RULES: dict[str, Rule] = {
    "batch_sizes": ((list,), lambda v: v != [] and all(_plain_int(x) and x >= 1 for x in v),
                    "a non-empty list of integers >= 1"),
    "target": ((int, float, str), _sweep_target, "a finite loss, or \"opt+EPS\" (EPS > 0 above the optimum's loss)"),
    "on": ((str,), _choice(SWEEP_ON), "one of " + ", ".join(SWEEP_ON)),
    "seeds": ((int,), _pos_int, "an integer >= 1"),
    "lr_rule": ((str,), _choice(SWEEP_LR_RULES), "one of " + ", ".join(SWEEP_LR_RULES)),
    "lr_grid": ((list,), lambda v: v != [] and all(_plain_num(x) and 0 < x < math.inf for x in v),
                "a non-empty list of finite numbers > 0"),
    "max_steps": ((int,), _pos_int, "an integer >= 1"),
}



#: a race recording's [race] table (bsim.race.recording): the lanes, the axis, the lr rule, where each lane ended
RACE_AXES, RACE_MAX_LANES = ("samples", "steps", "time"), 8     # bsim.race.frame.AXES and MAX_LANES
RACE_RULES: dict[str, Rule] = {
    "batch_sizes": ((list,), lambda v: all(_plain_int(x) and x >= 1 for x in v) and 0 < len(set(v)) == len(v) <= RACE_MAX_LANES,
                    f"a list of 1 to {RACE_MAX_LANES} different integers >= 1"),
    "by": ((str,), _choice(RACE_AXES), "one of " + ", ".join(RACE_AXES)),
    "lr_rule": ((str,), _choice(LR_SCALINGS), "one of " + ", ".join(LR_SCALINGS)),
    "chains": ((int,), _pos_int, "an integer >= 1 (the number of chains)"),
    "lane_steps": ((list,), lambda v: all(_plain_int(x) and x >= 0 for x in v), "a list of step numbers >= 0"),
    "position": ((int, float), _nonneg, "a finite number >= 0 (the lockstep's front)"),
    "lane_diverged": ((list,), lambda v: all(isinstance(x, bool) for x in v), "a list of true or false, one per lane"),
    "lane_train_loss": ((list,), lambda v: all(_plain_num(x) for x in v), "a list of numbers, one per lane"),
    "lane_theta_sha256": ((list,), lambda v: all(isinstance(x, str) and _SHA.match(x) for x in v),
                          "a list of sha256 strings (64 lowercase hex digits), one per lane"),
}
RACE_REQUIRED = ("batch_sizes", "by", "lr_rule", "chains", "lane_steps")

#: the recording format this bsim writes and reads (a newer one is refused)
RECORDING_FORMAT = 1
#: the check, written when recording stops (with final_tick)
CHECK_KEYS = ("final_step", "train_loss", "theta_sha256")
_SHA = re.compile(r"^[0-9a-f]{64}$")
RECORDING_RULES: dict[str, Rule] = {
    "format": ((int,), lambda v: v >= 1, "an integer >= 1 (the recording format version)"),
    "bsim": ((str,), None, "a version string"),
    "torch": ((str,), None, "a version string"),
    "python": ((str,), None, "a version string"),
    "device": ((str,), None, "a device name such as cpu or cuda"),
    "dtype": ((str,), lambda v: v in DTYPES[1:], "float32 or float64"),
    "began_at": ((int,), lambda v: v >= 0, "a step number >= 0"),
    "final_tick": ((int,), lambda v: v >= 0, "a step number >= 0"),
    "final_step": ((int,), lambda v: v >= 0, "a step number >= 0"),
    "train_loss": ((int, float), None, "a number"),
    "theta_sha256": ((str,), lambda v: bool(_SHA.match(v)), "64 lowercase hex digits (a sha256)"),
    "diverged": ((bool,), None, "true or false (the run had diverged at stop)"),
    "data_sha256": ((str,), lambda v: bool(_SHA.match(v)), "64 lowercase hex digits (a sha256)"),
    "test_data_sha256": ((str,), lambda v: bool(_SHA.match(v)), "64 lowercase hex digits (a sha256)"),
}


def parse_scenario(text: str, fname: str = "<scenario>", path: Path | None = None) -> Scenario:
    """Parse and validate scenario TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BsimInputError(toml_error(fname, text, str(exc))) from None
    loc = Locator(text)
    tables = {"problem", "optimizer", "timeline", "sweep", "recording", "race"}
    top = {k: v for k, v in raw.items() if k not in tables}
    for name in ("problem", "optimizer", "sweep", "recording", "race"):
        if name in raw and not isinstance(raw[name], dict):
            raise BsimInputError(f"{where(fname, loc, None, name)}: got {quote(raw[name])}, expected a table [{name}]")
    if "timeline" in raw and not (isinstance(raw["timeline"], list)
                                   and all(isinstance(e, dict) for e in raw["timeline"])):
        raise BsimInputError(f"{where(fname, loc, None, 'timeline')}: got {quote(raw['timeline'])}, "
                             f"expected [[timeline]] tables")
    also = ("[problem]", "[optimizer]", "[[timeline]]", "[sweep]", "[race]")
    sc = Scenario(**check_table(top, TOP_RULES, fname, loc, None, also=also), path=path)
    sc.problem = ProblemSpec(**check_table(raw.get("problem", {}), PROBLEM_RULES, fname, loc, "problem"))
    sc.optimizer = OptimizerSpec(**check_table(raw.get("optimizer", {}), OPTIMIZER_RULES, fname, loc, "optimizer"))
    for i, ev in enumerate(raw.get("timeline", [])):
        fields = check_table(ev, EVENT_RULES, fname, loc, "timeline", i)
        if "at" not in fields:
            raise BsimInputError(f"{loc.where_table(fname, 'timeline', i)}: timeline[{i}] has no 'at'; "
                                 f"expected the step number of the event")
        sc.timeline.append(Event(**fields))
    sc.timeline.sort(key=lambda e: e.at)  # stable: events at one step keep file order
    if "sweep" in raw:
        sc.sweep = _sweep_table(raw["sweep"], fname, loc)
    if "recording" in raw:
        sc.recording = validate_recording_table(raw["recording"], fname, loc)
    if "race" in raw:
        sc.race = _race_table(raw["race"], fname, loc)
    _check_consistency(sc, fname, loc)
    if not raw:  # warn, not refuse: an empty file is a valid TOML table, and a fair start for a new scenario
        d = ProblemSpec(), OptimizerSpec()
        sc.warnings.append(f"{fname}: empty scenario: running on the defaults ({d[0].kind}, dim {d[0].dim}, "
                           f"n_train {d[0].n_train}, lr {d[1].lr}, batch_size {d[1].batch_size})")
    return sc


def _sweep_table(raw: dict, fname: str, loc: Locator) -> dict[str, Any]:
    """The [sweep] table, checked key by key; lists become tuples, lr_grid numbers floats."""
    table = check_table(raw, SWEEP_RULES, fname, loc, "sweep")
    if "lr_grid" in table:
        table["lr_grid"] = tuple(float(x) for x in table["lr_grid"])
    if "batch_sizes" in table:
        table["batch_sizes"] = tuple(table["batch_sizes"])
    return table



def _race_table(raw: dict, fname: str, loc: Locator) -> dict[str, Any]:
    """The [race] table of a race recording: every key checked, the required ones present, one entry per lane."""
    table = check_table(raw, RACE_RULES, fname, loc, "race")
    if missing := [k for k in RACE_REQUIRED if k not in table]:
        raise BsimInputError(f"{loc.where_table(fname, 'race')}: [race] has no {missing[0]!r}; expected "
                             f"{', '.join(RACE_REQUIRED)} (a race recording written by bsim race --record)")
    for key in ("lane_steps", "lane_diverged", "lane_train_loss", "lane_theta_sha256"):
        if len(table.get(key, table["batch_sizes"])) != len(table["batch_sizes"]):
            raise BsimInputError(f"{where(fname, loc, 'race', key)}: got {len(table[key])} entries for "
                                 f"{len(table['batch_sizes'])} batch sizes; expected one per lane")
    return table


def validate_recording_table(raw: Any, fname: str, loc: Locator) -> dict:
    """Check a ``[recording]`` table: format first, then keys and types (errors name the line)."""
    if "format" not in raw:
        raise BsimInputError(f"{loc.where_table(fname, 'recording')}: [recording] has no 'format'; "
                             f"expected format = {RECORDING_FORMAT}")
    fmt = raw["format"]
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > RECORDING_FORMAT:
        raise BsimInputError(f"{where(fname, loc, 'recording', 'format')}: format {fmt} is newer than this bsim "
                             f"{__version__} reads; expected format <= {RECORDING_FORMAT} (upgrade bsim to replay it)")
    table = check_table(raw, RECORDING_RULES, fname, loc, "recording")
    if "train_loss" in table:
        table["train_loss"] = float(table["train_loss"])
    if "began_at" in table and "final_tick" in table and table["began_at"] > table["final_tick"]:
        raise BsimInputError(f"{where(fname, loc, 'recording', 'began_at')}: began_at {table['began_at']} is after "
                             f"final_tick {table['final_tick']}; expected began_at <= final_tick")
    present = [k for k in CHECK_KEYS if k in table]
    if present and (len(present) != len(CHECK_KEYS) or "final_tick" not in table):
        missing = [k for k in ("final_tick",) + CHECK_KEYS if k not in table]
        raise BsimInputError(f"{where(fname, loc, 'recording', present[0])}: an incomplete check; "
                             f"expected final_tick, {', '.join(CHECK_KEYS)} together (missing {', '.join(missing)})")
    return table


def _check_consistency(sc: Scenario, fname: str, loc: Locator) -> None:
    p = sc.problem
    if p.kind == "lstm" and (p.data or p.test_data):
        key = "data" if p.data else "test_data"
        raise BsimInputError(f"{where(fname, loc, 'problem', key)}: got {quote(getattr(p, key))}, "
                             f"expected no data file for lstm (data files are for linreg and logreg)")
    if p.test_data and not p.data:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'test_data')}: got {quote(p.test_data)} without data; "
                             f"expected data = \"train.csv\" as well")
    if p.kind == "linreg" and p.l2:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'l2')}: got {p.l2!r}, expected 0 for linreg "
                             f"(the L2 term is logistic regression's)")
    if p.kind != "lstm" and not p.data and p.n_train < p.dim:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'n_train')}: got {p.n_train}, expected at least "
                             f"dim = {p.dim} examples (else theta* is not unique)")
    for key in ("data", "test_data"):
        rel = getattr(p, key)
        if rel is not None and not sc.resolve(rel).is_file():
            raise BsimInputError(f"{where(fname, loc, 'problem', key)}: got {quote(rel)}, expected a CSV file "
                                 f"(no such regular file; paths are relative to the scenario file)")


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file from disk (errors name the file)."""
    p = Path(path)
    text = read_user_text(p, "a scenario TOML or a bundled name (see `bsim scenarios`)")
    return parse_scenario(text, fname=str(p), path=p.resolve())


# ---------------------------------------------------------- bundled scenarios

def bundled_dir() -> Path:
    return Path(str(resources.files("bsim.scenarios")))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.toml"))


def find_scenario(name_or_path: str | None) -> Scenario:
    """A bundled scenario by name, or a scenario file by path."""
    name = name_or_path or "default"
    p = Path(name)
    if p.suffix == ".toml" or p.exists() or "/" in name:
        return load_scenario(p)
    bundled = bundled_dir() / f"{name}.toml"
    if bundled.exists():
        return load_scenario(bundled)
    raise BsimInputError(f"{name}: no such scenario; expected a file path or one of {', '.join(bundled_names())}")


#: the command-line flags that override a scenario (``bsim run`` and ``bsim replay``), as attribute names
OVERRIDE_KEYS = ("problem", "batch_size", "lr", "momentum", "seed", "device", "dtype", "sampling", "lr_scaling",
                 "chains")


def overrides_from(namespace: Any) -> dict[str, Any]:
    """The override flags of parsed command-line arguments (None: not given)."""
    return {key: getattr(namespace, key, None) for key in OVERRIDE_KEYS}


def apply_overrides(sc: Scenario, **overrides: Any) -> Scenario:
    """Return a copy with command-line overrides applied (None means not given)."""
    sc = sc.copy()
    kind = overrides.pop("problem", None)
    if kind is not None and kind != sc.problem.kind:
        # another problem: its bundled scenario's problem and optimizer (an lr for linreg suits no LSTM),
        # then the other flags on top; seed, device and timeline stay the scenario's
        other = find_scenario(PROBLEM_SCENARIOS[kind])
        sc.problem, sc.optimizer, sc.dtype = other.problem, other.optimizer, other.dtype
    for key, value in overrides.items():
        if value is None:
            continue
        if key in ("seed", "device", "dtype", "chains"):
            setattr(sc, key, value)
        else:
            setattr(sc.optimizer, key, value)
    return sc


def scenario_to_toml(sc: Scenario) -> str:
    """Write a scenario back as TOML (the format ``parse_scenario`` reads)."""
    lines = [f"{k} = {toml_value(getattr(sc, k))}" for k in TOP_RULES if k != "chains" or sc.chains != 1]
    for name, spec, rules in (("problem", sc.problem, PROBLEM_RULES), ("optimizer", sc.optimizer, OPTIMIZER_RULES)):
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {toml_value(getattr(spec, k))}" for k in rules if getattr(spec, k) is not None]
    if sc.sweep is not None:
        lines += ["", "[sweep]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in sc.sweep.items()]
    for ev in sc.timeline:
        lines += ["", "[[timeline]]"]
        default = Event(at=0)
        for k in EVENT_RULES:
            v = getattr(ev, k)
            if k == "at" or (v is not None and v != getattr(default, k)):
                lines.append(f"{k} = {toml_value(v)}")
    if sc.race is not None:
        lines += ["", "[race]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in sc.race.items()]
    if sc.recording:
        lines += ["", "[recording]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in sc.recording.items()]
    return "\n".join(lines) + "\n"
