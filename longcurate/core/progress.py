"""Whether progress bars are shown: one switch for the whole process, `--no-progress` (which sets
`TQDM_DISABLE=1` for the libraries' own bars, `longcurate.cli.quiet_progress`). tqdm reads that
variable only for bars whose `disable` is not given, so code that builds a model or a bar with an
explicit `progress` setting asks `bars_shown()` for its default."""

from __future__ import annotations

import os


def bars_shown() -> bool:
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false")


__all__ = ["bars_shown"]
