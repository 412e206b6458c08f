"""`bsim replay` and `bsim run --headless --record` on the command line (the CLI starts the app and the export).

A headless replay runs the recording from step 0 to its ``final_tick`` and
writes the same metrics CSV as the original run (byte for byte with
``--no-timing`` on the same device), then compares the check: a replay that
ends elsewhere says so on stderr, with both values, and goes on (exit 0).

A recording ends at most ``MAX_STEPS_PAST_TIMELINE`` steps after its last
event (or where recording began): a ``final_tick`` beyond that is refused
(exit 2) rather than replayed for ever. A data file whose sha256 is not the
recorded one is named in a warning before the replay starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from bsim.errors import BsimInputError
from bsim.recording import Recorder, RecordingError, changed_data, compare_check, load_recording

#: the furthest a recording may end after its last event (a longer run is a plain scenario with --steps)
MAX_STEPS_PAST_TIMELINE = 10**9


def _warn(msg: str) -> None:
    print(f"bsim: warning: {msg}", file=sys.stderr)


def run_headless_recorded(sim, args, record_path: str) -> int:
    """`bsim run --headless --record PATH`: the file is the scenario plus the check at the end."""
    from bsim.headless import StopOnSignals, inputs_of, open_metrics, run_headless, same_file
    for other, what in inputs_of(sim.scenario) + ((args.metrics, "the --metrics file"),):
        if other is not None and str(other) != "-" and same_file(record_path, other):
            raise BsimInputError(f"--record {record_path}: is {what}; expected another path for the recording "
                                 f"(it would be overwritten)")
    sink = open_metrics(args.metrics, sim.scenario)     # refused (locked, an input) before the recording starts
    with StopOnSignals() as stop:                       # a signal during rec.stop waits for the check
        try:
            rec = Recorder.start(record_path, scenario=sim.scenario, began_at=sim.tick, timeline=sim.timeline)
        except RecordingError as exc:
            if sink is not None:
                sink.abandon()
            raise BsimInputError(f"--record {record_path}: {exc}") from None
        code = run_headless(sim, args.steps, sink if sink is not None else args.metrics, args.every or 1,
                            timing=not args.no_timing, stop=stop)
        try:
            rec.stop(sim)
        except RecordingError as exc:
            print(f"bsim: error: {exc}", file=sys.stderr)
            return 2
    return code


@contextlib.contextmanager
def export_folder_locked(folder: str):
    """An exclusive flock on the export folder while it is written: a second export into it refuses."""
    path = Path(folder)
    with contextlib.suppress(OSError):
        path.mkdir(exist_ok=True)      # as export_frames would: the last folder only (it reports a failure)
    try:
        import fcntl
        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BsimInputError(f"--export {folder}: another bsim export is writing into it; expected another "
                                 f"folder, or wait until that export ends") from None
        yield
    finally:
        os.close(fd)


def replay_scenario(args):
    """The recording named on the command line, with any overrides applied, and its facts."""
    from bsim.scenario import apply_overrides, overrides_from
    sc, info = load_recording(args.recording)
    return apply_overrides(sc, **overrides_from(args)), info


def check_flags(args) -> None:
    """--export excludes --headless; --at-captions and --cast need --export."""
    if args.headless and args.export:
        raise BsimInputError("bsim replay: --headless and --export both given; expected one of them")
    if (args.at_captions or args.cast) and not args.export:
        flag = "--at-captions" if args.at_captions else "--cast"
        raise BsimInputError(f"bsim replay: {flag} is for --export DIR; expected --export as well")


def prepare(args):
    """The flags checked, the recording read (overrides applied), its end bounded, changed data named."""
    check_flags(args)
    sc, info = replay_scenario(args)
    if args.steps is None:
        check_replay_end(sc, info, args.recording)
    sc.warnings += [f"{args.recording}: {line}" for line in changed_data(sc, info.table)]
    return sc, info


def check_replay_end(sc, info, fname: str) -> None:
    """Refuse a final_tick more than MAX_STEPS_PAST_TIMELINE past the last event (one line, exit 2)."""
    if info.final_tick is None:
        return
    last = max([info.began_at] + [ev.at for ev in sc.timeline])
    if info.final_tick > last + MAX_STEPS_PAST_TIMELINE:
        where = sc.where("final_tick", "recording") or fname
        raise BsimInputError(f"{where}: final_tick is more than 10^9 steps past the last event (step {last}); "
                             f"expected final_tick <= {last + MAX_STEPS_PAST_TIMELINE} (or --steps N)")


def replay_steps(args, info, fname: str, sc_path=None) -> int:
    """How far to replay: --steps, else the recording's final_tick."""
    if args.steps is not None:
        return args.steps
    if info.final_tick is None:
        where = fname
        if sc_path is not None:
            where = f"{fname}:{max(1, len(sc_path.read_text(encoding='utf-8').splitlines()))}"
        raise BsimInputError(f"{where}: the file ends without a [recording] table (truncated, or a plain scenario), "
                             f"so it has no final step; expected a recording written by --record, or --steps N")
    # a diverged run stopped at the step that failed (not counted): take that step as well
    return info.final_tick + (1 if info.diverged else 0)


def replay_headless(sc, info, args) -> int:
    """Replay to the recording's end (or --steps), write the metrics, then compare the check."""
    from bsim.headless import run_headless
    from bsim.simulation import Simulation

    fname = args.recording
    steps = replay_steps(args, info, fname, sc.path)
    sim = Simulation(sc)
    for w in sim.scenario.warnings:
        _warn(w)
    code = run_headless(sim, steps, args.metrics, args.every or 1, timing=not args.no_timing)
    if code >= 128:   # stopped by a signal: nothing to compare
        return code
    if info.has_check:
        notice = compare_check(info.table, sim, fname)
        if notice:
            _warn(notice)
    elif info.table.get("bsim"):
        _warn(f"{fname}: no check (the recording was not stopped): replayed to its last event, "
              f"step {sim.tick}, with nothing to compare")
    return code
