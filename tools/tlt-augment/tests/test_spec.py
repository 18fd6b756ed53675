"""Spec loading and validation: every field of 000 §5.1 and one test per rule."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from libtlt.errors import SpecError
from tlt_augment.spec import load_augment_spec

SAMPLE_SPEC = Path(__file__).resolve().parents[3] / "tests" / "data" / "specs" / "augment" / "sample_spec.txt"

FULL_BODY = """
spatial_config {
  rotation_config { angle: 0.5 units: "radians" }
  shear_config { shear_ratio_x: 0.2 shear_ratio_y: 0.1 }
  flip_config { flip_vertical: true flip_horizontal: true }
  translation_config { translate_x: 8 translate_y: 4 }
}
color_config {
  hue_saturation_config { hue_rotation_angle: 30 saturation_shift: 0.5 }
  contrast_config { contrast: 0.25 center: 127.5 }
  brightness_config { offset: 10 }
}
blur_config { size: 4 std: 1.5 }
"""


def test_manual_sample_spec_loads_as_printed() -> None:
    spec = load_augment_spec(SAMPLE_SPEC)
    assert spec.rotation == pytest.approx(math.radians(5.0))
    assert spec.shear == pytest.approx((0.3, 0.0))
    assert spec.translation == (8, 0)
    assert spec.flip is None
    assert spec.hue_saturation == pytest.approx((25.0, 1.0))
    assert spec.brightness is None and spec.contrast is None and spec.blur is None
    assert (spec.output_width, spec.output_height, spec.output_channels) == (1248, 384, 3)
    assert spec.image_extension == "png"
    assert (spec.image_path, spec.label_path) == ("image_2", "label_2")


def test_every_field(write_spec) -> None:
    spec = load_augment_spec(write_spec(FULL_BODY, width=200, height=100, channels=1, extension="jpg"))
    assert spec.rotation == pytest.approx(0.5)
    assert spec.shear == pytest.approx((0.2, 0.1))
    assert spec.flip == (True, True)
    assert spec.translation == (8, 4)
    assert spec.hue_saturation == pytest.approx((30.0, 0.5))
    assert spec.contrast == pytest.approx((0.25, 127.5))
    assert spec.brightness == pytest.approx(10.0)
    assert spec.blur == (4, pytest.approx(1.5))
    assert (spec.output_width, spec.output_height, spec.output_channels, spec.image_extension) == (200, 100, 1, "jpg")


def test_operators_absent_are_inactive(write_spec) -> None:
    spec = load_augment_spec(write_spec(""))
    assert not spec.has_spatial
    assert spec.hue_saturation is None and spec.blur is None


def test_defaults_of_present_messages(write_spec) -> None:
    spec = load_augment_spec(write_spec("""
        spatial_config { rotation_config { angle: 90 } translation_config { } }
        color_config { hue_saturation_config { hue_rotation_angle: 10 } contrast_config { contrast: 0.1 } }
    """))
    assert spec.rotation == pytest.approx(math.pi / 2)  # units default to degrees
    assert spec.translation == (0, 0)
    assert spec.hue_saturation == pytest.approx((10.0, 1.0))  # saturation unchanged by default
    assert spec.contrast == pytest.approx((0.1, 127.5))


def test_table_spelling_output_image_channels_is_accepted(write_spec) -> None:
    raw = ('dataset_config { image_path: "i" label_path: "l" }\n'
           "output_image_width: 10\noutput_image_height: 10\noutput_image_channels: 1\n")
    assert load_augment_spec(write_spec(raw=raw)).output_channels == 1


@pytest.mark.parametrize("extension,expected", [(".png", "png"), ("png", "png"), (".JPG", "jpg"), (".jpeg", "jpeg")])
def test_image_extensions(write_spec, extension: str, expected: str) -> None:
    assert load_augment_spec(write_spec("", extension=extension)).image_extension == expected


BAD_SPECS = [
    # (body, dims, field named in the error, words in the message)
    ("spatial_config { flip_config { } }", {}, "spatial_config.flip_config", "flip_horizontal"),
    ("spatial_config { flip_config { flip_horizontal: false } }", {}, "spatial_config.flip_config", "true"),
    ('spatial_config { rotation_config { angle: 1 units: "gradians" } }', {}, "rotation_config.units", "degrees"),
    ("spatial_config { rotation_config { angle: 361 } }", {}, "rotation_config.angle", "360"),
    ('spatial_config { rotation_config { angle: -7 units: "radians" } }', {}, "rotation_config.angle", "radians"),
    ("spatial_config { translation_config { translate_x: 97 } }", {}, "translate_x", "width"),
    ("spatial_config { translation_config { translate_y: -1 } }", {}, "translate_y", "height"),
    ("spatial_config { shear_config { shear_ratio_x: 2 shear_ratio_y: 0.5 } }", {}, "shear_config", "line"),
    ("spatial_config { shear_config { shear_ratio_x: nan } }", {}, "shear_ratio_x", "finite"),
    ("color_config { hue_saturation_config { hue_rotation_angle: 361 } }", {}, "hue_rotation_angle", "360"),
    ("color_config { hue_saturation_config { hue_rotation_angle: -5 } }", {}, "hue_rotation_angle", "0"),
    ("color_config { hue_saturation_config { saturation_shift: 1.5 } }", {}, "saturation_shift", "1"),
    ("color_config { brightness_config { offset: 256 } }", {}, "brightness_config.offset", "255"),
    ("color_config { contrast_config { contrast: 1.5 } }", {}, "contrast_config.contrast", "1"),
    ("color_config { contrast_config { contrast: 0.5 center: 300 } }", {}, "contrast_config.center", "255"),
    ("blur_config { size: 0 std: 1 }", {}, "blur_config.size", "between 1"),
    ("blur_config { size: 3 std: 0 }", {}, "blur_config.std", "greater than 0"),
    ("blur_config { size: 3 }", {}, "blur_config.std", "missing"),
    ("blur_config { std: 1 }", {}, "blur_config.size", "missing"),
    ("", {"channels": 2}, "output_image_channel", "1 or 3"),
    ("", {"extension": ".bmp"}, "image_extension", "supported"),
    ("", {"width": 0}, "output_image_width", "between 1"),
]


@pytest.mark.parametrize("body,dims,field,words", BAD_SPECS, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_SPECS)])
def test_bad_values_are_spec_errors_naming_file_line_and_field(write_spec, body, dims, field, words) -> None:
    path = write_spec(body, **dims)
    with pytest.raises(SpecError) as info:
        load_augment_spec(path)
    line = info.value.one_line()
    assert field in line
    assert words in line
    assert re.search(re.escape(str(path)) + r":\d+", line), line  # file:line


def test_missing_output_size(write_spec) -> None:
    raw = 'dataset_config { image_path: "i" label_path: "l" }\noutput_image_width: 10\n'
    with pytest.raises(SpecError, match=r"output_image_height.*missing"):
        load_augment_spec(write_spec(raw=raw))


def test_missing_dataset_config(write_spec) -> None:
    path = write_spec("", dataset=False)
    with pytest.raises(SpecError) as info:
        load_augment_spec(path)
    assert info.value.one_line().startswith(f"{path}: field 'dataset_config': missing")


def test_empty_dataset_paths(write_spec) -> None:
    raw = 'dataset_config { image_path: "i" }\noutput_image_width: 10\noutput_image_height: 10\n'
    with pytest.raises(SpecError, match=r"dataset_config\.label_path"):
        load_augment_spec(write_spec(raw=raw))


def test_contradicting_channel_spellings(write_spec) -> None:
    raw = ('dataset_config { image_path: "i" label_path: "l" }\noutput_image_width: 10\n'
           "output_image_height: 10\noutput_image_channel: 3\noutput_image_channels: 1\n")
    with pytest.raises(SpecError, match="contradicts"):
        load_augment_spec(write_spec(raw=raw))


def test_typo_gets_line_and_suggestion(write_spec) -> None:
    path = write_spec("spatial_config {\n  rotation_config {\n    angel: 5\n  }\n}")
    with pytest.raises(SpecError) as info:
        load_augment_spec(path)
    line = info.value.one_line()
    assert f"{path}:3:" in line
    assert "did you mean 'angle'" in line


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_augment_spec(tmp_path / "nope.txt")
