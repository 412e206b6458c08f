"""Benchmark of the app in a real pseudo-terminal at 120x36, while training runs at full speed.

Prints, measured in one run:
  - frames/s: screen updates written to the terminal per second (goal >= 15);
  - steps/s in the app against the same scenario stepped headless in this process,
    before the app starts (goal: the app keeps >= 50% of it);
  - key-to-frame latency: from writing ``]`` / ``[`` into the terminal to the first
    screen update whose counters show the new batch size (median; goal <= 100 ms);
  - start-up: from spawning ``bsim`` to the first screen update showing a step taken.

The app runs as a child process (``python bench/tui.py --child``): the real app
with its runner thread, whose screen updates (App._display) are timestamped;
the parent drains the terminal so the child never blocks on output.

    python bench/tui.py [--scenario default] [--seconds 10] [--chains 256] [--data-panel]

``--chains K`` runs the scenario with an ensemble of K chains (the ball panel's
cloud; headless runs the same K), ``--data-panel`` shows the data panel (d).
``--race [--lanes 4]`` measures the race screen instead (bench/tui_race.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


# ------------------------------------------------------------------ the child: the app, instrumented
def _scenario(name: str, chains: int):
    from bsim.scenario import find_scenario
    sc = find_scenario(name)
    sc.chains = chains
    return sc


def child(out: str, scenario: str, chains: int = 1, data_panel: bool = False) -> int:
    import torch

    from bsim.app.app import BsimApp
    from bsim.simulation import Simulation

    torch.set_num_threads(1)
    log = {"frames": [], "shown": []}

    class BenchApp(BsimApp):
        def _start_runner(self, sim, **kw):
            super()._start_runner(sim, **kw)
            if os.environ.get("BSIM_BENCH_MAX_YIELD"):   # experiments: how long the runner yields per frame
                self.runner.max_yield = float(os.environ["BSIM_BENCH_MAX_YIELD"])
            if data_panel:      # (Textual calls every class's on_mount: a second one would start a second runner)
                self.call_after_refresh(self.action_toggle_data)

        def _display(self, screen, renderable):
            super()._display(screen, renderable)
            if renderable is None:
                return
            f = self.history.latest
            log["frames"].append(time.time())
            log["shown"].append((time.time(), f.next_batch_size if f else None, f.tick if f else 0))

    sc = _scenario(scenario, chains)
    app = BenchApp(Simulation(sc), scenario=sc)
    app.run()
    Path(out).write_text(json.dumps(log))
    return 0


def screenshot(path: Path, size: tuple[int, int], scenario: str = "default") -> Path:
    """The app's own SVG screenshot (ctrl+s) of a fixed run: 1500 steps, ] (B 8 -> 16), 1500 more.

    Stepped from here without a thread and without rates, so the picture is the same every time.
    """
    import asyncio

    import torch

    from bsim.app.app import BsimApp
    from bsim.scenario import find_scenario
    from bsim.simulation import Simulation

    torch.set_num_threads(1)

    async def go():
        sc = find_scenario(scenario)
        app = BsimApp(Simulation(sc), scenario=sc, threaded=False, paused=True, timing=False)
        async with app.run_test(size=size) as pilot:
            for i in range(60):
                if i == 30:
                    await pilot.press("right_square_bracket")
                app.runner.advance(50)
                await pilot.pause()
            await pilot.pause()
            return app.save_svg(path)
    return asyncio.run(go())


# ------------------------------------------------------------------ the parent
def headless_steps_per_sec(scenario: str, seconds: float, chains: int = 1) -> float:
    """The same scenario stepped with no screen (noise statistics on, as in the app)."""
    import torch

    from bsim.simulation import Simulation

    torch.set_num_threads(1)
    sim = Simulation(_scenario(scenario, chains))
    sim.run(200)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        n += sim.run(200)
        sim.frame()                  # the runner reads a frame 20 times a second; this is about as often
    return n / (time.perf_counter() - t0)


def run_app(scenario: str, seconds: float, key_every: float, chains: int = 1, data_panel: bool = False,
            child_args: list[str] | None = None, keys: str = "][") -> dict:
    """The app in a pseudo-terminal: ``keys`` sent in turn, one every ``key_every`` s; the child's log.

    ``child_args``: the child's options (default: the chains and the data panel).
    """
    import pexpect

    out = Path(tempfile.mkdtemp(prefix="bsim-bench-")) / "log.json"
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    t_spawn = time.time()
    extra = child_args if child_args is not None else (
        ["--chains", str(chains)] + (["--data-panel"] if data_panel else []))
    proc = pexpect.spawn(sys.executable, [__file__, "--child", str(out), "--scenario", scenario] + extra,
                         dimensions=(36, 120), env=env, cwd=str(out.parent), encoding="utf-8",
                         codec_errors="replace", timeout=5)
    proc.delaybeforesend = None      # pexpect sleeps 50 ms before each send by default
    tail = [""]

    def drain(for_seconds: float) -> None:
        end = time.time() + for_seconds
        while time.time() < end:
            try:
                tail[0] = (tail[0] + proc.read_nonblocking(1 << 16, timeout=max(min(end - time.time(), 0.02), 0.001)))[-4000:]
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                raise SystemExit(f"bench/tui.py: the app ended early; its last output:\n{tail[0]}") from None

    drain(4.0)                       # start-up and warm-up
    key_cycle, sent, b = keys, [], None
    t_start = time.time()
    while time.time() - t_start < seconds:
        key = key_cycle[len(sent) % len(key_cycle)]
        sent.append((time.time(), key))
        proc.send(key)
        drain(key_every)
    t_end = time.time()
    proc.send("q")
    try:
        proc.expect(pexpect.EOF, timeout=30)
    finally:
        proc.close(force=True)
    log = json.loads(out.read_text())
    log.update(t_spawn=t_spawn, t_start=t_start, t_end=t_end, keys=sent, exit=proc.exitstatus)
    del b
    return log


def analyse(log: dict, want_after_key) -> dict:
    """Frames/s, steps/s shown and each key's latency: from the key to the first frame whose shown value
    (the log's "shown" rows are (time, value, steps)) is ``want_after_key(k)`` for the k-th key (0-based)."""
    t0, t1 = log["t_start"], log["t_end"]
    frames = [t for t in log["frames"] if t0 <= t <= t1]
    shown = [s for s in log["shown"] if t0 <= s[0] <= t1]
    fps = len(frames) / (t1 - t0)
    steps = (shown[-1][2] - shown[0][2]) / (shown[-1][0] - shown[0][0]) if len(shown) > 1 else 0.0
    lat = []
    for k, (t_key, _key) in enumerate(log["keys"]):
        want = want_after_key(k)
        hit = next((t for t, shown, _ in log["shown"] if t >= t_key and shown == want), None)
        if hit is not None:
            lat.append(hit - t_key)
    first_step = next((t for t, _, tick in log["shown"] if tick > 0), None)
    return {"fps": fps, "app_steps_per_sec": steps, "latency_ms": [x * 1000 for x in lat],
            "startup_s": (first_step - log["t_spawn"]) if first_step else None, "keys": len(log["keys"])}


def measure(n_rounds: int, headless, run, want_after_key, unit: str = "steps/s") -> list[dict]:
    """``n_rounds`` app runs (``run()``: a log), each between two headless rates (``headless()``), analysed and
    printed a line each."""
    rounds = []
    for i in range(n_rounds):
        before = headless()
        log = run()
        after = headless()
        r = analyse(log, want_after_key)
        r["headless"] = (before + after) / 2     # the machine's load may change while the app runs
        r["ratio"] = r["app_steps_per_sec"] / r["headless"]
        r["median_ms"] = statistics.median(r["latency_ms"]) if r["latency_ms"] else float("nan")
        r["exit"] = log["exit"]
        rounds.append(r)
        print(f"  round {i + 1}: {r['fps']:.1f} frames/s, {r['app_steps_per_sec']:.0f} {unit} in the app against "
              f"{r['headless']:.0f} headless (before {before:.0f}, after {after:.0f}) = {r['ratio']:.0%}, "
              f"key-to-frame median {r['median_ms']:.0f} ms, start-up {r['startup_s'] or float('nan'):.2f} s, "
              f"exit {r['exit']}")
    return rounds


def medians(rounds: list[dict]) -> dict:
    """The rounds' medians (fps, ratio, app_steps_per_sec, headless, latency, start-up) and every key's latency."""
    def med(key):
        return statistics.median(r[key] for r in rounds)
    startups = [r["startup_s"] for r in rounds if r["startup_s"] is not None]
    return {"fps": med("fps"), "ratio": med("ratio"), "app": med("app_steps_per_sec"), "headless": med("headless"),
            "lat": med("median_ms"), "all_lat": [x for r in rounds for x in r["latency_ms"]],
            "startup": statistics.median(startups) if startups else float("nan")}


def smoke_exit(rounds: list[dict], m: dict) -> int:
    """What CI checks of a --smoke run (exit 0): the app ran, answered keys and quit cleanly; no goal judged."""
    print("smoke run: the app must run, answer keys and quit; the goals are judged only in a full run "
          "(3 rounds of 10 s)")
    return 0 if rounds[0]["exit"] == 0 and rounds[0]["keys"] and m["all_lat"] else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="default")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--key-every", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3, help="app runs, each between two headless runs (median shown)")
    p.add_argument("--smoke", action="store_true",
                   help="CI: 1 round of 2 s (headless 0.5 s): the app starts, answers keys and quits; no goal judged")
    p.add_argument("--chains", type=int, default=1, help="an ensemble of K chains (the ball panel's cloud)")
    p.add_argument("--data-panel", action="store_true", help="show the data panel (d) instead of the gradient")
    p.add_argument("--race", action="store_true", help="the race screen (bench/tui_race.py) instead of the app")
    p.add_argument("--lanes", type=int, default=4, help="with --race: how many lanes (8, 32, 128, 512 for 4)")
    p.add_argument("--child", metavar="OUT.json", help=argparse.SUPPRESS)
    p.add_argument("--screenshots", action="store_true",
                   help="write screenshots/app-120x36.svg and app-80x24.svg (the README's) and stop")
    args = p.parse_args(argv)
    headless_seconds = 4.0
    if args.smoke:
        args.rounds, args.seconds, headless_seconds = 1, 2.0, 0.5
    if args.race and not 1 <= args.lanes <= 8:
        p.error(f"--lanes {args.lanes}: expected 1 to 8")
    if args.child and args.race:
        import tui_race
        return tui_race.child(args.child, args.scenario, tui_race.race_batch_sizes(args.lanes))
    if args.child:
        return child(args.child, args.scenario, args.chains, args.data_panel)
    if args.screenshots:
        for size in ((120, 36), (80, 24)):
            print(screenshot(Path("screenshots") / f"app-{size[0]}x{size[1]}.svg", size))
        return 0

    if args.race:
        import tui_race
        return tui_race.main(args)
    from bsim.scenario import find_scenario
    base_b = find_scenario(args.scenario).optimizer.batch_size
    print(f"bench/tui.py: scenario {args.scenario}, 120x36, {args.rounds} rounds of {args.seconds:g} s of training "
          f"with a key every {args.key_every:g} s, chains {args.chains}, data panel {'on' if args.data_panel else 'off'}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    rounds = measure(args.rounds, lambda: headless_steps_per_sec(args.scenario, headless_seconds, args.chains),
                     lambda: run_app(args.scenario, args.seconds, args.key_every, args.chains, args.data_panel),
                     lambda k: 2 * base_b if k % 2 == 0 else base_b)   # even keys double B, odd ones halve it back
    m = medians(rounds)
    fps, ratio, lat, all_lat = m["fps"], m["ratio"], m["lat"], m["all_lat"]
    print(f"median of {len(rounds)} rounds:")
    print(f"  frames/s of the whole screen      {fps:8.1f}   (goal >= 15)   {'ok' if fps >= 15 else 'MISSED'}")
    print(f"  steps/s in the app / headless     {m['app']:8.0f} / {m['headless']:.0f} = {ratio:.0%}"
          f"   (goal >= 50%)   {'ok' if ratio >= 0.5 else 'MISSED'}")
    print(f"  key-to-frame latency, median      {lat:8.1f} ms (goal <= 100 ms; {len(all_lat)} keys, max "
          f"{max(all_lat) if all_lat else float('nan'):.0f} ms)   {'ok' if lat <= 100 else 'MISSED'}")
    print(f"  start-up to the first step shown  {m['startup']:8.2f} s")
    if args.smoke:
        return smoke_exit(rounds, m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
