"""`bsim race` on the command line: the race's own flags, the checks of bad input, headless or the screen.

``bsim race SCENARIO --batch-sizes 8,64,512 [--by samples|steps|time] [--lr-rule none|linear|sqrt]``, or
``--lanes decay-lr,grow-batch`` for lanes that differ by schedule (the scenario's ``[schedule.lane.NAME]``
tables, each lane from the scenario's batch size and lr),
plus the override flags of ``bsim run`` (not --batch-size: a race has a batch size per lane) and its
headless flags: ``--headless (--samples N | --steps N) [--metrics PATH.csv] [--every K] [--no-timing]
[--record PATH.toml]``. Without --headless the CLI opens the race screen (``OpenRaceScreen``: the core
never imports the app).

Choices: ``--samples N`` runs each lane until it has seen at least N samples (its last batch may pass
N: a lane never takes part of a step). ``--by time`` headless orders the lanes' steps by this machine's
measured seconds (the CSV's order then differs from run to run; each lane's rows do not) and stops them
at --samples / --steps like the other axes. A batch size above N is clamped to N with one warning;
two that clamp to the same N are a repeat (refused). Bad input is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from bsim.cliargs import int_at_least
from bsim.errors import BsimInputError, quote
from bsim.race.frame import AXES, MAX_LANES
from bsim.race.race import Race
from bsim.scenario import LR_SCALINGS


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The race's own flags (the CLI adds the override, headless and view flags of `bsim run`)."""
    g = p.add_argument_group("the race")
    g.add_argument("--batch-sizes", metavar="LIST", help=f"the lanes, e.g. 8,64,512 (1 to {MAX_LANES} batch sizes)")
    g.add_argument("--lanes", metavar="NAMES",
                   help="lanes that differ by schedule instead: names of the scenario's [schedule.lane.NAME] "
                        "tables, e.g. decay-lr,grow-batch (each from the scenario's batch size)")
    g.add_argument("--by", choices=AXES, default="samples",
                   help="the lockstep axis: samples seen (default), steps, or measured seconds (time)")
    g.add_argument("--export", metavar="FILE.svg",
                   help="at the end, the figure of the lanes' learning curves (train and test accuracy against "
                        "epochs, a panel per lane) as SVG, and FILE.png beside it where a renderer is found")
    g.add_argument("--lr-rule", choices=LR_SCALINGS,
                   help="how each lane's lr follows its B, relative to the scenario's (default: its lr_scaling)")
    g.add_argument("--samples", type=int_at_least(1, "an integer >= 1"), metavar="N",
                   help="headless: each lane runs until it has seen at least N samples")
    p.add_argument("--record", metavar="PATH.toml", help="write the race as a recording (bsim replay replays it)")
    p.set_defaults(steps=None)
    for action in p._actions:     # bsim run's --batch-size is refused here (a batch size per lane): not shown
        if action.dest == "batch_size":
            action.help = argparse.SUPPRESS


def parse_batch_sizes(text: str | None) -> list[int]:
    """'8,64,512' -> [8, 64, 512] in that order; repeats, non-integers, values < 1, > MAX_LANES refused."""
    if not text:
        raise BsimInputError("--batch-sizes: missing; expected the lanes' batch sizes, e.g. --batch-sizes 8,64,512")
    sizes = []
    for item in text.split(","):
        s = item.strip()
        if not (s.isascii() and s.isdigit()) or int(s) < 1:      # ASCII: '²' and '８' are digits to isdigit
            raise BsimInputError(f"--batch-sizes: got {quote(s)}; expected positive integers separated by commas")
        if int(s) in sizes:
            raise BsimInputError(f"--batch-sizes: {int(s)} is there twice; expected different batch sizes")
        sizes.append(int(s))
    if len(sizes) > MAX_LANES:
        raise BsimInputError(f"--batch-sizes: {len(sizes)} batch sizes; expected at most {MAX_LANES} lanes")
    return sizes


def parse_lane_names(text: str, sc) -> list[str]:
    """'decay-lr,grow-batch' -> the names, each a [schedule.lane.NAME] of the scenario (checked), in that order."""
    from bsim.schedule.schedule import lane_schedule
    names = [item.strip() for item in text.split(",")]
    for name in names:
        if names.count(name) > 1:
            raise BsimInputError(f"--lanes: {quote(name)} is there twice; expected different lanes")
        lane_schedule(sc, name)
    if len(names) > MAX_LANES:
        raise BsimInputError(f"--lanes: {len(names)} lanes; expected at most {MAX_LANES}")
    return names


def clamp_batch_sizes(sizes: list[int], n_train: int) -> tuple[list[int], list[str]]:
    """Batch sizes above N become N (a warning each); two that become N are a repeat (BsimInputError)."""
    above = [b for b in sizes if b > n_train]
    if not above:
        return sizes, []
    if len(above) > 1 or n_train in sizes:
        both = [b for b in sizes if b >= n_train]
        raise BsimInputError(f"--batch-sizes: {both[0]} and {both[1]} are both N = {n_train} (the training set) "
                             f"once clamped; expected at most one batch size >= {n_train}")
    return [min(b, n_train) for b in sizes], [f"batch size {above[0]} is above N = {n_train}: clamped to {n_train}"]


@dataclass
class OpenRaceScreen:
    """What ``bsim race`` (and ``bsim replay`` of a race) without --headless asks of the CLI:
    ``bsim.app.race.run_race_app(race, **options)`` (the race core never imports the app)."""

    race: Race
    options: dict = field(default_factory=dict)
    after: Callable[[], None] | None = None    # once the screen is closed (bsim race --export writes its figure)


def check_flags(args) -> None:
    """Bad combinations of flags, before anything is built."""
    if getattr(args, "batch_size", None) is not None:
        raise BsimInputError("--batch-size: a race has one batch size per lane; expected --batch-sizes LIST")
    if getattr(args, "lanes", None) is not None and args.batch_sizes is not None:
        raise BsimInputError("bsim race: both --batch-sizes and --lanes; expected one of them (lanes that differ by "
                             "batch size, or by schedule)")
    if args.by == "time" and args.no_timing:
        raise BsimInputError("--by time: the lanes advance by their measured seconds, which --no-timing leaves "
                             "out; expected --by samples or steps, or timing")
    if args.headless and (args.samples is None) == (args.steps is None):
        got = "both" if args.samples is not None else "neither"
        raise BsimInputError(f"bsim race --headless: {got} of --samples and --steps; expected one of them "
                             f"(how far each lane runs)")
    if args.samples is not None and args.steps is not None:
        raise BsimInputError("bsim race: both --samples and --steps; expected one of them")


def _warn(text: str) -> None:
    print(f"bsim: warning: {text}", file=sys.stderr)


def build_race(args) -> Race:
    """The scenario with its overrides, the batch sizes checked and clamped, the race built (memory checked)."""
    from bsim.race.lanes import training_size
    from bsim.scenario import apply_overrides, find_scenario, overrides_from
    from bsim.schedule.schedule import check_run_length, check_schedule, lane_schedule
    check_flags(args)
    names = None
    sc = apply_overrides(find_scenario(args.scenario), **overrides_from(args))
    n_train = training_size(sc)
    if getattr(args, "lanes", None) is not None:
        names = parse_lane_names(args.lanes, sc)
        sizes, warnings = [min(sc.optimizer.batch_size, n_train)] * len(names), []
        specs = [(lane_schedule(sc, name), f"schedule.lane.{name}") for name in names]
    else:
        sizes, warnings = clamp_batch_sizes(parse_batch_sizes(args.batch_sizes), n_train)
        specs = [({k: v for k, v in (sc.schedule or {}).items() if k != "lane"}, "schedule")]
    for spec, table in specs:    # a max below the start, a warm-up longer than the race: before anything is built
        check_schedule(sc, spec, n_train, table)
        if args.steps is not None or args.samples is not None:
            check_run_length(sc, n_train, steps=args.steps, samples=args.samples, spec=spec, table=table)
    for text in sc.warnings + warnings:
        _warn(text)
    if sc.timeline:
        events = f"{len(sc.timeline)} event{'s' if len(sc.timeline) != 1 else ''}"
        _warn(f"the scenario's timeline ({events}) is not applied: each lane keeps its batch "
              f"size (a lane equals bsim run of the scenario without its timeline)")
    race = Race(sc, sizes, by=args.by, lr_rule=args.lr_rule, names=names)
    if args.steps is not None:
        race.set_limit("steps", args.steps)
    elif args.samples is not None:
        race.set_limit("samples", args.samples)
    return race


def cmd_race(args) -> int | OpenRaceScreen:
    """`bsim race`: a headless race (an exit code), or the request to open the race screen."""
    import torch
    torch.set_num_threads(1)     # as bsim run: the same arithmetic, so a lane's rows equal the single run's
    race = build_race(args)
    export = None
    if getattr(args, "export", None) is not None:
        from bsim.race.figure import start_export
        export = start_export(race, args.export)
    if not args.headless:
        return OpenRaceScreen(race, {"speed": args.pace, "theme": args.theme, "record": args.record,
                                     "timing": not args.no_timing, "replay": False}, after=export)
    code = run_recorded(race, args)
    if code < 128:
        from bsim.ensemble.gap import race_gap_lines
        for line in race_gap_lines(race):    # the generalization gap of each lane at its end, measured
            print(f"bsim: {line}", file=sys.stderr)
    if export is not None and code < 128:
        export()
    return code


def run_recorded(race: Race, args) -> int:
    """The headless race, written as a recording at its start and where it ends when --record is given."""
    from bsim.headless import StopOnSignals, inputs_of, open_metrics, same_file
    from bsim.race.headless import run_race_headless
    from bsim.race.recording import write_race_recording
    record = getattr(args, "record", None)
    if record is None:
        return run_race_headless(race, args.metrics, args.every or 1, timing=not args.no_timing)
    for other, what in inputs_of(race.scenario) + ((args.metrics, "the --metrics file"),):
        if other is not None and str(other) != "-" and same_file(record, other):
            raise BsimInputError(f"--record {record}: is {what}; expected another path for the recording "
                                 f"(it would be overwritten)")
    sink = open_metrics(args.metrics, race.scenario)
    with StopOnSignals() as stop:
        try:
            write_race_recording(record, race)       # a path that cannot be written fails before the race
        except BsimInputError:
            if sink is not None:
                sink.abandon()
            raise
        code = run_race_headless(race, sink if sink is not None else args.metrics, args.every or 1,
                                 timing=not args.no_timing, stop=stop)
        write_race_recording(record, race)
    return code


def cmd_replay_race(sc, args) -> int | OpenRaceScreen:
    """`bsim replay` of a race recording: every lane to its recorded step (headless: the same CSV), or the screen."""
    import torch

    from bsim.race.headless import run_race_headless
    from bsim.race.recording import compare_race, race_from_recording
    torch.set_num_threads(1)
    for flag, value in (("--batch-size", args.batch_size), ("--export", args.export), ("--steps", args.steps)):
        if value is not None:
            raise BsimInputError(f"{flag}: not for a race recording (each lane replays to its recorded step); "
                                 f"expected bsim replay {quote(args.recording)} [--headless --metrics PATH.csv]")
    for text in sc.warnings:
        _warn(text)
    race = race_from_recording(sc, chains=args.chains)
    if not args.headless:
        return OpenRaceScreen(race, {"speed": args.pace, "theme": args.theme, "record": None,
                                     "timing": not args.no_timing, "replay": True})
    code = run_race_headless(race, args.metrics, args.every or 1, timing=not args.no_timing)
    if code < 128:
        for line in compare_race(sc.race, race, args.recording):
            _warn(line)
    return code
