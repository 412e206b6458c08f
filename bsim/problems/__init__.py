"""Problems: a dataset, a model, a per-example loss, and what is known of the optimum."""

from __future__ import annotations

import torch

from bsim.problems.base import Problem
from bsim.scenario import Scenario


def make_problem(sc: Scenario, device: torch.device, dtype: torch.dtype) -> Problem:
    """Build the scenario's problem; its data come from the data generator only."""
    from bsim.problems.memory import check_memory
    check_memory(sc)   # refuse in one line before allocating what the machine does not have
    kind = sc.problem.kind
    if kind == "linreg":
        from bsim.problems.linreg import LinReg
        return LinReg(sc, device, dtype)
    if kind == "logreg":
        from bsim.problems.logreg import LogReg
        return LogReg(sc, device, dtype)
    if kind in ("wells", "wells2d"):
        from bsim.problems.wells import TiltedWells, TiltedWells2D
        return (TiltedWells if kind == "wells" else TiltedWells2D)(sc, device, dtype)
    if kind == "nonuniform":
        from bsim.problems.nonuniform import NonUniformMinima
        return NonUniformMinima(sc, device, dtype)
    if kind == "softmax":
        from bsim.problems.softmax import Softmax
        return Softmax(sc, device, dtype)
    if sc.problem.data:    # a text: next-character prediction
        from bsim.problems.charlstm import CharLSTM
        return CharLSTM(sc, device, dtype)
    from bsim.problems.lstm import LSTMProblem
    return LSTMProblem(sc, device, dtype)
