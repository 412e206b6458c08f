"""Choosing the torch device and dtype."""

from __future__ import annotations

import torch

from bsim.errors import BsimInputError


def resolve_device(name: str | torch.device) -> torch.device:
    """auto picks cuda, then mps, then cpu; asking for one that is absent is an input error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BsimInputError("device cuda: no CUDA GPU is available here; expected auto or cpu (--device cpu overrides)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise BsimInputError("device mps: no Apple GPU is available here; expected auto or cpu (--device cpu overrides)")
    if name not in ("cpu", "cuda", "mps"):
        raise BsimInputError(f"device {name!r}: expected auto, cpu, cuda or mps")
    return torch.device(name)


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]
