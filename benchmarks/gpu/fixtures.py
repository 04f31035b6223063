"""Random models, a word-level tokenizer and random token data for the GPU check. Nothing is downloaded
or read from a model package, so the check runs the same on a GPU machine that reaches no hub and
lacks the bundled SmolLM2 package."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from gpu.sizes import SHAPES

FIRST_WORD = 3  # ids 0-2 are <unk> (also the padding), <s>, </s>; random data never holds them


def build_llama(shape: str, *, device: str, dtype: Any, attn: str = "sdpa", max_positions: int = 8192,
                seed: int = 0):
    """A randomly initialised Llama of `shape` (sizes.SHAPES), built directly on `device` in `dtype`
    (a 7B model is initialised on the GPU in seconds, never in CPU memory first)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=max(max_positions, 2048),
                         tie_word_embeddings=False, use_cache=False)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
    return model.eval()


def weights_gib(model) -> float:
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30


def word_tokenizer(vocab_size: int):
    """A fast tokenizer whose words `w3 w4 ...` are the model's ids: encode / decode / save work
    offline, and a decoded text shows the generated ids one word each."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(FIRST_WORD, vocab_size)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<unk>")


def random_ids(rng: random.Random, n: int, vocab: int) -> list[int]:
    return [rng.randrange(FIRST_WORD, vocab) for _ in range(n)]


def lengths_between(n: int, bounds: tuple[int, int], seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(*bounds) for _ in range(n)]


def score_items(n: int, bounds: tuple[int, int], vocab: int, seed: int = 0) -> list:
    """HMG-style items: random prompts with a 32-256-token response at the end."""
    from longcurate.core.engine import ScoreItem

    rng = random.Random(seed)
    items = []
    for i, length in enumerate(lengths_between(n, bounds, seed)):
        response = rng.randint(min(32, length // 4), min(256, length // 4))
        items.append(ScoreItem(f"s{i}", random_ids(rng, length, vocab), length - response))
    return items


def cam_item(n_tokens: int, segment: int, vocab: int, seed: int = 0):
    """A CAM item: context segments of `segment` tokens, then an instruction and a response of
    `segment` tokens each (the shape select builds; the values do not change time or memory)."""
    from longcurate.core.engine import ScoreItem

    ids = random_ids(random.Random(seed), n_tokens, vocab)
    ctx_end = n_tokens - 2 * segment
    spans = [(s, min(s + segment, ctx_end)) for s in range(0, ctx_end, segment)]
    return ScoreItem(f"cam{n_tokens}", ids, n_tokens - segment, spans)


def train_samples(n: int, bounds: tuple[int, int], vocab: int, seed: int = 0) -> list[dict]:
    """Tokenized samples in the tokenize stage's format: a prompt (labels -100), then a response."""
    rng = random.Random(seed)
    out = []
    for i, length in enumerate(lengths_between(n, bounds, seed)):
        ids = random_ids(rng, length, vocab)
        response = rng.randint(1, max(1, length // 8))
        out.append({"id": f"t{i}", "source": "long", "input_ids": ids,
                    "labels": [-100] * (length - response) + ids[length - response:],
                    "length": length, "n_response_tokens": response})
    return out


def save_dataset(samples: list[dict], folder: Path) -> None:
    """The samples as the `datasets` folder `longcurate train fit` reads."""
    from datasets import Dataset

    Dataset.from_dict({k: [s[k] for s in samples] for k in samples[0]}).save_to_disk(str(folder))


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
