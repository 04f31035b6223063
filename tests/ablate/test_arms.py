"""Arms: each select method's order cut at the budget, by sample count, token total or response-token
total; the random arm drawn `subsets` times with distinct seeds; the oracle from the planted types."""

from __future__ import annotations

import json

import pytest

from longcurate.ablate.arms import arm_ids, subset_seed, take_budget, write_arms
from longcurate.config import RunConfig
from longcurate.core.config import build
from longcurate.core.errors import ConfigError, SettingsChanged
from longcurate.core.jsonl import read_jsonl
from longcurate.core.jsonl import dumps
from longcurate.select.budget import plan_budgets, write_budgets
from longcurate.select.pool import ScoredPool, scored_pool


def layout(cfg: RunConfig):
    return cfg.layout().ablation(cfg.ablate.output)


def by_name(arms) -> dict:
    """Each arm by name (a drawn arm: its first draw)."""
    return {a.name: a for a in arms if a.subset in (None, 0)}


def write_sample_budgets(ranked, samples, out_dir, budgets, methods, **kw) -> dict:
    """`select budget`'s files from samples held in memory."""
    plan = plan_budgets(ranked, budgets, methods, **kw)
    return write_budgets(plan, {i: dumps(s.to_dict()) for i, s in samples.items()}, out_dir)


def config(tmp_path, **ablate) -> RunConfig:
    return build(RunConfig, {"output_dir": str(tmp_path), "train": {"tokenize": {"max_length": 1500}},
                             "ablate": {"arms": ["gateau", "random", "hmg-only", "cam-only", "length", "full",
                                                 "short-only"], **ablate}})


def test_take_budget_by_tokens_is_the_longest_prefix_within_the_budget():
    order = ["a", "b", "c", "d"]
    tokens = {"a": 300, "b": 500, "c": 100, "d": 50}
    assert take_budget(order, tokens, 800, "tokens") == ["a", "b"]
    assert take_budget(order, tokens, 799, "tokens") == ["a"]  # stops at b: nothing is skipped to fit c
    assert take_budget(order, tokens, 299, "tokens") == []
    assert take_budget(order, tokens, 3, "samples") == ["a", "b", "c"]
    assert take_budget(order, tokens, 0.5, "samples") == ["a", "b"]


def test_token_budget_gives_length_no_more_tokens(tmp_path, fake_pool):
    lengths, ranked = fake_pool(tmp_path)
    cfg = config(tmp_path, budget=6000, budget_unit="tokens")
    arms = by_name(write_arms(cfg, layout(cfg)))
    capped = {i: min(n, 1500) for i, n in lengths.items()}
    for name in ("gateau", "random", "hmg-only", "cam-only", "length"):
        ids = [r["id"] for _, r in read_jsonl(arms[name].path)]
        total = sum(capped[i] for i in ids)
        assert total == arms[name].tokens <= 6000, name
        assert arms[name].samples == len(ids) > 0
    # By sample count the longest-first arm holds far more tokens; by tokens it holds no more.
    assert arms["length"].samples < arms["random"].samples
    assert arms["full"].samples == len(ranked) and arms["short-only"].samples == 0
    assert [r for _, r in read_jsonl(arms["short-only"].path)] == []


def test_sample_budget_equals_selects_budget_files(tmp_path, fake_pool):
    lengths, ranked = fake_pool(tmp_path)
    cfg = config(tmp_path, budget=7)
    arms = by_name(write_arms(cfg, layout(cfg)))
    samples = scored_pool(cfg).samples
    write_sample_budgets(ranked, samples, tmp_path / "budgets", [7], ["gateau", "random", "hmg-only", "cam-only", "length"],
                         lengths=lengths, seed=cfg.seed)
    for name in ("gateau", "random", "hmg-only", "cam-only", "length"):
        assert arms[name].path.read_bytes() == (tmp_path / "budgets" / f"{name}-7.jsonl").read_bytes(), name


def test_arm_files_are_kept_until_the_budget_changes(tmp_path, fake_pool):
    fake_pool(tmp_path)
    cfg = config(tmp_path, budget=5)
    ab = layout(cfg)
    write_arms(cfg, ab)
    before = ab.arm_file("gateau").stat().st_mtime_ns
    write_arms(cfg, ab)
    assert ab.arm_file("gateau").stat().st_mtime_ns == before
    write_arms(config(tmp_path, budget=6), ab)
    assert len(list(read_jsonl(ab.arm_file("gateau")))) == 6
    marker = json.loads(ab.arm_file("gateau").with_name("gateau.jsonl.done").read_text())
    assert marker["params"]["budget"] == 6 and marker["samples"] == 6


def test_arm_ids_orders():
    ranked = [{"id": "x", "hmg": 0.1, "cas": 0.9}, {"id": "y", "hmg": 0.9, "cas": None}, {"id": "z", "hmg": 0.5, "cas": 0.2}]
    lengths = {"x": 10, "y": 30, "z": 20}
    pool = ScoredPool(ranked, {}, lengths, dict(lengths))
    ids = {arm: arm_ids(pool, arm, None, seed=0, budget=2, unit="samples", max_length=100)
           for arm in ["gateau", "hmg-only", "cam-only", "length", "full", "short-only"]}
    assert ids == {"gateau": ["x", "y"], "hmg-only": ["y", "z"], "cam-only": ["x", "z"], "length": ["y", "z"],
                   "full": ["x", "y", "z"], "short-only": []}


@pytest.mark.parametrize("bad", [{"arms": ["gateau"]}, {"arms": ["random", "best"]}, {"budget_unit": "words"},
                                 {"seeds": []}, {"measures": ["bleu"]}, {"budget": 0}, {"subsets": 0},
                                 {"budget_unit": "response_tokens", "budget": 0.5}, {"criteria": {"alpha": 1.5}}])
def test_bad_ablate_config_is_a_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        build(RunConfig, {"ablate": bad})


def test_an_arm_with_trained_runs_is_not_repicked(tmp_path, fake_pool):
    fake_pool(tmp_path)
    ab = layout(config(tmp_path, budget=5))
    write_arms(config(tmp_path, budget=5), ab, lambda arm, subset: True)  # same settings: fine
    before = ab.arm_file("gateau").read_bytes()
    with pytest.raises(SettingsChanged, match="budget: 5.0 -> 6.0"):
        write_arms(config(tmp_path, budget=6), ab, lambda arm, subset: arm == "gateau")
    assert ab.arm_file("gateau").read_bytes() == before


def test_response_token_budget_gives_every_arm_the_same_response_tokens_within_one_sample(tmp_path, fake_pool):
    fake_pool(tmp_path, n=40, hmg=True)
    cfg = config(tmp_path, budget=400, budget_unit="response_tokens", subsets=3)
    response = {r["id"]: r["n_response_tokens"] for _, r in read_jsonl(tmp_path / "select" / "hmg.jsonl")}
    totals = {}
    for arm in write_arms(cfg, layout(cfg)):
        if arm.name in ("full", "short-only"):
            continue
        ids = [r["id"] for _, r in read_jsonl(arm.path)]
        totals[arm.key] = sum(response[i] for i in ids)
        assert totals[arm.key] == arm.response_tokens <= 400, arm.key
    assert len(totals) == 4 + 3  # gateau, hmg-only, cam-only, length; three random draws
    assert max(totals.values()) - min(totals.values()) <= max(response.values()), totals


def test_random_draws_have_distinct_seeds_and_draw_0_is_selects_random_file(tmp_path, fake_pool):
    lengths, ranked = fake_pool(tmp_path)
    cfg = config(tmp_path, budget=7, subsets=4, arms=["gateau", "random"])
    arms = [a for a in write_arms(cfg, layout(cfg)) if a.name == "random"]
    assert [a.subset for a in arms] == [0, 1, 2, 3]
    assert [a.path.name for a in arms] == [f"random.subset-{k}.jsonl" for k in range(4)]
    seeds = [subset_seed(cfg.seed, k) for k in range(4)]
    assert seeds[0] == cfg.seed and len(set(seeds)) == 4 and seeds == [subset_seed(cfg.seed, k) for k in range(4)]
    draws = [tuple(r["id"] for _, r in read_jsonl(a.path)) for a in arms]
    assert len(set(draws)) == 4 and all(len(d) == 7 for d in draws)
    write_sample_budgets(ranked, scored_pool(cfg).samples, tmp_path / "budgets", [7], ["random"], lengths=lengths,
                         seed=cfg.seed)
    assert arms[0].path.read_bytes() == (tmp_path / "budgets" / "random-7.jsonl").read_bytes()


def test_the_pool_keeps_its_samples_on_disk_and_reads_back_what_a_plain_read_gives(tmp_path, fake_pool):
    """`scored_pool` spills the samples (memory: 8 bytes a sample) instead of holding them; every one
    read back equals the input's record as `iter_samples` reads it, in the input's order."""
    from longcurate.core.jsonl import DiscardRejects
    from longcurate.select.inputs import iter_samples
    from longcurate.select.pool import PooledSamples, pool_size
    from longcurate.select.steps import input_path

    _, ranked = fake_pool(tmp_path)
    cfg = config(tmp_path, budget=5)
    pool = scored_pool(cfg)
    plain = {s.id: s for _, s in iter_samples(input_path(cfg), DiscardRejects())}
    assert isinstance(pool.samples, PooledSamples)
    assert list(pool.samples) == list(plain) and len(pool.samples) == len(plain) == pool_size(cfg) == len(ranked)
    assert all(pool.samples[i].to_dict() == s.to_dict() for i, s in plain.items())
    assert pool.samples[ranked[0]["id"]] is not pool.samples[ranked[0]["id"]]  # read back on each access
    assert ranked[0]["id"] in pool.samples and "no-such-id" not in pool.samples
