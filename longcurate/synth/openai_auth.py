"""The openai backend's API key: read from the environment (never from the config), a dummy for local
servers, and redacted from everything the backend logs or records."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse

from longcurate.core.errors import ConfigError
from longcurate.synth.config import OpenAIConfig

DUMMY_KEY = "EMPTY"  # what local servers (vLLM, llama.cpp) accept when they check no key


def is_local_url(base_url: str) -> bool:
    host = (urlparse(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(cfg: OpenAIConfig) -> str:
    """The key from `$<api_key_env>`; a dummy for local servers; else a clear error (naming the
    variable, never a value)."""
    key = os.environ.get(cfg.api_key_env, "").strip()
    if key:
        return key
    if is_local_url(cfg.base_url):
        return DUMMY_KEY
    raise ConfigError(
        f"the openai QA backend needs an API key: set the environment variable {cfg.api_key_env} "
        f"(or name another variable with synth.openai.api_key_env); base_url {cfg.base_url} is not local")


class Redactor:
    """`redact(text)`: the text with the key replaced by `[redacted]` (a dummy or tiny key is left)."""

    def __init__(self, secret: str):
        self.secret = secret if secret and secret != DUMMY_KEY and len(secret) >= 4 else ""

    def __call__(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text
