"""The model key is taken out of the spec text a .tlt stores (issue 12 §6), and the text still loads."""

from __future__ import annotations

from libtlt.spec.loader import load_spec_text
from libtlt.spec.protos import classification_pb2, detectnet_v2_pb2
from libtlt.spec.redact import redact_spec_text

YAML = """results_dir: '/data/results'
key: 'nvidia_tlt_key'
model:
  arch: 'resnet'
  n_layers: 18
"""


def test_top_level_yaml_key_is_replaced_and_the_spec_still_loads() -> None:
    text = redact_spec_text(YAML, [])
    assert "nvidia_tlt_key" not in text and "key: '<key>'" in text
    spec = load_spec_text(text, classification_pb2.Experiment, name="<stored>", syntax="yaml")
    assert spec.message.key == "<key>" and spec.message.model.n_layers == 18


def test_secrets_are_replaced_anywhere_but_short_ones_are_left() -> None:
    text = redact_spec_text("train_dataset_path: '/keys/Zq7-secret-key/train'\n", ["Zq7-secret-key", "car"],
                            top_level_key=False)
    assert text == "train_dataset_path: '/keys/<key>/train'\n"
    assert redact_spec_text("classes: car\n", ["car"]) == "classes: car\n"


def test_map_entries_named_key_are_kept_when_the_schema_has_no_top_level_key() -> None:
    text = 'dataset_config {\ntarget_class_mapping {\nkey: "car"\nvalue: "car"\n}\n}\n'
    assert redact_spec_text(text, [], top_level_key=False) == text
    assert "key" not in {f.name for f in detectnet_v2_pb2.Experiment.DESCRIPTOR.fields}
