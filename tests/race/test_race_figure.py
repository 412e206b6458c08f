"""`bsim race --export FILE.svg`: the figure of the lanes' learning curves (read back from the SVG), and the
generalization gap over the chains (against a direct NumPy computation)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from support.cli import read_rows, run_cli

from bsim.app.race.table import _gap
from bsim.ensemble.gap import race_gap_lines
from bsim.race import figure
from bsim.race.race import Race
from bsim.scenario import find_scenario

SVG = "{http://www.w3.org/2000/svg}"
SIZES = (1, 2, 4, 8, 16, 32, 64, 128)


def panels(path) -> list[dict]:
    """Each panel of the figure: its lane, and its train and test curves as (epochs, accuracy) read back
    through the panel's axes."""
    out = []
    for g in ET.parse(path).getroot().iter(f"{SVG}g"):
        if g.get("class") != "panel":
            continue
        x0, y0, w, h = (float(g.get(k)) for k in ("data-x0", "data-y0", "data-width", "data-height"))
        epochs, lo, hi = (float(g.get(k)) for k in ("data-epochs", "data-acc-lo", "data-acc-hi"))
        curves = {}
        for line in g.iter(f"{SVG}polyline"):
            pts = np.array([[float(v) for v in p.split(",")] for p in line.get("points").split()])
            curves[line.get("class")] = ((pts[:, 0] - x0) / w * epochs, hi - (pts[:, 1] - y0) / h * (hi - lo),
                                         line.get("stroke-dasharray"))
        out.append({"lane": int(g.get("data-lane")), **curves})
    return out


@pytest.mark.slow
def test_the_exported_figure_has_a_panel_per_lane_with_train_and_test_curves(tmp_path, capsys, monkeypatch):
    """Eight lanes by samples; each panel's last test point equals the single run's test accuracy at the
    lane's last step (bsim run --batch-size B), each curve starts at theta_0's accuracy (the same in every
    panel) and has a point every 1/8 epoch. (iid sampling: the shuffled ball's prediction is not needed here)"""
    monkeypatch.setattr(figure, "RENDERERS", ())      # no PNG: a browser's start is slow on a loaded machine
    svg = tmp_path / "fig.svg"
    ran = run_cli(capsys, "race", "logreg", "--batch-sizes", ",".join(map(str, SIZES)), "--by", "samples",
                  "--headless", "--no-timing", "--samples", "256", "--metrics", tmp_path / "race.csv",
                  "--every", "100000", "--export", svg, "--sampling", "iid")
    assert ran.code == 0, ran.err
    assert f"bsim: wrote {svg}; no PNG: no SVG renderer on this machine" in ran.err
    got = panels(svg)
    assert [p["lane"] for p in got] == list(SIZES)
    lanes = {int(r["lane"]): r for r in read_rows(tmp_path / "race.csv")}
    first = got[0]["train"][1][0], got[0]["test"][1][0]
    for p in got:
        (e_train, a_train, dash_train), (e_test, a_test, dash_test) = p["train"], p["test"]
        assert list(e_train) == list(e_test)
        assert dash_train is None and dash_test is not None         # train solid, test dashed
        assert len(a_train) == len(a_test) == 3                     # theta_0, 1/8 epoch (128 of 1024), the end
        assert (a_train[0], a_test[0]) == pytest.approx(first, abs=1e-3)
        row = lanes[p["lane"]]
        assert e_test[-1] == pytest.approx(float(row["epoch"]), abs=1e-3)
        assert a_test[-1] == pytest.approx(float(row["test_acc"]), abs=1e-3)
        assert a_train[-1] == pytest.approx(float(row["train_acc"]), abs=1e-3)
    single = tmp_path / "single.csv"
    ran = run_cli(capsys, "run", "logreg", "--batch-size", "8", "--headless", "--no-timing", "--steps", "32",
                  "--metrics", single, "--sampling", "iid")
    assert ran.code == 0
    assert float(read_rows(single)[-1]["test_acc"]) == pytest.approx(got[3]["test"][1][-1], abs=1e-3)


def test_export_of_a_problem_without_accuracy_or_to_another_suffix_is_one_line_and_exit_2(tmp_path, capsys):
    for scenario, path, words in (("default", tmp_path / "f.svg", "the linreg problem has no accuracy"),
                                  ("logreg", tmp_path / "f.png", "expected a file name ending in .svg"),
                                  ("logreg", tmp_path / "no" / "f.svg", "no such folder")):
        ran = run_cli(capsys, "race", scenario, "--batch-sizes", "8,64", "--headless", "--steps", "2",
                      "--export", path)
        assert ran.code == 2 and ran.err.count("\n") == 1 and words in ran.err, ran.err


def test_without_a_renderer_the_png_is_left_out_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(figure.shutil, "which", lambda name: None)
    (tmp_path / "f.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    why = figure.write_png(tmp_path / "f.svg", tmp_path / "f.png", (10, 10))
    assert why == "no PNG: no SVG renderer on this machine (rsvg-convert, ImageMagick, or Chromium)"
    assert not (tmp_path / "f.png").exists()


def test_the_gap_is_train_minus_test_accuracy_over_the_chains_with_its_standard_error():
    """Against NumPy on the chains' own parameters: a_k = mean[(X theta_k > 0) == y] on each split."""
    sc = find_scenario("logreg")
    sc.optimizer.sampling = "iid"
    race = Race(sc, [4, 64], chains=5)
    for _ in range(100):
        race.step()
    frame = race.frame(timing=False)
    for lane, lf in zip(race.lanes, frame.lanes):
        thetas = lane.sim.ensemble.live_thetas().double().numpy()
        p = lane.sim.problem
        X, y, Xt, yt = (t.double().numpy() for t in (p.X, p.y, p.X_test, p.y_test))
        d = [np.mean((X @ th > 0) == y) - np.mean((Xt @ th > 0) == yt) for th in thetas]
        g = lf.frame.chains_gap
        assert g.chains == 5 and len(set(d)) > 1
        assert g.gap == pytest.approx(np.mean(d), abs=1e-12)
        assert g.se == pytest.approx(np.std(d, ddof=1) / np.sqrt(5), abs=1e-12)
        assert _gap(lf.frame) == f"{100 * np.mean(d):+.1f}±{100 * np.std(d, ddof=1) / np.sqrt(5):.1f}"
        line = race_gap_lines(race)[race.lanes.index(lane)]
        assert line.startswith(f"B={lane.batch_size} at epoch {lane.sim.sampler.epoch:.1f}: ")
        assert line.endswith(f"train - test {100 * np.mean(d):+.1f} ± {100 * np.std(d, ddof=1) / np.sqrt(5):.1f} "
                             f"points (mean ± se over 5 chains)")


def test_on_the_race_screen_the_figure_is_written_once_the_screen_is_closed(tmp_path, monkeypatch, capsys):
    """Without --headless the CLI opens the screen (here a stand-in that steps the race, as the screen's
    runner does), then writes the figure of what the lanes did."""
    import bsim.app.race as race_app
    from bsim.cli import _race_result, build_parser
    from bsim.race.command import OpenRaceScreen, cmd_race

    monkeypatch.setattr(figure, "RENDERERS", ())
    svg = tmp_path / "fig.svg"
    args = build_parser().parse_args(["race", "logreg", "--batch-sizes", "8,64", "--sampling", "iid",
                                      "--export", str(svg)])
    result = cmd_race(args)
    assert isinstance(result, OpenRaceScreen) and not svg.exists()

    def screen(race, **options):
        for _ in range(40):
            race.step()
        return 0
    monkeypatch.setattr(race_app, "run_race_app", screen)
    assert _race_result(result) == 0
    got = panels(svg)
    assert [p["lane"] for p in got] == [8, 64] and all(len(p["test"][1]) > 2 for p in got)
    assert "no PNG" in capsys.readouterr().err
