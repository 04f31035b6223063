"""The demo's short chat file is what `scripts/make_short_chat.py` makes, from training-side articles only."""

import importlib.util
import json
from pathlib import Path

from longcurate.core.holdout import HoldoutConfig, side_of

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_short_chat", ROOT / "scripts" / "make_short_chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_file_is_reproducible_and_from_the_training_side(monkeypatch):
    script = _script()
    seen = []
    real = script.conversation
    monkeypatch.setattr(script, "conversation", lambda cid, article, rng: seen.append(article) or real(cid, article, rng))
    made = script.make(100, 0)
    shipped = [json.loads(x) for x in (ROOT / "data" / "short_chat_demo.jsonl").read_text().splitlines()]
    assert made == shipped
    data = json.loads(script.summaries_path().read_text(encoding="utf-8"))
    key_of = {json.dumps(v, sort_keys=True): k for k, v in data.items()}
    assert seen and all(side_of(key_of[json.dumps(a, sort_keys=True)], HoldoutConfig()) == "train" for a in seen)
