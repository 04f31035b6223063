"""How fast `longcurate check contamination` scans training data (issue: fast enough for 1M samples).

    .venv/bin/python benchmarks/contamination_bench.py                    # 100K samples of ~1K words
    .venv/bin/python benchmarks/contamination_bench.py --samples 20000 --file-samples 5000

Training text is generated, seeded: words drawn by their frequency in the bundled Wikipedia corpus,
~1K words per sample. Eval items (~3K): sentence-length answers and short keys drawn the same way; a
few answers are planted into the training stream, and the run checks that exactly those are found.
Two rates: (a) the scan itself (`OverlapIndex.scan` on each training text; generation not timed),
(b) end to end on a JSONL file of samples in the mixture format (read, parse, `messages` joined,
scanned: `check_contamination`). Each is extrapolated to 1M samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]


def vocabulary():
    """(words, probabilities) of the bundled corpus: generated text has its word frequencies."""
    from collections import Counter

    import numpy as np

    from longcurate.core.wiki import read_wiki_summaries

    counts = Counter(w for a in read_wiki_summaries() for w in a.text.split())
    words = np.array(list(counts))
    freq = np.array(list(counts.values()), dtype=np.float64)
    return words, freq / freq.sum()


def texts(rng, words, probs, n: int, mean_words: int) -> list[str]:
    """`n` texts of mean_words ± 50% words."""
    lengths = rng.integers(mean_words // 2, mean_words * 3 // 2 + 1, size=n)
    flat = rng.choice(words, size=int(lengths.sum()), p=probs)
    out, at = [], 0
    for k in lengths:
        out.append(" ".join(flat[at:at + k]))
        at += k
    return out


def eval_texts(rng, words, probs, n_items: int) -> dict[str, str]:
    """Each item: an answer of 12-40 words and a key of 4-8 words."""
    out = {}
    for i, (a, k) in enumerate(zip(texts(rng, words, probs, n_items, 26), texts(rng, words, probs, n_items, 6))):
        out[f"item{i}/answer"] = a
        out[f"item{i}/key"] = k
    return out


def bench_scan(items: dict[str, str], rng, words, probs, samples: int, mean_words: int, planted: list[str]):
    """Scan `samples` generated texts (in batches; only the scans are timed). Returns (seconds, words,
    keys found exactly)."""
    from tqdm.auto import tqdm

    from longcurate.core.overlap import OverlapIndex

    index = OverlapIndex()
    for key, text in items.items():
        index.add(key, text)
    index.scan("")  # builds the automaton and the n-gram table (timed separately below)
    seconds, batch = 0.0, 2000
    for start in tqdm(range(0, samples, batch), desc="scan", unit="batch"):
        chunk = texts(rng, words, probs, min(batch, samples - start), mean_words)
        if start == 0:
            for j, key in enumerate(planted):  # into the middle of the first texts
                half = len(chunk[j]) // 2
                chunk[j] = chunk[j][:half] + " " + items[key] + " " + chunk[j][half:]
        t = time.perf_counter()
        for x in chunk:
            index.scan(x)
        seconds += time.perf_counter() - t
    found = sorted(k for k, r in index.results().items() if r.exact)
    return seconds, index.scanned_words, found


def bench_file(items: dict[str, str], rng, words, probs, samples: int, mean_words: int) -> tuple[float, int]:
    """End to end: a JSONL file of mixture records through `check_contamination`. (seconds, records)"""
    from longcurate.core.jsonl import Rejects, write_jsonl
    from longcurate.eval.contamination import check_contamination

    with tempfile.TemporaryDirectory(prefix="contamination-bench-") as tmp:
        ev = Path(tmp) / "eval.jsonl"
        write_jsonl(ev, ({"id": k.split("/")[0], "answer": t} for k, t in items.items() if k.endswith("/answer")))
        train = Path(tmp) / "train.jsonl"
        with open(train, "w", encoding="utf-8") as f:
            for start in range(0, samples, 2000):
                for i, t in enumerate(texts(rng, words, probs, min(2000, samples - start), mean_words)):
                    cut = len(t) // 10
                    f.write(json.dumps({"id": f"s{start + i}", "messages": [
                        {"role": "user", "content": t[cut:]}, {"role": "assistant", "content": t[:cut]}]}) + "\n")
        with Rejects(Path(tmp) / "rej.jsonl") as rejects:
            t0 = time.perf_counter()
            res = check_contamination([train], [ev], rejects, answer_field="answer")
            seconds = time.perf_counter() - t0
        return seconds, res.training_records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100_000, help="training samples scanned (a)")
    ap.add_argument("--file-samples", type=int, default=20_000, help="training samples in the JSONL file (b)")
    ap.add_argument("--words", type=int, default=1000, help="mean words per training sample")
    ap.add_argument("--items", type=int, default=3000, help="eval items (an answer and a key each)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import numpy as np

    rng = np.random.default_rng(a.seed)
    words, probs = vocabulary()
    items = eval_texts(rng, words, probs, a.items)
    planted = sorted(rng.choice(sorted(items), size=10, replace=False).tolist())
    from longcurate.core.overlap import OverlapIndex

    t = time.perf_counter()
    index = OverlapIndex()
    for key, text in items.items():
        index.add(key, text)
    index.scan("")
    setup = time.perf_counter() - t
    seconds, n_words, found = bench_scan(items, rng, words, probs, a.samples, a.words, planted)
    missed, extra = sorted(set(planted) - set(found)), sorted(set(found) - set(planted))
    print(f"eval side: {a.items} items ({len(items)} texts), index built in {setup:.2f} s")
    print(f"(a) scan: {a.samples} samples, {n_words / 1e6:.1f} M words in {seconds:.1f} s: "
          f"{a.samples / seconds:,.0f} samples/s, {n_words / seconds / 1e6:.2f} M words/s; "
          f"1M samples of ~{a.words} words: {1e6 / (a.samples / seconds) / 60:.1f} min")
    print(f"    planted {len(planted)} texts, found {len(found)} exactly (missed {missed}, unexpected {extra[:5]})")
    fs, records = bench_file(items, rng, words, probs, a.file_samples, a.words)
    print(f"(b) end to end (JSONL mixture records: read, parse, scan): {records} samples in {fs:.1f} s: "
          f"{records / fs:,.0f} samples/s; 1M samples: {1e6 / (records / fs) / 60:.1f} min")
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
