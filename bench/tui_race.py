"""Benchmark of the race screen in a real pseudo-terminal at 120x36, while every lane trains at full speed.

``python bench/tui.py --race [--lanes 4]`` (or ``python bench/tui_race.py``) prints, measured in one run:
  - frames/s: screen updates written to the terminal per second (goal >= 15 with 4 lanes);
  - lane steps/s in the app against the same race stepped headless in this process (reading a
    RaceFrame 20 times a second, as the runner does), before and after the app runs;
  - key-to-frame latency: from writing ``w`` (the loss chart's window) into the terminal to the first
    screen update drawn with the new window (median);
  - start-up: from spawning the app to the first screen update showing a lane step.

The lanes race on the default scenario by samples; batch sizes 8, 32, 128, 512 (4 lanes), or with
--lanes N > 4 the doublings 8, 16, ... The app runs as a child process (``--child``) whose screen
updates (App._display) are timestamped; the parent drains the terminal so the child never blocks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def race_batch_sizes(lanes: int) -> list[int]:
    """4 lanes or fewer: 8, 32, 128, 512 (a factor 4 apart); more: 8, 16, 32, ... (a factor 2)."""
    if lanes <= 4:
        return [8 * 4 ** i for i in range(lanes)]
    return [8 * 2 ** i for i in range(lanes)]


def child(out: str, scenario: str, sizes: list[int]) -> int:
    """The race screen, instrumented: each screen update's time, the loss window shown, the lane steps."""
    import torch

    from bsim.app.race.app import RaceApp
    from bsim.app.race.loss import RaceLossPanel
    from bsim.race.race import Race
    from bsim.scenario import find_scenario

    torch.set_num_threads(1)
    log = {"frames": [], "shown": []}

    class BenchRaceApp(RaceApp):
        def _display(self, screen, renderable):
            super()._display(screen, renderable)
            if renderable is None:
                return
            race = self.history.latest
            steps = sum(lane.frame.step for lane in race.lanes) if race is not None else 0
            whole = self.query_one(RaceLossPanel).whole_run
            log["frames"].append(time.time())
            log["shown"].append((time.time(), whole, steps))

    app = BenchRaceApp(Race(find_scenario(scenario), sizes))
    app.run()
    Path(out).write_text(json.dumps(log))
    return 0


def headless_lane_steps_per_sec(scenario: str, sizes: list[int], seconds: float) -> float:
    """The same race stepped with no screen, a RaceFrame read 20 times a second (as the runner publishes)."""
    import torch

    from bsim.race.race import Race
    from bsim.scenario import find_scenario

    torch.set_num_threads(1)
    race = Race(find_scenario(scenario), sizes)
    for _ in range(200):
        race.step()
    t0 = next_frame = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - t0 < seconds:
        race.step()
        n += 1
        if now >= next_frame:
            race.frame()
            next_frame = now + 0.05
    return n / (time.perf_counter() - t0)


def main(args) -> int:
    """The race bench: ``args`` from bench/tui.py's parser (rounds, seconds, key_every, smoke, scenario, lanes)."""
    import tui

    sizes = race_batch_sizes(args.lanes)
    headless_seconds = 0.5 if args.smoke else 4.0
    print(f"bench/tui.py --race: scenario {args.scenario}, lanes {','.join(map(str, sizes))} by samples, 120x36, "
          f"{args.rounds} rounds of {args.seconds:g} s with a key every {args.key_every:g} s; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    child_args = ["--race", "--lanes", str(args.lanes)]
    rounds = tui.measure(args.rounds, lambda: headless_lane_steps_per_sec(args.scenario, sizes, headless_seconds),
                         lambda: tui.run_app(args.scenario, args.seconds, args.key_every, child_args=child_args,
                                             keys="ww"),
                         lambda k: k % 2 == 0, unit="lane steps/s")   # key k toggles w: even keys show the whole race
    m = tui.medians(rounds)
    fps, all_lat = m["fps"], m["all_lat"]
    print(f"median of {len(rounds)} rounds, {len(sizes)} lanes:")
    print(f"  frames/s of the whole screen         {fps:8.1f}   (goal >= 15)   {'ok' if fps >= 15 else 'MISSED'}")
    print(f"  lane steps/s in the app / headless   {m['app']:8.0f} / {m['headless']:.0f} = {m['ratio']:.0%}")
    print(f"  key-to-frame latency (w), median     {m['lat']:8.1f} ms ({len(all_lat)} keys, max "
          f"{max(all_lat) if all_lat else float('nan'):.0f} ms)")
    print(f"  start-up to the first step shown     {m['startup']:8.2f} s")
    if args.smoke:
        return tui.smoke_exit(rounds, m)
    return 0

if __name__ == "__main__":     # CI runs every bench script with --smoke: this one is bench/tui.py --race
    sys.path.insert(0, str(Path(__file__).parent))
    import tui
    sys.exit(tui.main(["--race", *sys.argv[1:]]))
