"""What a served app (``bsim serve``) lets a browser open, and ``bsim serve`` without the web extra."""

from __future__ import annotations

import sys

import pytest
from support.app import Driver, drive, palette, small

from bsim.app.serve import WEB_EXTRA_MISSING, check_served_path, check_served_scenario
from bsim.cli import main
from bsim.scenario import find_scenario, load_scenario


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A served folder (the working folder): a scenario under it, one whose data lies outside, a link out."""
    served = tmp_path / "served"
    (served / "talks").mkdir(parents=True)
    (served / "talks" / "mine.toml").write_text('title = "mine"\n[problem]\nkind = "logreg"\n')
    (tmp_path / "outside.toml").write_text('title = "outside"\n')
    (tmp_path / "secret.csv").write_text("x,y\n1,0\n")
    (served / "leaky.toml").write_text('[problem]\nkind = "linreg"\ndata = "../secret.csv"\n')
    (served / "link.toml").symlink_to(tmp_path / "outside.toml")
    monkeypatch.chdir(served)
    return served


def test_a_served_app_opens_bundled_names_and_files_under_its_folder_only(served):
    outside = served.parent / "outside.toml"
    for bad in (str(outside), "../outside.toml", "talks/../../outside.toml", "~/outside.toml", "link.toml",
                "a\\..\\b.toml", " "):
        assert check_served_path(bad, served) is not None, bad
    for good in ("talks/mine.toml", "leaky.toml", "lstm", "default"):
        assert check_served_path(good, served) is None, good
    # a file under the folder whose data lies outside it: refused when loaded, before its data is read
    assert check_served_scenario(load_scenario(served / "leaky.toml"), served) is not None
    for good in (load_scenario(served / "talks" / "mine.toml"), find_scenario("logreg")):
        assert check_served_scenario(good, served) is None


@pytest.mark.slow
def test_the_served_app_refuses_with_a_notice_and_keeps_its_run(served, tmp_path):
    """The app's side of the rules above: a path refused, a file whose data lies outside refused, a file under
    the folder opened; a refusal names no path of the user's and keeps the run."""
    async def script(d: Driver):
        for bad in ("../outside.toml", "leaky.toml"):
            await palette(d, "Open scenario...")
            await d.type_answer(bad)
            assert d.errors[-1].startswith("cannot open that scenario:"), bad
            assert "outside" not in d.errors[-1] and d.sim.problem.kind == "linreg", bad
        await palette(d, "Open scenario...")
        await d.type_answer("talks/mine.toml")
        assert d.notice.startswith("opened talks/mine.toml") and d.sim.problem.kind == "logreg"
    drive(tmp_path, script, sc=small(), served=True)


@pytest.mark.slow
def test_a_terminal_app_still_opens_any_path(tmp_path):
    other = tmp_path / "elsewhere" / "x.toml"
    other.parent.mkdir()
    other.write_text('title = "anywhere"\n[problem]\nkind = "logreg"\n')

    async def script(d: Driver):
        await palette(d, "Open scenario...")
        await d.type_answer(str(other))
        assert d.notice.startswith("opened") and d.sim.problem.kind == "logreg"
    drive(tmp_path, script, sc=small())


def test_serve_without_the_web_extra_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "textual_serve", None)          # import textual_serve fails
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == f"bsim: error: {WEB_EXTRA_MISSING}\n" and "bsim[web]" in err


def test_serve_bad_scenario_theme_and_port_are_one_line(capsys):
    for argv, words in ((["serve", "no-such"], "no such scenario"), (["serve", "--theme", "neon"], "expected one of"),
                        (["serve", "--port", "70000"], "expected a port number"),
                        (["serve", "--port", "x"], "expected a port number"),
                        (["serve", "--columns", "0"], "expected a whole number of columns from 70 to 400"),
                        (["serve", "--columns", "-120"], "expected a whole number of columns"),
                        (["serve", "--rows", "1000000000000"], "expected a whole number of rows from 20 to 150"),
                        (["serve", "--rows", "36.5"], "expected a whole number of rows")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, (argv, err)


def test_the_served_page_asks_for_the_columns_and_rows_given(tmp_path):
    """The page each tab loads: the numbers of --columns/--rows in its script (0: not asked), textual-serve's
    template variables left for it to fill."""
    from bsim.app.serve import page_folder
    page = (page_folder(tmp_path, 120, 36) / "app_index.html").read_text()
    assert "const BSIM_COLUMNS = 120, BSIM_ROWS = 36;" in page and "__BSIM" not in page
    assert "{{ app_websocket_url }}" in page and "{{ font_size }}" in page
    page = (page_folder(tmp_path) / "app_index.html").read_text()
    assert "const BSIM_COLUMNS = 0, BSIM_ROWS = 0;" in page
