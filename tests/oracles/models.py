"""Tiny randomly initialised models built from a config: fast and deterministic, for tests and
benchmarks (pair them with the SmolLM2 tokenizer, whose vocabulary size is the default)."""

from __future__ import annotations

from typing import Any

from longcurate.core.models import pick_dtype


def random_llama(seed: int = 0, vocab_size: int = 49152, hidden_size: int = 64, num_layers: int = 2,
                 num_heads: int = 4, num_kv_heads: int = 2, intermediate_size: int = 128,
                 max_position_embeddings: int = 8192, attn_implementation: str = "sdpa", dtype: str = "float32",
                 **config_kwargs: Any):
    """A randomly initialised Llama (default: 2 layers, hidden size 64) with `seed`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
                         num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                         intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
                         tie_word_embeddings=False, **config_kwargs)
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(pick_dtype(dtype))
    return model.eval()
