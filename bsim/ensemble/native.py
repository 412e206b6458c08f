"""The batched LSTM gradient in C (``lstm_kernel.c``), compiled on first use, for the CPU in float32.

``batch_grads`` computes what ``bsim.ensemble.lstm.batch_grads`` computes
(the same formulas, checked against a float64 autograd reference in
tests/core/test_ensemble_native.py), about 1.5x faster at K = 64 on this
project's 2-core machines: one chain at a time, its activations in cache.

The library is built with the C compiler (``$CC``, else ``cc``) into
``$BSIM_CACHE`` (else ``$XDG_CACHE_HOME/bsim``, else ``~/.cache/bsim``),
one file per hidden size, named by a hash of the source, the flags and the
compiler, written atomically (a temporary file, then a rename), so that a
build is done once per machine; ``bsim.ensemble.kernel_cache`` owns the
folder's safety, the library's digest (checked before it is loaded) and the
compiler's process. Without a compiler, or with
``BSIM_NATIVE=0``, or on another device or dtype, ``kernel_for`` answers
None and the caller uses the torch code (also above ``MAX_HIDDEN`` hidden units, where it is faster): the chains then agree with the C
kernel's to float32 rounding, not bit for bit (chain 0, the run itself,
never goes through either). ``engine_name`` says which one a run uses.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
from pathlib import Path

import torch

from bsim.ensemble import kernel_cache

SOURCE = Path(__file__).with_name("lstm_kernel.c")
#: IEEE arithmetic (no -ffast-math); these two only let the compiler vectorise branch-free selects
BASE_FLAGS = ("-O3", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared")
#: the largest hidden size the kernel is used for. Measured at K = 16, B = 32, T = 16 (ms per gradient,
#: C / torch): H = 8 1.5 / 2.7, 16 2.2 / 3.3, 20 4.7 / 4.5, 32 9.4 / 7.1, 256 513 / 260: from H = 20 up
#: the kernel's matmuls (plain loops) lose to the ones torch calls (MKL)
MAX_HIDDEN = 16

_kernels: dict[int, object] = {}      # hidden size -> _Kernel, or None (the build failed: not retried)
_why_not: dict[int, str] = {}


def cache_dir() -> Path:
    if os.environ.get("BSIM_CACHE"):
        return Path(os.environ["BSIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bsim"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def _flags() -> tuple[str, ...]:
    """The base flags, plus AVX2 and FMA where torch finds them on this CPU (the build targets this machine)."""
    extra = ("-mavx2", "-mfma") if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else ()
    return BASE_FLAGS + extra


def _library_path(hidden: int, compiler: str, flags: tuple[str, ...]) -> Path:
    key = hashlib.sha256(SOURCE.read_bytes() + repr((hidden, compiler, flags)).encode()).hexdigest()[:16]
    return kernel_cache.safe_folder(cache_dir()) / f"lstm_kernel-h{hidden}-{key}.so"


def _build(hidden: int, rebuild: bool = False) -> Path:
    """The compiled library for this hidden size, built now if the cache lacks it (or holds another file than
    the one bsim built there, or ``rebuild``); raises OSError on failure (RefusedLibrary: a file bsim may not
    load stands at its path)."""
    compiler = _compiler()
    if compiler is None:
        raise OSError("no C compiler (cc, or $CC) on PATH")
    flags = _flags()
    target = _library_path(hidden, compiler, flags)
    if not rebuild and kernel_cache.verified(target):
        return target
    kernel_cache.forget(target)
    kernel_cache.build(compiler, [*flags, f"-DBSIM_HIDDEN={hidden}", str(SOURCE), "-o"], target)
    if not kernel_cache.verified(target):
        raise OSError(f"{target.name} changed after its build")
    return target


class _Kernel:
    """Owns one loaded library (one hidden size) and its scratch buffer (the largest (B, T) so far)."""

    def __init__(self, path: Path, hidden: int):
        lib = ctypes.CDLL(str(path))
        lib.bsim_lstm_work_floats.restype = ctypes.c_long
        lib.bsim_lstm_work_floats.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.bsim_lstm_hidden.restype = ctypes.c_int
        pointer = ctypes.c_void_p
        lib.bsim_lstm_batch_grads.restype = None
        lib.bsim_lstm_batch_grads.argtypes = [ctypes.c_int] * 3 + [pointer] * 5
        lib.bsim_lstm_loss_work_floats.restype = ctypes.c_long
        lib.bsim_lstm_losses.restype = None
        lib.bsim_lstm_losses.argtypes = [ctypes.c_int] * 3 + [pointer] * 5
        if lib.bsim_lstm_hidden() != hidden:
            raise OSError(f"{path.name} was built for another hidden size")
        self.lib, self.hidden = lib, hidden
        self._work: torch.Tensor | None = None

    def batch_grads(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K, P) gradients of L_k = (1/2B) sum_b (f(x_kb; theta_k) - y_kb)^2, x (K, B, T), y (K, B)."""
        K, B, T = x.shape
        theta, x, y = (t.to(torch.float32).contiguous() for t in (theta, x, y))   # what the C code reads
        need = self.lib.bsim_lstm_work_floats(B, T)
        if self._work is None or self._work.numel() < need:   # kept when smaller: a race's lanes alternate B
            self._work = torch.empty(need, dtype=torch.float32)
        grad = torch.empty_like(theta)       # fresh: the caller may keep it (the velocity)
        self.lib.bsim_lstm_batch_grads(K, B, T, theta.data_ptr(), x.data_ptr(), y.data_ptr(), grad.data_ptr(),
                                       self._work.data_ptr())
        return grad

    def losses(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K,) losses L_k = (1/2N) sum_n (f(x_n; theta_k) - y_n)^2 on one set x (N, T), y (N) shared by all
        chains (summed in double, returned in theta's dtype)."""
        dtype = theta.dtype
        theta, x, y = (t.to(torch.float32).contiguous() for t in (theta, x, y))   # what the C code reads
        out = torch.empty(theta.shape[0], dtype=torch.float64)
        work = torch.empty(self.lib.bsim_lstm_loss_work_floats(), dtype=torch.float32)
        self.lib.bsim_lstm_losses(theta.shape[0], x.shape[0], x.shape[1], theta.data_ptr(), x.data_ptr(),
                                  y.data_ptr(), out.data_ptr(), work.data_ptr())
        return out.to(dtype)


def _load(hidden: int) -> _Kernel:
    """The cached library, checked against its digest, then loaded; one that does not load or lacks a symbol
    counts as a failed build and is built again once."""
    path = _build(hidden)
    try:
        return _Kernel(path, hidden)
    except (OSError, AttributeError):
        pass
    try:
        return _Kernel(_build(hidden, rebuild=True), hidden)
    except AttributeError as exc:
        raise OSError(f"the library lacks a symbol ({str(exc)[-60:]})") from None


def _not_for(problem, theta: torch.Tensor) -> str | None:
    """Why the kernel is not used for this problem and these parameters ("": another device or dtype),
    or None: it is (once built)."""
    if theta.device.type != "cpu" or theta.dtype != torch.float32:
        return ""
    if os.environ.get("BSIM_NATIVE") == "0":
        return "BSIM_NATIVE=0"
    if problem.n_inputs != 1 or problem.n_outputs != 1:
        return "character inputs: the C kernel is written for one input and one output"
    if problem.hidden > MAX_HIDDEN:
        return f"hidden size above {MAX_HIDDEN}, where torch's matmuls are faster"
    return None


def kernel_for(problem, theta: torch.Tensor):
    """The C kernel for this problem's hidden size, or None where the torch code runs instead."""
    if _not_for(problem, theta) is not None:
        return None
    hidden = problem.hidden
    if hidden not in _kernels:
        try:
            _kernels[hidden] = _load(hidden)
        except OSError as exc:
            _kernels[hidden] = None
            _why_not[hidden] = str(exc)
    return _kernels[hidden]


def engine_name(problem, theta: torch.Tensor) -> str:
    """Which code computes the chains' LSTM gradients here: 'C kernel (cc)' or 'torch (why)'."""
    if kernel_for(problem, theta) is not None:
        return f"C kernel ({Path(_compiler() or 'cc').name})"
    why = _not_for(problem, theta)
    if why is None:
        why = _why_not.get(problem.hidden, "no C kernel")      # the build failed
    return f"torch ({why})" if why else "torch"
