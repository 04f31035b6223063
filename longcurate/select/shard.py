"""Scale-out bookkeeping: which shard owns which sample, resumable part files, and the merge.

A scoring command run as shard k of n (flags, or RANK / WORLD_SIZE under torchrun) scores the samples
at positions p with p % n == k, appends one line per id to its part file (`core.layout.part_path`:
`<stem>.part-<k>-of-<n>.jsonl`) with fsync and skips ids already there (resume after a crash); the
step runner marks the part done (`steps.ScoreSteps.part`). `merge` checks that every input id is
scored exactly once (or rejected), then writes the merged file atomically, marked by its step. A
scorer that finds a sample unscorable only once it has run (a non-finite perplexity) writes
`{"id", "field", "rejected": reason}` to the part; the merge moves such records to the quarantine
beside the merged file.

Chunks: the shard's samples, longest first, are scored a chunk at a time (a crash loses at most one
chunk). The engine batches within a chunk, so the chunk's members decide each sample's batches and
with them the last bits of its values. `select.chunk_size` fixes the chunk's sample count; by default
(`chunk_size: null`) each chunk is sized to about `select.chunk_seconds` of work at the speed the
previous chunk ran at (`ChunkSizer`). Either way the sizes are recorded beside the part
(`<part>.chunks.json`) before a chunk is computed, so a resumed run cuts the same chunks and
recomputes a half-written one bit for bit.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from longcurate.core.errors import UserError
from longcurate.core.jsonl import ResumableWriter, read_json_if_valid, write_json
from longcurate.core.reader import read_rows

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


def length_order(lengths: Sequence[int]) -> list[int]:
    """Positions longest first (ties in input order): the order chunks are cut from."""
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


@dataclass
class ChunkSizer:
    """How many samples the next chunk takes: `fixed` when set; otherwise about `seconds` of work at
    the rate (tokens per second) the last computed chunk ran at, and one sample for the first chunk
    (nothing measured yet; it also pays for loading the models, so the second chunk is small too)."""

    fixed: int | None = None
    seconds: float = 30.0
    rate: float | None = None  # tokens per second of the last computed chunk

    def next_size(self, lengths_ahead: Iterable[int]) -> int:
        if self.fixed is not None:
            return self.fixed
        if self.rate is None:
            return 1
        budget, n, total = self.rate * self.seconds, 0, 0
        for length in lengths_ahead:
            if n and total + length > budget:
                break
            total, n = total + length, n + 1
        return max(n, 1)

    def observe(self, tokens: int, seconds: float) -> None:
        self.rate = tokens / max(seconds, 1e-6)


def chunk_plan_path(part: Path) -> Path:
    return part.with_name(part.name + ".chunks.json")


@dataclass
class ChunkPlan:
    """The chunk sizes of one scoring job over `n` samples, recorded beside each of its part files
    before each chunk is computed; a resumed run (some part holds records) reuses them, so it cuts
    exactly the chunks the first run cut."""

    paths: list[Path]
    n: int
    sizes: list[int] = field(default_factory=list)

    @classmethod
    def resume(cls, parts: Iterable[Path], n: int) -> "ChunkPlan":
        parts = list(parts)
        paths = [chunk_plan_path(p) for p in parts]
        begun = any(p.exists() and p.stat().st_size > 0 for p in parts)
        recorded = read_json_if_valid(paths[0]) if begun else None
        sizes = recorded.get("sizes") if isinstance(recorded, dict) and recorded.get("n") == n else None
        ok = isinstance(sizes, list) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in sizes)
        return cls(paths, n, list(sizes) if ok else [])

    def size(self, k: int, sizer: ChunkSizer, lengths_ahead: Iterable[int]) -> int:
        """Chunk `k`'s size: the recorded one, else the sizer's (recorded now, before it runs)."""
        if k < len(self.sizes):
            return self.sizes[k]
        self.sizes.append(sizer.next_size(lengths_ahead))
        for path in self.paths:
            write_json(path, {"n": self.n, "sizes": self.sizes})
        return self.sizes[k]


def run_parts(part: Path, units: Sequence[Any], ids: Sequence[str], lengths: Sequence[int],
              compute: Callable[[list[Any]], list[dict[str, Any]]], sizer: ChunkSizer,
              progress_desc: str = "scoring", show_progress: bool = True) -> dict[str, int]:
    """Score `units` chunk by chunk into the resumable part file; returns counts."""
    return run_joint_parts({"": part}, units, ids, lengths, {"": None}, lambda chunk: {"": compute(chunk)},
                           sizer, progress_desc, show_progress)[""]


def run_joint_parts(parts: dict[str, Path], units: Sequence[Any], ids: Sequence[str], lengths: Sequence[int],
                    members: dict[str, set[str] | None],
                    compute: Callable[[list[Any]], dict[str, list[dict[str, Any]]]], sizer: ChunkSizer,
                    progress_desc: str = "scoring", show_progress: bool = True,
                    clock: Callable[[], float] = time.perf_counter) -> dict[str, dict[str, int]]:
    """Score `units` chunk by chunk (longest first; sizes from the part's `ChunkPlan` and `sizer`)
    into several resumable part files at once (one per key of `parts`, e.g. HMG's and CAM's, when one
    forward serves both). `members[key]` is the set of ids that go to that part (None: all).
    `compute(chunk)` returns, per key, the records of the chunk's members of that key, in chunk order.
    A chunk is skipped when every part already has all of its members, and otherwise recomputed whole
    (the same chunk as before a crash: bit-identical values; ids already written are not written
    again). Returns counts per key."""
    from contextlib import ExitStack

    from tqdm.auto import tqdm

    order = length_order(lengths)
    plan = ChunkPlan.resume(parts.values(), len(order))
    counts = {k: {"written": 0, "skipped": 0} for k in parts}
    with ExitStack() as stack:
        writers = {k: stack.enter_context(ResumableWriter(p)) for k, p in parts.items()}
        bar = stack.enter_context(tqdm(total=len(units), desc=progress_desc, unit="sample",
                                       disable=not show_progress, dynamic_ncols=True))
        start, k = 0, 0
        while start < len(order):
            size = plan.size(k, sizer, (lengths[i] for i in order[start:]))
            chunk, start, k = order[start:start + size], start + size, k + 1
            want = {key: [i for i in chunk if members[key] is None or ids[i] in members[key]] for key in parts}
            if all(ids[i] in writers[key] for key in parts for i in want[key]):
                for key in parts:
                    counts[key]["skipped"] += len(want[key])
                bar.update(len(chunk))
                continue
            began = clock()
            records = compute([units[i] for i in chunk])
            sizer.observe(sum(lengths[i] for i in chunk), clock() - began)
            for key in parts:
                _write_chunk(writers[key], records[key], [ids[i] for i in want[key]], counts[key], key)
            bar.set_postfix(chunk=len(chunk), refresh=False)
            bar.update(len(chunk))
    return counts


def _write_chunk(writer: ResumableWriter, records: list[dict[str, Any]], want: list[str],
                 counts: dict[str, int], key: str) -> None:
    """Append a chunk's records (in the order of `want`), counting the ids already there."""
    if len(records) != len(want):
        raise RuntimeError(f"scorer returned {len(records)} {key or 'records'} for {len(want)} samples")
    for rid, rec in zip(want, records):
        if rec["id"] != rid:
            raise RuntimeError(f"scorer returned id {rec['id']!r} for {rid!r}")
        counts["written" if writer.write(rec) else "skipped"] += 1


def iter_scores(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """A score file's records one at a time (through `core.reader.read_rows`); a line that is not a
    JSON object is a UserError naming the file and line (score files are written by this stage, never
    hand-edited)."""
    try:
        for row in read_rows(path):
            yield row.record
    except UserError:
        raise
    except ValueError as e:
        raise UserError(str(e)) from None


def read_scores(path: str | os.PathLike) -> list[dict[str, Any]]:
    """`iter_scores` as a list (small files: rejects, budget indexes)."""
    return list(iter_scores(path))


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

