"""The ``[recording]`` table of a recording file, checked key by key (the keys: ``bsim.recording``).

Registered with ``bsim.scenario`` (``register_table``), so that every load of
a file checks it: the format first (a newer one than this bsim writes is
refused, with the version to upgrade to), then every key, then that the check
(``CHECK_KEYS`` with ``final_tick``) is whole. An error names the file, the
line and the key.
"""

from __future__ import annotations

from typing import Any

from bsim import __version__
from bsim.errors import BsimInputError
from bsim.scenario import DTYPES, register_table
from bsim.tomlcheck import SHA256, Locator, Rule, check_table, where

#: the recording format this bsim writes and reads (a newer one is refused)
FORMAT = 1
#: the check, written when recording stops (with final_tick)
CHECK_KEYS = ("final_step", "train_loss", "theta_sha256")

_STEP: Rule = ((int,), lambda v: v >= 0, "a step number >= 0")
_SHA: Rule = ((str,), lambda v: bool(SHA256.match(v)), "64 lowercase hex digits (a sha256)")
RULES: dict[str, Rule] = {
    "format": ((int,), lambda v: v >= 1, "an integer >= 1 (the recording format version)"),
    "bsim": ((str,), None, "a version string"),
    "torch": ((str,), None, "a version string"),
    "python": ((str,), None, "a version string"),
    "device": ((str,), None, "a device name such as cpu or cuda"),
    "dtype": ((str,), lambda v: v in DTYPES[1:], "float32 or float64"),
    "began_at": _STEP,
    "final_tick": _STEP,
    "final_step": _STEP,
    "train_loss": ((int, float), None, "a number"),
    "theta_sha256": _SHA,
    "diverged": ((bool,), None, "true or false (the run had diverged at stop)"),
    "data_sha256": _SHA,
    "test_data_sha256": _SHA,
}


def check_recording_table(raw: Any, fname: str, loc: Locator) -> dict:
    """A ``[recording]`` table: format first, then keys and types, then a whole check (errors name the line)."""
    if "format" not in raw:
        raise BsimInputError(f"{loc.where_table(fname, 'recording')}: [recording] has no 'format'; "
                             f"expected format = {FORMAT}")
    fmt = raw["format"]
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
        raise BsimInputError(f"{where(fname, loc, 'recording', 'format')}: format {fmt} is newer than this bsim "
                             f"{__version__} reads; expected format <= {FORMAT} (upgrade bsim to replay it)")
    table = check_table(raw, RULES, fname, loc, "recording")
    if "train_loss" in table:
        table["train_loss"] = float(table["train_loss"])
    if "began_at" in table and "final_tick" in table and table["began_at"] > table["final_tick"]:
        raise BsimInputError(f"{where(fname, loc, 'recording', 'began_at')}: began_at {table['began_at']} is after "
                             f"final_tick {table['final_tick']}; expected began_at <= final_tick")
    present = [k for k in CHECK_KEYS if k in table]
    if present and (len(present) != len(CHECK_KEYS) or "final_tick" not in table):
        missing = [k for k in ("final_tick",) + CHECK_KEYS if k not in table]
        raise BsimInputError(f"{where(fname, loc, 'recording', present[0])}: an incomplete check; "
                             f"expected final_tick, {', '.join(CHECK_KEYS)} together (missing {', '.join(missing)})")
    return table


register_table("recording", check_recording_table)
