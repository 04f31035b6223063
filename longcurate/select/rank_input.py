"""What `select rank` reads: the merged HMG scores and (optionally) the CAM scores, checked.

A file that cannot be a score file is a user error that names file, line and id: a record without
`id`, without the figure it is ranked by (`hmg`, `cas`), or an id repeated. A figure that is there but
is not a finite number (`NaN`, `Infinity`, `"high"`) quarantines its record in `ranked.rejected.jsonl`
with the reason, and the rest is ranked: one NaN must not turn every score into NaN. Ids found on one
side only are reported both ways: HMG ids without CAS are ranked with the mean CAS term (and counted),
CAM ids without a usable HMG score cannot be ranked and are quarantined.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from longcurate.core.errors import UserError
from longcurate.core.jsonl import RejectSink
from longcurate.core.reader import Row, read_rows
from longcurate.select.rank import CAM_FIGURES, HMG_FIGURES, Figures

log = logging.getLogger("longcurate.select")

# The figures each score file must have, and the ones it may have that later steps order by.
REQUIRED = {"hmg": "hmg", "cam": "cas"}
OPTIONAL = {"hmg": ("ifd", "ppl_b", "n_tokens"), "cam": ()}
FIGURES = {"hmg": HMG_FIGURES, "cam": CAM_FIGURES}  # what is kept of a usable record


@dataclass
class RankInput:
    """The usable figures of each side and the ids found on one side only."""

    hmg: Figures
    cam: Figures | None
    hmg_only: list[str] = field(default_factory=list)  # ranked with an imputed CAS term
    cam_only: list[str] = field(default_factory=list)  # quarantined: nothing to rank them by
    quarantined: int = 0

    def stats(self) -> dict[str, int]:
        return {"quarantined": self.quarantined, "hmg_without_cam": len(self.hmg_only),
                "cam_without_hmg": len(self.cam_only)}


def bad_number(value: Any, whole: bool = False) -> str | None:
    """Why `value` is not a usable figure (None when it is): not a number, or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"not a number: {value!r}"
    if not math.isfinite(value):
        return f"not finite: {value!r}"
    if whole and (value < 0 or value != int(value)):
        return f"not a non-negative whole number: {value!r}"
    return None


def _strict_rows(path: str | os.PathLike) -> Iterator[Row]:
    try:
        yield from read_rows(path)
    except UserError:
        raise
    except ValueError as e:
        raise UserError(f"{e} (score files are written by `select score`)") from None


def read_side(path: str | os.PathLike, side: str, rejects: RejectSink,
              keep: Callable[[str], bool] | None = None) -> tuple[Figures, Counter]:
    """A score file's usable figures (`FIGURES[side]`; records read one at a time, only the figures
    kept), and the reasons of the quarantined records. A usable record whose id `keep` refuses is
    quarantined as having no HMG score (CAM ids that cannot be ranked)."""
    need = REQUIRED[side]
    first: dict[str, int] = {}
    usable = Figures(FIGURES[side])
    quarantined: Counter = Counter()
    refused: list[tuple[str, int, str]] = []
    for row in _strict_rows(path):
        rec = row.record
        where = f"{row.file}:{row.line}"
        if rec.get("id") is None:
            raise UserError(f"{where}: missing field 'id'")
        rid = str(rec["id"])
        if need not in rec:
            raise UserError(f"{where}: missing field '{need}' (id {rid}); rank reads merged {side} scores")
        if rid in first:
            raise UserError(f"{where}: id {rid!r} repeated (first on line {first[rid]})")
        first[rid] = row.line
        problems = [(k, bad_number(rec[k], whole=k == "n_tokens")) for k in (need, *OPTIONAL[side]) if k in rec]
        bad = [(k, why) for k, why in problems if why]
        if bad:
            key, why = bad[0]
            rejects.add(f"{key} {why}", file=row.file, line=row.line, field_name=key, record_id=rid)
            quarantined[f"{key} {why.split(':', 1)[0]}"] += 1
        elif keep is not None and not keep(rid):
            refused.append((row.file, row.line, rid))
        else:
            usable.add(rec)
    for file, line, rid in refused:  # after the figures' rejects, as they were always listed
        rejects.add("no usable HMG score for this id (not ranked)", file=file, line=line, field_name="id",
                    record_id=rid)
        quarantined["no usable HMG score"] += 1
    return usable, quarantined


def read_rank_input(hmg_path: str | os.PathLike, cam_path: str | os.PathLike | None,
                    rejects: RejectSink) -> RankInput:
    """Both sides checked; a non-empty HMG file with nothing usable left is a UserError saying why."""
    hmg, bad_hmg = read_side(hmg_path, "hmg", rejects)
    if not len(hmg):
        reasons = ", ".join(f"{k}: {v}" for k, v in bad_hmg.most_common(5))
        what = f"all {sum(bad_hmg.values())} HMG records were quarantined ({reasons})" if bad_hmg else "the file is empty"
        raise UserError(f"no HMG scores to rank in {hmg_path}: {what}")
    out = RankInput(hmg, None, quarantined=sum(bad_hmg.values()))
    if cam_path is None:
        return out
    hmg_ids = set(hmg.ids)
    cam_only: list[str] = []

    def keep(rid: str) -> bool:
        if rid in hmg_ids:
            return True
        cam_only.append(rid)
        return False

    out.cam, bad_cam = read_side(cam_path, "cam", rejects, keep)
    cam_ids = set(out.cam.ids)
    out.hmg_only = sorted(i for i in hmg_ids if i not in cam_ids)
    out.cam_only = sorted(cam_only)
    out.quarantined += sum(bad_cam.values())
    if out.cam_only:
        log.warning("rank: %d CAM id(s) have no usable HMG score and are not ranked, e.g. %s",
                    len(out.cam_only), out.cam_only[:5])
    return out


__all__ = ["RankInput", "read_rank_input", "read_side", "bad_number"]
