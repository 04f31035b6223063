"""An endpoint's API key: read from the environment variable a config section names (never from the
config itself), a dummy for a server on this machine, and redacted from every message kept."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlparse

from longcurate.core.errors import ConfigError

DUMMY_KEY = "EMPTY"  # what local servers (vLLM, llama.cpp) accept when they check no key


def is_local_url(base_url: str) -> bool:
    """The URL names this machine (localhost or a loopback address)."""
    host = (urlparse(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_from_env(env: str, base_url: str, section: str, who: str) -> str:
    """The key from `$<env>`; a dummy for a local server; else a `ConfigError` naming the variable
    (never a value). `section` is the config section (`synth.openai`), `who` what needs the key."""
    key = os.environ.get(env, "").strip() if env else ""
    if key:
        return key
    if is_local_url(base_url):
        return DUMMY_KEY
    raise ConfigError(f"{who} needs an API key: set the environment variable {env or '(none named)'} "
                      f"({section}.api_key_env names it); {section}.base_url {base_url} is not local")


class Redactor:
    """`redact(text)`: the text with the key replaced by `[redacted]` (a dummy or tiny key is left)."""

    def __init__(self, secret: str):
        self.secret = secret if secret and secret != DUMMY_KEY and len(secret) >= 4 else ""

    def __call__(self, text: str) -> str:
        return text.replace(self.secret, "[redacted]") if self.secret else text


__all__ = ["DUMMY_KEY", "is_local_url", "api_key_from_env", "Redactor"]
