"""Sorted batching (LongAlign's release): length groups of one micro-step, shuffled by seed, sliced per
rank; the global-batch grouping as the option."""

from __future__ import annotations

import random

import pytest

from longcurate.train.batching import (LengthSampler, PaddedCollator, global_batch_size, make_plan, naive_order,
                                       sort_group_size, sorted_order, step_groups)
from oracles.train import micro_batches, padding_stats, rank_batches


def _lengths(n=203, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 5000) for _ in range(n)]


def test_sorted_groups_are_contiguous_length_ranges():
    lengths = _lengths()
    gb = global_batch_size(2, 3, 2)
    order = sorted_order(lengths, gb, seed=1)
    assert sorted(order) == list(range(len(lengths)))
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    expected = {tuple(by_length[i:i + gb]) for i in range(0, len(lengths), gb)}
    groups = step_groups(order, gb)
    assert {tuple(g) for g in groups} == expected  # each step is one group of neighbours in length
    assert groups != [list(g) for g in sorted(expected, key=lambda g: lengths[g[0]])]  # groups are shuffled


def release_sort_and_group(lengths, group_size, seed, epoch=0):
    """LongAlign's sort_and_group.py written out: sort by length, cut `group_num` groups of
    `group_size`, permute the groups (the release: `torch.randperm(group_num)`; here the permutation
    comes from the seeded generator the library documents), flatten; the release drops the remainder,
    the library keeps it last."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    group_num = len(order) // group_size
    grouped = [order[g * group_size:(g + 1) * group_size] for g in range(group_num)]
    perm = list(range(group_num))
    random.Random(f"longcurate-batching:{seed}:{epoch}").shuffle(perm)
    return [i for g in perm for i in grouped[g]], order[group_num * group_size:]


def test_sorted_order_is_the_release_sort_cut_shuffle_with_group_8():
    lengths = _lengths(203, seed=5)
    for seed in (0, 1, 7):
        shuffled, rest = release_sort_and_group(lengths, 8, seed)
        order = sorted_order(lengths, 8, seed=seed)
        assert order == shuffled + rest
        groups = step_groups(order[:len(shuffled)], 8)
        assert all(max(lengths[i] for i in g) <= min(lengths[j] for j in h) or
                   max(lengths[j] for j in h) <= min(lengths[i] for i in g)
                   for g in groups for h in groups if g is not h)  # groups are disjoint length ranges
    assert sorted_order(lengths, 8, seed=0) != sorted_order(lengths, 8, seed=1)


def test_plan_groups_one_micro_step_by_default_and_the_global_batch_as_option():
    lengths = _lengths(96, seed=2)
    per_device, ga, world = 2, 3, 2
    assert sort_group_size("micro", per_device, ga, world) == 4
    assert sort_group_size("global", per_device, ga, world) == 12
    with pytest.raises(KeyError):  # `train.sort_group` is checked by the config; another name is a bug
        sort_group_size("epoch", per_device, ga, world)
    ds = {"length": lengths}
    micro = make_plan(ds, batching="sorted", loss_weighting="sequence", per_device=per_device, grad_accum=ga,
                      world_size=world, seed=3, pad_token_id=0)
    glob = make_plan(ds, batching="sorted", loss_weighting="sequence", per_device=per_device, grad_accum=ga,
                     world_size=world, seed=3, pad_token_id=0, sort_group="global")
    assert micro.stats == {"sort_group": "micro", "group_size": 4} and micro.global_batch == 12
    assert micro.sampler.order(0) == sorted_order(lengths, 4, seed=3)
    assert glob.sampler.order(0) == sorted_order(lengths, 12, seed=3)
    # an optimiser step of the default plan mixes length groups: its spread is wider than the option's
    spread = lambda order: sum(max(lengths[i] for i in g) - min(lengths[i] for i in g)  # noqa: E731
                               for g in step_groups(order, 12))
    assert spread(micro.sampler.order(0)) > 2 * spread(glob.sampler.order(0))


def test_orders_are_deterministic_by_seed_and_epoch():
    lengths = _lengths()
    assert sorted_order(lengths, 8, seed=3) == sorted_order(lengths, 8, seed=3)
    assert sorted_order(lengths, 8, seed=3) != sorted_order(lengths, 8, seed=4)
    assert naive_order(50, 0, epoch=0) != naive_order(50, 0, epoch=1)
    s = LengthSampler(lengths, "sorted", 8, seed=3)
    first = list(s)
    s.set_epoch(1)
    assert list(s) != first and sorted(s) == sorted(first) and len(s) == len(lengths)


def test_rank_slices_cover_the_global_batch():
    lengths = _lengths(96)
    per_device, ga, world = 2, 3, 2
    gb = global_batch_size(per_device, ga, world)
    order = sorted_order(lengths, gb, seed=0)
    ranks = [rank_batches(order, per_device, world, r) for r in range(world)]
    for step in range(len(order) // gb):
        got = sorted(i for r in ranks for b in r[step * ga:(step + 1) * ga] for i in b)
        assert got == sorted(order[step * gb:(step + 1) * gb])


def test_sorted_pads_less_than_naive():
    lengths = _lengths(1000)
    naive = padding_stats(lengths, micro_batches(naive_order(len(lengths), 0), 8))
    sort = padding_stats(lengths, micro_batches(sorted_order(lengths, 32, 0), 8))
    assert sort.padding_fraction < 0.05 < naive.padding_fraction
    assert padding_stats([3, 5], [[0, 1]]).as_dict() == {"real_tokens": 8, "slot_tokens": 10,
                                                         "padding_fraction": 0.2}


def test_padded_collator(make_samples):
    s = make_samples(3, seed=9)
    batch = PaddedCollator(pad_token_id=0, loss_weighting="token")(s)
    width = max(len(x["input_ids"]) for x in s)
    assert batch["input_ids"].shape == (3, width)
    assert batch["attention_mask"].sum().item() == sum(len(x["input_ids"]) for x in s)
    assert int(batch["num_items"]) == int((batch["labels"][:, 1:] != -100).sum())
    assert (batch["loss_weights"][batch["labels"] == -100] == 0).all()


def test_bad_sizes():
    with pytest.raises(ValueError):
        global_batch_size(0, 1, 1)
    with pytest.raises(ValueError):
        LengthSampler([1, 2], "packed", 2)
