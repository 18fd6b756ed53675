"""Partitioning and sharding rules, with the check values of REFERENCE.md and the manual's log."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tlt_dataset_convert import partition
from tlt_dataset_convert.jsonpos import locate, path_name


def test_shard_file_name_check_value() -> None:
    assert partition.kitti_shard_name("out", 0, 2, 0, 10) == "out-fold-000-of-002-shard-00000-of-00010"
    assert partition.kitti_shard_name("/d/x", 1, 2, 9, 10) == "/d/x-fold-001-of-002-shard-00009-of-00010"


def test_shards_take_len_div_num_and_the_last_the_remainder() -> None:
    assert partition.shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert partition.shard_bounds(2, 4) == [(0, 0), (0, 0), (0, 0), (0, 2)]
    assert partition.shard_bounds(0, 2) == [(0, 0), (0, 0)]
    assert [len(s) for s in partition.shard_items(list(range(2696)), 10)] == [269] * 9 + [275]
    with pytest.raises(ValueError):
        partition.shard_bounds(5, 0)


def test_validation_count_matches_the_manual_log() -> None:
    # 000 §6.3.2: 13,482 VOC frames with val_split 20 → "Train: 10786  Val: 2696".
    assert partition.validation_count(13482, 20) == 2696
    assert partition.validation_count(40, 12.5) == 5
    assert partition.validation_count(7, 0) == 0 and partition.validation_count(7, 100) == 7


def test_random_partitions_sort_split_then_shuffle_with_seed_42() -> None:
    ids = [f"{i:06d}" for i in (5, 3, 9, 1, 7, 0, 2, 8, 6, 4)]
    val, train = partition.random_partitions(ids, 30)
    assert sorted(val) == ["000000", "000001", "000002"]
    assert sorted(train) == [f"{i:06d}" for i in range(3, 10)]
    order = np.arange(7)
    np.random.RandomState(42).shuffle(order)
    assert train == [f"{i + 3:06d}" for i in order]
    assert partition.random_partitions(list(reversed(ids)), 30) == [val, train]  # input order does not matter


def test_sequences_are_dealt_by_length_then_name() -> None:
    sequences = {"b": ["1", "2"], "a": ["3", "4"], "long": ["5", "6", "7"], "c": ["8"], "d": ["9"]}
    assert partition.deal_sequences(sequences, 2) == [["long", "b", "d"], ["a", "c"]]
    folds = partition.sequence_partitions(sequences, 2)
    assert sorted(folds[0]) == ["1", "2", "5", "6", "7", "9"] and sorted(folds[1]) == ["3", "4", "8"]


@given(st.lists(st.text(alphabet="0123456789", min_size=1, max_size=6), unique=True, max_size=60),
       st.floats(min_value=0, max_value=100))
def test_random_partitions_are_a_permutation(ids: list[str], val_split: float) -> None:
    val, train = partition.random_partitions(ids, val_split)
    assert sorted(val + train) == sorted(ids)
    assert len(val) == int(val_split / 100 * len(ids))
    assert not val or not train or max(val) < min(train)


@given(st.integers(0, 500), st.integers(1, 30))
def test_shards_cover_everything_once(length: int, num_shards: int) -> None:
    bounds = partition.shard_bounds(length, num_shards)
    assert len(bounds) == num_shards
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_json_locate_points_at_the_value() -> None:
    text = '{\n  "a": {"x": 1},\n  "seq": [\n    "000001",\n    "000002"\n  ],\n  "z": [[1, 2], {"k": 3}]\n}\n'
    assert locate(text, ["seq", 1]) == (5, 5)
    assert locate(text, ["seq"]) == (3, 10)
    assert locate(text, ["z", 1, "k"]) == (7, 23)
    assert locate(text, ["missing"]) == (1, 1)  # the deepest existing ancestor
    assert locate(text, ["seq", 7]) == (3, 10)
    assert locate("not json", ["a"]) == (1, 1)
    assert path_name(["annotations", 17, "bbox"]) == "annotations[17].bbox"
    assert path_name(["seq", 0]) == "seq[0]"
