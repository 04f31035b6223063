"""One manifest shape for every stage: the whole config, the commit, the versions, the stats."""

import json
from dataclasses import dataclass, field

from longcurate import __version__
from longcurate.core.runinfo import write_manifest


@dataclass
class _Section:
    alpha: float = 0.5


@dataclass
class _Config:
    seed: int = 3
    select: _Section = field(default_factory=_Section)


def test_the_manifest_records_the_whole_config_versions_and_stats(tmp_path):
    path = tmp_path / "train.manifest.json"
    write_manifest(path, "train", _Config(), {"fit": {"steps": 2}})
    m = json.loads(path.read_text())
    assert list(m) == ["stage", "config", "git_commit", "versions", "platform", "finished_at", "stats"]
    assert m["stage"] == "train" and m["stats"] == {"fit": {"steps": 2}}
    assert m["config"] == {"seed": 3, "select": {"alpha": 0.5}}  # every section, not only the stage's
    v = m["versions"]
    assert v["longcurate"] == __version__ and v["prompt_format"] and v["python"].count(".") == 2
    assert v["torch"] and v["transformers"] and "vllm" in v  # an absent library is recorded as null
