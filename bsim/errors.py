"""User-facing errors: one line, exit code 2, never a traceback."""


class BsimInputError(Exception):
    """Bad input from the user (a scenario file, a flag, a recording).

    The message is one line naming the file, the line or key, and what is
    expected. The command line prints it and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message.replace("\n", " "))
