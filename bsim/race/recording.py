"""Race recordings: the scenario plus a ``[race]`` table; a replay runs every lane to its recorded step.

The file is the scenario the lanes ran (the command line's overrides applied, without the timeline,
which lanes do not apply; data paths relative to the recording), a ``[recording]`` table with the
versions, device and dtype (no single-run check: ``bsim.recording``), and (checked by
``bsim.race.schema``)::

    [race]
    batch_sizes = [8, 64]      # the lanes, in lane order (after clamping to N)
    lane_names = [...]         # lanes that differ by schedule (bsim race --lanes): their names ("": by B)
    by = "samples"             # the lockstep axis
    lr_rule = "none"           # the lanes' lr rule (relative to the scenario's batch size)
    chains = 1
    lane_steps = [512, 64]     # each lane's steps when written: where a replay stops it
    lane_diverged = [false, false]   # a lane that had diverged replays its failing step too
    position = 4096.0          # the lockstep's front on `by` (what the screen showed)
    lane_train_loss = [...]    # the check: each lane's train loss there
    lane_theta_sha256 = [...]  #   and the sha256 of its parameters (bsim.recording.theta_sha256)

Since the lockstep orders steps by (position where a step starts, lane order), running every lane
to its recorded step replays the steps in the same order: a headless replay writes the race's CSV
byte for byte (``--no-timing``, the same ``--every``; by samples or steps; by time the order follows
the clock, each lane's rows are still the same).
"""

from __future__ import annotations

import math
import platform
from pathlib import Path

from bsim import __version__
from bsim.atomic import atomic_open
from bsim.errors import BsimInputError, quote
from bsim.race.race import Race
from bsim.recording import _portable, check_of, data_sha256
from bsim.recording_schema import FORMAT
from bsim.scenario import Scenario, scenario_to_toml


def race_table(race: Race) -> dict:
    """The [race] table of the race as it stands (the check included)."""
    checks = [check_of(lane.sim) for lane in race.lanes]
    return {
        "batch_sizes": [lane.batch_size for lane in race.lanes], "by": race.by, "lr_rule": race.lr_rule,
        "chains": race.chains, "lane_steps": [lane.steps for lane in race.lanes], "position": race.position,
        "lane_diverged": [lane.diverged for lane in race.lanes],
        "lane_train_loss": [c["train_loss"] for c in checks],
        "lane_theta_sha256": [c["theta_sha256"] for c in checks],
        **({"lane_names": [lane.name or "" for lane in race.lanes]} if any(lane.name for lane in race.lanes) else {}),
    }


def race_recording_text(race: Race, path: Path) -> str:
    """The recording's TOML: the lanes' scenario, [race], [recording] (versions, device, dtype)."""
    import torch
    sc = _portable(race.scenario, path)   # data paths relative to the recording's folder
    sc.timeline, sc.chains = [], race.chains
    sc.race = race_table(race)
    device = str(race.lanes[0].sim.device)
    sc.recording = {"format": FORMAT, "bsim": __version__, "torch": torch.__version__,
                    "python": platform.python_version(), "device": device, "dtype": sc.resolved_dtype(),
                    **data_sha256(race.scenario)}
    return ("# a race: bsim replay this file (--headless --metrics PATH.csv writes the race's CSV again)\n"
            + scenario_to_toml(sc))


def write_race_recording(path: str | Path, race: Race) -> Path:
    """Write the race as it stands to ``path`` (atomically); RecordingError-like BsimInputError on failure."""
    path = Path(path)
    data = race_recording_text(race, path).encode("utf-8")
    try:
        with atomic_open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise BsimInputError(f"--record {path}: cannot write the recording: {exc.strerror or exc}; "
                             f"expected a writable file path") from None
    return path


def race_from_recording(sc: Scenario, chains: int | None = None, device=None) -> Race:
    """The race a recording describes, each lane stopping at its recorded step (``chains``: an override)."""
    table = sc.race
    race = Race(sc, table["batch_sizes"], by=table["by"], lr_rule=table["lr_rule"],
                chains=table["chains"] if chains is None else chains, device=device,
                names=[x or None for x in table["lane_names"]] if "lane_names" in table else None)
    got = [lane.batch_size for lane in race.lanes]
    if got != list(table["batch_sizes"]):
        big = next(b for b in table["batch_sizes"] if b > race.n_train)
        raise BsimInputError(f"{sc.where('batch_sizes', 'race') or sc.path}: race.batch_sizes: {quote(big)} is above "
                             f"N = {race.n_train}; expected batch sizes up to N (was the data file changed?)")
    # a lane that had diverged replays the step that failed too (it fails again: no row, as recorded)
    diverged = table.get("lane_diverged", [False] * len(got))
    race.set_lane_steps([n + 1 if failed else n for n, failed in zip(table["lane_steps"], diverged)])
    return race


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare_race(table: dict, race: Race, fname: str) -> list[str]:
    """One line per lane whose replay ended elsewhere than the recording's check (empty: all the same)."""
    if "lane_theta_sha256" not in table or "lane_train_loss" not in table:
        return []
    out = []
    for i, lane in enumerate(race.lanes):
        check = check_of(lane.sim)
        want_steps, want_loss, want_sha = (table["lane_steps"][i], table["lane_train_loss"][i],
                                           table["lane_theta_sha256"][i])
        if check["final_step"] != want_steps:
            out.append(f"{fname}: lane {lane.label} stopped at step {check['final_step']}, the recording "
                       f"at {want_steps}; its check was not compared")
        elif check["theta_sha256"] != want_sha or not _same(check["train_loss"], want_loss):
            what = (f"train loss {check['train_loss']!r} here, {want_loss!r} recorded"
                    if not _same(check["train_loss"], want_loss)
                    else f"its parameters' sha256 {check['theta_sha256'][:12]}... here, {quote(want_sha)} recorded")
            out.append(f"{fname}: lane {lane.label} differs from the recording at step {want_steps}: {what}")
    return out
