"""Folds and shards: which frame goes into which TFRecord file, in which order.

The rules (docs/formats.md, ../shared/REFERENCE.md):

* ``random`` mode: exactly 2 partitions. Frames sorted by id; the first ``int(val_split / 100 * N)``
  form partition 0 (validation), the rest partition 1.
* ``sequence`` mode: the sequences of the sequence map sorted by (−length, name) and dealt
  round-robin into ``num_partitions`` partitions, so a sequence never spans two folds.
* Inside each partition the frames are shuffled with NumPy's legacy ``RandomState(42)`` (a fresh
  generator per partition), so the output order is reproducible from the input alone.
* Shards: ``shard_size = len // num_shards``; shard ``s`` holds ``[s * size, (s + 1) * size)`` and the
  last shard also takes the remainder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")

SHUFFLE_SEED = 42


def seeded_shuffle(items: Sequence[T], seed: int = SHUFFLE_SEED) -> list[T]:
    """``items`` in the order ``numpy.random.RandomState(seed).shuffle`` gives (stable across NumPy)."""
    order = np.arange(len(items))
    np.random.RandomState(seed).shuffle(order)
    return [items[int(i)] for i in order]


def validation_count(num_frames: int, val_split: float) -> int:
    """Frames in the validation fold of ``random`` mode: ``int(val_split / 100 * N)``."""
    return int(val_split / 100 * num_frames)


def random_partitions(frame_ids: Sequence[str], val_split: float) -> list[list[str]]:
    """``[validation, training]`` frame ids, each shuffled with seed 42."""
    ordered = sorted(frame_ids)
    n_val = validation_count(len(ordered), val_split)
    return [seeded_shuffle(ordered[:n_val]), seeded_shuffle(ordered[n_val:])]


def deal_sequences(sequences: Mapping[str, Sequence[str]], num_partitions: int) -> list[list[str]]:
    """Sequence names per partition: sorted by (−length, name), dealt round-robin."""
    order = sorted(sequences, key=lambda name: (-len(sequences[name]), name))
    partitions: list[list[str]] = [[] for _ in range(num_partitions)]
    for index, name in enumerate(order):
        partitions[index % num_partitions].append(name)
    return partitions


def sequence_partitions(sequences: Mapping[str, Sequence[str]], num_partitions: int) -> list[list[str]]:
    """Frame ids per partition (sequences kept whole), each partition shuffled with seed 42."""
    dealt = deal_sequences(sequences, num_partitions)
    return [seeded_shuffle([frame for name in names for frame in sequences[name]]) for names in dealt]


def shard_bounds(length: int, num_shards: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each shard; the last shard takes the remainder."""
    if num_shards < 1:
        raise ValueError("num_shards must be at least 1")
    size = length // num_shards
    bounds = [(s * size, (s + 1) * size) for s in range(num_shards)]
    bounds[-1] = (bounds[-1][0], length)
    return bounds


def shard_items(items: Sequence[T], num_shards: int) -> list[list[T]]:
    return [list(items[start:end]) for start, end in shard_bounds(len(items), num_shards)]


def kitti_shard_name(output: str, partition: int, num_partitions: int, shard: int, num_shards: int) -> str:
    """``<output>-fold-000-of-002-shard-00000-of-00010``."""
    return f"{output}-fold-{partition:03d}-of-{num_partitions:03d}-shard-{shard:05d}-of-{num_shards:05d}"


def kitti_shard_pattern(output: str) -> re.Pattern[str]:
    """File names (without folder) of every shard ``kitti_shard_name`` can give for ``output``."""
    return re.compile(re.escape(Path(output).name) + r"-fold-\d{3}-of-\d{3}-shard-\d{5}-of-\d{5}")
