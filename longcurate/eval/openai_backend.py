"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM server, llama.cpp server) through the `openai` SDK.

The key is read from the environment variable named in `eval.generate.openai.api_key_env` and is never
logged or written. Requests run in a bounded thread pool; the SDK retries 429 / 5xx / timeouts with
backoff (`max_retries`); an item that still fails becomes a result with `error` set.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from longcurate.core.errors import UserError
from longcurate.eval.generate import GenRequest, GenResult, as_messages

if TYPE_CHECKING:
    from longcurate.config import RunConfig

log = logging.getLogger("longcurate.eval")


class OpenAIGenerator:
    tokenizer = None

    def __init__(self, client: Any, model: str, *, max_concurrency: int = 8, max_context: int | None = None,
                 progress: bool = True):
        self.client = client
        self.model = model
        self.max_concurrency = max(1, max_concurrency)
        # The Generator protocol's attribute; without a tokenizer nothing is fitted to it (the server checks).
        self.max_context = max_context or 128000
        self.progress = progress

    def _one(self, r: GenRequest) -> GenResult:
        try:
            resp = self.client.chat.completions.create(model=self.model, messages=as_messages(r.prompt),
                                                       max_tokens=r.max_new_tokens, temperature=0.0)
            text = resp.choices[0].message.content or ""
            return GenResult(r.id, text.strip())
        except Exception as e:  # one failed request fails its own item only
            return GenResult(r.id, "", f"request failed: {type(e).__name__}: {str(e)[:300]}")

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        from tqdm.auto import tqdm

        with ThreadPoolExecutor(self.max_concurrency) as pool:
            return list(tqdm(pool.map(self._one, requests), total=len(requests), desc="generate",
                             unit="request", disable=not self.progress or not requests))


def from_config(run_cfg: RunConfig, model_name: str) -> OpenAIGenerator:
    from openai import OpenAI

    o = run_cfg.eval.generate.openai
    key = os.environ.get(o.api_key_env) if o.api_key_env else "EMPTY"
    if not key:
        raise UserError(f"the openai backend reads its API key from the environment variable {o.api_key_env}, "
                         "which is not set (set eval.generate.openai.api_key_env='' for servers without a key)")
    client = OpenAI(base_url=o.base_url, api_key=key, max_retries=o.max_retries, timeout=o.timeout_s)
    return OpenAIGenerator(client, o.model or model_name, max_concurrency=o.max_concurrency,
                           max_context=run_cfg.eval.generate.max_context)
