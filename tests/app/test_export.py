"""Demo export: SVG screenshots of the app at chosen steps, without a terminal, the same every time."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from bsim.app.export import main as export_main
from bsim.cli import main

SCENARIO = """\
title = "export test"
seed = 1

[problem]
kind = "linreg"
n_train = 256
dim = 2

[optimizer]
lr = 0.05
batch_size = 8

[[timeline]]
at = 0
caption = "B = 8 to begin with"

[[timeline]]
at = 40
batch_size = 32
caption = "B = 32 now"
"""


def svg_lines(svg: str) -> list[str]:
    """The screen's rows as text: <text> elements grouped by their y, in x order."""
    root = ET.fromstring(svg)
    rows: dict[float, list[tuple[float, str]]] = {}
    for el in root.iter("{http://www.w3.org/2000/svg}text"):
        if "title" in (el.get("class") or ""):
            continue
        rows.setdefault(float(el.get("y")), []).append((float(el.get("x")), (el.text or "").replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items())]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    (d / "sc.toml").write_text(SCENARIO)
    rec = d / "rec.toml"
    assert main(["run", str(d / "sc.toml"), "--headless", "--steps", "100", "--metrics", str(d / "a.csv"),
                 "--record", str(rec)]) == 0
    return rec


@pytest.fixture(scope="module")
def exported(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    assert main(["replay", str(recording), "--export", str(out), "--every", "30", "--at-captions", "--cast"]) == 0
    return out


def test_frames_at_every_k_steps_at_captions_and_at_the_end(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == ["replay.cast"] + [f"step-{t:06d}.svg" for t in (0, 30, 40, 60, 90, 100)]


def test_each_frame_shows_its_step_and_the_caption_in_force(exported):
    for tick in (0, 30, 40, 60, 90, 100):
        screen = "\n".join(svg_lines((exported / f"step-{tick:06d}.svg").read_text()))
        assert re.search(rf"step\s+{tick}\b", screen), tick
        caption = "B = 8 to begin with" if tick < 40 else "B = 32 now"
        assert caption in screen, tick
    # at the caption the replay has stopped before the step: B changes with the step after it
    assert re.search(r"batch size\s+8\b", "\n".join(svg_lines((exported / "step-000040.svg").read_text())))
    assert re.search(r"batch size\s+32\b", "\n".join(svg_lines((exported / "step-000060.svg").read_text())))


def test_the_export_is_the_same_every_time(recording, exported, tmp_path):
    assert main(["replay", str(recording), "--export", str(tmp_path), "--every", "30", "--at-captions",
                 "--cast"]) == 0
    for p in exported.iterdir():
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), p.name


def test_the_asciicast_has_a_frame_per_screenshot_and_the_captions_as_markers(exported):
    lines = (exported / "replay.cast").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and (header["width"], header["height"]) == (120, 36)
    events = [json.loads(line) for line in lines[1:]]
    assert [e[2] for e in events if e[1] == "m"] == ["B = 8 to begin with", "B = 32 now"]
    outputs = [e for e in events if e[1] == "o"]
    assert len(outputs) == 6
    times = [e[0] for e in events]
    assert times == sorted(times)
    assert "B = 32 now" in re.sub(r"\x1b\[[0-9;]*m", "", outputs[2][2])


@pytest.mark.slow
def test_readme_pictures_are_regenerated(tmp_path, capsys):
    assert export_main(["--readme", "--out", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["default.svg", "lecture.svg", "race.svg"]
    lecture = "\n".join(svg_lines((tmp_path / "lecture.svg").read_text()))
    assert "4x again" in lecture and re.search(r"step\s+4,500", lecture)
    default = "\n".join(svg_lines((tmp_path / "default.svg").read_text()))
    assert re.search(r"step\s+1,500", default)
    race = "\n".join(svg_lines((tmp_path / "race.svg").read_text()))
    assert all(f"B={b}" in race for b in (8, 64, 512)) and "one" in race and "scale" in race


def test_an_export_folder_that_cannot_be_made(recording, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code = main(["replay", str(recording), "--export", str(tmp_path / "file" / "frames")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "frames" in err


def test_a_recording_begun_mid_run_exports_from_where_it_began(recording, tmp_path):
    rec = tmp_path / "mid.toml"
    rec.write_text(recording.read_text().replace("began_at = 0", "began_at = 50"))
    out = tmp_path / "frames"
    assert main(["replay", str(rec), "--export", str(out), "--every", "30", "--at-captions"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"step-{t:06d}.svg" for t in (60, 90, 100)]
    screen = "\n".join(svg_lines((out / "step-000060.svg").read_text()))
    assert re.search(r"step\s+60\b", screen) and "B = 32 now" in screen
