"""VaL-style probes (FILM): can the model use information at *every* position of a long context?

Three tasks, each a long context of many small units with one key asked about per position:

- `document` (bi-directional): units are corpus sentences; key = a fragment from the middle of one
  sentence; answer = the whole sentence (reading both left and right of the key).
- `code` (backward): units are real standard-library functions; key = a line of one function's body;
  answer = that function's name (written *before* the key).
- `database` (forward): units are records `id: …; label: …; description: …`; key = an id; answer =
  the label and description (written *after* the key).

Per set (`set_id`) one context of `context_tokens` tokens is built; `num_positions` keys are placed at
evenly spread fractions (p + 0.5) / P of the context (`position_id` p), each on the unit nearest its
target. Ambiguity check: a key that does not occur exactly once in the context is skipped and counted.
"""

from __future__ import annotations

import bisect
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from longcurate.core.errors import UserError
from longcurate.eval import sources

log = logging.getLogger("longcurate.eval")

TASKS = ("document", "code", "database")

INSTRUCTIONS = {
    "document": 'In the context above, one sentence contains the piece "{key}". Quote that complete sentence.',
    "code": 'In the context above, which function contains the code line "{key}"? Answer with the function name only.',
    "database": 'In the context above, what are the label and the description of the record with the id "{key}"? '
                "Answer with the label and the description.",
}
SEPARATORS = {"document": " ", "code": "\n\n", "database": "\n"}
TOKENS_PER_UNIT = {"document": 30, "code": 120, "database": 20}  # a first guess, refined per context


@dataclass
class Probe:
    id: str
    task: str
    set_id: int
    position_id: int
    num_positions: int
    key: str
    answer: str  # the sentence / the function name / the record's label
    context: str
    instruction: str
    key_char: int  # where the key starts in the context
    answer_char: int  # where the answer starts in the context
    key_token: int  # the key's first token in the tokenized context
    key_token_fraction: float  # key_token / context_tokens: where the key sits, 0 = start, 1 = end
    context_tokens: int
    description: str | None = None  # database: the record's description (also accepted as an answer)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Probe":
        from longcurate.core.records import RecordError

        missing = [f for f in ("id", "task", "set_id", "position_id", "key", "answer", "context", "instruction")
                   if f not in d]
        if missing:
            raise RecordError(missing[0], "missing field")
        if d["task"] not in TASKS:
            raise RecordError("task", f"unknown task {d['task']!r}; known: {', '.join(TASKS)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Unit:
    """One piece of a context: its text, where its answer sits, and the key it would be asked by."""

    text: str
    answer: str
    answer_offset: int
    key: str
    key_offset: int
    description: str | None = None


@dataclass
class BuildStats:
    items: int = 0
    skipped_ambiguous: dict[str, int] = field(default_factory=dict)
    context_tokens: dict[str, list[int]] = field(default_factory=dict)


# --- units per task -----------------------------------------------------------------------------

def middle_fragment(sentence: str, rng: random.Random, min_words: int = 4, max_words: int = 8) -> tuple[str, int] | None:
    """A run of words strictly inside the sentence (never its first two or last two words), so the
    whole sentence can only be recovered by reading both sides of it. Returns (fragment, char offset)."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", sentence)]
    inner = len(spans) - 4
    if inner < min_words:
        return None
    k = rng.randint(min_words, min(max_words, inner))
    start = rng.randint(2, len(spans) - 2 - k)
    a, b = spans[start][0], spans[start + k - 1][1]
    return sentence[a:b], a


def document_units(n: int, rng: random.Random, corpus: str) -> list[Unit]:
    pool = sources.corpus_sentences(corpus, min_words=12)
    out = []
    for i in rng.sample(range(len(pool)), min(len(pool), n)):
        s = pool[i]
        frag = middle_fragment(s, rng)
        if frag is not None:
            out.append(Unit(s, s, 0, frag[0], frag[1]))
    return out


_TRIVIAL = re.compile(r"^(return|pass|break|continue|else:|try:|finally:|raise)\b\s*\w{0,12}$")


def key_lines(fn: sources.Function) -> list[tuple[str, int]]:
    """Body lines that can serve as a key: code (not comments, docstrings or brackets), at least 16
    characters, three or more tokens, and not naming the function itself."""
    lines = fn.source.split("\n")
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    body_start = next((i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(":")), 1)
    out = []
    in_doc = False
    for i in range(body_start, len(lines)):
        s = lines[i].strip()
        quotes = s.count('"""') + s.count("'''")
        if in_doc or quotes:
            in_doc = in_doc != (quotes % 2 == 1)
            continue
        if (len(s) < 16 or s.startswith("#") or fn.name in s or _TRIVIAL.match(s)
                or len(re.findall(r"\w+|[^\w\s]", s)) < 3):
            continue
        out.append((s, offsets[i] + lines[i].index(s)))
    return out


def code_units(n: int, rng: random.Random, seed: int) -> list[Unit]:
    fns = sources.sample_functions(n, seed)
    rng.shuffle(fns)
    out = []
    for fn in fns:
        keys = key_lines(fn)
        if not keys:
            continue
        key, off = keys[rng.randrange(len(keys))]
        name_at = re.search(r"def\s+(\w+)", fn.source)
        out.append(Unit(fn.source, fn.name, name_at.start(1) if name_at else 0, key, off))
    return out


def database_units(n: int, rng: random.Random, corpus: str) -> list[Unit]:
    articles = [a for a in sources.load_articles(corpus) if a.description and "\n" not in a.title + a.description]
    chosen = rng.sample(articles, min(n, len(articles)))
    ids = rng.sample(range(1_000_000, 10_000_000), len(chosen))  # fixed width: no id is a prefix of another
    out = []
    for a, num in zip(chosen, ids):
        key = f"Q{num}"
        text = f"id: {key}; label: {a.title}; description: {a.description}"
        out.append(Unit(text, a.title, text.index("label: ") + 7, key, 4, a.description))
    return out


def make_units(task: str, n: int, rng: random.Random, seed: int, corpus: str) -> list[Unit]:
    if task == "document":
        return document_units(n, rng, corpus)
    if task == "code":
        return code_units(n, rng, seed)
    if task == "database":
        return database_units(n, rng, corpus)
    raise UserError(f"unknown probe task {task!r}; known: {', '.join(TASKS)}")


# --- assembly -----------------------------------------------------------------------------------

def assemble(units: list[Unit], sep: str, target_tokens: int, count: Callable[[list[str]], list[int]]) -> tuple[list[Unit], list[int]]:
    """Take units in order while the context stays within `target_tokens`; returns the units and each
    one's token count (separator included)."""
    lengths = count([u.text + sep for u in units])
    kept, kept_len, total = [], [], 0
    for u, n in zip(units, lengths):
        if total + n > target_tokens:
            if total >= 0.9 * target_tokens:
                break
            continue  # a long unit at the end: try a shorter one
        kept.append(u)
        kept_len.append(n)
        total += n
    return kept, kept_len


def place_positions(unit_tokens: list[int], num_positions: int) -> list[int]:
    """For each position p, the index of the unit whose centre is nearest (p + 0.5) / P of the
    context's tokens; a unit already taken gives way to the nearest free one."""
    if num_positions > len(unit_tokens):
        raise UserError(f"{num_positions} positions need at least as many units; the context holds "
                         f"{len(unit_tokens)}: raise context_tokens or lower num_positions")
    total = sum(unit_tokens)
    centres, acc = [], 0
    for n in unit_tokens:
        centres.append(acc + n / 2)
        acc += n
    taken: set[int] = set()
    out = []
    for p in range(num_positions):
        target = (p + 0.5) / num_positions * total
        order = sorted(range(len(centres)), key=lambda i: (abs(centres[i] - target), i))
        idx = next(i for i in order if i not in taken)
        taken.add(idx)
        out.append(idx)
    return out


def token_counter(tokenizer) -> Callable[[list[str]], list[int]]:
    def count(texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return count


def build_task(task: str, tokenizer, *, context_tokens: int, num_positions: int, num_sets: int, seed: int,
               corpus: str = sources.WIKI_ALIAS, on_skip: Callable[[str, str], None] | None = None,
               stats: BuildStats | None = None) -> list[Probe]:
    """All probes of one task: `num_sets` contexts × `num_positions` keys (minus ambiguous ones)."""
    count = token_counter(tokenizer)
    sep = SEPARATORS[task]
    stats = stats if stats is not None else BuildStats()
    out: list[Probe] = []
    for set_id in range(num_sets):
        rng = random.Random(f"{seed}:{task}:{set_id}")
        # draw ~2x the units a context needs (a first guess of the unit size is refined once)
        guess = max(8, 2 * context_tokens // TOKENS_PER_UNIT[task])
        units = make_units(task, guess, rng, seed * 1000 + set_id, corpus)
        avg = max(1.0, sum(count([u.text for u in units[:32]])) / max(1, min(32, len(units))))
        need = int(2 * context_tokens / avg) + 8
        if need > len(units):
            units = units + make_units(task, need - len(units), rng, seed * 1000 + set_id + 500, corpus)
            units = list({u.text: u for u in units}.values())  # a unit may be drawn twice
        kept, lengths = assemble(units, sep, context_tokens, count)
        while True:  # tokens merge across unit boundaries: trim until the real count fits
            context = sep.join(u.text for u in kept)
            enc = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
            if len(enc["input_ids"]) <= context_tokens or len(kept) <= num_positions:
                break
            kept, lengths = kept[:-1], lengths[:-1]
        token_ends = [end for _, end in enc["offset_mapping"]]
        n_tokens = len(token_ends)
        starts, pos = [], 0
        for u in kept:
            starts.append(pos)
            pos += len(u.text) + len(sep)
        stats.context_tokens.setdefault(task, []).append(n_tokens)
        for p, idx in enumerate(place_positions(lengths, num_positions)):
            u = kept[idx]
            pid = f"{task}-s{set_id}-p{p}"
            occurrences = context.count(u.key)
            if occurrences != 1:
                stats.skipped_ambiguous[task] = stats.skipped_ambiguous.get(task, 0) + 1
                if on_skip:
                    on_skip(pid, f"ambiguous key: occurs {occurrences} times in the context")
                continue
            key_char = starts[idx] + u.key_offset
            key_token = bisect.bisect_right(token_ends, key_char)  # the first token reaching past key_char
            out.append(Probe(
                id=pid, task=task, set_id=set_id, position_id=p, num_positions=num_positions, key=u.key,
                answer=u.answer, context=context, instruction=INSTRUCTIONS[task].format(key=u.key),
                key_char=key_char, answer_char=starts[idx] + u.answer_offset, key_token=key_token,
                key_token_fraction=round(key_token / n_tokens, 6), context_tokens=n_tokens,
                description=u.description))
    stats.items += len(out)
    return out


def build_probes(tokenizer, *, tasks: list[str] | tuple[str, ...] = TASKS, context_tokens: int = 2048,
                 num_positions: int = 4, num_sets: int = 1, seed: int = 0, corpus: str = sources.WIKI_ALIAS,
                 on_skip: Callable[[str, str], None] | None = None) -> tuple[list[Probe], BuildStats]:
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UserError(f"unknown probe task(s) {unknown}; known: {', '.join(TASKS)}")
    if context_tokens < 64 or num_positions < 1 or num_sets < 1:
        raise UserError("need context_tokens >= 64, num_positions >= 1, num_sets >= 1")
    stats = BuildStats()
    items: list[Probe] = []
    for task in tasks:
        items.extend(build_task(task, tokenizer, context_tokens=context_tokens, num_positions=num_positions,
                                num_sets=num_sets, seed=seed, corpus=corpus, on_skip=on_skip, stats=stats))
    return items, stats
