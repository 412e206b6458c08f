"""Asking for a GPU that is not there: one line naming who asked (the file's line, or the flag)."""

import torch

from bsim.cli import main


def test_a_scenario_asking_for_cuda_names_its_file_and_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    f = tmp_path / "gpu.toml"
    f.write_text('title = "on the GPU"\ndevice = "cuda"\n[problem]\nkind = "linreg"\n')
    assert main(["run", str(f), "--headless", "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bsim: error: {f.resolve()}:2: device cuda: no CUDA GPU is available here; "
                   "expected auto or cpu (--device cpu overrides)"]
    # the override the message suggests works
    assert main(["run", str(f), "--headless", "--steps", "3", "--device", "cpu", "--metrics", str(tmp_path / "m.csv")]) == 0


def test_the_flag_asking_for_cuda_is_not_blamed_on_the_file(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "default", "--device", "cuda", "--headless", "--steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bsim: error: device cuda: no CUDA GPU")
