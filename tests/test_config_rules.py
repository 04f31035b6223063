"""Every config section checks its own values when it is built (`__post_init__`, `core.rules`), and
`RunConfig` checks the rules that span sections: a bad value is a `ConfigError` naming the key and
where it came from, before any step runs."""

from __future__ import annotations

import math

import pytest

from longcurate.config import RunConfig
from longcurate.core import rules
from longcurate.core.config import build
from longcurate.core.errors import ConfigError, FieldError
from longcurate.eval.config import EvalRunConfig
from longcurate.select.budget import method_orders
from longcurate.select.config import METHODS, SelectConfig, SelectRun
from longcurate.synth.config import FINE_TYPES, MULTIHOP_TYPES, SynthRun
from longcurate.synth.template_qa import TemplateBackend
from longcurate.train.config import TrainRun

# (a config mapping, the key the error must name); each is refused
REFUSED = [
    ({"seed": -1}, "seed"),
    ({"model": ""}, "model"),
    ({"stages": ["synth", "nope"]}, "stages"),
    ({"stages": ["synth", "synth"]}, "stages"),
    ({"holdout": {"fraction": 1.0}}, "holdout.fraction"),
    ({"synth": {"heldout_samples": 5}, "holdout": {"fraction": 0.0}}, "synth.heldout_samples"),
    ({"synth": {"corpus": {"limit": 0}}}, "synth.corpus.limit"),
    ({"synth": {"corpus": {"path": ""}}}, "synth.corpus.path"),
    ({"synth": {"openai": {"temperature": 3.0}}}, "synth.openai.temperature"),
    ({"synth": {"openai": {"timeout_s": float("inf")}}}, "synth.openai.timeout_s"),
    ({"synth": {"openai": {"backoff_initial_s": 5, "backoff_max_s": 1}}}, "synth.openai.backoff_max_s"),
    ({"synth": {"openai": {"max_tokens_param": "tokens"}}}, "synth.openai.max_tokens_param"),
    ({"synth": {"backend": "gpt"}}, "synth.backend"),
    ({"synth": {"fine_types": ["order"]}}, "synth.fine_types"),
    ({"synth": {"fine_types": ["riddle"]}}, "synth.fine_types"),
    ({"synth": {"fine_types": []}}, "synth.fine_types"),
    ({"synth": {"multihop_types": []}}, "synth.multihop_types"),
    ({"synth": {"min_tokens": 5000, "max_tokens": 4096}}, "synth.min_tokens"),
    ({"synth": {"short_fraction": float("nan")}}, "synth.short_fraction"),
    ({"select": {"alpha": 7}}, "select.alpha"),
    ({"select": {"alpha": float("nan")}}, "select.alpha"),
    ({"select": {"normalize": "bogus"}}, "select.normalize"),
    ({"select": {"window": -1}}, "select.window"),
    ({"select": {"window": 0}}, "select.window"),  # the full input, and no other θ_A: θ_A = θ_B
    ({"select": {"hmg_scale": "sqrt"}}, "select.hmg_scale"),
    ({"select": {"cas_metric": "l2"}}, "select.cas_metric"),
    ({"select": {"importance_temperature": 0}}, "select.importance_temperature"),
    ({"select": {"chunk_size": 0}}, "select.chunk_size"),
    ({"select": {"chunk_seconds": -1}}, "select.chunk_seconds"),
    ({"select": {"key_block": 0}}, "select.key_block"),
    ({"select": {"prompt_format": "alpaca"}}, "select.prompt_format"),
    ({"select": {"overlong": "drop"}}, "select.overlong"),
    ({"select": {"dtype": "int8"}}, "select.dtype"),
    ({"select": {"budgets": [2.5]}}, "select.budgets"),
    ({"select": {"budgets": []}}, "select.budgets"),
    ({"select": {"baselines": ["random", "best"]}}, "select.baselines"),
    ({"select": {"baselines": ["gateau"]}}, "select.baselines"),
    ({"select": {"budget_overflow": "maybe"}}, "select.budget_overflow"),
    ({"select": {"num_shards": 2, "shard_index": 2}}, "select.shard_index"),
    ({"train": {"mix": {"short_size": -1}}}, "train.mix.short_size"),
    ({"train": {"mix": {"short": "s.jsonl", "short_size": 3, "short_ratio": 1.0}}}, "train.mix.short_size"),
    ({"train": {"mix": {"short_ratio": 2.0}}}, "train.mix.short"),
    ({"train": {"tokenize": {"template": "alpaca"}}}, "train.tokenize.template"),
    ({"train": {"tokenize": {"overlong": "drop"}}}, "train.tokenize.overlong"),
    ({"train": {"tokenize": {"max_length": 0}}}, "train.tokenize.max_length"),
    ({"train": {"batching": "bucketed"}}, "train.batching"),
    ({"train": {"loss_weighting": "mean"}}, "train.loss_weighting"),
    ({"train": {"batching": "packed", "max_tokens": 1024}}, "train.max_tokens"),
    ({"train": {"max_steps": 0, "epochs": 0}}, "train.max_steps"),
    ({"train": {"max_steps": -5}}, "train.max_steps"),
    ({"train": {"learning_rate": -1}}, "train.learning_rate"),
    ({"train": {"learning_rate": float("nan")}}, "train.learning_rate"),
    ({"train": {"warmup_ratio": 1.5}}, "train.warmup_ratio"),
    ({"train": {"adam_beta2": 1.0}}, "train.adam_beta2"),
    ({"train": {"lr_scheduler": "cosine_annealing"}}, "train.lr_scheduler"),
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"train": {"fsdp": "full_shard sideways"}}, "train.fsdp"),
    ({"train": {"save_dtype": "int8"}}, "train.save_dtype"),
    ({"train": {"grad_accum": 0}}, "train.grad_accum"),
    ({"ablate": {"arms": ["gateau"]}}, "ablate.arms"),
    ({"ablate": {"arms": ["random", "best"]}}, "ablate.arms"),
    ({"ablate": {"seeds": [0, 0]}}, "ablate.seeds"),
    ({"ablate": {"budget": 0}}, "ablate.budget"),
    ({"ablate": {"budget": 2.5}}, "ablate.budget"),
    ({"ablate": {"budget": 0.5, "budget_unit": "tokens"}}, "ablate.budget"),
    ({"ablate": {"budget_unit": "words"}}, "ablate.budget_unit"),
    ({"ablate": {"measures": ["nll", "nll"]}}, "ablate.measures"),
]


@pytest.mark.parametrize("data, key", REFUSED, ids=[k for _, k in REFUSED])
def test_a_bad_value_is_refused_naming_its_key_and_source(data, key):
    with pytest.raises(ConfigError) as e:
        build(RunConfig, data, where="my.yaml")
    assert str(e.value).startswith("my.yaml: ") and key in str(e.value)


ACCEPTED = [
    {"select": {"window": 0, "model_a": "short-model"}},  # 0 means the full input, as null does
    {"select": {"window": None, "rope_scaling": {"rope_type": "dynamic", "factor": 4.0}, "chunk_size": None,
                "overlong": None, "baselines": []}},
    {"synth": {"multihop_fraction": 0, "multihop_types": []}},
    {"synth": {"backend": "openai", "fine_types": []}},  # the types are the template backend's
    {"train": {"max_steps": 10, "epochs": 0}},
    {"train": {"lr_scheduler": "linear", "fsdp": "full_shard auto_wrap", "max_grad_norm": 0}},
    {"train": {"batching": "packed", "max_tokens": 1024, "dataset": "tokenized/"}},  # a dataset of its own
    {"train": {"mix": {"short": "s.jsonl", "short_ratio": 0.5}}},
    {"ablate": {"budget": 40000, "budget_unit": "tokens", "arms": ["random", "full"]}},
    {"stages": []},
]


@pytest.mark.parametrize("data", ACCEPTED)
def test_meaningful_values_are_accepted(data):
    build(RunConfig, data)


def test_window_zero_means_the_full_input():
    assert SelectConfig(window=0, model_a="short-model").window is None


def test_the_rules_refuse_nan_and_infinity_everywhere():
    for rule, args in ((rules.at_least, (0,)), (rules.above, (0,)), (rules.between, (0, 1))):
        for bad in (math.nan, math.inf, "1", True):
            with pytest.raises(FieldError, match="k must be"):
                rule("k", bad, *args)
    rules.at_least("k", None, 1, optional=True)
    with pytest.raises(FieldError, match=r"\(or null\)"):
        rules.at_least("k", 0, 1, optional=True)
    with pytest.raises(FieldError, match=r"must be in \[0, 1\)"):
        rules.between("k", 1.0, 0, 1, high_open=True)
    with pytest.raises(FieldError, match="repeats"):
        rules.each_of("k", ["a", "a"], ["a", "b"])
    rules.each_of("k", [], ["a"], empty=True)


@pytest.mark.parametrize("protocol", [SynthRun, SelectRun, TrainRun, EvalRunConfig], ids=lambda p: p.__name__)
def test_the_run_config_offers_what_each_stage_reads(protocol):
    """A stage types its `cfg` with its own Protocol (it may not import `longcurate.config`); the run
    config must have every attribute and method the Protocol names."""
    methods = {name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")}
    wanted = set(protocol.__annotations__) | methods
    assert {"layout", "seed", "model"} <= wanted
    cfg = RunConfig()
    assert [name for name in sorted(wanted) if not hasattr(cfg, name)] == []
    assert all(callable(getattr(cfg, name)) for name in methods)


def test_every_budget_method_has_an_order():
    ranked = [{"id": "a", "hmg": 0.1, "cas": 0.2, "ifd": 0.5, "perplexity": 3.0}]
    assert set(method_orders(ranked, {"a": 10}, seed=0)) == set(METHODS)


def test_every_template_type_the_config_allows_makes_questions():
    """`synth.config` lists the template types it checks names against; the backend makes each."""
    from longcurate.synth.qa import QARequest, SegmentText

    text = ("The Danube is the second-longest river in Europe, after the Volga in Russia. It flows through much "
            "of Central and Southeastern Europe, from the Black Forest into the Black Sea.")
    first, later = SegmentText("d", "Danube", 0, text), SegmentText("d", "Danube", 3, text.replace("Danube", "Rhine"))
    for qtype in (*FINE_TYPES, *MULTIHOP_TYPES):
        segments = (first, later) if qtype in MULTIHOP_TYPES else (first,)
        kind = "multihop" if qtype in MULTIHOP_TYPES else "fine"
        (result,) = TemplateBackend().generate([QARequest(request_id=qtype, kind=kind, qtype=qtype,
                                                          segments=segments)])
        assert result.ok, (qtype, result.error)
