"""TFRecord files and tf.train.Example without TensorFlow, checked against TensorFlow itself.

Our writer's files are read by ``tf.data.TFRecordDataset`` + ``tf.io.parse_single_example``; files
written by ``tf.io.TFRecordWriter`` with ``tf.train.Example`` are read by ours; damaged files are
detected with the file and byte offset; hypothesis round-trips arbitrary feature dicts.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libtlt.errors import DataError
from libtlt.io.example import ExampleEncoder, Kind, decode_example, encode_example, feature_kinds, to_message
from libtlt.io.tfrecord import (
    TFRecordWriter,
    count_records,
    frame_record,
    masked_crc32c,
    read_records,
    write_tfrecord,
)

tf = pytest.importorskip("tensorflow")

FEATURES: dict[str, Any] = {
    "frame/id": [b"images/000001"],
    "frame/height": [384],
    "frame/width": [1248],
    "target/object_class": [b"car", "pedestrian"],
    "target/coordinates_x1": [587.01, 423.17],
    "target/occlusion": [0, 2],
    "big": [-1, 2**40, -(2**63), 2**63 - 1],
}


def _tf_spec(features: dict[str, Any], kinds: dict[str, Kind]) -> dict[str, Any]:
    dtype = {Kind.BYTES: tf.string, Kind.FLOAT: tf.float32, Kind.INT64: tf.int64}
    return {name: tf.io.VarLenFeature(dtype[kinds[name]]) for name in features}


def _tf_read(path: Path, spec: dict[str, Any]) -> list[dict[str, list[Any]]]:
    out = []
    for record in tf.data.TFRecordDataset(str(path)):
        parsed = tf.io.parse_single_example(record, spec)
        out.append({name: tf.sparse.to_dense(value).numpy().tolist() for name, value in parsed.items()})
    return out


def test_masked_crc_check_value() -> None:
    # CRC32C("123456789") is the standard check value 0xE3069283; masked: rotate right by 15, add 0xA282EAD8.
    assert masked_crc32c(b"123456789") == 0xC78AB0E5
    framed = frame_record(b"abc")
    assert struct.unpack("<Q", framed[:8])[0] == 3 and framed[12:15] == b"abc" and len(framed) == 19


def test_our_file_read_by_tensorflow(tmp_path: Path) -> None:
    path = tmp_path / "ours.tfrecord"
    kinds = {"frame/id": Kind.BYTES, "frame/height": Kind.INT64, "frame/width": Kind.INT64,
             "target/object_class": Kind.BYTES, "target/coordinates_x1": Kind.FLOAT,
             "target/occlusion": Kind.INT64, "big": Kind.INT64, "empty": Kind.FLOAT}
    records = [encode_example({**FEATURES, "empty": []}, kinds={"empty": "float"}),
               ExampleEncoder(kinds).encode({**FEATURES, "frame/id": [b"images/000002"], "empty": []})]
    assert write_tfrecord(path, records) == 2
    got = _tf_read(path, _tf_spec({**FEATURES, "empty": []}, kinds))
    assert [g["frame/id"] for g in got] == [[b"images/000001"], [b"images/000002"]]
    first = got[0]
    assert first["frame/height"] == [384] and first["frame/width"] == [1248]
    assert first["target/object_class"] == [b"car", b"pedestrian"]
    assert first["target/coordinates_x1"] == np.array([587.01, 423.17], dtype=np.float32).tolist()
    assert first["target/occlusion"] == [0, 2]
    assert first["big"] == [-1, 2**40, -(2**63), 2**63 - 1]
    assert first["empty"] == []
    # TensorFlow's own parser sees the same kinds (proto wire types) we wrote.
    message = tf.train.Example.FromString(records[0])
    assert message.features.feature["empty"].WhichOneof("kind") == "float_list"
    assert message.features.feature["big"].WhichOneof("kind") == "int64_list"


def test_tensorflow_file_read_by_us(tmp_path: Path) -> None:
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(3):
            example = tf.train.Example(features=tf.train.Features(feature={
                "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"n{i}".encode(), b"\x00\xff"])),
                "score": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5 * i, -1e-3, 3.4e38])),
                "ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[i, -i, 2**62])),
                "none": tf.train.Feature(int64_list=tf.train.Int64List(value=[])),
            }))
            writer.write(example.SerializeToString())
    records = list(read_records(path))
    assert len(records) == count_records(path) == 3
    decoded = [decode_example(r) for r in records]
    assert decoded[2]["name"] == [b"n2", b"\x00\xff"]
    assert decoded[2]["score"] == np.array([1.0, -1e-3, 3.4e38], dtype=np.float32).tolist()
    assert decoded[2]["ids"] == [2, -2, 2**62]
    assert decoded[2]["none"] == []
    assert feature_kinds(to_message(decoded[2], kinds={"none": "int64"}))["none"] == Kind.INT64
    # Our framing of the same payloads is byte-identical to TensorFlow's file.
    assert b"".join(frame_record(r) for r in records) == path.read_bytes()


def test_writer_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.tfrecord"
    write_tfrecord(path, [b"old"])
    with pytest.raises(RuntimeError), TFRecordWriter(path) as writer:
        writer.write(b"new")
        raise RuntimeError("interrupted")
    assert list(read_records(path)) == [b"old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tfrecord"]  # no temporary left behind
    fresh = tmp_path / "fresh.tfrecord"
    writer = TFRecordWriter(fresh)
    writer.write(b"x")
    assert not fresh.exists()  # not visible before close
    writer.close()
    assert list(read_records(fresh)) == [b"x"]
    with pytest.raises(ValueError):
        writer.write(b"after close")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda data: data[:-2], "record 1 at byte offset 19: truncated record"),
    (lambda data: data[:25], "record 1 at byte offset 19: truncated record header"),
    (lambda data: data[:19 + 12 + 2] + b"X" + data[19 + 12 + 3:], "record 1 at byte offset 19: data checksum"),
    (lambda data: data[:20] + b"\x07" + data[21:], "record 1 at byte offset 19: length checksum"),
    (lambda data: data[:15] + b"\x00" + data[16:], "record 0 at byte offset 0: data checksum"),
])
def test_corruption_is_detected(tmp_path: Path, mutate: Any, message: str) -> None:
    path = tmp_path / "damaged.tfrecord"
    write_tfrecord(path, [b"abc", b"defghij"])  # records of 19 and 23 bytes
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(DataError) as info:
        list(read_records(path))
    assert str(path) in str(info.value) and message in str(info.value)


def test_tensorflow_rejects_what_we_reject(tmp_path: Path) -> None:
    path = tmp_path / "damaged.tfrecord"
    write_tfrecord(path, [b"abc"])
    data = bytearray(path.read_bytes())
    data[13] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        list(read_records(tmp_path / "nope.tfrecord"))


def test_libtlt_io_never_imports_tensorflow() -> None:
    code = ("import sys, libtlt.io.tfrecord, libtlt.io.example; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------------- properties

_float32 = st.floats(width=32, allow_nan=False)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_feature = st.one_of(
    st.tuples(st.just(Kind.BYTES), st.lists(st.binary(max_size=40), max_size=5)),
    st.tuples(st.just(Kind.FLOAT), st.lists(_float32, max_size=20)),
    st.tuples(st.just(Kind.INT64), st.lists(_int64, max_size=20)),
)
_features = st.dictionaries(st.text(min_size=1, max_size=12), _feature, max_size=8)


@settings(max_examples=150, deadline=None)
@given(_features)
def test_encode_decode_round_trip(features: dict[str, tuple[Kind, list[Any]]]) -> None:
    kinds = {name: kind for name, (kind, _) in features.items()}
    values = {name: vals for name, (_, vals) in features.items()}
    data = encode_example(values, kinds=kinds)
    assert decode_example(data) == values
    assert ExampleEncoder(kinds).encode(values) == data
    # The protobuf runtime agrees on every byte after its own round trip.
    assert feature_kinds(to_message(values, kinds)) == kinds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_features, max_size=6))
def test_tensorflow_reads_random_examples(tmp_path: Path, examples: list[dict[str, tuple[Kind, list[Any]]]]) -> None:
    path = tmp_path / "random.tfrecord"
    write_tfrecord(path, [encode_example({n: v for n, (_, v) in ex.items()}, {n: k for n, (k, _) in ex.items()})
                          for ex in examples], fsync=False)
    got = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert len(got) == len(examples)
    field = {Kind.BYTES: "bytes_list", Kind.FLOAT: "float_list", Kind.INT64: "int64_list"}
    for message, example in zip(got, examples, strict=True):
        assert set(message.features.feature) == set(example)
        for name, (kind, values) in example.items():
            feature = message.features.feature[name]
            assert feature.WhichOneof("kind") == field[kind]
            assert list(getattr(feature, field[kind]).value) == values  # float32 values survive exactly


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_record_round_trip(tmp_path: Path, records: list[bytes]) -> None:
    path = tmp_path / "records.tfrecord"
    write_tfrecord(path, records, fsync=False)
    assert list(read_records(path)) == records
