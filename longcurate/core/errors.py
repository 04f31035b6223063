"""The errors a user can fix: bad arguments, bad config, unusable input, refused settings.

The command line catches `UserError` once, at the top, and prints its message on one line (exit code
2) without a traceback; anything else is a bug and keeps its traceback. `UserError` subclasses
`ValueError`, so library callers that catch `ValueError` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix; the message says what and where (file, line, key)."""


class ConfigError(UserError):
    """A config file, override or flag that cannot be used: unknown key, wrong type, missing file."""


class SettingsChanged(UserError):
    """An output exists, made with other settings, and its step refuses to mix or silently redo it."""


__all__ = ["UserError", "ConfigError", "SettingsChanged"]
