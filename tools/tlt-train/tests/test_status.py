"""status.json, training.csv, TensorBoard events and the progress line; appending across a resume."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tlt_train.status import ProgressBar, StatusLogger, training_callbacks

BATCH = 4


def model_and_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 0).astype("int32"), 2)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.1), "categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


def read_status(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for event_file in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


def test_reports_of_a_run_and_its_resume(tmp_path: Path, caplog):
    caplog.set_level(logging.INFO)
    model, x, y = model_and_data()
    model.fit(x, y, batch_size=BATCH, epochs=2, validation_data=(x, y), verbose=0,
              callbacks=training_callbacks(tmp_path, batch_size=BATCH, progress=False))

    lines = read_status(tmp_path / "status.json")
    assert [line["status"] for line in lines] == ["STARTED", "RUNNING", "RUNNING", "SUCCESS"]
    epoch = lines[1]
    for field in ("date", "time", "epoch", "max_epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                  "time_per_epoch", "images_per_sec", "eta"):
        assert field in epoch, field
    assert (epoch["epoch"], epoch["max_epoch"]) == (1, 2)
    assert epoch["lr"] == np.float32(0.1)
    assert epoch["images_per_sec"] > 0 and epoch["time_per_epoch"] > 0
    assert lines[2]["eta"] == 0.0

    rows = read_csv(tmp_path / "training.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"loss", "accuracy", "val_loss", "lr", "images_per_sec"} <= set(rows[0])

    events = scalars(tmp_path / "events" / "train")
    assert [step for step, _ in events["epoch_loss"]] == [1, 2]
    assert [step for step, _ in events["epoch_lr"]] == [1, 2]
    assert scalars(tmp_path / "events" / "validation")["epoch_loss"][0][0] == 1
    assert any("Epoch 2/2 - " in r.getMessage() and "images/s" in r.getMessage() for r in caplog.records)

    # Resume from a checkpoint of epoch 1 (as if killed during epoch 2): reports append, the CSV keeps
    # one row per epoch.
    model.fit(x, y, batch_size=BATCH, epochs=3, initial_epoch=1, verbose=0,
              callbacks=training_callbacks(tmp_path, batch_size=BATCH, progress=False))
    lines = read_status(tmp_path / "status.json")
    assert len(lines) == 4 + 4
    assert lines[4]["status"] == "STARTED" and lines[4]["message"] == "Resuming training at epoch 2"
    assert [line["epoch"] for line in lines[5:7]] == [2, 3]
    assert [row["epoch"] for row in read_csv(tmp_path / "training.csv")] == ["1", "2", "3"]
    assert [step for step, _ in scalars(tmp_path / "events" / "train")["epoch_loss"]] == [1, 2, 2, 3]


def test_progress_bar_shows_epoch_and_images_per_second():
    model, x, y = model_and_data()
    stream = io.StringIO()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=[ProgressBar(batch_size=BATCH, file=stream)])
    text = stream.getvalue()
    assert "Epoch 1/1" in text
    assert "images/s" in text
    assert "4/4" in text


def test_non_chief_writes_nothing(tmp_path: Path):
    model, x, y = model_and_data()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
              callbacks=training_callbacks(tmp_path / "r", batch_size=BATCH, is_chief=False))
    assert not (tmp_path / "r").exists()


def test_status_without_batch_size_has_null_rate(tmp_path: Path):
    model, x, y = model_and_data()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[StatusLogger(tmp_path)])
    assert read_status(tmp_path / "status.json")[1]["images_per_sec"] is None
