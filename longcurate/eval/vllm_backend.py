"""vLLM offline backend (GPU; imported only when `eval.generate.backend: vllm`): greedy, whole batch
at once (vLLM schedules it), prompts rendered like the HF backend's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.eval.generate import GenRequest, GenResult, encode_for_local

if TYPE_CHECKING:
    from longcurate.config import RunConfig


class VLLMGenerator:
    def __init__(self, llm: Any, tokenizer: Any, *, template: str = "chat", max_context: int | None = None):
        self.llm = llm
        self.tokenizer = tokenizer
        self.template = template
        self.max_context = int(max_context or llm.llm_engine.model_config.max_model_len)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        from vllm import SamplingParams, TokensPrompt

        results: list[GenResult | None] = [None] * len(requests)
        prompts, params, where = [], [], []
        for i, r in enumerate(requests):
            ids = encode_for_local(r, self.tokenizer, self.template, self.max_context)
            if isinstance(ids, GenResult):
                results[i] = ids
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(SamplingParams(temperature=0.0, max_tokens=r.max_new_tokens))
            where.append(i)
        if prompts:
            try:
                outs = self.llm.generate(prompts, params)
                for i, o in zip(where, outs):
                    results[i] = GenResult(requests[i].id, o.outputs[0].text.strip())
            except Exception as e:
                for i in where:
                    results[i] = GenResult(requests[i].id, "", f"generation failed: {type(e).__name__}: {e}")
        return [r for r in results if r is not None]


def from_config(run_cfg: RunConfig, model_name: str) -> VLLMGenerator:
    try:
        from vllm import LLM
    except ModuleNotFoundError:
        raise UserError("the vllm backend needs vLLM: pip install 'longcurate[vllm]' (GPU only)") from None
    from longcurate.core.models import materialize

    g = run_cfg.eval.generate
    llm = LLM(model=materialize(model_name), tensor_parallel_size=g.vllm.tensor_parallel_size,
              gpu_memory_utilization=g.vllm.gpu_memory_utilization, max_model_len=g.vllm.max_model_len,
              seed=run_cfg.seed, trust_remote_code=run_cfg.trust_remote_code)
    return VLLMGenerator(llm, llm.get_tokenizer(), template=g.template, max_context=g.max_context)
