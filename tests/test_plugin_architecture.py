"""A third-party architecture works in every tool, with no change to any tool (issue 13's acceptance).

``tests/plugin/tinydet`` (a small box detector written the way an outside package would) is installed into a
temporary site directory with an entry point in ``libtlt.architectures`` — what ``pip install`` writes — and
the installed commands run the whole chain on generated KITTI data: tlt-dataset-convert → tlt-train →
tlt-evaluate → tlt-infer → tlt-int8-tensorfile → tlt-prune → tlt-export (INT8, calibrated from the plug-in's
training loader) → tlt-converter → tlt-infer on the engine, whose labels must equal those of the pruned
``.tlt``. ``tests/plugin/tinyseg`` (an instance segmenter) does the same on generated COCO data, through the
tools' instance-segmenter paths: COCO box and mask statistics, masks on images and instance maps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from libtlt.samples import generate_detection_dataset
from libtlt.samples.specs import kitti_convert_spec
from libtlt.testing import convert_coco

BIN = Path(sys.executable).parent
PLUGINS = Path(__file__).parent / "plugin"
KEY = "plugin-key"
WIDTH, HEIGHT = 160, 96
CLASSES = ("car", "pedestrian")
THRESHOLD = 0.05


def install(site: Path, package: str = "tinydet", entry: str = "TinyDet") -> None:
    """What ``pip install`` of the plug-in writes: the package and its dist-info with the entry point."""
    shutil.copytree(PLUGINS / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    dist = site / f"{package}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[libtlt.architectures]\n{package} = {package}:{entry}\n")


def experiment_spec(records: str, images: Path) -> str:
    mapping = "\n".join(f'  target_class_mapping {{ key: "{c}" value: "{c}" }}' for c in CLASSES)
    return textwrap.dedent(f"""\
        dataset_config {{
          data_sources {{ tfrecords_path: "{records}" image_directory_path: "{images}" }}
          image_extension: "png"
        {mapping}
          validation_fold: 0
        }}
        augmentation_config {{
          preprocessing {{ output_image_width: {WIDTH} output_image_height: {HEIGHT} }}
        }}
        training_config {{
          batch_size_per_gpu: 4
          num_epochs: 3
          learning_rate {{
            soft_start_annealing_schedule {{ min_learning_rate: 1e-4 max_learning_rate: 5e-3 soft_start: 0.1
                                             annealing: 0.7 }}
          }}
        }}
        """)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("plugin")
    site = base / "site"
    site.mkdir()
    install(site)
    root = base / "kitti"
    generate_detection_dataset(root, num_images=24, width=WIDTH, height=HEIGHT, classes=CLASSES, seed=3,
                               objects_per_image=(1, 3))
    convert = base / "convert.txt"
    convert.write_text(kitti_convert_spec(root, val_split=25, num_shards=1))
    (base / "records").mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "TLT_KEY": KEY}
    env.pop("TLT_ARCHITECTURES", None)
    world = {"base": base, "root": root, "spec": base / "spec.txt"}
    world["spec"].write_text(experiment_spec(str(base / "records" / "kitti*"), root))
    run(env, "tlt-dataset-convert", "-d", convert, "-o", base / "records" / "kitti")
    world["env"] = env  # type: ignore[assignment]
    return world


def run(env: dict[str, str], tool: str, *args: object, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / tool), *(str(a) for a in args)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == expect, f"{tool} {' '.join(map(str, args))}:\n{done.stderr[-3000:]}"
    return done


def labels(folder: Path) -> dict[str, list[list[float]]]:
    """KITTI label files → per image, the rows' class index, box and confidence."""
    found = {}
    for path in sorted(folder.glob("*.txt")):
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
        found[path.name] = [[float(CLASSES.index(r[0])), *map(float, r[4:8]), float(r[15])] for r in rows]
    return found


@pytest.mark.slow
def test_a_third_party_detector_runs_through_every_tool(world: dict[str, Path]) -> None:
    env: dict[str, str] = world["env"]  # type: ignore[assignment]
    base, spec = world["base"], world["spec"]
    for tool in ("tlt-train", "tlt-evaluate", "tlt-infer", "tlt-int8-tensorfile", "tlt-export"):
        assert "tinydet" in run(env, tool, "--list-archs").stdout.split()

    results = base / "results"
    run(env, "tlt-train", "tinydet", "-e", spec, "-r", results, "-n", "tiny")
    model = results / "weights" / "tiny.tlt"
    assert json.loads((results / "status.json").read_text().splitlines()[-1])["status"] == "SUCCESS"

    run(env, "tlt-evaluate", "tinydet", "-e", spec, "-m", model, "-r", base / "evaluation")
    report = json.loads((base / "evaluation" / "evaluation.json").read_text())
    assert set(report["classes"]) == set(CLASSES) and report["num_images"] > 0
    assert (base / "evaluation" / "precision_recall_car.png").is_file()
    assert len(report["coco_bbox"]) == 12 and 0.0 <= report["coco_bbox"]["AP50"] <= 1.0  # the extra report

    images = world["root"] / "images"
    run(env, "tlt-infer", "tinydet", "-e", spec, "-m", model, "-i", images, "-o", base / "infer", "-t", "0.2")
    assert len(list((base / "infer" / "labels").glob("*.txt"))) == len(list(images.glob("*.png")))
    assert len(list((base / "infer" / "images_annotated").glob("*.png"))) == len(list(images.glob("*.png")))

    tensorfile = base / "cal.tensor"
    run(env, "tlt-int8-tensorfile", "tinydet", "-e", spec, "-o", tensorfile, "-m", 2)
    assert tensorfile.is_file()

    pruned = base / "pruned.tlt"
    run(env, "tlt-prune", "-m", model, "-o", pruned, "--keep_ratio", "0.7", "-nf", "4", "-pg", "1")
    pruning = json.loads(pruned.with_suffix(".json").read_text())
    assert pruning["params_after"] < pruning["params_before"]

    etlt, cal = base / "tiny.etlt", base / "cal.bin"
    run(env, "tlt-export", "tinydet", "-m", pruned, "-o", etlt, "--data_type", "int8", "-e", spec, "--batches", 2,
        "--cal_cache_file", cal)
    assert etlt.is_file() and cal.is_file()
    engine = base / "tiny.engine"
    run(env, "tlt-converter", etlt, "-d", f"3,{HEIGHT},{WIDTH}", "-o", "tiny_scores/Sigmoid,tiny_boxes/BiasAdd",
        "-e", engine, "--backend", "onnxruntime")

    # A low threshold, so that the comparison has boxes to compare after three short epochs.
    for name, source in (("infer_pruned", pruned), ("infer_engine", engine)):
        run(env, "tlt-infer", "tinydet", "-e", spec, "-m", source, "-i", images, "-o", base / name, "-t", THRESHOLD)
    keras_rows, engine_rows = labels(base / "infer_pruned" / "labels"), labels(base / "infer_engine" / "labels")
    assert keras_rows.keys() == engine_rows.keys()
    assert sum(len(rows) for rows in keras_rows.values()) > 0
    for name, rows in keras_rows.items():
        ours, theirs = clear_of_threshold(rows), clear_of_threshold(engine_rows[name])
        assert len(ours) == len(theirs), name
        for mine, other in zip(ours, theirs, strict=True):
            assert mine == pytest.approx(other, abs=0.02), name


def clear_of_threshold(rows: list[list[float]]) -> list[list[float]]:
    """The rows whose confidence is not within 1e-3 of the threshold (runtimes may round those either way),
    sorted."""
    return sorted(row for row in rows if row[-1] > THRESHOLD + 1e-3)


def test_an_unknown_plugin_option_is_a_usage_error(world: dict[str, Path]) -> None:
    env: dict[str, str] = world["env"]  # type: ignore[assignment]
    done = run(env, "tlt-infer", "tinydet", "-e", world["spec"], "-i", world["root"], "-o", world["base"] / "x",
               expect=2)
    assert "Missing option '-m'" in done.stderr
    assert "-t, --threshold" in run(env, "tlt-infer", "tinydet", "-h").stdout


# ------------------------------------------------------------------------------------- an instance segmenter

SEG_WIDTH, SEG_HEIGHT = 96, 64


def segmenter_spec(base: Path) -> str:
    return textwrap.dedent(f"""\
        seed: 1
        train_batch_size: 4
        eval_batch_size: 4
        total_steps: 60
        init_learning_rate: 0.005
        data_config {{
          image_size: "({SEG_HEIGHT}, {SEG_WIDTH})"
          training_file_pattern: "{base}/records/train-*"
          validation_file_pattern: "{base}/records/val-*"
          val_json_file: "{base}/coco/annotations/instances_val.json"
          num_classes: 4
        }}
        """)


@pytest.fixture(scope="module")
def seg_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from libtlt.samples.instances import generate_coco_dataset

    base = tmp_path_factory.mktemp("plugin_seg")
    site = base / "site"
    site.mkdir()
    install(site, "tinyseg", "TinySeg")
    generate_coco_dataset(base / "coco", split="train", num_images=64, width=SEG_WIDTH, height=SEG_HEIGHT, seed=1)
    generate_coco_dataset(base / "coco", split="val", num_images=8, width=SEG_WIDTH, height=SEG_HEIGHT, seed=2,
                          first_image_id=1001)
    env = {**os.environ, "PYTHONPATH": str(site), "TLT_KEY": KEY}
    env.pop("TLT_ARCHITECTURES", None)
    convert_coco(base / "coco", base / "records")
    (base / "spec.txt").write_text(segmenter_spec(base))
    return {"base": base, "env": env, "spec": base / "spec.txt", "images": base / "coco" / "val",
            "truth": base / "coco" / "annotations" / "instances_val.json"}


def pycocotools_stats(truth: Path, detections: Path, iou_type: str) -> list[float]:
    """COCOeval through pycocotools' own json loading (COCO(file), loadRes), apart from the tool's code path."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO(str(truth))
        found = ground.loadRes(str(detections))
        evaluation = COCOeval(ground, found, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(v) for v in evaluation.stats]


@pytest.mark.slow
def test_a_third_party_instance_segmenter_runs_through_every_tool(seg_world: dict[str, object]) -> None:
    import numpy as np
    from PIL import Image

    env: dict[str, str] = seg_world["env"]  # type: ignore[assignment]
    base, spec, images = Path(str(seg_world["base"])), seg_world["spec"], Path(str(seg_world["images"]))
    for tool in ("tlt-train", "tlt-evaluate", "tlt-infer", "tlt-int8-tensorfile", "tlt-export"):
        assert "tinyseg" in run(env, tool, "--list-archs").stdout.split()

    run(env, "tlt-train", "tinyseg", "-e", spec, "-r", base / "results", "-n", "tiny")
    model = base / "results" / "weights" / "tiny.tlt"

    done = run(env, "tlt-evaluate", "tinyseg", "-e", spec, "-m", model, "-r", base / "evaluation")
    assert "COCO bbox metrics:" in done.stdout and "COCO segm metrics:" in done.stdout
    report = json.loads((base / "evaluation" / "evaluation.json").read_text())
    assert report["num_images"] == 8 and report["num_detections"] > 0
    for iou_type in ("bbox", "segm"):
        direct = pycocotools_stats(Path(str(seg_world["truth"])), base / "evaluation" / "detections.json", iou_type)
        assert list(report[f"coco_{iou_type}"].values()) == pytest.approx(direct, abs=1e-9)
    assert report["coco_segm"]["AP50"] > 0.05  # it learned something in 60 short epochs

    run(env, "tlt-infer", "tinyseg", "-e", spec, "-m", model, "-i", images, "-o", base / "infer")
    for label_file in sorted((base / "infer" / "labels").glob("*.txt")):
        lines = [line for line in label_file.read_text().splitlines() if line]
        instance_map = np.asarray(Image.open(base / "infer" / "masks" / f"{label_file.stem}.png"))
        assert instance_map.shape == (SEG_HEIGHT, SEG_WIDTH)
        assert set(np.unique(instance_map)) <= set(range(len(lines) + 1))  # pixel k: the k-th label line
    assert len(list((base / "infer" / "images_annotated").glob("*.jpg"))) == 8

    run(env, "tlt-int8-tensorfile", "tinyseg", "-e", spec, "-o", base / "cal.tensor", "-m", 2)
    etlt, engine = base / "tiny.etlt", base / "tiny.engine"
    run(env, "tlt-export", "tinyseg", "-m", model, "-o", etlt)
    run(env, "tlt-converter", etlt, "-d", f"3,{SEG_HEIGHT},{SEG_WIDTH}", "-o", "tiny_masks", "-e", engine,
        "--backend", "onnxruntime")
    run(env, "tlt-infer", "tinyseg", "-e", spec, "-m", engine, "-i", images, "-o", base / "infer_engine")
    for instance_map in sorted((base / "infer" / "masks").glob("*.png")):
        ours = np.asarray(Image.open(instance_map))
        theirs = np.asarray(Image.open(base / "infer_engine" / "masks" / instance_map.name))
        assert np.mean(ours != theirs) < 0.01, instance_map.name
    run(env, "tlt-evaluate", "tinyseg", "-e", spec, "-m", engine, "-r", base / "evaluation_engine")
    on_engine = json.loads((base / "evaluation_engine" / "evaluation.json").read_text())
    assert on_engine["coco_segm"]["AP50"] == pytest.approx(report["coco_segm"]["AP50"], abs=0.02)
