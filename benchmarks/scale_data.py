"""Synthetic inputs for `scale_bench.py`, made by the script (never downloaded), each cached under its
folder by size: samples in the synth format, merged HMG / CAM score files, a ranking, CAM part files,
ShareGPT chats, a mixture and a JSON array of records. Text is random words; a token is ~4 characters
of it under the SmolLM2 tokenizer (`CHARS_PER_TOKEN`, checked by the score step's own count)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Callable, Iterator

WORDS = ("river city music model paper score green stone light window number history science garden "
         "market table letter school winter summer north south bridge engine copper harbor lantern meadow "
         "orbit canyon violet falcon marble thunder velvet prairie summit cobalt ember glacier").split()
CHARS_PER_TOKEN = 5.5  # random lowercase words: most are one token plus its space
SEGMENTS = 32  # per CAM record (the demo's max_segments is 16 to 32; the paper's 500)


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


_SENTENCES: list[str] = []


def text(rng: random.Random, chars: int) -> str:
    """Sentences of random words (drawn from a fixed pool of 4,096, so making gigabytes stays quick),
    about `chars` characters, paragraphs split by blank lines."""
    if not _SENTENCES:
        pool = random.Random(0)
        _SENTENCES.extend(" ".join(pool.choice(WORDS) for _ in range(pool.randint(8, 16))).capitalize() + "."
                          for _ in range(4096))
    out, n = [], 0
    while n < chars:
        sentence = _SENTENCES[rng.getrandbits(12)]
        out.append(sentence + ("\n\n" if rng.random() < 0.2 else " "))
        n += len(sentence) + 1
    return "".join(out).strip()


def sample(i: int, rng: random.Random, chars: int) -> dict:
    """A synth-format sample whose context is ~`chars` characters, with one gold span."""
    context = text(rng, chars)
    gold = f"The secret code of item {i} is {rng.randint(100, 999)}."
    cut = rng.randint(0, len(context))
    context = context[:cut] + " " + gold + " " + context[cut:]
    instruction, response = f"What is the secret code of item {i}?", gold
    return {"id": f"s{i:07d}", "kind": "fine", "context": context, "instruction": instruction, "response": response,
            "messages": [], "gold": [{"segment": 0, "char_start": cut + 1, "char_end": cut + 1 + len(gold)}],
            "num_segments": 0, "length": 0, "source": {"generator": "scale_bench"}}


def write_lines(path: Path, records) -> None:
    """Write (atomically) unless the file is there: inputs are made once per size and reused. A
    record is a dict, or a line already serialized."""
    if path.exists():
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else _dumps(r)) + "\n")
    tmp.replace(path)


def _with_id(make: Callable[[random.Random], dict], seed: int, rows: int, pool: int = 997):
    """`rows` lines `{"id": "s<i>", ...}` whose other fields come from a pool of `pool` records made
    by `make` (serialized once: full-precision floats to parse, at the cost of a string join)."""
    rng = random.Random(seed)
    bodies = [_dumps(make(rng))[1:] for _ in range(pool)]
    return (f'{{"id": "s{i:07d}", {bodies[i % pool]}' for i in range(rows))


def samples(folder: Path, rows: int, chars: int = 1500, name: str = "samples.jsonl") -> Path:
    path = folder / name
    rng = random.Random(1)
    write_lines(path, (sample(i, rng, chars) for i in range(rows)))
    return path


def _hmg(rng: random.Random) -> dict:
    nll_a, nll_b, alone = rng.uniform(1, 4), rng.uniform(1, 3), rng.uniform(2, 5)
    n = rng.randint(300, 900)
    return {"nll_a": nll_a, "ppl_a": math.exp(nll_a), "nll_b": nll_b, "ppl_b": math.exp(nll_b),
            "nll_b_alone": alone, "ppl_b_alone": math.exp(alone), "ifd": math.exp(nll_b - alone),
            "n_response_tokens": 12, "n_tokens": n, "n_tokens_a": min(n, 1024), "model_a": "smollm2@window1024",
            "window_a": 1024, "model_b": "smollm2", "window_b": None, "prompt_format": "chat", "truncated": 0,
            "gold_beyond_window": rng.random() < 0.5, "norm_ppl_a": rng.random(), "norm_ppl_b": rng.random(),
            "hmg": rng.uniform(-1, 1)}


def _cam(rng: random.Random) -> dict:
    nll = [rng.uniform(1, 3) for _ in range(SEGMENTS)]
    imp = [math.exp(-x) for x in nll]
    total = sum(imp)
    return {"segments": list(range(SEGMENTS)), "num_segments_total": SEGMENTS,
            "segment_ppl": [math.exp(x) for x in nll], "importance": [x / total for x in imp],
            "segment_attn": [rng.random() / SEGMENTS for _ in range(SEGMENTS)], "cas": rng.random(),
            "cas_metric": "cos", "gold_segments": [rng.randrange(SEGMENTS)], "model": "smollm2", "layers": None,
            "prompt_format": "chat"}


def scores(folder: Path, rows: int) -> tuple[Path, Path]:
    hmg, cam = folder / "hmg.jsonl", folder / "cam.jsonl"
    write_lines(hmg, _with_id(_hmg, 2, rows))
    write_lines(cam, _with_id(_cam, 3, rows))
    return hmg, cam


def ranked(folder: Path, rows: int) -> Path:
    rng = random.Random(3)
    order = list(range(rows))
    rng.shuffle(order)
    path = folder / "ranked.jsonl"
    write_lines(path, ({"id": f"s{i:07d}", "rank": k + 1, "score": 1 - k / rows, "hmg": rng.uniform(-1, 1),
                        "cas": rng.random(), "hmg_term": rng.random(), "cas_term": rng.random(), "ifd": rng.random(),
                        "perplexity": rng.uniform(1, 30), "n_tokens": rng.randint(300, 900)}
                       for k, i in enumerate(order)))
    return path


def cam_parts(folder: Path, rows: int, config: Callable[[Path], object]) -> None:
    """CAM part files of two shards, each in its own shuffled order (scoring writes them longest
    first, not in input order), finished through the step runner with the settings `config(folder)`
    scores with, ready for `select merge`."""
    from longcurate.core.runner import run_step
    from longcurate.select.steps import ScoreSteps

    steps = ScoreSteps.of(config(folder), "cam")
    rng = random.Random(3)
    bodies = [_dumps(_cam(rng))[1:] for _ in range(997)]
    for k in (0, 1):
        order = list(range(k, rows, 2))
        random.Random(10 + k).shuffle(order)
        part = (f'{{"id": "s{i:07d}", {bodies[i % 997]}' for i in order)
        run_step(steps.part(k, 2), lambda run: write_lines(run.output, part) or {})


def chat(i: int, rng: random.Random, turns: int = 4, chars: int = 250) -> dict:
    roles = ("human", "gpt")
    return {"id": f"sg-{i}", "conversations": [{"from": roles[t % 2], "value": text(rng, chars)} for t in range(turns)]}


def sharegpt(folder: Path, rows: int) -> Path:
    rng = random.Random(4)
    path = folder / "sharegpt.jsonl"
    write_lines(path, (chat(i, rng) for i in range(rows)))
    return path


def long_samples(folder: Path, tokens: int, mean_tokens: int = 4000) -> Path:
    """Samples whose contexts total about `tokens` tokens, 1/4 to 7/4 of `mean_tokens` each."""
    rng = random.Random(5)
    path = folder / "long.jsonl"
    write_lines(path, until_tokens(rng, tokens, mean_tokens // 4, mean_tokens * 7 // 4,
                                   lambda i, n: sample(i, rng, int(n * CHARS_PER_TOKEN))))
    return path


def until_tokens(rng: random.Random, tokens: int, low: int, high: int,
                 make: Callable[[int, int], dict]) -> Iterator[dict]:
    """Records of `low`..`high` tokens each (`make(index, tokens)`) until they total about `tokens`."""
    total, i = 0, 0
    while total < tokens:
        n = rng.randint(low, high)
        yield make(i, n)
        total, i = total + n, i + 1


def mixture(folder: Path, tokens: int, mean_tokens: int = 2000) -> Path:
    """A mixture file (`train mix`'s lines) of chats totalling about `tokens` tokens."""
    rng = random.Random(6)
    path = folder / "mixture.jsonl"

    def line(i: int, n: int) -> dict:
        conv = chat(i, rng, turns=4, chars=int(n * CHARS_PER_TOKEN / 4))["conversations"]
        messages = [{"role": "user" if t["from"] == "human" else "assistant", "content": t["value"]} for t in conv]
        return {"id": f"m{i}", "source": "short", "origin": "bench", "messages": messages}

    write_lines(path, until_tokens(rng, tokens, mean_tokens // 2, mean_tokens * 3 // 2, line))
    return path


def json_array(folder: Path, rows: int) -> Path:
    """One JSON array of ShareGPT records (~1.1 KB each), written a record at a time."""
    rng = random.Random(7)
    path = folder / "records.json"
    if path.exists():
        return path
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("[\n")
        for i in range(rows):
            f.write(("" if i == 0 else ",\n") + _dumps(chat(i, rng)))
        f.write("\n]\n")
    tmp.replace(path)
    return path
