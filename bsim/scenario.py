"""Scenario and recording files: TOML, validated with the line of every error.

A scenario names a problem, an optimizer and a timeline of events keyed by
step: these core tables are checked here. The tables of the features above
(``FEATURE_TABLES``) are checked by their own features, which register the
check (``register_table``): ``[sweep]``, the defaults of ``bsim sweep``
(``bsim.sweep.schema``; ``bsim run`` ignores it), ``[race]`` (``bsim.race.schema``)
and ``[recording]`` (``bsim.recording_schema``). ``bsim/__init__.py`` imports
those three, so every file read anywhere is checked whole. Unknown keys, wrong
types and values out of range are ``BsimInputError``s naming the file, the line
(or the key) and what is expected.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bsim.errors import BsimInputError, quote, read_user_text
from bsim.landscape.schema import LANDSCAPE_RULES, LANDSCAPES, check_landscape
from bsim.lrscaling import LR_SCALINGS
from bsim.tomlcheck import Locator, Rule, check_table, one_of, toml_error, toml_value, where

PROBLEMS = ("linreg", "logreg", "lstm", "softmax")
PROBLEMS = PROBLEMS + LANDSCAPES   # the landscapes (bsim.landscape.schema: wells, wells2d, nonuniform)
SAMPLINGS = ("shuffle", "iid", "replacement")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float64")
#: problem kind -> the bundled scenario whose problem and optimizer `--problem` and a problem switch take
PROBLEM_SCENARIOS = {"linreg": "default", "logreg": "logreg", "lstm": "lstm", "softmax": "softmax"}

PROBLEM_SCENARIOS.update({"wells": "escape", "wells2d": "escape-2d", "nonuniform": "sharp-flat"})


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
    data: str | None = None     # CSV of the training set (linreg/logreg/softmax)
    test_data: str | None = None
    # the landscapes (bsim.landscape.schema; None: the kind's default, not written back)
    barriers: list | None = None          # wells: the depths of basin 0 and basin 1
    curvatures: list | None = None        # wells: U'' at the two minima
    saddle_curvature: float | None = None  # wells: |U''| at the saddle
    tilt_scale: float | None = None       # wells: sigma_b, the spread of the generated tilts
    tilts: list | None = None             # wells: the tilts themselves (mean zero) instead
    sharpness: float | None = None        # nonuniform: the mean curvature a of both minima
    spreads: list | None = None           # nonuniform: s_0, s_1, the spread of the per-example curvatures
    start_basin: int | None = None        # landscapes: the basin the chains start in (0)
    start_offset: float | None = None     # nonuniform: the start's distance from the minimum (0.1)
    classes: int = 3            # softmax: K, the number of classes (labels 0..K-1)
    test_fraction: float = 0.0  # data: the fraction of the file's rows held out as the test split (seeded)
    split_seed: int = 0         # data: the seed of that split (bsim.problems.dataset)
    standardize: bool = False   # data: features centred and scaled by the training split's mean and std
    intercept: bool = False     # data: a column of ones appended to the features (after standardizing)


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
    chains: int | None = None     # rebuild the ensemble with K chains from this step (1: the run alone)


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
    # the feature tables (FEATURE_TABLES), as their features checked them; None: absent
    sweep: dict[str, Any] | None = None       # [sweep] (bsim.sweep.schema: lists as tuples)
    race: dict[str, Any] | None = None        # a race recording's [race] (bsim.race.schema)
    recording: dict[str, Any] | None = None   # a recording's [recording] (bsim.recording_schema)
    schedule: dict[str, Any] | None = None    # [schedule]: B and lr schedules, adaptive B (bsim.schedule.schema)
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

    def most_chains(self) -> int:
        """The largest chain count of the run: ``chains`` and the timeline's (the CSV's chains columns)."""
        return max([self.chains] + [ev.chains for ev in self.timeline if ev.chains])

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


_NUM = (int, float)
TOP_RULES: dict[str, Rule] = {
    "title": ((str,), None, "a string"),
    "description": ((str,), None, "a string"),
    "seed": ((int,), _nonneg_int, "an integer >= 0"),
    "device": one_of(DEVICES),
    "dtype": one_of(DTYPES),
    "chains": ((int,), _pos_int, "an integer >= 1 (the number of chains)"),
}
PROBLEM_RULES: dict[str, Rule] = {
    "kind": one_of(PROBLEMS),
    "n_train": ((int,), lambda v: 2 <= v <= MAX_EXAMPLES, f"an integer from 2 to {MAX_EXAMPLES:,}"),
    "n_test": ((int,), lambda v: 0 <= v <= MAX_EXAMPLES, f"an integer from 0 to {MAX_EXAMPLES:,}"),
    "dim": ((int,), lambda v: 1 <= v <= 512, "an integer from 1 to 512"),
    "condition": (_NUM, lambda v: math.isfinite(v) and v >= 1, "a finite number >= 1"),
    "noise": (_NUM, _nonneg, "a finite number >= 0"),
    "l2": (_NUM, _nonneg, "a finite number >= 0"),
    "hidden": ((int,), lambda v: 1 <= v <= 256, "an integer from 1 to 256"),
    "seq_len": ((int,), lambda v: 1 <= v <= 256, "an integer from 1 to 256"),
    "data": ((str,), None, "a path to a CSV file (lstm: a text file)"),
    "test_data": ((str,), None, "a path to a CSV file (lstm: a text file)"),
    "classes": ((int,), lambda v: 2 <= v <= 1000, "an integer from 2 to 1000"),
    "test_fraction": (_NUM, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "split_seed": ((int,), _nonneg_int, "an integer >= 0"),
    "standardize": ((bool,), None, "true or false"),
    "intercept": ((bool,), None, "true or false"),
}
#: problem keys written back (recordings) only where they differ from the default: older files stay as they were
WRITTEN_WHEN_SET = ("classes", "test_fraction", "split_seed", "standardize", "intercept")
PROBLEM_RULES.update(LANDSCAPE_RULES)
OPTIMIZER_RULES: dict[str, Rule] = {
    "lr": (_NUM, _pos, "a finite number > 0"),
    "momentum": (_NUM, _mom, "a number in [0, 1)"),
    "batch_size": ((int,), _pos_int, "an integer >= 1"),
    "lr_scaling": one_of(LR_SCALINGS),
    "sampling": one_of(SAMPLINGS),
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
    "chains": TOP_RULES["chains"],
}



# ---------------------------------------------------------- feature tables

#: the tables a feature above owns and checks (each a Scenario field), in the order they are checked
FEATURE_TABLES = ("sweep", "race", "recording", "schedule")
#: a feature's check: (the table as read, the file's name, its Locator) -> the table as the feature reads it;
#: a bad key is a BsimInputError naming ``file:line: table.key`` (``bsim.tomlcheck.check_table``)
TableCheck = Callable[[dict, str, Locator], dict]
_TABLE_CHECKS: dict[str, TableCheck] = {}


def register_table(name: str, check: TableCheck) -> None:
    """The feature that owns ``[name]`` checks it at every load (each feature registers on import)."""
    if name not in FEATURE_TABLES:
        raise ValueError(f"[{name}]: expected one of the feature tables {', '.join(FEATURE_TABLES)}")
    _TABLE_CHECKS[name] = check


#: the deepest nesting of tables and arrays a scenario may hold (bsim's own go 3 deep: [race] lanes of lists)
MAX_NESTING = 16


def _nesting(value: object) -> int:
    """How deep tables and arrays nest in ``value`` (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_scenario(text: str, fname: str = "<scenario>", path: Path | None = None) -> Scenario:
    """Parse and validate scenario TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BsimInputError(toml_error(fname, text, str(exc))) from None
    except RecursionError:       # x = [[[...]]] 1000 deep, or 3000 nested inline tables
        raise BsimInputError(f"{fname}: values nested too deep for the TOML reader; expected a bsim scenario "
                             f"(at most {MAX_NESTING} levels)") from None
    if _nesting(raw) > MAX_NESTING:
        raise BsimInputError(f"{fname}: values nested more than {MAX_NESTING} levels deep; expected a bsim "
                             f"scenario")
    loc = Locator(text)
    tables = ("problem", "optimizer", *FEATURE_TABLES)
    top = {k: v for k, v in raw.items() if k not in tables and k != "timeline"}
    for name in tables:
        if name in raw and not isinstance(raw[name], dict):
            raise BsimInputError(f"{where(fname, loc, None, name)}: got {quote(raw[name])}, expected a table [{name}]")
    if "timeline" in raw and not (isinstance(raw["timeline"], list)
                                   and all(isinstance(e, dict) for e in raw["timeline"])):
        raise BsimInputError(f"{where(fname, loc, None, 'timeline')}: got {quote(raw['timeline'])}, "
                             f"expected [[timeline]] tables")
    also = ("[problem]", "[optimizer]", "[[timeline]]", "[sweep]", "[race]", "[schedule]")
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
    for name in FEATURE_TABLES:
        if name in raw:
            setattr(sc, name, _TABLE_CHECKS[name](raw[name], fname, loc))
    _check_consistency(sc, fname, loc)
    if not raw:  # warn, not refuse: an empty file is a valid TOML table, and a fair start for a new scenario
        d = ProblemSpec(), OptimizerSpec()
        sc.warnings.append(f"{fname}: empty scenario: running on the defaults ({d[0].kind}, dim {d[0].dim}, "
                           f"n_train {d[0].n_train}, lr {d[1].lr}, batch_size {d[1].batch_size})")
    return sc


def _check_consistency(sc: Scenario, fname: str, loc: Locator) -> None:
    p = sc.problem
    check_landscape(sc, fname, loc)
    if p.test_data and not p.data:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'test_data')}: got {quote(p.test_data)} without data; "
                             f"expected data = \"train.csv\" as well")
    if p.test_fraction and (not p.data or p.test_data):
        raise BsimInputError(f"{where(fname, loc, 'problem', 'test_fraction')}: got {p.test_fraction!r} "
                             f"{'with test_data' if p.test_data else 'without data'}; expected it with data = "
                             f"\"file.csv\" alone (the held-out rows are the test split)")
    if p.kind == "softmax" and not p.l2:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'l2')}: got {p.l2!r}, expected l2 > 0 for softmax (the weights are "
                             f"defined up to a shift shared by the classes, and the L2 term picks one), e.g. l2 = 1e-3")
    if p.kind == "linreg" and p.l2:
        raise BsimInputError(f"{where(fname, loc, 'problem', 'l2')}: got {p.l2!r}, expected 0 for linreg "
                             f"(the L2 term is logistic regression's)")
    if p.kind not in ("lstm", "linreg") and not p.data and p.n_train < p.dim:   # least squares interpolates
        raise BsimInputError(f"{where(fname, loc, 'problem', 'n_train')}: got {p.n_train}, expected at least "
                             f"dim = {p.dim} examples for {p.kind} (else theta* is not unique)")
    for key in ("data", "test_data"):
        rel = getattr(p, key)
        if rel is not None and not sc.resolve(rel).is_file():
            raise BsimInputError(f"{where(fname, loc, 'problem', key)}: got {quote(rel)}, expected a "
                                 f"{'text' if p.kind == 'lstm' else 'CSV'} file (no such regular file; paths are "
                                 f"relative to the scenario file)")


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
        lines += [f"{k} = {toml_value(getattr(spec, k))}" for k in rules if getattr(spec, k) is not None
                  and not (k in WRITTEN_WHEN_SET and getattr(spec, k) == getattr(ProblemSpec(), k))]
    if sc.sweep is not None:
        lines += ["", "[sweep]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in sc.sweep.items()]
    if sc.schedule is not None:
        lines += ["", "[schedule]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in sc.schedule.items()]
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
