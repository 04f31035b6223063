"""The errors a user can fix, and the one exit-code rule every command follows.

    0   complete: every step finished (or was already finished) with the settings asked for;
    2   user error: bad argument, bad config, unusable input, refused settings, unreadable or
        unwritable path, full disk: one line on stderr, no traceback (`--debug` adds it);
    75  incomplete (EX_TEMPFAIL): the command did all it could but items are pending or failed (an
        endpoint down, a budget cap reached, a judge that gave no rating); nothing half-done is
        marked complete, and rerunning the same command retries exactly what is left.

Any other code (1, with a traceback) is a bug. The command line catches `UserError` and `Incomplete`
once, at the top. `UserError` subclasses `ValueError`, so library callers that catch `ValueError`
keep working.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INCOMPLETE = 75


class UserError(ValueError):
    """Something the user can fix; the message says what and where (file, line, key)."""


class ConfigError(UserError):
    """A config file, override or flag that cannot be used: unknown key, wrong type, missing file."""


class FieldError(ConfigError):
    """A config value that breaks its field's rule, raised by a config dataclass's `__post_init__`
    (`core.rules`) and naming the dotted key; `core.config.build` adds where the value came from."""


class SettingsChanged(UserError):
    """An output exists, made with other settings, and its step refuses to mix or silently redo it."""


class Incomplete(Exception):
    """The command finished what it could; items are pending or failed and a rerun retries them."""


__all__ = ["UserError", "ConfigError", "FieldError", "SettingsChanged", "Incomplete", "EXIT_OK", "EXIT_USER_ERROR",
           "EXIT_INCOMPLETE"]
