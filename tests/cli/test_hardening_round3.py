"""Hostile input, third round (issue 19), through the real command line: each case is one line and exit 2
(or a warning that says what differs), never a traceback, a hang, or more than 12 characters of a file.

Names over 255 bytes, TOML nested 1000 deep, digits that are not ASCII, a race recording asking for 10^12
steps, a 3000-character key, a recording's chains too large, a tampered lane_theta_sha256.
"""

from __future__ import annotations

import re

import pytest
from support.cli import run_cli

LONG = "y" * 300
KEY = "k" * 3000


def one_line_error(ran, *says):
    assert ran.code == 2, ran
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsim: error:"), ran.err
    assert "Traceback" not in ran.err and len(lines[0]) < 400, lines[0]
    for word in says:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("argv", [
    ("run", LONG, "--headless", "--steps", "2"),
    ("race", LONG, "--batch-sizes", "8,64", "--headless", "--steps", "2"),
    ("replay", LONG),
    ("serve", LONG),
    ("run", "default", "--headless", "--steps", "2", "--metrics", LONG + ".csv"),
], ids=["run", "race", "replay", "serve", "metrics"])
def test_a_name_over_255_bytes_is_one_line(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(run_cli(capsys, *argv), "name too long")
    assert "y" * 13 not in line


@pytest.mark.parametrize("text", [
    "x = " + "[" * 1000 + "]" * 1000,
    "x = " + "{a=" * 3000 + "1" + "}" * 3000,
    "[problem]\nx = " + "[" * 900 + "]" * 900,
    "[problem]\nx = " + "[" * 40 + "]" * 40,             # parsed, but deeper than any bsim table
], ids=["arrays-1000", "inline-tables-3000", "arrays-900", "arrays-40"])
@pytest.mark.parametrize("command", [("run",), ("race", "--batch-sizes", "8,64"), ("replay",), ("sweep",)],
                         ids=["run", "race", "replay", "sweep"])
def test_deeply_nested_toml_is_one_line(capsys, tmp_path, text, command):
    path = tmp_path / "deep.toml"
    path.write_text(text + "\n")
    argv = [command[0], path, *command[1:], "--headless"]
    if command[0] in ("run", "race"):
        argv += ["--steps", "2"]
    if command[0] == "sweep":
        argv = ["sweep", path, "--out", path.with_suffix(".csv")]
    one_line_error(run_cli(capsys, *argv), "nested")


@pytest.mark.parametrize("digits", ["²", "①", "８", "٣", "8,٣"])
def test_digits_that_are_not_ascii_are_refused(capsys, digits):
    one_line_error(run_cli(capsys, "race", "default", "--batch-sizes", digits, "--headless", "--steps", "2"),
                   "--batch-sizes")
    one_line_error(run_cli(capsys, "run", "default", "--chains", digits, "--headless", "--steps", "2"), "--chains")


@pytest.fixture(scope="module")
def race_recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("race")
    path = folder / "race.toml"
    pytest.MonkeyPatch().chdir(folder)
    from bsim.cli import main
    assert main(["race", "default", "--batch-sizes", "8,64", "--headless", "--steps", "20",
                 "--metrics", str(folder / "r.csv"), "--record", str(path)]) == 0
    return path.read_text()


def tampered(tmp_path, text, pattern, replacement):
    out = re.sub(pattern, replacement, text, count=1, flags=re.M)
    assert out != text
    path = tmp_path / "tampered.toml"
    path.write_text(out)
    return path


def test_a_race_recording_s_lane_steps_are_capped_like_final_tick(capsys, tmp_path, race_recording):
    path = tampered(tmp_path, race_recording, r"^lane_steps = .*$", "lane_steps = [200, 2000000000000]")
    one_line_error(run_cli(capsys, "replay", path, "--headless", "--metrics", tmp_path / "o.csv"),
                   f"{path}:", "race.lane_steps", "10^9")


def test_a_race_recording_s_chains_are_named_by_file_and_line_not_as_the_flag(capsys, tmp_path, race_recording):
    path = tampered(tmp_path, race_recording, r"^chains = 1$", "chains = 99999999999")
    line = one_line_error(run_cli(capsys, "replay", path, "--headless", "--metrics", tmp_path / "o.csv"),
                          "chains = 99999999999")
    assert "--chains" not in line and re.search(rf"{re.escape(str(path))}:\d+: chains", line), line


def test_a_tampered_lane_hash_says_that_the_hash_differs(capsys, tmp_path, race_recording):
    sha = re.search(r'lane_theta_sha256 = \["([0-9a-f]{64})"', race_recording).group(1)
    path = tampered(tmp_path, race_recording, sha, "a" * 64)
    ran = run_cli(capsys, "replay", path, "--headless", "--metrics", tmp_path / "o.csv")
    assert ran.code == 0, ran
    warning = [line for line in ran.err.splitlines() if "B=8 differs" in line]
    assert len(warning) == 1 and "sha256" in warning[0] and "'aaaaaaaaaaaa'..." in warning[0], ran.err
    assert "a" * 13 not in warning[0]


@pytest.mark.parametrize("text, names", [
    (f"[problem]\n{KEY} = 1\n", "problem."),
    (f"[{KEY}]\nx = 1\n", ""),
    (f"[[timeline]]\nat = 3\n{KEY} = 1\n", "timeline[0]."),
    (f"[sweep]\n{KEY} = 1\n", "sweep."),
    (f"[race]\n{KEY} = 1\n", "race."),
], ids=["problem", "table", "timeline", "sweep", "race"])
def test_an_unknown_key_is_cut_to_12_characters(capsys, tmp_path, text, names):
    path = tmp_path / "keys.toml"
    path.write_text(text)
    line = one_line_error(run_cli(capsys, "run", path, "--headless", "--steps", "2"), "unknown key",
                          f"{names}'kkkkkkkkkkkk'...")
    assert "k" * 13 not in line


# ---------------------------------------------------------------- sweep CSVs (items 6, 11, 15)

@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """A finished two-task sweep of the tests' small least squares: its scenario and its CSV's text."""
    from support.sweep import write_small

    from bsim.cli import main
    folder = tmp_path_factory.mktemp("sweep")
    scenario = write_small(folder)
    out = folder / "sweep.csv"
    assert main(["sweep", str(scenario), "--batch-sizes", "4,16", "--target", "opt+0.05", "--out", str(out),
                 "--no-plots", "--no-calibration"]) == 0
    return scenario, out.read_text()


def sweep_csv(tmp_path, text, **cells):
    """The sweep's CSV with its first row's ``cells`` replaced."""
    import csv
    import io
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    for column, value in cells.items():
        rows[1][header.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = tmp_path / "sweep.csv"
    path.write_text(buf.getvalue())
    return path


@pytest.mark.slow          # the sweep the fixture runs takes ~8 s
@pytest.mark.parametrize("column, value", [("lr", "0"), ("lr", "-0.05"), ("lr", "nan"), ("batch_size", "0"),
                                           ("seed", "-1")])
def test_a_sweep_csv_with_impossible_task_values_is_one_line(capsys, tmp_path, small_sweep, column, value):
    scenario, text = small_sweep
    path = sweep_csv(tmp_path, text, **{column: value})
    for argv in (("--show", path), ("--show", path, "--no-plots"), ("--show", path, "--app"),
                 (scenario, "--batch-sizes", "4,16", "--target", "opt+0.05", "--out", path, "--no-plots",
                  "--no-calibration")):
        before = path.read_text()
        one_line_error(run_cli(capsys, "sweep", *argv), f"{path}:2: {column}")
        assert path.read_text() == before, "the resume changed the file"


INJECTED = "\x1b]0;PWNED\x07\x1b[2J" + "z" * 300


@pytest.mark.slow          # the sweep the fixture runs takes ~8 s
@pytest.mark.parametrize("plots", [True, False], ids=["plots", "table"])
def test_escape_sequences_in_a_sweep_csv_never_reach_the_terminal(capsys, tmp_path, small_sweep, plots):
    _, text = small_sweep
    path = sweep_csv(tmp_path, text, scenario=INJECTED, problem=INJECTED, calibration_device=INJECTED,
                     seconds_per_step="0.001", time_to_target="0.079", calibration_steps="50")
    ran = run_cli(capsys, "sweep", "--show", path, *(() if plots else ("--no-plots",)))
    assert ran.code == 0, ran
    assert "\x1b" not in ran.out and "\x07" not in ran.out and "PWNED" not in ran.out.replace("?]0;PWNED", "")
    assert "z" * 13 not in ran.out
    assert "?]0;PWNED??[..." in ran.out                # sanitised, cut to 12 characters


@pytest.mark.slow          # the sweep the fixture runs takes ~8 s
def test_a_bom_is_accepted_in_a_sweep_csv_and_a_scenario(capsys, tmp_path, small_sweep):
    scenario, text = small_sweep
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + text, encoding="utf-8")
    ran = run_cli(capsys, "sweep", "--show", path, "--no-plots")
    assert ran.code == 0 and "sweep of small" in ran.out, ran
    bom = tmp_path / "bom.toml"
    bom.write_text("\ufeff" + scenario.read_text(), encoding="utf-8")
    ran = run_cli(capsys, "run", bom, "--headless", "--steps", "2", "--metrics", tmp_path / "m.csv")
    assert ran.code == 0, ran


def test_an_accuracy_target_that_is_not_a_number_says_an_accuracy_is_expected(capsys, tmp_path):
    from support.sweep import write_small
    scenario = write_small(tmp_path)
    line = one_line_error(run_cli(capsys, "sweep", scenario, "--batch-sizes", "4,16", "--on", "train_acc",
                                  "--target", "nan", "--out", tmp_path / "s.csv"), "--target 'nan'")
    assert "expected an accuracy in (0, 1]" in line and "loss" not in line


# ---------------------------------------------------------------- bsim serve --host (item 12)

def test_serve_refuses_an_empty_host(capsys):
    one_line_error(run_cli(capsys, "serve", "default", "--host", ""), "--host ''", "every interface")
    one_line_error(run_cli(capsys, "serve", "default", "--host", "  "), "--host ''")


@pytest.mark.slow
def test_serve_on_an_address_that_is_not_loopback_says_so_in_one_line(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys

    from support import ROOT
    pytest.importorskip("textual_serve", reason="bsim serve needs the web extra (textual-serve)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bsim", "serve", "default", "--host", "0.0.0.0", "--port",
                             str(port)], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert first.startswith("bsim: warning: serving on 0.0.0.0, not loopback"), first


# ---------------------------------------------------------------- chains (item 15)

def test_chains_whose_loss_overflows_are_counted_out_like_non_finite_ones(capsys, tmp_path):
    """float32, B = 1, lr = 2: the chains' losses pass 3.4e38 (inf) near step 120 while their parameters
    (~1e19) are still finite; such a chain was counted alive and made chains_train_loss inf."""
    import math

    from support.cli import read_rows
    out = tmp_path / "m.csv"
    ran = run_cli(capsys, "run", "default", "--headless", "--chains", "64", "--batch-size", "1", "--lr", "2",
                  "--dtype", "float32", "--steps", "200", "--metrics", out)
    assert ran.code == 0, ran
    rows = read_rows(out)
    assert all(math.isfinite(float(r["chains_train_loss"])) for r in rows)
    counts = [int(r["chains"]) for r in rows]
    assert counts[0] == 64 and counts[-1] < 64, counts[-1]
    assert counts == sorted(counts, reverse=True), "a chain counted out came back"
