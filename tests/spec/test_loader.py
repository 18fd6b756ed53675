"""The spec loader: text format and YAML, errors with file:line:column, field paths and suggestions.

Uses protobuf's own FileDescriptorProto as the schema: it has nested and repeated messages, enums and
scalars of every kind, so the loader is tested independently of tlt's schemas (those have their own
tests over every sample spec of the manuals).
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from libtlt.errors import SpecError
from libtlt.spec import load_spec, load_spec_text

Schema = descriptor_pb2.FileDescriptorProto

TEXT = """name: "x.proto"
message_type {
  name: "A"
  # a comment with { braces } and "quotes"
  field { name: "f" number: 1 label: LABEL_OPTIONAL }
  field {
    name: "g"
    number: 2
  }
}
"""

YAML = """name: x.proto
message_type:
  - name: A
    field:
      - name: f
        number: 1
        label: LABEL_OPTIONAL
      - name: g
        number: 2
"""


def error_of(text: str, syntax: str = "text", name: str = "spec.txt") -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, Schema, name=name, syntax=syntax)
    return str(info.value)


def test_text_loads_and_locates_fields() -> None:
    spec = load_spec_text(TEXT, Schema, name="spec.txt")
    assert spec.message.message_type[0].field[1].number == 2
    assert spec.locate("message_type.field[1].number") == "spec.txt:8:5"
    assert spec.locate("message_type.field[0].label") == "spec.txt:5:31"
    # Unwritten fields point at their closest written ancestor, then at the file.
    assert spec.locate("message_type.field[1].type") == "spec.txt:6:3"
    assert spec.locate("package") == "spec.txt"


def test_text_unknown_field_names_line_column_path_and_suggestion() -> None:
    message = error_of(TEXT.replace("number: 2", "nubmer: 2"))
    assert message == "spec.txt:8:5: unknown field 'nubmer' in message_type.field; did you mean 'number'?"


def test_text_unknown_top_level_field() -> None:
    assert "unknown field 'nam' in the top level; did you mean 'name'?" in error_of("nam: 'x'\n")


def test_text_unknown_enum_lists_valid_values() -> None:
    message = error_of(TEXT.replace("LABEL_OPTIONAL", "OPTIONAL"))
    assert message.startswith("spec.txt:5:")
    assert "unknown value OPTIONAL" in message and "LABEL_REPEATED" in message


def test_text_type_error_has_position() -> None:
    assert error_of(TEXT.replace("number: 2", 'number: "two"')).startswith("spec.txt:8:")


def test_text_syntax_error_has_position() -> None:
    assert error_of(TEXT.replace("  field {\n", "  field \n")).startswith("spec.txt:")


def test_yaml_equals_text() -> None:
    from_text = load_spec_text(TEXT, Schema).message
    from_yaml = load_spec_text(YAML, Schema, syntax="yaml").message
    assert from_text == from_yaml


def test_yaml_locates_fields() -> None:
    spec = load_spec_text(YAML, Schema, name="s.yaml", syntax="yaml")
    assert spec.locate("message_type[0].field[1].number") == "s.yaml:9:9"
    assert spec.locate("message_type.field.name") == "s.yaml:5:9"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("number: 2", "numbr: 2"), "s.yaml:9:9: unknown field 'numbr' in message_type[0].field[1]; did you mean 'number'?"),
        (("number: 2", "number: two"), "s.yaml:9:17: field 'message_type[0].field[1].number': expected an integer, got 'two'"),
        (("number: 2", "number: true"), "s.yaml:9:17: field 'message_type[0].field[1].number': expected an integer, got True"),
        (("LABEL_OPTIONAL", "OPT"), "s.yaml:7:16: field 'message_type[0].field[0].label': unknown value 'OPT'"),
        (("name: x.proto", "name: [x"), "s.yaml:2:13: invalid YAML"),
        (("number: 2", "number: 99999999999"), "s.yaml:9:17: field 'message_type[0].field[1].number': 99999999999 is out of range"),
        (("name: A", "name: {a: 1}"), "s.yaml:3:11: field 'message_type[0].name': expected a string"),
    ],
)
def test_yaml_errors(change: tuple[str, str], expected: str) -> None:
    assert error_of(YAML.replace(*change), syntax="yaml", name="s.yaml").startswith(expected)


def test_yaml_numbers_written_as_exponent_strings_are_accepted() -> None:
    # YAML 1.1 reads "1e-3" as a string; spec authors mean a number.
    spec = load_spec_text("options:\n  deprecated: false\n", descriptor_pb2.FieldDescriptorProto, syntax="yaml")
    assert spec.message.options.deprecated is False
    option = load_spec_text("double_value: 1e-3\nstring_value: 1e-3\n", descriptor_pb2.UninterpretedOption,
                            syntax="yaml").message
    assert option.double_value == pytest.approx(0.001)
    assert option.string_value == b"1e-3"  # a bytes/string field keeps the text as written


def test_load_spec_by_suffix(tmp_path) -> None:
    (tmp_path / "a.txt").write_text(TEXT)
    (tmp_path / "a.yaml").write_text(YAML)
    assert load_spec(tmp_path / "a.txt", Schema).message == load_spec(tmp_path / "a.yaml", Schema).message


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.txt", Schema)
    with pytest.raises(SpecError, match="directory"):
        load_spec(tmp_path, Schema)


def test_error_builder_points_at_field() -> None:
    spec = load_spec_text(TEXT, Schema, name="spec.txt")
    err = spec.error("message_type.field[1].number", "must be odd")
    assert str(err) == "spec.txt:8:5: field 'message_type.field[1].number': must be odd"
