"""Atomic writes: a file is either the old one or the whole new one, never half written.

The new file is written beside the old, synced, renamed over it, and then
the folder is synced, so that the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO
from collections.abc import Iterator


# read once at import (setting the umask to read it is not thread-safe)
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", keep_on_interrupt: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    On an exception the temporary file is removed and ``path`` is untouched,
    except that with ``keep_on_interrupt`` a KeyboardInterrupt still renames
    what was written (the rows done so far), then re-raises.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        # /dev/null, a FIFO, a terminal: nothing to rename over (renaming would replace the device)
        with open(path, mode, **({"newline": ""} if "b" not in mode else {})) as fh:
            yield fh
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    kwargs = {"newline": ""} if "b" not in mode else {}
    fh = os.fdopen(fd, mode, **kwargs)
    try:
        yield fh
    except KeyboardInterrupt:
        _finish(fh, tmp, path, commit=keep_on_interrupt)
        raise
    except BaseException:
        _finish(fh, tmp, path, commit=False)
        raise
    else:
        _finish(fh, tmp, path, commit=True)


def _finish(fh: IO, tmp: str, path: Path, commit: bool) -> None:
    try:
        try:
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        if commit:
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)
            fsync_folder(path.parent)
            return
    except BaseException:  # a full disk, a folder gone: no temporary file is left behind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def fsync_folder(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable: fsync the folder itself (POSIX; a power cut keeps the new name).

    Folders that cannot be opened or synced (Windows, some network file
    systems) are skipped: the file's own data is already synced.
    """
    try:
        fd = os.open(folder or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(path: Path) -> int:
    """The file mode a plain open() would give: the old file's, else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)
