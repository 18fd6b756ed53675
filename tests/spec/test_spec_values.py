"""libtlt.spec.values (list strings, proto dictionaries) and libtlt.spec.backbones tables."""

from __future__ import annotations

import re

import pytest

from libtlt.spec import backbones, load_spec_text, values
from libtlt.spec.protos import common_pb2


def test_parse_value_reads_the_manuals_list_strings() -> None:
    assert values.parse_value("[1.0, 2.0, 0.5, 3.0, 1.0/3.0]") == pytest.approx([1.0, 2.0, 0.5, 3.0, 1 / 3])
    assert values.parse_value("[ (116,90), (156,198), (373,326) ]") == [(116.0, 90.0), (156.0, 198.0), (373.0, 326.0)]
    assert values.parse_value("[[1.0,2.0,0.5], [1.0, 2.0, 0.5, 3.0, 0.33]]") == [[1.0, 2.0, 0.5], [1.0, 2.0, 0.5, 3.0, 0.33]]
    assert values.parse_value("[-1.5e-1, +2, 2*3, .5, 1/2/2,]") == [-0.15, 2.0, 6.0, 0.5, 0.25]
    assert values.parse_value("(2.0)") == 2.0
    assert values.parse_value("(2.0,)") == (2.0,)
    assert values.parse_value("[]") == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1.0, 2.0", "unexpected end"),
        ("[1.0 2.0]", "expected ','"),
        ("[1.0, 2.0]]", "unexpected ']'"),
        ("[1.0, 1.0/0]", "division by zero"),
        ("__import__('os').system('true')", "unexpected '_'"),
        ("[1.0, x]", "unexpected 'x'"),
        ("", "empty value"),
        ("[1.0, [2.0]/2]", "expected ',' or ']'"),
        ("[1.0, -[2.0]]", "expected a number"),
    ],
)
def test_parse_value_rejects_anything_else(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        values.parse_value(text)


def test_parse_float_list_and_its_shapes() -> None:
    assert values.parse_float_list("[0.1, 0.1, 0.2, 0.2]") == [0.1, 0.1, 0.2, 0.2]
    # The 7.4.6 table prints the recommended value with one more pair of brackets.
    assert values.parse_float_list("[[1.0, 2.0, 0.5, 3.0, 0.33]]") == [1.0, 2.0, 0.5, 3.0, 0.33]
    with pytest.raises(ValueError, match="expected a list"):
        values.parse_float_list("0.5")
    with pytest.raises(ValueError, match="must hold numbers"):
        values.parse_float_list("[1.0, [2.0, 3.0]]")


def test_parse_float_lists() -> None:
    text = "[[1.0,2.0,0.5], [1.0,2.0,0.5], [1.0, 2.0, 0.5, 3.0, 0.33]]"
    assert values.parse_float_lists(text)[2] == [1.0, 2.0, 0.5, 3.0, 0.33]
    assert values.parse_float_lists("[[[1.0], [2.0]]]") == [[1.0], [2.0]]
    with pytest.raises(ValueError, match="list of lists"):
        values.parse_float_lists("[1.0, 2.0]")


def test_parse_pairs_and_steps() -> None:
    assert values.parse_pairs("[ (10,13), (16,30), (33,23) ]") == [(10.0, 13.0), (16.0, 30.0), (33.0, 23.0)]
    with pytest.raises(ValueError, match="pairs"):
        values.parse_pairs("[ (10,13,2) ]")
    with pytest.raises(ValueError, match="pairs"):
        values.parse_pairs("[ 10 ]")
    assert values.parse_steps("[8, (16, 32), [64, 64]]") == [(8.0, 8.0), (16.0, 32.0), (64.0, 64.0)]
    with pytest.raises(ValueError, match="pair"):
        values.parse_steps("[(1, 2, 3)]")


def test_class_mapping_keeps_the_written_order() -> None:
    text = """
    target_class_mapping { key: "van" value: "car" }
    target_class_mapping { key: "person" value: "pedestrian" }
    target_class_mapping { key: "car" value: "car" }
    target_class_mapping { key: "rider" value: "cyclist" }
    """
    config = load_spec_text(text, common_pb2.DatasetConfig).message
    assert values.class_mapping(config) == {"van": "car", "person": "pedestrian", "car": "car", "rider": "cyclist"}
    assert list(values.class_mapping(config)) == ["van", "person", "car", "rider"]
    assert values.target_classes(config) == ["car", "pedestrian", "cyclist"]


def test_backbone_tables() -> None:
    assert backbones.backbone_name("resnet", 18) == "resnet18"
    assert backbones.backbone_name("darknet", 53) == "darknet53"
    assert backbones.backbone_name("mobilenet_v2") == "mobilenet_v2"
    with pytest.raises(ValueError, match="needs a number of layers"):
        backbones.backbone_name("vgg")
    with pytest.raises(ValueError, match="10, 18, 34, 50, 101"):
        backbones.check_depth("resnet", 20)
    with pytest.raises(ValueError, match="unsupported arch 'alexnet'"):
        backbones.backbone("alexnet")
    for arch, first, last in (("resnet", 0, 4), ("vgg", 1, 5), ("googlenet", 0, 7), ("mobilenet_v1", 0, 11),
                              ("mobilenet_v2", 0, 13), ("darknet", 0, 5)):
        backbones.check_freeze_block(arch, first)
        backbones.check_freeze_block(arch, last)
        for bad in (first - 1, last + 1):
            with pytest.raises(ValueError):
                backbones.check_freeze_block(arch, bad)
    with pytest.raises(ValueError, match="integers"):
        backbones.check_freeze_block("resnet", 1.5)
    backbones.check_freeze_block("squeezenet", 9)  # no documented range
