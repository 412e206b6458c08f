"""Recordings: a scenario whose timeline holds what the user did, plus a check.

A recording starts at step 0 even when recording began mid-run: its timeline
merges the scenario's own events with every user action since the run began,
each as one ``[[timeline]]`` event at the tick it was applied (``began_at``
says where recording began, so a replay can fast-forward there). Within one
tick the user's actions come first, in the order they were applied, then the
scenario's events of that tick: a live action at tick t is applied between
steps, before the next ``Simulation.step()`` applies the events due at t.

The ``[recording]`` table (format version ``FORMAT``, checked by ``bsim.recording_schema``)::

    format = 1            # a newer version than this bsim knows is an error
    bsim, torch, python   # versions that wrote it
    device, dtype         # where it ran
    began_at              # tick at which recording began
    final_tick            # where it ends: the tick at stop (while recording: of the last event)
    final_step            # the check, written at stop: steps since the last reset,
    train_loss            #   the train loss there,
    theta_sha256          #   sha256 of the parameters' own bytes (their dtype, little-endian, C order)
    diverged              #   true when the run had diverged at stop (a replay takes the failing step too)
    data_sha256           # sha256 of the data file's bytes when recording began (absent: no data
    test_data_sha256      #   file, or an older recording): a replay names the file that changed

Every change rewrites the whole file atomically, so a killed terminal loses
nothing already recorded: a file without the check replays to its last event.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from bsim import __version__
from bsim.actions import Caption, PausePoint, event_fields
from bsim.atomic import atomic_open
from bsim.errors import BsimInputError
from bsim.recording_schema import CHECK_KEYS, FORMAT
from bsim.scenario import Event, Scenario, find_scenario, scenario_to_toml
from bsim.timeline import Timeline
from bsim.tomlcheck import toml_value

DATA_KEYS = ("data", "test_data")     # [problem] keys whose files a recording hashes


class RecordingError(Exception):
    """A recording that cannot be written (one line; the app shows it and goes on)."""

    def __init__(self, message: str):
        super().__init__(message.replace("\n", " "))


# ------------------------------------------------------------------- the check

def theta_sha256(theta) -> str:
    """sha256 of the parameters' own bytes: their dtype, little-endian, C order."""
    arr = theta.detach().cpu().contiguous().numpy()
    return hashlib.sha256(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def check_of(sim) -> dict:
    """The check of a simulation now: final_tick, final_step, train_loss, theta_sha256."""
    import torch
    with torch.no_grad():
        loss = float(sim.problem.train_loss(sim.theta))
    return {"final_tick": int(sim.tick), "final_step": int(sim.step_count),
            "train_loss": loss, "theta_sha256": theta_sha256(sim.theta), "diverged": bool(sim.diverged)}


def _same_loss(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_check(recording: dict, sim, fname: str = "recording") -> str | None:
    """None when the replay reached the recorded check exactly, else a one-line notice with both values."""
    if not all(k in recording for k in CHECK_KEYS):
        return None
    here = check_of(sim)
    if here["final_tick"] != recording["final_tick"]:
        return (f"{fname}: the replay stopped at step {here['final_tick']}, the recording at "
                f"{recording['final_tick']}; the check was not compared")
    if here["final_step"] != recording["final_step"]:
        return (f"{fname}: the recording's check does not match: final_step {here['final_step']} here, "
                f"{recording['final_step']} recorded, at step {here['final_tick']} (the file was edited?); going on")
    # the diverged flag is not compared: a replay that stops at final_tick has not yet taken the
    # failing step, and the parameters decide whether it fails
    same_div = here["diverged"] == recording.get("diverged", False)
    if here["theta_sha256"] == recording["theta_sha256"] and _same_loss(here["train_loss"], recording["train_loss"]):
        return None
    div = "" if same_div else (f"; {'diverged' if here['diverged'] else 'did not diverge'} here, "
                               f"{'diverged' if recording.get('diverged') else 'did not diverge'} in the recording")
    where_rec = " ".join(f"{k} {recording[k]}" for k in ("device", "dtype", "torch") if k in recording)
    where_now = f"device {sim.device} dtype {str(sim.dtype).removeprefix('torch.')} torch {_torch_version()}"
    return (f"{fname}: the replay differs from the recording at step {here['final_tick']}: "
            f"train loss {here['train_loss']!r} here, {recording['train_loss']!r} recorded; "
            f"parameter sha256 {here['theta_sha256'][:16]} here, {recording['theta_sha256'][:16]} recorded{div} "
            f"(recorded on {where_rec or 'an unknown machine'}, replayed on {where_now}); going on")


def _torch_version() -> str:
    import torch
    return torch.__version__


def data_sha256(scenario: Scenario) -> dict:
    """``{"data_sha256": ..., "test_data_sha256": ...}``: sha256 of each data file's bytes (those it has)."""
    found = {}
    for key in DATA_KEYS:
        rel = getattr(scenario.problem, key, None)
        if not rel:
            continue
        digest = hashlib.sha256()
        try:
            with open(scenario.resolve(rel), "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            continue
        found[f"{key}_sha256"] = digest.hexdigest()
    return found


def changed_data(scenario: Scenario, recording: dict) -> list[str]:
    """One line for each data file whose sha256 differs from the recording's (older recordings: none)."""
    now = data_sha256(scenario)
    lines = []
    for key in DATA_KEYS:
        was = recording.get(f"{key}_sha256")
        if was is None or now.get(f"{key}_sha256") == was:
            continue
        rel = getattr(scenario.problem, key)
        here = now.get(f"{key}_sha256", "missing")[:16]
        lines.append(f"{key} file {rel}: changed since the recording (sha256 {here} now, {was[:16]} recorded); "
                     f"the replay will differ")
    return lines


# ---------------------------------------------------------------- the timeline

def item_event(tick: int, item) -> Event:
    """One timeline event for one action that ran, caption or pause point."""
    if isinstance(item, Caption):
        return Event(at=tick, caption=_clean_caption(item.text))
    if isinstance(item, PausePoint):
        return Event(at=tick, pause=True)
    try:
        return Event(at=tick, **event_fields(item))
    except ValueError:
        raise RecordingError(f"cannot record {item!r}: expected an action, a Caption or a PausePoint") from None


def _clean_caption(text: str) -> str:
    """Captions are one line of printable text (control characters become spaces)."""
    return "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(text)).strip()


def merged_timeline(scenario_events: Iterable[Event], actions: Iterable[tuple[int, Any]]) -> list[Event]:
    """The scenario's events and the user's, ordered by tick; within a tick the user's come first.

    That is the live order: an action at tick t is applied between steps, and the
    scenario's events due at t are applied by the next step.
    """
    keyed = [(int(t), 0, i, item_event(int(t), item)) for i, (t, item) in enumerate(actions)]
    keyed += [(ev.at, 1, i, dataclasses.replace(ev)) for i, ev in enumerate(scenario_events)]
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


# ----------------------------------------------------------------- the recorder

def new_recording_path(folder: str | Path) -> Path:
    """recordings/<date>_<time>.toml (with -2, -3, ... when taken); the folder is made."""
    folder = Path(folder)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    target, n = folder / f"{stamp}.toml", 2
    while target.exists():
        target, n = folder / f"{stamp}-{n}.toml", n + 1
    folder.mkdir(parents=True, exist_ok=True)
    return target


class Recorder:
    """Writes one recording and rewrites it atomically at every event.

    Owns its file and its list of the actions that ran (with captions and pause
    points). Reads, never changes: the run's ``Timeline`` (so a take-over of a
    replay, which drops the rest of the timeline, is what gets written).
    ``Recorder.start(path, scenario, actions, began_at, timeline)``, then
    ``add(tick, item)`` for each action, caption or pause point, then ``stop(sim)``.
    Each may raise ``RecordingError`` (the file could not be written).
    """

    def __init__(self, path: Path, scenario: Scenario, actions: list, began_at: int, timeline: Timeline):
        self.path = path
        self.scenario = scenario
        self.actions = actions
        self.began_at = began_at
        self.timeline = timeline
        self.device = _device_name(scenario.device)
        self.check: dict | None = None
        self.stopped = False
        self.data_sha256: dict = {}     # of the data files when recording began (set by start)

    @classmethod
    def start(cls, path: str | Path, scenario: Scenario, actions: Iterable[tuple[int, Any]] = (),
              began_at: int = 0, timeline: Timeline | None = None) -> Recorder:
        """Start recording: the run's actions so far, from step 0; ``timeline``: the run's (else the scenario's)."""
        if isinstance(began_at, bool) or not isinstance(began_at, int) or began_at < 0:
            raise RecordingError(f"began_at {began_at!r}: expected a step number >= 0")
        done = [(int(t), item) for t, item in actions]
        for t, item in done:
            item_event(t, item)  # an unknown item fails now, not at the first rewrite
        timeline = timeline if timeline is not None else Timeline(scenario.timeline)
        rec = cls(Path(path), _portable(scenario, Path(path)), done, began_at, timeline)
        rec.data_sha256 = data_sha256(scenario)
        rec._write()
        return rec

    def add(self, tick: int, item) -> None:
        """Record one action, Caption or PausePoint applied at ``tick``; rewrites the file."""
        if self.stopped:
            raise RecordingError(f"{self.path}: the recording is stopped; start a new one")
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
            raise RecordingError(f"tick {tick!r}: expected a step number >= 0")
        item_event(tick, item)
        self.actions.append((tick, item))
        self._write()

    def stop(self, sim) -> dict:
        """Write the check of ``sim`` (final tick and step, train loss, parameter hash); returns it."""
        self.check = check_of(sim)
        self.device = str(sim.device)
        self.stopped = True
        self._write()
        return self.check

    # ------------------------------------------------------------------ writing
    def table(self) -> dict:
        import torch
        sc = self.scenario
        table = {
            "format": FORMAT, "bsim": __version__, "torch": torch.__version__,
            "python": platform.python_version(),
            "device": self.device,
            "dtype": sc.resolved_dtype(), "began_at": self.began_at,
            **self.data_sha256,
        }
        if self.check:
            table.update(self.check)
        else:
            table["final_tick"] = max([self.began_at] + [t for t, _ in self.actions])
        return table

    def text(self) -> str:
        sc = self.scenario.copy()
        sc.timeline = merged_timeline(self.timeline.events, self.actions)
        sc.recording = None
        lines = [scenario_to_toml(sc).rstrip("\n"), ""]
        if self.check is None:
            lines.append("# recording in progress (no check yet): a replay runs to the last event")
        else:
            lines.append("# the check at stop: final_tick, final_step, the train loss there and the")
            lines.append("# sha256 of the parameters' own bytes (their dtype, little-endian)")
        lines.append("[recording]")
        lines += [f"{k} = {toml_value(v)}" for k, v in self.table().items()]
        return "\n".join(lines) + "\n"

    def _write(self) -> None:
        data = self.text().encode("utf-8")
        try:
            with atomic_open(self.path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise RecordingError(f"cannot write the recording {self.path}: {reason}") from None


def _device_name(name: str) -> str:
    from bsim.devices import resolve_device
    try:
        return str(resolve_device(name))
    except BsimInputError:
        return name


def _portable(scenario: Scenario, path: Path) -> Scenario:
    """A copy whose data paths are relative to the recording's folder (or absolute)."""
    sc = scenario.copy()
    sc.recording = sc.race = None      # a single run's recording, even of a race's file, is no race
    for key in ("data", "test_data"):
        rel = getattr(sc.problem, key)
        if rel is None:
            continue
        target = Path(os.path.abspath(sc.resolve(rel)))
        try:
            new = os.path.relpath(target, os.path.abspath(path.parent))
        except ValueError:  # another drive (Windows)
            new = str(target)
        setattr(sc.problem, key, Path(new).as_posix())
    return sc


# ------------------------------------------------------------------- reading

@dataclass
class RecordingInfo:
    """What a replay needs from a recording: where it began, where it ends, the check."""

    began_at: int
    final_tick: int | None      # None: not a recording (a plain scenario has no end)
    table: dict
    has_check: bool
    diverged: bool = False      # the recorded run had diverged at stop


def recording_info(sc: Scenario) -> RecordingInfo:
    """began_at, final_tick and the check of a scenario's ``[recording]`` table (empty if none)."""
    table = dict(sc.recording or {})
    return RecordingInfo(began_at=table.get("began_at", 0), final_tick=table.get("final_tick"), table=table,
                         has_check=all(k in table for k in CHECK_KEYS), diverged=table.get("diverged", False))


def load_recording(name_or_path: str) -> tuple[Scenario, RecordingInfo]:
    """A recording (or a scenario) by path or bundled name, and its ``[recording]`` facts.

    Errors (truncated or nonsense TOML, a newer format, a missing data file) are
    one-line ``BsimInputError``s naming the file and the line.
    """
    sc = find_scenario(name_or_path)
    return sc, recording_info(sc)


__all__ = ["FORMAT", "Caption", "PausePoint", "Recorder", "RecordingError", "RecordingInfo", "changed_data",
           "check_of", "compare_check", "data_sha256", "load_recording", "merged_timeline", "new_recording_path",
           "recording_info", "theta_sha256"]
