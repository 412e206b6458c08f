"""User-facing errors: one line, exit code 2, never a traceback."""

from pathlib import Path


class BsimInputError(Exception):
    """Bad input from the user (a scenario file, a flag, a recording).

    The message is one line naming the file, the line or key, and what is
    expected. The command line prints it and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message.replace("\n", " "))


def read_user_text(path: str | Path, expected: str) -> str:
    """The UTF-8 text of a file the user named; a missing or unreadable file is a BsimInputError."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BsimInputError(f"{p}: no such file; expected {expected}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BsimInputError(f"{p}: cannot read: {exc}") from None
