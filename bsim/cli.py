"""The command line: bsim, bsim run, bsim replay, bsim serve, bsim scenarios.

Exit codes: 0 success, 2 bad input (one line naming the file, line or key and
what is expected), 3 a headless run that diverged, 128 + the signal's number
when stopped by SIGINT (130), SIGTERM (143) or SIGHUP (129).
"""

from __future__ import annotations

import argparse
import errno
import sys

from bsim import __version__
from bsim.cliargs import float_in as _float_in
from bsim.cliargs import int_at_least as _int_at_least
from bsim.errors import BsimInputError, quote
from bsim.scenario import DEVICES, DTYPES, LR_SCALINGS, PROBLEMS, SAMPLINGS


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line with exit code 2."""

    def error(self, message: str):
        raise BsimInputError(f"{self.prog}: {message}")


def _add_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides of the scenario")
    g.add_argument("--problem", choices=PROBLEMS)
    g.add_argument("--batch-size", type=_int_at_least(1, "an integer >= 1"))
    g.add_argument("--lr", type=_float_in(lambda v: 0 < v < float("inf"), "a number > 0"))
    g.add_argument("--momentum", type=_float_in(lambda v: 0 <= v < 1, "a number in [0, 1)"))
    g.add_argument("--seed", type=_int_at_least(0, "an integer >= 0"))
    g.add_argument("--device", choices=DEVICES)
    g.add_argument("--dtype", choices=DTYPES)
    g.add_argument("--sampling", choices=SAMPLINGS)
    g.add_argument("--lr-scaling", choices=LR_SCALINGS)
    g.add_argument("--chains", type=_int_at_least(1, "an integer >= 1 (the number of chains)"),
                   help="K independent chains of the problem (chain 0 is the run itself)")


def _add_headless(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("headless runs")
    g.add_argument("--headless", action="store_true", help="no app: write the metrics CSV")
    g.add_argument("--steps", type=_int_at_least(1, "an integer >= 1"), default=1000)
    g.add_argument("--metrics", metavar="PATH.csv", help="CSV to write (stdout when absent)")
    g.add_argument("--every", type=_int_at_least(1, "an integer >= 1"), default=1, help="a row every K steps")
    g.add_argument("--no-timing", action="store_true",
                   help="leave samples_per_sec empty, so that two runs give byte-identical CSVs")


def _add_view(p: argparse.ArgumentParser, pace_help: str) -> None:
    g = p.add_argument_group("the app's view")
    g.add_argument("--pace", metavar="N", type=_int_at_least(1, "an integer >= 1 (steps per second)"),
                   help=pace_help)
    g.add_argument("--theme", metavar="NAME",
                   help="a Textual theme; bsim-projector is high-contrast black on white (t toggles it)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bsim", description="A terminal laboratory for minibatch noise in SGD.")
    parser.add_argument("--version", action="version", version=f"bsim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="run a scenario (the app, or --headless)")
    run.add_argument("scenario", nargs="?", default="default", help="a bundled name or a TOML file")
    _add_overrides(run)
    _add_headless(run)
    run.add_argument("--record", metavar="PATH.toml", help="record the session from the start")
    _add_view(run, "start at N steps per second (default: as fast as it goes; < and > change it)")
    run.add_argument("--served", action="store_true", help=argparse.SUPPRESS)   # started by `bsim serve`
    rep = sub.add_parser("replay", help="replay a recording (the app, or --headless)")
    rep.add_argument("recording", help="a recording TOML written by the app")
    _add_overrides(rep)
    _add_headless(rep)
    rep.set_defaults(steps=None, every=None)  # replay: to the recording's final step; export: see --every
    g = rep.add_argument_group("demo export (SVG screenshots of the app, no terminal needed)")
    g.add_argument("--export", metavar="DIR", help="write SVG screenshots of the app into DIR")
    g.add_argument("--at-captions", action="store_true", help="with --export: a screenshot at every caption")
    g.add_argument("--cast", action="store_true",
                   help="with --export: also DIR/replay.cast (asciicast v2, the captions as markers)")
    _add_view(rep, "replay at N steps per second (default: 100, a pace to talk over; < and > change it)")
    srv = sub.add_parser("serve", help="serve the app to a browser (needs the web extra: pip install 'bsim[web]')")
    srv.add_argument("scenario", nargs="?", default="default", help="a bundled name or a TOML file")
    srv.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=_int_at_least(1, "a port number 1-65535"), default=8000)
    srv.add_argument("--theme", metavar="NAME", help="the Textual theme every tab starts in")
    from bsim.app.serve import COLUMNS_RANGE, ROWS_RANGE
    for flag, (lo, hi), what in (("--columns", COLUMNS_RANGE, "columns"), ("--rows", ROWS_RANGE, "rows")):
        srv.add_argument(flag, metavar="N", type=_int_at_least(lo, f"a whole number of {what} from {lo} to {hi}", hi),
                         help=f"fit the font so that every tab shows at least N {what} (a projector: "
                              f"--columns 120 --rows 36)")
    sub.add_parser("scenarios", help="list the bundled scenarios")
    from bsim.sweep.command import add_arguments as _add_sweep
    _add_sweep(sub.add_parser("sweep", help="steps to a target loss against batch size; the critical batch size"))
    from bsim.race.command import add_arguments as _add_race
    race = sub.add_parser("race", help="batch sizes side by side from one start (the app, or --headless)")
    race.add_argument("scenario", nargs="?", default="default", help="a bundled name or a TOML file")
    _add_overrides(race)
    _add_headless(race)
    _add_view(race, "at most N lane steps per second, all lanes together (default: as fast as it goes)")
    _add_race(race)
    return parser


def _scenario_from_args(args) -> Scenario:  # noqa: F821
    from bsim.scenario import apply_overrides, find_scenario, overrides_from
    return apply_overrides(find_scenario(args.scenario), **overrides_from(args))


def cmd_scenarios() -> int:
    from bsim.scenario import bundled_names, find_scenario
    names = bundled_names()
    width = max(map(len, names))
    for name in names:
        sc = find_scenario(name)
        print(f"{name:<{width}}  {sc.title}: {sc.description}")
    return 0


def cmd_run(args) -> int:
    """`bsim run`: the app, or a headless run (with --record, a recording of it)."""
    import torch

    torch.set_num_threads(1)
    sc = _scenario_from_args(args)
    if not args.headless:
        from bsim.app import run_app
        return run_app(sc, record=args.record, pace=args.pace, theme=args.theme, served=args.served)
    from bsim.headless import run_headless
    from bsim.replay import run_headless_recorded
    from bsim.simulation import Simulation
    sim = Simulation(sc)
    from bsim.schedule.schedule import check_run_length
    check_run_length(sim.scenario, sim.n_train, steps=args.steps)     # a warm-up longer than the run
    for w in sim.scenario.warnings:
        print(f"bsim: warning: {w}", file=sys.stderr)
    if args.record:
        return run_headless_recorded(sim, args, args.record)
    return run_headless(sim, args.steps, args.metrics, args.every, timing=not args.no_timing)


def cmd_replay(args) -> int:
    """`bsim replay`: the app, an export of SVG frames, or a headless replay."""
    import torch

    from bsim import replay

    torch.set_num_threads(1)
    sc, info = replay.prepare(args)
    if sc.race is not None:     # a race recording
        from bsim.race.command import cmd_replay_race
        return _race_result(cmd_replay_race(sc, args))
    if args.export:
        from bsim.app.export import export_frames
        steps = replay.replay_steps(args, info, args.recording, sc.path)
        with replay.export_folder_locked(args.export):
            written = export_frames(sc, args.export, steps=steps, every=args.every, at_captions=args.at_captions,
                                    cast=args.cast)
        print(f"bsim: wrote {len(written)} files in {args.export}", file=sys.stderr)
        return 0
    if not args.headless:
        from bsim.app import run_app
        return run_app(sc, record=None, replay=True, pace=args.pace, theme=args.theme)
    return replay.replay_headless(sc, info, args)


def _race_result(result) -> int:
    """An exit code, or the race screen opened (bsim.race.command.OpenRaceScreen: the core never imports the app)."""
    if isinstance(result, int):
        return result
    from bsim.app.race import run_race_app
    code = run_race_app(result.race, **result.options)
    if result.after is not None:
        result.after()
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv or ["run"])
        if args.command == "scenarios":
            return cmd_scenarios()
        if args.command == "sweep":
            from bsim.sweep.command import OpenSweepScreen, cmd_sweep
            result = cmd_sweep(args)
            if isinstance(result, OpenSweepScreen):     # --show --app: the sweep never imports the app
                from bsim.app.sweep_screen import run_sweep_app
                return run_sweep_app(result.path)
            return result
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "race":
            from bsim.race.command import cmd_race
            return _race_result(cmd_race(args))
        if args.command == "run":
            return cmd_run(args)
        if args.command == "serve":
            if args.port > 65535:
                raise BsimInputError(f"bsim serve: --port {args.port}: expected a port number 1-65535")
            from bsim.app.serve import serve
            return serve(args.scenario, host=args.host, port=args.port, theme=args.theme, columns=args.columns,
                         rows=args.rows)
        parser.print_help()
        return 0
    except BsimInputError as exc:
        print(f"bsim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `bsim run --headless | head`: the reader left; say nothing more (stdout is gone)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # a scenario, recording or --metrics name over 255 bytes (or a path over 4096): no traceback
        print(f"bsim: error: {quote(str(exc.filename or ''))}: name too long; expected a file name of at most "
              f"255 bytes", file=sys.stderr)
        return 2
