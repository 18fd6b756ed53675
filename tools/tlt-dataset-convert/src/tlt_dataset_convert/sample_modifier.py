"""Rebalancing of the training folds (``sample_modifier_config``), applied before sharding.

Every fold except the validation fold (``-f``) is a training fold. With class names lower-cased and
then mapped through ``source_to_target_class_mapping`` (unmapped names stay as they are):

1. **filter** — a training frame whose objects all belong to ``filter_samples_containing_only`` is
   dropped (a frame without objects is kept);
2. **duplicate** — over the remaining training frames, let ``D`` be the number of objects of the
   ``dominant_target_classes`` and ``n_c`` that of class ``c``. Every class ``c`` of
   ``minimum_target_class_imbalance`` with ``n_c > 0`` and ``D / n_c > imbalance[c]`` is rare; each frame
   holding a rare class is written ``1 + num_duplicates`` times (copies right after the original);
3. **cap** — when ``max_training_samples > 0`` and the training folds together hold more frames, a
   random subset of that size is kept (``RandomState(42)``, original order preserved).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from libtlt.spec.protos import dataset_export_pb2
from tlt_dataset_convert.partition import SHUFFLE_SEED


@dataclass(frozen=True)
class ModifierRules:
    filter_only: frozenset[str] = frozenset()
    dominant: frozenset[str] = frozenset()
    imbalance: Mapping[str, float] = field(default_factory=dict)
    num_duplicates: int = 0
    max_training_samples: int = 0
    class_mapping: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, config: dataset_export_pb2.SampleModifierConfig) -> ModifierRules:
        return cls(
            filter_only=frozenset(n.lower() for n in config.filter_samples_containing_only),
            dominant=frozenset(n.lower() for n in config.dominant_target_classes),
            imbalance={k.lower(): float(v) for k, v in config.minimum_target_class_imbalance.items()},
            num_duplicates=int(config.num_duplicates),
            max_training_samples=int(config.max_training_samples),
            class_mapping={k.lower(): v.lower() for k, v in config.source_to_target_class_mapping.items()},
        )

    @property
    def active(self) -> bool:
        duplicates = bool(self.dominant and self.imbalance and self.num_duplicates > 0)
        return bool(self.filter_only) or duplicates or self.max_training_samples > 0

    def target(self, class_name: str) -> str:
        return self.class_mapping.get(class_name, class_name)


@dataclass
class ModifierReport:
    training_frames_before: int = 0
    filtered: int = 0
    rare_classes: list[str] = field(default_factory=list)
    duplicated_frames: int = 0
    capped_to: int | None = None
    training_frames_after: int = 0


def modify_training_folds(
    folds: Sequence[Sequence[str]],
    classes_of: Mapping[str, Sequence[str]],
    validation_fold: int,
    rules: ModifierRules,
) -> tuple[list[list[str]], ModifierReport]:
    """New fold lists (frame ids, duplicates repeated) and what was changed.

    ``classes_of[frame_id]`` lists the (lower-cased) class of every object written for that frame.
    """
    report = ModifierReport()
    out = [list(fold) for fold in folds]
    training = [i for i in range(len(out)) if i != validation_fold]
    report.training_frames_before = sum(len(out[i]) for i in training)

    def targets(frame_id: str) -> set[str]:
        return {rules.target(name) for name in classes_of[frame_id]}

    if rules.filter_only:
        for i in training:
            kept = [f for f in out[i] if not (classes_of[f] and targets(f) <= rules.filter_only)]
            report.filtered += len(out[i]) - len(kept)
            out[i] = kept

    if rules.dominant and rules.imbalance and rules.num_duplicates > 0:
        counts: Counter[str] = Counter()
        for i in training:
            for f in out[i]:
                counts.update(rules.target(name) for name in classes_of[f])
        dominant_total = sum(counts[name] for name in rules.dominant)
        rare = sorted(
            name for name, ratio in rules.imbalance.items()
            if name not in rules.dominant and counts[name] > 0 and dominant_total / counts[name] > ratio
        )
        report.rare_classes = rare
        if rare:
            rare_set = set(rare)
            for i in training:
                expanded: list[str] = []
                for f in out[i]:
                    expanded.append(f)
                    if targets(f) & rare_set:
                        expanded.extend([f] * rules.num_duplicates)
                        report.duplicated_frames += 1
                out[i] = expanded

    total = sum(len(out[i]) for i in training)
    if 0 < rules.max_training_samples < total:
        chosen = np.random.RandomState(SHUFFLE_SEED).choice(total, size=rules.max_training_samples, replace=False)
        keep = np.zeros(total, dtype=bool)
        keep[chosen] = True
        start = 0
        for i in training:
            n = len(out[i])
            out[i] = [f for f, k in zip(out[i], keep[start:start + n], strict=True) if k]
            start += n
        report.capped_to = rules.max_training_samples
    report.training_frames_after = sum(len(out[i]) for i in training)
    return out, report
