"""Demo export: SVG screenshots of the app at chosen steps of a replay, without a terminal.

The app runs headless (``App.run_test``) at a fixed size with a runner that
takes no thread: this module steps it (``Runner.advance``), publishing a frame
every ``chunk`` steps as the live app would at replay speed, and saves a
screenshot at each chosen tick. Nothing depends on wall time (rates are left
out), so the same recording gives the same SVG files byte for byte.

At a caption, the replay stops before the step, shows the banner, and the
screenshot is taken there; then it goes on, as a presenter pressing space.

``python -m bsim.app.export --readme`` regenerates the README's pictures in
``screenshots/`` from bundled scenarios (see ``README_PICTURES``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from pathlib import Path

from bsim.atomic import atomic_write_text
from bsim.errors import BsimInputError

SIZE = (120, 36)      # columns x rows of the virtual terminal (the design's reference size)

#: README pictures: (file name in screenshots/, bundled scenario, the step of the picture)
README_PICTURES = (
    ("lecture.svg", "lecture", 4500),          # the B = 16 stop: its caption ("... Space: 4x again"), the settled ball
    ("default.svg", "default", 1500),          # the default scenario after 1500 steps
)


def frame_ticks(final_tick: int, timeline, every: int | None = None, at_captions: bool = False) -> list[int]:
    """Where to take screenshots: every K steps, at each caption, and at the last step, in order.

    Without --every or --at-captions: at the captions, or ten frames across the run if it has none.
    """
    if every is None and not at_captions:
        at_captions = any(ev.caption for ev in timeline)
        if not at_captions:
            every = max(1, math.ceil(final_tick / 10))
    ticks = {final_tick}
    if every:
        ticks.update(range(every, final_tick + 1, every))
    if at_captions:
        ticks.update(ev.at for ev in timeline if ev.caption and ev.at <= final_tick)
    return sorted(ticks)


def default_chunk(final_tick: int) -> int:
    """Steps between published frames: about 300 frames over the run, at most 50 (1000 steps/s at 20 fps)."""
    return max(1, min(50, math.ceil(final_tick / 300)))


def export_frames(sc, outdir: str | Path, steps: int, every: int | None = None, at_captions: bool = False,
                  size: tuple[int, int] = SIZE, cast: bool = False, chunk: int | None = None) -> list[Path]:
    """Replay ``sc`` to ``steps`` in the app and write ``step-NNNNNN.svg`` at each chosen tick.

    Returns the files written. With ``cast``, also ``replay.cast`` (asciicast v2, a
    frame per screenshot, each caption a marker). A folder that cannot be written
    is a ``BsimInputError``; so is a missing parent folder (only ``outdir`` itself is made).
    """
    out = Path(outdir)
    try:   # the folder itself may be new, its parent must exist: the rule of --metrics and --record too
        out.mkdir(exist_ok=True)
    except FileNotFoundError:
        raise BsimInputError(f"--export {out}: no folder {out.parent}; expected a folder whose parent exists "
                             f"(bsim makes only the last folder of the path)") from None
    except OSError as exc:
        raise BsimInputError(f"--export {out}: cannot make the folder: {exc.strerror or exc}; "
                             f"expected a writable folder") from None
    from bsim.recording import recording_info
    began = recording_info(sc).began_at     # the replay fast-forwards to where recording began
    ticks = [t for t in frame_ticks(steps, sc.timeline, every, at_captions) if t >= began] or [steps]
    shots = asyncio.run(_shoot(sc, ticks, size, chunk or default_chunk(steps)))
    written = []
    for tick, svg, _text, _caption in shots:
        written.append(_write(out / f"step-{tick:06d}.svg", svg))
    if cast:
        written.append(_write(out / "replay.cast", asciicast(shots, size)))
    return written


def _write(path: Path, text: str) -> Path:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise BsimInputError(f"{path}: cannot write: {exc.strerror or exc}; expected a writable folder") from None
    return path


async def _shoot(sc, ticks: list[int], size: tuple[int, int], chunk: int):
    """Run the app headless; returns [(tick, svg, ansi text, caption shown or None)]."""
    import torch

    from bsim.controls import Resume
    from bsim.app.app import BsimApp
    from bsim.simulation import Simulation

    torch.set_num_threads(1)
    sim = Simulation(sc)
    app = BsimApp(sim, scenario=sc, replay=True, threaded=False, timing=False,
                  screenshots_dir=Path("."), recordings_dir=Path("."))
    shots = []
    async with app.run_test(size=size) as pilot:
        runner = app.runner
        for target in ticks:
            stuck = 0
            while sim.tick < target and stuck < 3 and not sim.diverged:
                taken = runner.advance(min(chunk, target - sim.tick))
                if runner.paused and runner.replay and not sim.diverged:
                    runner.submit(Resume())   # held at a caption or a pause point: go on, as space would
                # (not at the recording's end: there the replay stops, its closing caption shown)
                stuck = 0 if taken else stuck + 1
            caption = None
            if runner.replay and sim.timeline.next_caption_at(sim.tick) == sim.tick:
                runner.advance(1)         # shows the banner and holds before the step
                caption = next(ev.caption for ev in sim.timeline.upcoming(sim.tick) if ev.caption)
            if shots and shots[-1][0] == sim.tick:
                continue                  # the run diverged before the target: one frame of that step
            await pilot.pause()
            title = f"bsim · {sc.title} · step {sim.tick}"
            shots.append((sim.tick, app.export_screenshot(title=title), _ansi(app), caption))
            if runner.paused:
                runner.submit(Resume())
    return shots


def _ansi(app) -> str:
    """The screen as ANSI text (what a terminal would show), for the asciicast."""
    import io

    from rich.console import Console
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    from bsim.app.compositor import screen_update
    console.print(screen_update(app))
    return console.export_text(styles=True)


def asciicast(shots, size: tuple[int, int], seconds_per_frame: float = 2.0) -> str:
    """asciicast v2: a header line, then [time, "o", screen] per screenshot and [time, "m", caption] markers."""
    lines = [json.dumps({"version": 2, "width": size[0], "height": size[1],
                         "env": {"TERM": "xterm-256color"}})]
    for i, (_tick, _svg, text, caption) in enumerate(shots):
        t = round(i * seconds_per_frame, 3)
        if caption:
            lines.append(json.dumps([t, "m", caption]))
        lines.append(json.dumps([t, "o", "\x1b[H\x1b[2J" + text.replace("\n", "\r\n")]))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- README pictures

def readme_pictures(outdir: str | Path = "screenshots") -> list[Path]:
    """Regenerate the README's pictures from bundled scenarios."""
    from bsim.scenario import find_scenario
    written = []
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, scenario, tick in README_PICTURES:
        sc = find_scenario(scenario)
        [(_, svg, _, _)] = asyncio.run(_shoot(sc, [tick], SIZE, default_chunk(tick)))
        written.append(_write(out / name, svg))
    from bsim.app.race.export import README_RACE, race_svg     # the race screen (bsim race)
    name, scenario, batch_sizes, lane_steps = README_RACE
    written.append(_write(out / name, race_svg(scenario, batch_sizes, lane_steps, SIZE)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bsim.app.export",
                                     description="Regenerate the README's pictures from bundled scenarios.")
    parser.add_argument("--readme", action="store_true", help="write the README pictures")
    parser.add_argument("--out", default="screenshots", help="folder (default: screenshots)")
    args = parser.parse_args(argv)
    if not args.readme:
        parser.print_help()
        return 0
    try:
        for path in readme_pictures(args.out):
            print(path)
    except BsimInputError as exc:
        print(f"bsim: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
