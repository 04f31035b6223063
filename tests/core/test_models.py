import pytest
import torch

from longcurate.core.models import SMOLLM2_ALIAS, ModelSource, pick_dtype, resolve
from oracles.models import random_llama


def test_alias_resolves_to_shipped_gguf():
    src = resolve(SMOLLM2_ALIAS)
    assert src.gguf_file and src.gguf_file.endswith(".gguf")


def test_plain_names_pass_through():
    assert resolve("some/hub-id") == ModelSource("some/hub-id")
    with pytest.raises(FileNotFoundError):
        resolve("/nope/model.gguf")


def test_pick_dtype():
    assert pick_dtype("float32") is torch.float32
    assert pick_dtype("bf16") is torch.bfloat16
    assert pick_dtype("auto", "cpu") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError):
        pick_dtype("int3")


def test_random_llama_is_deterministic():
    a, b = random_llama(seed=1), random_llama(seed=1)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(a(ids).logits, b(ids).logits)


@pytest.mark.integration
def test_smollm2_loads_from_cache_and_generates(tokenizer, smollm2):
    from longcurate.core.models import materialize

    folder = materialize(SMOLLM2_ALIAS)
    assert (__import__("pathlib").Path(folder) / "model.safetensors").exists()
    ids = tokenizer("The capital of France is", return_tensors="pt")
    out = smollm2.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0])
