"""Scale-out bookkeeping: which shard owns which sample, resumable part files, and the merge.

A scoring command run as shard k of n (flags, or RANK / WORLD_SIZE under torchrun) scores the samples
at positions p with p % n == k, appends one line per id to its part file (`core.layout.part_path`:
`<stem>.part-<k>-of-<n>.jsonl`) with fsync, skips ids already there (resume after a crash), and
finishes the part's `Step` when done. `merge` checks that every input id is scored exactly once (or
rejected), then writes the merged file atomically and finishes its `Step`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from longcurate.core.completion import Step
from longcurate.core.errors import UserError
from longcurate.core.jsonl import ResumableWriter, read_jsonl, rejected_path, write_jsonl

log = logging.getLogger("longcurate.select")


@dataclass(frozen=True)
class ShardSpec:
    index: int = 0
    count: int = 1

    def owns(self, position: int) -> bool:
        return position % self.count == self.index


def shard_spec(num_shards: int | None = None, shard_index: int | None = None) -> ShardSpec:
    """Explicit flags win; otherwise RANK / WORLD_SIZE (torchrun); otherwise a single shard."""
    env_n, env_k = os.environ.get("WORLD_SIZE"), os.environ.get("RANK")
    n = num_shards if num_shards is not None else int(env_n) if env_n else 1
    k = shard_index if shard_index is not None else int(env_k) if (env_k and num_shards is None) else 0
    if n < 1 or not 0 <= k < n:
        raise UserError(f"shard index {k} is not in [0, {n}) (num_shards={n})")
    return ShardSpec(k, n)


def chunks_by_length(ids_lengths: Sequence[tuple[str, int]], chunk_size: int) -> list[list[int]]:
    """Positions cut into chunks of similar length (longest first). Chunking depends only on the
    shard's samples, so a resumed run recomputes a chunk with the same batch composition and gets
    bit-identical values."""
    order = sorted(range(len(ids_lengths)), key=lambda i: (-ids_lengths[i][1], i))
    size = max(1, chunk_size)
    return [order[i:i + size] for i in range(0, len(order), size)]


def run_parts(part: Path, units: Sequence[Any], ids: Sequence[str], lengths: Sequence[int],
              compute: Callable[[list[Any]], list[dict[str, Any]]], chunk_size: int,
              progress_desc: str = "scoring", show_progress: bool = True) -> dict[str, int]:
    """Score `units` chunk by chunk into the resumable part file; returns counts."""
    return run_joint_parts({"": part}, units, ids, lengths, {"": None}, lambda chunk: {"": compute(chunk)},
                           chunk_size, progress_desc, show_progress)[""]


def run_joint_parts(parts: dict[str, Path], units: Sequence[Any], ids: Sequence[str], lengths: Sequence[int],
                    members: dict[str, set[str] | None],
                    compute: Callable[[list[Any]], dict[str, list[dict[str, Any]]]], chunk_size: int,
                    progress_desc: str = "scoring", show_progress: bool = True) -> dict[str, dict[str, int]]:
    """Score `units` chunk by chunk into several resumable part files at once (one per key of
    `parts`, e.g. HMG's and CAM's, when one forward serves both). `members[key]` is the set of ids
    that go to that part (None: all). `compute(chunk)` returns, per key, the records of the chunk's
    members of that key, in chunk order. A chunk is skipped when every part already has all of its
    members, and otherwise recomputed whole (same batches as before a crash: bit-identical values;
    ids already written are not written again). Returns counts per key."""
    from contextlib import ExitStack

    from tqdm.auto import tqdm

    chunks = chunks_by_length(list(zip(ids, lengths)), chunk_size)
    counts = {k: {"written": 0, "skipped": 0} for k in parts}
    with ExitStack() as stack:
        writers = {k: stack.enter_context(ResumableWriter(p)) for k, p in parts.items()}
        bar = stack.enter_context(tqdm(total=len(units), desc=progress_desc, unit="sample",
                                       disable=not show_progress))
        for chunk in chunks:
            want = {k: [i for i in chunk if members[k] is None or ids[i] in members[k]] for k in parts}
            if all(ids[i] in writers[k] for k in parts for i in want[k]):
                for k in parts:
                    counts[k]["skipped"] += len(want[k])
                bar.update(len(chunk))
                continue
            records = compute([units[i] for i in chunk])
            for k in parts:
                recs = records[k]
                if len(recs) != len(want[k]):
                    raise RuntimeError(f"scorer returned {len(recs)} {k or 'records'} for {len(want[k])} samples")
                for i, rec in zip(want[k], recs):
                    if rec["id"] != ids[i]:
                        raise RuntimeError(f"scorer returned id {rec['id']!r} for {ids[i]!r}")
                    counts[k]["written" if writers[k].write(rec) else "skipped"] += 1
            bar.update(len(chunk))
    return counts


def read_scores(path: str | os.PathLike) -> list[dict[str, Any]]:
    """A score file as records (raises naming file and line on a bad line)."""
    return [obj for _, obj in read_jsonl(path)]


def merge_parts(merged: Step, parts: Sequence[Step], expected: Sequence[str],
                finalize: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Check every part is complete and every expected id is scored exactly once or rejected by its
    shard; write `merged.output` in the order of `expected` (atomic), merged rejects beside it, then
    finish `merged` (its marker records its settings)."""
    missing_parts = [str(p.output) for p in parts if not p.output.exists()]
    if missing_parts:
        raise UserError(f"missing part files: {', '.join(missing_parts)}")
    unfinished = [str(p.output) for p in parts if not p.is_complete()]
    if unfinished:
        raise UserError(f"shards not finished (no .done marker with these settings): {', '.join(unfinished)}")
    by_id, dupes = _scores_by_id([p.output for p in parts])
    rejected_lines: list[dict[str, Any]] = []
    for p in parts:
        rp = rejected_path(p.output)
        if rp.exists():
            rejected_lines.extend(obj for _, obj in read_jsonl(rp))
    rejected_ids = {str(r["id"]) for r in rejected_lines if r.get("id") is not None}
    _check_coverage(merged.output, expected, by_id, dupes, rejected_ids)
    records = [by_id[i] for i in expected if i in by_id]
    if finalize is not None:
        records = finalize(records)
    write_jsonl(merged.output, records)
    rejected_lines.sort(key=lambda r: (r.get("line") or 0, r.get("id") or "", r.get("reason") or ""))
    rp = rejected_path(merged.output)
    if rejected_lines:
        write_jsonl(rp, rejected_lines)
    elif rp.exists():
        rp.unlink()
    stats = {"scored": len(records), "rejected": len(rejected_lines), "shards": len(parts)}
    merged.finish(stats)
    return stats


def _scores_by_id(paths: Sequence[Path]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every part's records by id, and the ids met more than once."""
    by_id: dict[str, dict[str, Any]] = {}
    dupes: list[str] = []
    for p in paths:
        for obj in read_scores(p):
            rid = str(obj["id"])
            if rid in by_id:
                dupes.append(rid)
            by_id[rid] = obj
    return by_id, dupes


def _check_coverage(output: Path, expected: Sequence[str], by_id: dict[str, Any], dupes: list[str],
                    rejected_ids: set[str]) -> None:
    """Raise naming what is wrong when the parts do not cover the input exactly once."""
    extra = sorted(set(by_id) - set(expected))
    missing = [i for i in expected if i not in by_id and i not in rejected_ids]
    problems = []
    if dupes:
        problems.append(f"{len(dupes)} id(s) scored more than once, e.g. {sorted(set(dupes))[:5]}")
    if extra:
        problems.append(f"{len(extra)} id(s) not in the input, e.g. {extra[:5]}")
    if missing:
        problems.append(f"{len(missing)} input id(s) neither scored nor rejected, e.g. {missing[:5]}")
    if problems:
        raise UserError(f"cannot merge {output}: " + "; ".join(problems))


def barrier_and_merge(spec: ShardSpec, merge: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Under torchrun, wait for every rank (gloo barrier) and let rank 0 merge; alone, just merge.
    With explicit --num-shards (e.g. a Slurm array) nobody merges: run `longcurate select merge`."""
    if spec.count == 1:
        return merge()
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) != spec.count:
        log.info("shard %d/%d done; run `longcurate select merge` once every shard has finished",
                 spec.index, spec.count)
        return None
    import torch.distributed as dist

    created = False
    if not dist.is_initialized():
        dist.init_process_group("gloo")
        created = True
    try:
        dist.barrier()
        stats = merge() if spec.index == 0 else None
        dist.barrier()
    finally:
        if created:
            dist.destroy_process_group()
    return stats

