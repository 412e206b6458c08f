"""The feature tables of a scenario file ([sweep], [race], [recording], [schedule]) are checked by their features at every load.

Each feature owns its table's schema (bsim.sweep.schema, bsim.race.schema, bsim.recording_schema) and
registers its check with bsim.scenario; an error still names the file, the line and the key, in one
line with exit code 2, whichever command reads the file.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bsim.errors import BsimInputError
from bsim.scenario import FEATURE_TABLES, parse_scenario, register_table, scenario_to_toml
from support import ROOT
from support.cli import run_cli

SMALL = '[problem]\nkind = "linreg"\nn_train = 64\nn_test = 16\ndim = 2\n\n[optimizer]\nlr = 0.1\nbatch_size = 8\n'
RACE = '\n[race]\nbatch_sizes = [8, 16]\nby = "samples"\nlr_rule = "none"\nchains = 1\nlane_steps = [4, 2]\n'
RECORDING = '\n[recording]\nformat = 1\nbegan_at = 0\nfinal_tick = 3\n'
SWEEP = '\n[sweep]\nbatch_sizes = [1, 4]\ntarget = "opt+0.05"\nseeds = 2\n'
SCHEDULE = '\n[schedule]\nlr = { every_epochs = 2, factor = 0.5 }\n'

# one bad key per table: (the table's text, the bad line, where the error points, what it says)
BAD = {
    "sweep": (SWEEP, "colour = 1", "sweep.colour", "got an unknown key"),
    "race": (RACE, "position = -1.0", "race.position", "expected a finite number >= 0"),
    "recording": (RECORDING, 'theta_sha256 = "abc"', "recording.theta_sha256", "64 lowercase hex digits"),
    "schedule": (SCHEDULE, "batch_size = { every_epochs = 5, factor = 0 }", "schedule.batch_size.factor",
                 "expected a finite number > 0"),
}


def bad_file(tmp_path, table: str):
    """A scenario whose ``table`` has one bad key on its last line; that line's number."""
    text, line, _, _ = BAD[table]
    body = SMALL + text + line + "\n"
    path = tmp_path / f"bad-{table}.toml"
    path.write_text(body)
    return path, len(body.splitlines())


def test_every_feature_table_has_its_check_in_a_fresh_process():
    """Importing the scenario alone (nothing of the sweep, the race, the recorder or the schedule's run) checks
    every feature table."""
    code = ("import sys\nfrom bsim.errors import BsimInputError\nfrom bsim.scenario import parse_scenario\n"
            f"for text in {[BAD[t][0] + BAD[t][1] for t in FEATURE_TABLES]!r}:\n"
            "    try:\n        parse_scenario(text, 'x.toml')\n    except BsimInputError as exc:\n"
            "        print(exc)\n    else:\n        print('accepted')\n"
            "print(sorted(m for m in ('bsim.sweep.command', 'bsim.race.race', 'bsim.recording', "
            "'bsim.schedule.schedule', 'torch') if m in sys.modules))\n")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    lines = ran.stdout.splitlines()
    assert ran.returncode == 0 and len(lines) == len(FEATURE_TABLES) + 1, ran.stderr
    for line, table in zip(lines, FEATURE_TABLES):
        assert line.startswith("x.toml:") and BAD[table][2] in line, line
    assert lines[-1] == "[]"     # the features' code was not loaded: their checks need none of it


def test_a_bad_feature_table_is_one_line_and_exit_2_from_the_real_command(tmp_path):
    """`python -m bsim run FILE --headless`, as a user types it: the file, the line and the key, before any step."""
    path, line = bad_file(tmp_path, "recording")
    out = tmp_path / "m.csv"
    ran = subprocess.run([sys.executable, "-m", "bsim", "run", str(path), "--headless", "--steps", "5",
                          "--metrics", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    err = ran.stderr.strip()
    assert ran.returncode == 2 and "\n" not in err, err
    assert err.startswith(f"bsim: error: {path}:{line}: recording.theta_sha256") and BAD["recording"][3] in err, err
    assert not out.exists()


@pytest.mark.parametrize("table,argv", [
    *[(table, ["run", "{path}", "--headless", "--steps", "5", "--metrics", "{tmp}/m.csv"]) for table in FEATURE_TABLES],
    ("sweep", ["sweep", "{path}", "--out", "{tmp}/s.csv"]),
    ("race", ["replay", "{path}", "--headless", "--metrics", "{tmp}/r.csv"]),
    ("recording", ["replay", "{path}", "--headless", "--metrics", "{tmp}/r.csv"]),
])
def test_the_command_that_reads_a_table_names_its_line(tmp_path, capsys, table, argv):
    """bsim run checks every table (though it ignores [sweep] and [race]); sweep and replay check theirs."""
    path, line = bad_file(tmp_path, table)
    ran = run_cli(capsys, *[a.format(path=path, tmp=tmp_path) for a in argv])
    err = ran.err.strip()
    assert ran.code == 2 and "\n" not in err, err
    assert f"{path}:{line}: {BAD[table][2]}" in err and BAD[table][3] in err, err
    assert list(tmp_path.glob("*.csv")) == []


@pytest.mark.parametrize("text,where,what", [
    (RACE + "colour = 1\n", "x.toml:8: race.colour", "got an unknown key, expected one of batch_sizes, by"),
    (RACE.replace("[8, 16]", "[1, 2, 3, 4, 5, 6, 7, 8, 9]"), "x.toml:3: race.batch_sizes",
     "a list of 1 to 8 different integers"),
    (RACE.replace('chains = 1\n', ''), "x.toml:2: [race] has no 'chains'", "expected batch_sizes, by, lr_rule"),
    (RECORDING + "colour = 1\n", "x.toml:6: recording.colour", "got an unknown key, expected one of format"),
    (RECORDING.replace("format = 1", "format = 2"), "x.toml:3: recording.format", "newer than this bsim"),
    (RECORDING + "final_step = 3\n", "x.toml:6: recording.final_step", "an incomplete check"),
    (SWEEP.replace("seeds = 2", "seeds = 0"), "x.toml:5: sweep.seeds", "got 0, expected an integer >= 1"),
])
def test_each_feature_checks_its_keys_with_their_line(text, where, what):
    with pytest.raises(BsimInputError) as err:
        parse_scenario(text, "x.toml")
    msg = str(err.value)
    assert msg.startswith(where) and what in msg and "\n" not in msg, msg


def test_a_file_with_every_feature_table_round_trips():
    sc = parse_scenario(SMALL + SWEEP + RACE + RECORDING, "all.toml")
    assert sc.sweep == {"batch_sizes": (1, 4), "target": "opt+0.05", "seeds": 2}
    assert sc.race["lane_steps"] == [4, 2] and sc.recording == {"format": 1, "began_at": 0, "final_tick": 3}
    assert parse_scenario(scenario_to_toml(sc), "again.toml") == sc


def test_only_the_known_feature_tables_can_be_registered():
    with pytest.raises(ValueError, match="expected one of the feature tables sweep, race, recording"):
        register_table("colour", lambda raw, fname, loc: raw)
