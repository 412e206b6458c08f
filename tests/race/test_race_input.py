"""Bad input to `bsim race` and race recordings: one line naming what is wrong, exit code 2, nothing written."""

import pytest

from bsim.cli import main

HEADLESS = ["--headless", "--no-timing", "--steps", "5"]


def _refused(capsys, argv, *words):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bsim: error:"), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("sizes,words", [
    ("8,64,8", ("8 is there twice",)),
    ("8,x", ("'x'", "positive integers")),
    ("8,0", ("'0'", "positive integers")),
    ("8,-4", ("'-4'", "positive integers")),
    ("8,2.5", ("'2.5'", "positive integers")),
    ("8,,64", ("positive integers",)),
    ("1,2,3,4,5,6,7,8,9", ("9 batch sizes", "at most 8")),
])
def test_bad_batch_size_lists(tmp_path, capsys, sizes, words):
    out = tmp_path / "race.csv"
    _refused(capsys, ["race", "default", "--batch-sizes", sizes, *HEADLESS, "--metrics", str(out)], *words)
    assert not out.exists()


@pytest.mark.parametrize("argv,words", [
    (["--batch-sizes", "8,64", "--by", "time", *HEADLESS], ("--by time", "--no-timing")),
    (["--batch-sizes", "8,64", "--headless", "--steps", "5", "--samples", "80"], ("both", "--samples", "--steps")),
    (["--batch-sizes", "8,64", "--headless"], ("neither", "--samples", "--steps")),
    (["--batch-sizes", "8,64", "--batch-size", "8", *HEADLESS], ("--batch-size", "--batch-sizes")),
    (["--headless", "--steps", "5"], ("--batch-sizes: missing",)),
    (["--batch-sizes", "8,64", "--by", "epochs", *HEADLESS], ("--by", "invalid choice")),
    (["--batch-sizes", "8,64", "--headless", "--samples", "0"], ("--samples", "'0'")),
])
def test_bad_flags(capsys, argv, words):
    _refused(capsys, ["race", "default", *argv], *words)


def test_a_batch_size_above_n_is_clamped_with_one_warning(tmp_path, capsys):
    out = tmp_path / "race.csv"
    capsys.readouterr()
    assert main(["race", "default", "--batch-sizes", "8,5000", *HEADLESS, "--metrics", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["bsim: warning: batch size 5000 is above N = 1024: clamped to 1024"]
    assert {line.split(",")[0] for line in out.read_text().splitlines()[1:]} == {"8", "1024"}


@pytest.mark.parametrize("sizes", ["8,2000,5000", "8,1024,5000"])
def test_two_batch_sizes_that_clamp_to_n_are_a_repeat(capsys, sizes):
    _refused(capsys, ["race", "default", "--batch-sizes", sizes, *HEADLESS], "N = 1024", "at most one")


def test_lanes_that_do_not_fit_in_memory_are_refused_before_any_is_built(capsys, monkeypatch):
    from bsim.problems import memory
    from bsim.race import race as race_module
    from bsim.scenario import find_scenario

    one = memory.estimate_bytes(find_scenario("default"))[0]
    monkeypatch.setattr(memory, "available_bytes", lambda: int(2.5 * one / memory.MEMORY_FRACTION))
    built = []
    monkeypatch.setattr(race_module, "Lane", lambda *a, **k: built.append(a) or pytest.fail("a lane was built"))
    _refused(capsys, ["race", "default", "--batch-sizes", "8,16,32", *HEADLESS], "3 lanes", "memory")
    assert built == []


@pytest.mark.parametrize("edit,words", [
    (("by = \"samples\"", "by = \"epochs\""), ("race.by", "one of samples, steps, time")),
    (("batch_sizes = [8, 64]", "batch_sizes = [8, 8]"), ("race.batch_sizes", "different integers")),
    (("lane_steps = [20, 3]", "lane_steps = [20]"), ("race.lane_steps", "one per lane")),
    (("lr_rule = \"none\"\n", ""), ("[race] has no 'lr_rule'",)),
    (("chains = 1", "chains = 0"), ("race.chains",)),
])
def test_a_bad_race_table_is_one_line(tmp_path, capsys, edit, words):
    rec = tmp_path / "race.toml"
    assert main(["race", "default", "--batch-sizes", "8,64", "--headless", "--no-timing", "--samples", "160",
                 "--metrics", str(tmp_path / "a.csv"), "--record", str(rec)]) == 0
    text = rec.read_text()
    assert edit[0] in text
    rec.write_text(text.replace(edit[0], edit[1]))
    line = _refused(capsys, ["replay", str(rec), "--headless", "--metrics", str(tmp_path / "b.csv")], *words)
    assert str(rec) in line


def test_a_race_replay_refuses_flags_of_single_runs(tmp_path, capsys):
    rec = tmp_path / "race.toml"
    assert main(["race", "default", "--batch-sizes", "8,64", *HEADLESS, "--metrics", str(tmp_path / "a.csv"),
                 "--record", str(rec)]) == 0
    for flag in (["--batch-size", "8"], ["--steps", "10"]):
        _refused(capsys, ["replay", str(rec), "--headless", *flag], flag[0], "race recording")


def test_record_onto_the_metrics_file_is_refused(tmp_path, capsys):
    same = tmp_path / "x.csv"
    _refused(capsys, ["race", "default", "--batch-sizes", "8,64", *HEADLESS, "--metrics", str(same),
                      "--record", str(same)], "--record", "--metrics")


def test_a_recorded_batch_size_above_n_is_one_line(tmp_path, capsys):
    rec = tmp_path / "race.toml"
    assert main(["race", "default", "--batch-sizes", "8,64", *HEADLESS, "--metrics", str(tmp_path / "a.csv"),
                 "--record", str(rec)]) == 0
    rec.write_text(rec.read_text().replace("batch_sizes = [8, 64]", "batch_sizes = [8, 4096]"))
    _refused(capsys, ["replay", str(rec), "--headless"], "race.batch_sizes", "4096", "above N = 1024")


def test_an_unknown_theme_for_the_race_screen_is_one_line_before_the_terminal_is_taken(capsys):
    _refused(capsys, ["race", "default", "--batch-sizes", "8,64", "--theme", "neon"],
             "--theme 'neon'", "expected one of", "bsim-projector")
