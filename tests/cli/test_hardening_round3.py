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
