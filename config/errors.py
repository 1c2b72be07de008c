"""Errors a user must act on: a setting that cannot work, a file the run needs and cannot find, a
training run that diverged. Each says in one line what happened and what to do.

`gan-restore` (cli/main.py) ends with that line, alone and last, and no traceback unless `-v`; the
local runner's log filter (pipeline/local_runner.py) drops the tracebacks TFX and Beam log on the way.
Raise a subclass of `UserError` for any new error of this kind (anything else keeps its traceback:
it is a bug to report, not a step for the user).
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user must act on, said in one line."""


class MissingFileError(FileNotFoundError, UserError):
    """A file the run needs (e.g. the VGG weights of a perceptual loss) is not there; nothing is
    downloaded at run time."""


def find_user_error(exc: BaseException | None) -> UserError | None:
    """The innermost `UserError` in `exc`'s chain as Python prints it (__cause__, else __context__
    unless `raise ... from None` hid it), or None. Beam re-raises a component's exception with the
    step name appended (`... [while running 'Run[Trainer]']`) while handling the original: the
    innermost one carries the message as it was written."""
    found, seen = None, set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, UserError):
            found = exc
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
    return found
