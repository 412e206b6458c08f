"""Every key of the app, driven with Pilot: the effect on the simulation and on the screen.

The runner takes no thread here (``threaded=False``): a key's action is applied
at once and the test steps the simulation itself, so a key press never waits
for a busy training thread and every run is the same.
"""

from __future__ import annotations

import asyncio
import math
import tomllib

import pytest
from support.app import Driver, drive, panel_text
from textual import events

from bsim import controls
from bsim.app.format import noise_scale_text, num
from bsim.app.screens import AskScreen, HelpScreen
from bsim.scenario import find_scenario

# ------------------------------------------------------------------ tests

def test_space_n_pause_resume_and_single_step(tmp_path):
    async def script(d: Driver):
        r = d.app.runner
        assert r.paused
        await d.press("space")
        assert not r.paused and d.notice == "running"
        await d.press("space")
        assert r.paused and d.notice.startswith("paused at step 0")
        await d.press("n")
        assert d.sim.step_count == 1 and "one step" in d.notice
        # the panels show that step's batch gradient, measured independently here
        g = float(d.sim.last_grad.norm())
        assert f"|g_B| {num(g)}" in panel_text(d.app, "gradient")
        await d.press("n")
        assert d.sim.step_count == 2
        assert "step        2" in panel_text(d.app, "counters")
    drive(tmp_path, script)


def test_brackets_halve_and_double_the_batch_size_on_screen(tmp_path):
    async def script(d: Driver):
        await d.steps(3)
        await d.press("right_square_bracket")
        assert d.sim.batch_size == 16 and d.notice == "batch size 8 -> 16"
        assert "batch size  16  (N = 256)" in d.text
        await d.steps(1)
        assert d.app.history.latest.batch_size == 16      # the very next step uses it
        await d.press("left_square_bracket", "left_square_bracket")
        assert d.sim.batch_size == 4
        for _ in range(3):
            await d.press("left_square_bracket")
        assert d.sim.batch_size == 1 and "already 1" in d.errors[-1]
        await d.press("9", "right_square_bracket")    # 256 = N: ] says so
        assert d.sim.batch_size == 256 and "already N = 256" in d.errors[-1]
        assert "batch size  256  (N = 256)" in d.text
    drive(tmp_path, script)


@pytest.mark.parametrize("key,expected", [("1", 1), ("2", 2), ("4", 8), ("6", 32), ("8", 128)])
def test_number_keys_are_powers_of_two(tmp_path, key, expected):
    async def script(d: Driver):
        await d.press(key)
        assert d.sim.batch_size == expected == 2 ** (int(key) - 1)
    drive(tmp_path, script)


@pytest.mark.slow
def test_b_types_a_batch_size_and_bad_input_is_a_notice(tmp_path):
    async def script(d: Driver):
        await d.press("b")
        await d.type_answer("64")
        assert d.sim.batch_size == 64 and d.notice == "batch size 8 -> 64"
        for bad in ("abc", "0", "2.5"):
            await d.press("b")
            await d.type_answer(bad)
            assert d.sim.batch_size == 64 and "expected an integer >= 1" in d.errors[-1], bad
        await d.press("b")
        await d.type_answer("5000")
        assert d.sim.batch_size == 256 and "clamped: 5000 is above N = 256" in d.notice
        await d.press("b", "escape")                  # cancelled: nothing changes
        assert d.sim.batch_size == 256 and not isinstance(d.app.screen, AskScreen)
    drive(tmp_path, script)


def test_minus_plus_halve_and_double_the_lr(tmp_path):
    async def script(d: Driver):
        await d.press("minus")
        assert d.sim.lr == 0.025 and d.notice == "lr 0.05 -> 0.025"
        await d.press("plus", "plus")
        assert d.sim.lr == 0.1
        await d.press("equals_sign")                  # + without shift
        assert d.sim.lr == 0.2
        assert "lr          0.2" in d.text
    drive(tmp_path, script)


def test_l_cycles_lr_scaling_and_the_lr_follows_b(tmp_path):
    async def script(d: Driver):
        await d.press("l")
        assert d.sim.lr_scaling == "linear" and d.notice == "lr scaling none -> linear"
        await d.press("right_square_bracket")         # B x 2 under linear scaling: lr x 2
        assert d.sim.batch_size == 16 and d.sim.lr == pytest.approx(0.1)
        assert "lr 0.05 -> 0.1 (linear scaling)" in d.notice
        await d.press("l")
        assert d.sim.lr_scaling == "sqrt"
        await d.press("right_square_bracket")         # B x 2 under sqrt scaling: lr x sqrt 2
        assert d.sim.lr == pytest.approx(0.1 * math.sqrt(2))
        await d.press("l")
        assert d.sim.lr_scaling == "none"
        assert "lr scaling  none" in d.text
    drive(tmp_path, script)


def test_s_cycles_sampling(tmp_path):
    async def script(d: Driver):
        seen = []
        for _ in range(3):
            await d.press("s")
            seen.append(d.sim.sampling)
        assert seen == ["iid", "replacement", "shuffle"]
        assert d.notice == "sampling replacement -> shuffle"
    drive(tmp_path, script)


def test_f_and_shift_f_change_the_speed_cap(tmp_path):
    async def script(d: Driver):
        await d.press("F")
        assert d.app.runner.speed == controls.SPEEDS[-2] and d.notice == "speed max -> 10,000 steps/s"
        await d.press("F", "F")
        assert d.app.runner.speed == controls.SPEEDS[-4]
        await d.press("f")
        assert d.app.runner.speed == controls.SPEEDS[-3]
        assert "≤5,000 steps/s" in d.text
    drive(tmp_path, script)


def test_r_resets_to_step_zero_and_clears_the_plots(tmp_path):
    async def script(d: Driver):
        await d.steps(40)
        await d.press("right_square_bracket")
        await d.press("r")
        assert d.sim.step_count == 0 and d.sim.batch_size == 16
        assert d.notice.startswith("reset: step 0")
        await d.steps(1)
        assert d.app.history.latest.step == 1 and len(d.app.history.trace) == 1
    drive(tmp_path, script)


def test_p_switches_problem_and_the_header_says_so(tmp_path):
    async def script(d: Driver):
        await d.steps(5)
        await d.press("p")
        assert d.sim.problem.kind == "logreg" and d.notice.startswith("problem linreg -> logreg")
        await d.steps(5)
        assert "logreg · d=2" in d.text
        await d.press("p")
        assert d.sim.problem.kind == "lstm"
        await d.steps(2)
        # the LSTM has no optimum: the ball panel says why instead of staying blank
        assert "no known optimum" in panel_text(d.app, "ball")
        await d.press("p")
        assert d.sim.problem.kind == "softmax" and d.sim.problem.n_params == 6     # three classes in 2-D
    drive(tmp_path, script)


def test_y_toggles_the_loss_axis(tmp_path):
    async def script(d: Driver):
        await d.steps(50)
        assert "log (y)" in panel_text(d.app, "loss")
        await d.press("y")
        assert "linear (y)" in panel_text(d.app, "loss") and d.notice == "loss axis: linear scale"
    drive(tmp_path, script)


def test_ctrl_s_writes_an_svg_screenshot(tmp_path):
    async def script(d: Driver):
        await d.steps(20)
        await d.press("ctrl+s")
    app, _ = drive(tmp_path, script)
    files = list((tmp_path / "screenshots").iterdir())
    assert len(files) == 1 and files[0].suffix == ".svg"     # no temporary file left beside it
    svg = files[0].read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "Counters" in svg and "screenshot saved" in app.notices[-1][1]


def test_ctrl_s_into_an_unwritable_place_is_a_notice(tmp_path):
    (tmp_path / "screenshots").write_text("a file where the folder should be")

    async def script(d: Driver):
        await d.press("ctrl+s")
        assert "cannot write the screenshot" in d.errors[-1]
        await d.steps(2)                                  # the app goes on
    drive(tmp_path, script)


def test_question_mark_opens_the_help(tmp_path):
    async def script(d: Driver):
        await d.press("question_mark")
        assert isinstance(d.app.screen, HelpScreen)
        text = d.text
        for title in ("Counters", "Loss", "Batch gradient", "Variance across batches", "ε-ball"):
            assert title in text
        await d.press("escape")
        assert not isinstance(d.app.screen, HelpScreen)
    drive(tmp_path, script)


def test_shift_r_records_and_c_adds_a_caption(tmp_path):
    async def script(d: Driver):
        await d.press("c")
        assert "press R" in d.errors[-1] and not isinstance(d.app.screen, AskScreen)
        await d.steps(5)
        await d.press("R")
        assert "recording to" in d.notice and "● rec" in d.text
        await d.press("c")
        await d.type_answer("B grows")
        await d.press("right_square_bracket")
        await d.steps(5)
        await d.press("R")
        assert "recording saved" in d.notice
    drive(tmp_path, script)
    [path] = (tmp_path / "recordings").glob("*.toml")
    data = tomllib.loads(path.read_text())
    assert [(e["at"], e.get("caption"), e.get("batch_size")) for e in data["timeline"]] == [
        (5, "B grows", None), (5, None, 16)]
    assert data["recording"]["final_step"] == 10


def test_record_flag_records_from_step_zero(tmp_path):
    target = tmp_path / "talk.toml"

    async def script(d: Driver):
        await d.steps(3)
        await d.press("left_square_bracket")
        await d.steps(3)
        await d.press("q")
    drive(tmp_path, script, record=str(target))
    data = tomllib.loads(target.read_text())
    assert data["recording"]["began_at"] == 0 and data["recording"]["final_tick"] == 6
    assert data["timeline"] == [{"at": 3, "batch_size": 4}]


def test_j_jumps_to_the_next_caption_of_a_replay(tmp_path):
    async def script(d: Driver):
        await d.steps(1)                                  # held before step 0 at the first caption
        assert d.sim.tick == 0 and d.app.runner.paused
        assert "B = 4: the iterates wander" in d.text
        await d.press("j")
        assert d.sim.tick == 3000 and d.app.runner.paused
        assert "4x the batch" in d.text
        await d.press("space")
        await d.steps(2)
        assert d.sim.batch_size == 16
        await d.press("right_square_bracket")             # a setting changed: the rest is dropped
        assert "took over" in " ".join(t for _, t in d.app.notices[-2:])
        await d.press("j")
        assert "no caption ahead" in d.errors[-1]
    drive(tmp_path, script, sc=find_scenario("ball-shrinks"), replay=True, paused=False)


def test_a_diverging_run_pauses_with_a_hint_and_never_crashes(tmp_path):
    async def script(d: Driver):
        await d.press("space")
        for _ in range(7):
            await d.press("plus")                         # lr 0.05 x 128 = 6.4: unstable
        await d.steps(400)
        assert d.sim.diverged and d.app.runner.paused
        assert "lower the lr" in d.errors[-1] and "diverged" in d.text
        await d.press("space")                            # resume at a bad moment: a notice
        assert "reset" in d.errors[-1]
        await d.press("n", "right_square_bracket", "s", "j", "y")  # keys at bad moments: notices only
        await d.press("minus", "minus", "minus", "minus", "minus", "minus", "minus", "r", "space")
        assert not d.sim.diverged and not d.app.runner.paused
        await d.steps(50)
        assert math.isfinite(d.app.history.latest.train_loss)
    drive(tmp_path, script)


def test_q_quits_with_exit_code_zero(tmp_path):
    async def script(d: Driver):
        await d.steps(2)
        await d.press("q")
    app, _ = drive(tmp_path, script)
    assert app.return_code == 0


def test_too_small_a_terminal_says_so(tmp_path):
    async def script(d: Driver):
        await d.steps(5)
        text = d.text
        assert "bsim needs at least 70x20" in text and "Counters" not in text
        await d.pilot.resize_terminal(80, 24)
        await d.pilot.pause()
        text = d.text
        assert "needs at least" not in text
        for title in ("Counters", "Loss", "Batch gradient", "Variance", "ε-ball"):
            assert title in text
    drive(tmp_path, script, size=(60, 16))


def test_panels_show_the_statistics_of_the_frame(tmp_path):
    async def script(d: Driver):
        for _ in range(6):
            await d.steps(50)
        await d.press("right_square_bracket")
        for _ in range(6):
            await d.steps(50)
        f = d.app.history.latest
        assert d.app.history.b_changes[-1] == (300, 8, 16)
        assert "B16" in panel_text(d.app, "loss")       # the mark at the change, labelled with the new B
        pt = next(p for p in f.stats.variance_measured if p.batch_size == 16)
        var = panel_text(d.app, "variance")
        assert f"B=16 meas {num(pt.grad_noise_mean)} theory {num(pt.theory_mean)}" in var
        shown = noise_scale_text(f.stats.noise_scale_smoothed, f.n_train)[0]     # "> N = 256" past N
        assert f"B_simple    {shown}" in panel_text(d.app, "counters")
        ball = f.ball
        assert f"pred {num(ball.radius_theory)} {ball.kind}" in panel_text(d.app, "ball")
    drive(tmp_path, script)


def test_five_quick_brackets_reach_256_and_the_recording_holds_what_ran(tmp_path):
    """] is applied by the runner to the batch size it reaches, not to the last frame's (a stale frame
    made five quick ] from B = 8 give 16): B = 256 on screen, and the recording holds 16 ... 256."""
    rec = tmp_path / "quick.toml"

    async def script(d: Driver):
        for _ in range(5):          # a burst, as a terminal delivers it: all five before any frame comes back
            d.app.post_message(events.Key("right_square_bracket", None))
        for _ in range(60):                       # the runner's thread answers: wait for its frame
            if d.app.history.latest is not None and d.app.history.latest.next_batch_size == 256:
                break
            await asyncio.sleep(0.05)
            await d.pilot.pause()
        assert "batch size  256  (N = 256)" in d.text
        assert [n for k, n in d.app.notices if n.startswith("batch size")][-5:] == [
            f"batch size {b} -> {2 * b}" for b in (8, 16, 32, 64, 128)]
    app, _ = drive(tmp_path, script, threaded=True, record=str(rec))
    timeline = tomllib.loads(rec.read_text())["timeline"]
    assert [ev["batch_size"] for ev in timeline if "batch_size" in ev] == [16, 32, 64, 128, 256]
