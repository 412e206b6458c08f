"""The C kernel's cache: a folder only this user may write, a digest of each library bsim built, and the build.

A library is loaded only if bsim built it: its SHA-256 is written beside it
(``<library>.sha256``) when the build ends, and the file is read and checked
against it before ``dlopen`` maps it (a truncated or planted file is never
mapped, so never runs a constructor or dies of SIGBUS). The folder and both
files must belong to this user and be writable by no one else; a folder that
is not (a shared ``chmod 777`` cache) is not used: the build goes to a private
temporary folder instead, with one warning line. bsim creates the folder 0700
and its files 0600.

The compiler runs in its own process group with a timeout; the whole group is
killed at a timeout, an exception, a stop signal (SIGINT, SIGTERM, SIGHUP, which
is then delivered again to the handler in force) or the interpreter's exit, and
its temporary file is removed; a watcher in the group does the same when bsim
ends without a word (``kill -9``). A temporary file left all the same is removed
by the next build once older than the timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

#: seconds a build may take before the torch code is used instead (a quiet 2-core machine builds in ~5 s;
#: under a load of 15 a build took over 60 s, so the limit is generous: stop signals end a build at once)
BUILD_TIMEOUT = 180
#: the signals that stop a build (then reach the handler that was in force)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
#: the largest library read to check its digest (the kernel's is ~20 KB)
MAX_LIBRARY_BYTES = 16 * 2**20

#: the compiler under a watcher, in a process group of its own: the watcher reads bsim's pipe (its stdin) and,
#: at EOF (bsim ended, however: kill -9 too), removes the temporary file and kills the group (its stderr is not
#: the compiler's pipe, or reading that pipe would wait for the watcher)
_WATCHED = '''tmp=$1; shift
exec 3<&0
{ cat <&3 >/dev/null; rm -f "$tmp"; kill -KILL 0; } 2>/dev/null &
"$@" </dev/null 3<&- &
wait $!
'''

_running: set[int] = set()        # process groups of compilers running now
_private: list[Path] = []         # the private folder used instead of an unsafe one (one per process)


class RefusedLibrary(OSError):
    """The file at the library's path is not one bsim may load (not a regular file, not this user's)."""


def _unsafe(st: os.stat_result) -> str | None:
    """Why a file or folder with this status is not safe to load from, or None."""
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "not owned by you"
    if st.st_mode & 0o022:
        return "writable by group or others"
    return None


def safe_folder(folder: Path) -> Path:
    """``folder`` (created 0700 if missing) when only this user may write it; else a private temporary folder,
    with one warning line on stderr (once per process)."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(folder)
        why = "not a folder" if not stat.S_ISDIR(st.st_mode) else _unsafe(st)
    except OSError as exc:
        why = exc.strerror or "cannot be created"
    if why is None:
        return folder
    if not _private:
        _private.append(Path(tempfile.mkdtemp(prefix="bsim-kernel-")))      # 0700, this user's
        atexit.register(shutil.rmtree, _private[0], True)
        print(f"bsim: the kernel cache {str(folder)[:80]} is {why}; building the C kernel in a private "
              f"temporary folder", file=sys.stderr)
    return _private[0]


def _digest_path(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _read_own_file(path: Path, limit: int) -> bytes:
    """A regular file of this user's, writable by no one else, read whole (no symlink followed, never blocks)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RefusedLibrary(f"{path.name} is not a regular file")
        why = _unsafe(st)
        if why:
            raise RefusedLibrary(f"{path.name} is {why}")
        if st.st_size > limit:
            raise OSError(f"{path.name} is larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, 2**20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def verified(library: Path) -> bool:
    """Whether ``library`` is the file bsim built there (its digest matches the one recorded at the build).

    False: no such file, or no digest, or another content (a truncated or replaced file): build it again.
    Raises RefusedLibrary where something that is not this user's regular file stands at the path."""
    try:
        data = _read_own_file(library, MAX_LIBRARY_BYTES)
    except FileNotFoundError:
        return False
    except RefusedLibrary:
        raise
    except OSError as exc:
        if getattr(exc, "errno", None) == getattr(os, "ELOOP", -1):        # a symlink at the path
            raise RefusedLibrary(f"{library.name} is a symbolic link") from None
        return False
    try:
        recorded = _read_own_file(_digest_path(library), 128).decode("ascii", "replace").strip()
    except OSError:
        return False
    return recorded == hashlib.sha256(data).hexdigest()


def forget(library: Path) -> None:
    """Remove a library and its digest (a damaged build); a non-regular file is left alone."""
    for path in (library, _digest_path(library)):
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, 0600."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.write(fd, data)
        os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(library: Path) -> None:
    """Temporary files of builds killed with -9 (older than the timeout, so no build still writes them)."""
    now = time.time()
    for tmp in library.parent.glob(library.stem + ".*.tmp"):
        with contextlib.suppress(OSError):
            st = os.lstat(tmp)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > BUILD_TIMEOUT:
                tmp.unlink()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


@atexit.register
def _kill_running() -> None:
    for pid in list(_running):
        _kill_group(pid)


@contextlib.contextmanager
def _stop_signals_kill(proc: subprocess.Popen):
    """While a compiler runs in the main thread: a stop signal kills its group, then reaches the old handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def on_signal(signum, frame):
        caught.append(signum)
        _kill_group(proc.pid)

    old = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in caught[:1]:
            os.kill(os.getpid(), sig)         # the signal, for whoever handled it before the build


def build(compiler: str, args: list[str], library: Path) -> None:
    """Compile ``args`` (ending in ``-o``) into ``library`` and record its digest; raises OSError on failure.

    A build that ends without a non-empty ELF file (a compiler that does nothing, ``CC=/bin/true``) failed."""
    _remove_stale_temporaries(library)
    fd, tmp = tempfile.mkstemp(prefix=library.stem + ".", suffix=".so.tmp", dir=library.parent)
    os.close(fd)
    try:
        alive_read, alive_write = os.pipe()       # bsim holds the write end: its end (even kill -9) is an EOF
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", _WATCHED, "sh", tmp, compiler, *args, tmp], stdin=alive_read,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        finally:
            os.close(alive_read)
        _running.add(proc.pid)
        try:
            with _stop_signals_kill(proc):
                _, err = proc.communicate(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OSError(f"the build took more than {BUILD_TIMEOUT} s") from None
        finally:
            _kill_group(proc.pid)             # the compiler's children too (cc1, as, ld), and the watcher
            proc.kill()
            proc.wait()
            os.close(alive_write)
            _running.discard(proc.pid)
        if proc.returncode < 0:
            raise OSError(f"the build was stopped by signal {-proc.returncode}")
        if proc.returncode != 0:
            first = (err.decode("utf-8", "replace").strip().splitlines() or ["no message"])[0]
            raise OSError(f"{Path(compiler).name} failed ({first[:200]})")
        with open(tmp, "rb") as fh:
            data = fh.read(MAX_LIBRARY_BYTES + 1)
        if not data.startswith(b"\x7fELF"):
            raise OSError(f"{Path(compiler).name} made no library ({len(data)} bytes)")
        os.chmod(tmp, 0o600)
        _write_private(_digest_path(library), hashlib.sha256(data).hexdigest().encode() + b"\n")
        os.replace(tmp, library)     # atomic: another process sees the whole library or none
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
