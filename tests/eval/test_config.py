"""The eval config is checked when it is built (`__post_init__` of every dataclass in eval/config.py):
a bad range, an unknown name or a judge setting that cannot work is a ConfigError naming the key, so
`longcurate run` stops before any stage starts, with one line, exit 2 and nothing written."""

from __future__ import annotations

import time

import pytest

from longcurate.cli import main
from longcurate.config import RunConfig
from longcurate.core.config import apply_overrides, build
from longcurate.core.errors import ConfigError
from longcurate.eval.tasks import task_names

BAD = [
    ("eval.run=[nope]", "eval.run"),
    ("eval.run=[probes,probes]", "eval.run"),
    ("eval.run=[]", "eval.run"),
    ("eval.run=[longbench-chat]", "eval.longbench_chat.data_dir"),
    ("eval.models=[base,base]", "eval.models"),
    ("eval.limit=0", "eval.limit"),
    ("eval.corpus=", "eval.corpus"),
    ("eval.judge.timeout_s=0", "eval.judge.timeout_s"),
    ("eval.judge.timeout_s=.inf", "eval.judge.timeout_s"),
    ("eval.judge.max_retries=-1", "eval.judge.max_retries"),
    ("eval.judge.max_concurrency=0", "eval.judge.max_concurrency"),
    ("eval.judge.max_requests=0", "eval.judge.max_requests"),
    ("eval.judge.base_url=judge.local:8000", "eval.judge.base_url"),
    ("eval.judge.model=", "eval.judge.model"),
    ("eval.generate.backend=tgi", "eval.generate.backend"),
    ("eval.generate.template=alpaca", "eval.generate.template"),
    ("eval.generate.dtype=int4", "eval.generate.dtype"),
    ("eval.generate.device=gpu", "eval.generate.device"),
    ("eval.generate.batch_size=0", "eval.generate.batch_size"),
    ("eval.generate.max_batch_tokens=0", "eval.generate.max_batch_tokens"),
    ("eval.generate.max_context=0", "eval.generate.max_context"),
    ("eval.generate.max_new_tokens=0", "eval.generate.max_new_tokens"),
    ("eval.generate.openai.base_url=", "eval.generate.openai.base_url"),
    ("eval.generate.openai.timeout_s=-1", "eval.generate.openai.timeout_s"),
    ("eval.generate.openai.max_retries=-2", "eval.generate.openai.max_retries"),
    ("eval.generate.openai.max_concurrency=0", "eval.generate.openai.max_concurrency"),
    ("eval.generate.vllm.gpu_memory_utilization=1.5", "eval.generate.vllm.gpu_memory_utilization"),
    ("eval.generate.vllm.tensor_parallel_size=0", "eval.generate.vllm.tensor_parallel_size"),
    ("eval.probes.tasks=[poetry]", "eval.probes.tasks"),
    ("eval.probes.tasks=[]", "eval.probes.tasks"),
    ("eval.probes.context_tokens=10", "eval.probes.context_tokens"),
    ("eval.probes.num_positions=0", "eval.probes.num_positions"),
    ("eval.probes.num_sets=0", "eval.probes.num_sets"),
    ("eval.probes.span=0", "eval.probes.span"),
    ("eval.probes.task_positions={poetry: 3}", "eval.probes.task_positions"),
    ("eval.probes.task_positions={code: 0}", "eval.probes.task_positions.code"),
    ("eval.needle.lengths=[]", "eval.needle.lengths"),
    ("eval.needle.lengths=[0]", "eval.needle.lengths"),
    ("eval.needle.depths=[120]", "eval.needle.depths"),
    ("eval.needle.key_words=[saffron]", "eval.needle.key_words"),
    ("eval.needle.max_new_tokens=0", "eval.needle.max_new_tokens"),
    ("eval.nll.buckets=0", "eval.nll.buckets"),
    ("eval.nll.batch_tokens=0", "eval.nll.batch_tokens"),
    ("eval.longbench.tasks=[nope]", "eval.longbench.tasks"),
    ("eval.longbench.limit=0", "eval.longbench.limit"),
    ("eval.longbench.max_input_tokens=0", "eval.longbench.max_input_tokens"),
    ("eval.longbench_chat.max_new_tokens=0", "eval.longbench_chat.max_new_tokens"),
    ("eval.longbench_chat.limit=0", "eval.longbench_chat.limit"),
]


@pytest.mark.parametrize("override, key", BAD)
def test_a_bad_setting_names_its_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build(RunConfig, apply_overrides({}, [override]))


def test_eval_run_takes_the_registered_tasks():
    cfg = build(RunConfig, apply_overrides({}, [f"eval.run=[{','.join(task_names())}]",
                                                "eval.longbench_chat.data_dir=somewhere"]))
    assert cfg.eval.run == ["probes", "needle", "nll", "longbench", "longbench-chat"]
    with pytest.raises(ConfigError, match="longbench-chat"):  # the message lists what eval.run takes
        build(RunConfig, apply_overrides({}, ["eval.run=[val]"]))


@pytest.mark.parametrize("override", ["eval.run=[nope]", "eval.judge.timeout_s=0", "eval.judge.max_retries=-1",
                                      "eval.generate.openai.base_url=none"])
def test_run_demo_stops_before_any_work(tmp_path, capsys, override):
    out = tmp_path / "out"
    t0 = time.monotonic()
    code = main(["run", "demo", override, f"output_dir={out}"])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and took < 5, (code, took)
    assert len(lines) == 1 and lines[0].startswith("longcurate: error:") and "Traceback" not in err
    assert not out.exists()  # nothing written: the config is refused before the first stage
