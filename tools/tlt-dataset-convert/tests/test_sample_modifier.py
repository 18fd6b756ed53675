"""The sample modifier's rules on hand-made folds."""

from __future__ import annotations

from tlt_dataset_convert.sample_modifier import ModifierRules, modify_training_folds

CLASSES = {
    "a": ["car", "car"], "b": ["car", "cyclist"], "c": [], "d": ["pedestrian"], "e": ["Cyclist".lower()],
    "f": ["van"],
}


def test_inactive_rules_change_nothing() -> None:
    folds = [["a", "b"], ["c", "d", "e", "f"]]
    out, report = modify_training_folds(folds, CLASSES, 0, ModifierRules())
    assert out == folds and report.training_frames_after == 4


def test_filter_keeps_the_validation_fold_and_empty_frames() -> None:
    rules = ModifierRules(filter_only=frozenset({"car"}))
    out, report = modify_training_folds([["a", "b"], ["a", "c", "d"]], CLASSES, 0, rules)
    assert out == [["a", "b"], ["c", "d"]] and report.filtered == 1


def test_class_mapping_applies_before_the_rules() -> None:
    rules = ModifierRules(filter_only=frozenset({"car"}), class_mapping={"van": "car"})
    out, _ = modify_training_folds([[], ["a", "f", "d"]], CLASSES, 0, rules)
    assert out == [[], ["d"]]


def test_rare_classes_are_duplicated() -> None:
    # dominant car+pedestrian = 4 objects; cyclist 2 → ratio 2 > 1.5: rare; van 1 → ratio 4 < 5: not rare.
    rules = ModifierRules(dominant=frozenset({"car", "pedestrian"}), imbalance={"cyclist": 1.5, "van": 5.0},
                          num_duplicates=2)
    out, report = modify_training_folds([["c"], ["a", "b", "d", "e", "f"]], CLASSES, 0, rules)
    assert out == [["c"], ["a", "b", "b", "b", "d", "e", "e", "e", "f"]]
    assert report.rare_classes == ["cyclist"] and report.duplicated_frames == 2


def test_cap_keeps_a_seeded_subset_in_order() -> None:
    rules = ModifierRules(max_training_samples=3)
    out, report = modify_training_folds([["a", "b", "c"], ["d"], ["e", "f"]], CLASSES, 1, rules)
    kept = out[0] + out[2]
    assert len(kept) == 3 and out[1] == ["d"] and report.capped_to == 3
    order = ["a", "b", "c", "e", "f"]
    assert [order.index(f) for f in kept] == sorted(order.index(f) for f in kept)
    assert modify_training_folds([["a", "b", "c"], ["d"], ["e", "f"]], CLASSES, 1, rules)[0] == out
