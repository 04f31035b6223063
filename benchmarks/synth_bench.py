"""Template-synth throughput for 4K-32K-token contexts on the bundled corpus.

    .venv/bin/python benchmarks/synth_bench.py                 # 300 samples
    .venv/bin/python benchmarks/synth_bench.py -n 2000 --check-all

Prints samples/s and tokens/s for (a) generation in memory and (b) the full `run_synth` (JSON lines,
fsync'd resumable writes), the ratio to the target (>= 20 samples/s on a 2-core CPU), and the ratio to
a straightforward reference that measures each sample by tokenizing its whole chat-formatted text
(timed on a subset in the same process), with the largest length difference between the two.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]  # the package; test oracles

TARGET = 20.0  # samples/s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--num-samples", type=int, default=300)
    ap.add_argument("--min-tokens", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=32768)
    ap.add_argument("--reference-samples", type=int, default=20, help="samples measured the slow way")
    ap.add_argument("--check-all", action="store_true", help="tokenize every sample in full and compare lengths")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    a = ap.parse_args()

    from longcurate.core.models import load_tokenizer
    from longcurate.synth.assemble import LengthModel
    from longcurate.synth.config import SynthConfig

    tok = load_tokenizer(a.model)
    sc = SynthConfig(num_samples=a.num_samples, min_tokens=a.min_tokens, max_tokens=a.max_tokens)
    lm = LengthModel(tok, sc.separator)
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        samples, t_gen = bench_generate(sc, tok, lm, Path(tmp))
        e2e = bench_run_synth(sc, tok, Path(tmp), sum(s.length for s in samples) / max(1, len(samples)))
    bench_reference(samples, t_gen, lm, a.reference_samples, a.check_all)
    rate = len(samples) / t_gen
    print(f"throughput: {rate:.1f} samples/s in memory, {e2e:.1f} samples/s end to end; "
          f"target {TARGET:.0f} samples/s: ratio {rate / TARGET:.2f} (in memory), {e2e / TARGET:.2f} (end to end)")
    return 0


def bench_generate(sc, tok, lm, tmp: Path) -> tuple[list, float]:
    """Segment the corpus, then generate the samples in memory: (samples, generation seconds)."""
    from longcurate.core.jsonl import Rejects
    from longcurate.synth.corpus import read_corpus
    from longcurate.synth.pipeline import generate
    from longcurate.synth.segment import build_pool
    from longcurate.synth.template_qa import TemplateBackend

    t0 = time.perf_counter()
    with Rejects(tmp / "corpus.rejected.jsonl") as rj:
        pool = build_pool(read_corpus(sc.corpus, rj), tok, sc.segment_tokens, rejects=rj, progress=False)
    print(f"corpus: {len(pool.docs)} documents, {len(pool.segments)} segments, "
          f"segmented in {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    samples = [o.sample for o in generate(sc, pool, lm, TemplateBackend(), 0, range(sc.num_samples))]
    t_gen = time.perf_counter() - t0
    tokens = sum(s.length for s in samples)
    print(f"generate (in memory): {len(samples)} samples, {tokens / len(samples):.0f} tokens/sample on average, "
          f"{len(samples) / t_gen:.1f} samples/s, {tokens / t_gen / 1e6:.2f} M tokens/s")
    return samples, t_gen


def bench_run_synth(sc, tok, tmp: Path, tokens_per_sample: float) -> float:
    """The full `run_synth` (JSON lines, fsync'd resumable writes); returns samples/s end to end."""
    from longcurate.config import RunConfig
    from longcurate.synth.pipeline import run_synth

    cfg = RunConfig(output_dir=str(tmp), synth=sc)
    t0 = time.perf_counter()
    stats = run_synth(cfg, progress=False, tokenizer=tok)
    t_run = time.perf_counter() - t0
    t_write = stats["timings_s"]["samples"]
    size = cfg.layout().samples.stat().st_size
    n = sc.num_samples
    print(f"run_synth: {t_run:.2f} s in all ({stats['timings_s']['corpus']:.2f} s reading + segmenting the corpus, "
          f"{t_write:.2f} s generating + writing {size / 1e6:.0f} MB of fsync'd JSON lines): "
          f"{n / t_run:.1f} samples/s end to end, {n / t_write:.1f} samples/s "
          f"({n * tokens_per_sample / t_write / 1e6:.2f} M tokens/s) once the corpus is segmented")
    return n / t_run


def bench_reference(samples: list, t_gen: float, lm, reference_samples: int, check_all: bool) -> None:
    """The reference: measure each sample by tokenizing its whole chat-formatted text."""
    ref = samples[:: max(1, len(samples) // reference_samples)][:reference_samples]
    t0 = time.perf_counter()
    worst = 0.0
    for s in ref:
        exact = lm.exact(s.context, s.instruction, s.response)
        worst = max(worst, abs(exact - s.length) / exact)
    t_ref = (time.perf_counter() - t0) / len(ref)
    per_sample = t_gen / len(samples)
    print(f"reference (full tokenization, {len(ref)} samples): {t_ref * 1000:.0f} ms/sample for the length alone "
          f"vs {per_sample * 1000:.1f} ms/sample for the whole fast path: {t_ref / per_sample:.1f}x; "
          f"largest length difference {100 * worst:.3f}%")
    if check_all:
        t0 = time.perf_counter()
        worst_all = max(abs(lm.exact(s.context, s.instruction, s.response) - s.length) / s.length for s in samples)
        print(f"check-all: {len(samples)} samples tokenized in full in {time.perf_counter() - t0:.0f} s; "
              f"largest length difference {100 * worst_all:.3f}%")


if __name__ == "__main__":
    raise SystemExit(main())
