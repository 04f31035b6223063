"""vLLM offline backend (GPU; imported only when `eval.generate.backend: vllm`), prompts rendered like
the HF backend's. `generate`: greedy, the whole batch at once (vLLM schedules it). `loglikelihood`: the
prompt log-probs of prompt + answer (`SamplingParams(prompt_logprobs=0)`: each prompt token's own
log-prob), averaged over the answer's tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.eval.model import GenRequest, GenResult, LLRequest, LLResult
from longcurate.eval.render import encode_for_local, scorable_answers

if TYPE_CHECKING:
    from longcurate.eval.config import EvalRunConfig


class VLLMModel:
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

    def loglikelihood(self, requests: list[LLRequest]) -> list[LLResult]:
        from vllm import SamplingParams, TokensPrompt

        results, scored = scorable_answers(requests, self.tokenizer, self.template, self.max_context)
        where, seqs = [i for i, _ in scored], [seq for _, seq in scored]
        if seqs:
            params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
            outs = self.llm.generate([TokensPrompt(prompt_token_ids=s.input_ids) for s in seqs], params)
            for i, seq, out in zip(where, seqs, outs):
                results[i] = answer_result(requests[i], seq.input_ids, seq.response_start, out.prompt_logprobs)
        return [r for r in results if r is not None]


def answer_result(request: LLRequest, ids: list[int], start: int, prompt_logprobs: list[Any]) -> LLResult:
    """The mean NLL of tokens `ids[start:]` from vLLM's prompt log-probs (one dict per position,
    token id -> Logprob, holding at least the prompt's own token)."""
    values = [-float(prompt_logprobs[k][ids[k]].logprob) for k in range(start, len(ids))]
    return LLResult(request.id, sum(values) / len(values), len(values))


def from_config(run_cfg: EvalRunConfig, model_name: str) -> VLLMModel:
    try:
        from vllm import LLM
    except ModuleNotFoundError:
        raise UserError("the vllm backend needs vLLM: pip install 'longcurate[vllm]' (GPU only)") from None
    from longcurate.core.models import materialize

    g = run_cfg.eval.generate
    llm = LLM(model=materialize(model_name), tensor_parallel_size=g.vllm.tensor_parallel_size,
              gpu_memory_utilization=g.vllm.gpu_memory_utilization, max_model_len=g.vllm.max_model_len,
              seed=run_cfg.seed, trust_remote_code=run_cfg.trust_remote_code)
    return VLLMModel(llm, llm.get_tokenizer(), template=g.template, max_context=g.max_context)
