"""The error a user can act on: the commands print its message as one line, without a traceback.

Every error class whose message names the input and the fix (a wrong path, a bad value, a damaged file, a
refused config) derives from `UserInputError`, beside the builtin it is a kind of (`ValueError`, `OSError`),
so code that catches the builtin keeps working. Anything else that escapes a command is a bug and keeps its
traceback. `--verbose` (or `HYDRA_FULL_ERROR=1`) keeps the traceback of user errors too.
"""
from __future__ import annotations


class UserInputError(Exception):
    """Bad input or a fault outside the program; the message says what to change."""
