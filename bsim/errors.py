"""User-facing errors: one line, exit code 2, never a traceback; and the one reader of a user's files."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: the most characters of a user's value (a CSV cell, a TOML string) an error message quotes
QUOTE_CHARS = 12
#: the largest scenario, recording or sweep CSV read (a recording of a long session is a few MiB)
MAX_TEXT_BYTES = 16 * 2**20
#: the largest data CSV read (about 10^6 rows of a dozen numbers; the parsed rows take ~10x this in memory)
MAX_DATA_BYTES = 512 * 2**20


class BsimInputError(Exception):
    """Bad input from the user (a scenario file, a flag, a recording).

    The message is one line naming the file, the line or key, and what is
    expected. The command line prints it and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        # one line, and no control sequence from a user's file reaches the terminal
        super().__init__("".join(c if c.isprintable() else ("?" if c not in "\n\r\t" else " ") for c in message))


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """A user's value for an error message: at most ``limit`` printable characters, then '...'.

    A string is quoted ('abc'), anything else written as Python writes it (1.5, [1, 2]);
    characters that are not printable become '?', so a message never carries a
    control sequence, a line break or more than ``limit`` characters of a file.
    """
    text = printable(value if isinstance(value, str) else repr(value))
    more = "..." if len(text) > limit else ""
    return (repr(text[:limit]) if isinstance(value, str) else text[:limit]) + more


def printable(text: str) -> str:
    """``text`` with every character that is not printable (a control sequence, a line break) as '?'."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


def shown(value: object, limit: int = QUOTE_CHARS) -> str:
    """A string from a user's file for a report (not an error): ``quote`` without the quotes, control
    characters as '?', at most ``limit`` characters, then '...'."""
    text = printable(str(value))
    return text[:limit] + ("..." if len(text) > limit else "")


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n} bytes"


def read_user_text(path: str | Path, expected: str, limit: int = MAX_TEXT_BYTES, encoding: str = "utf-8") -> str:
    """The text of a file the user named, read whole; anything else is a BsimInputError.

    Refused: a missing or unreadable file, anything but a regular file (a folder, a
    FIFO, a device such as /dev/zero), more than ``limit`` bytes, text that is not UTF-8.
    The file is opened without blocking (a FIFO with no writer) and read to at most
    ``limit`` + 1 bytes, so that no input can hang the program or exhaust memory.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise BsimInputError(f"{p}: no such file; expected {expected}") from None
    except OSError as exc:
        raise BsimInputError(f"{p}: cannot read: {exc.strerror or errno.errorcode.get(exc.errno, exc)}; "
                             f"expected {expected}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
            raise BsimInputError(f"{p}: {what}; expected {expected} (a regular file)")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(2**20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise BsimInputError(f"{p}: larger than {_size(limit)}, the most bsim reads; expected {expected}")
    except OSError as exc:
        raise BsimInputError(f"{p}: cannot read: {exc.strerror or exc}; expected {expected}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode(encoding).removeprefix("\ufeff")     # a BOM (an editor's) is no content
    except UnicodeDecodeError as exc:
        raise BsimInputError(f"{p}: not UTF-8 text (byte {exc.start + 1}); expected {expected}") from None
