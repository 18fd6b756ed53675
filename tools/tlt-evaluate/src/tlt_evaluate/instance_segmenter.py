"""``tlt-evaluate ARCH`` for every instance segmenter (000 §9.8, 004): COCO box and mask statistics.

One path for all of them; the architecture (``libtlt.registry``, task ``instance_segmenter``) supplies its COCO
ground truth (``coco_ground_truth``: a COCO instances dataset, for MaskRCNN the spec's ``val_json_file``), the
preprocessed evaluation images with their COCO ids and original sizes (``evaluation_images``) and the decoding of
the network outputs into boxes, scores, COCO category ids and binary masks in each image's original pixels
(``decode_instances``). pycocotools scores them (``libtlt.metrics.coco``): the 12 ``bbox`` numbers and the 12
``segm`` numbers, printed as ``COCOeval.summarize()`` prints them (TAO's log). Written atomically in the results
directory (default: the model's): ``evaluation.json`` (``coco_bbox``, ``coco_segm``) and ``detections.json``,
the detections in COCO's results format (masks as compressed RLE), for other COCO tools.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from libtlt.errors import DataError, ModelFileError
from libtlt.log import get_logger
from libtlt.metrics.coco import coco_stats, format_stats, result_entry
from tlt_evaluate.box_detector import check_outputs

logger = get_logger("tlt_evaluate.instance_segmenter")

REPORT_FILE = "evaluation.json"
DETECTIONS_FILE = "detections.json"


def evaluate_instance_segmenter(arch_name: str, experiment_spec_file: str | Path, model: str | Path,
                                key: str | None, *, framework: str | None = None,
                                results_dir: str | Path | None = None,
                                batch_size: int | None = None) -> dict[str, dict[str, float]]:
    """Evaluate an instance segmenter's model on its COCO ground truth; print and write both reports."""
    import tensorflow as tf

    from libtlt.io.atomic import write_text
    from libtlt.log import progress
    from libtlt.registry import get_architecture
    from libtlt.runtime.predictor import make_predictor
    from libtlt.spec import load_spec

    arch = get_architecture(arch_name)
    spec = load_spec(experiment_spec_file, arch.spec_message())
    arch.validate(spec)
    truth = complete_ground_truth(arch.coco_ground_truth(spec))
    predictor = make_predictor(model, key, framework, architecture=arch.name)
    recorded = predictor.metadata.get("input_shape")
    shape = [int(v) for v in arch.input_shape(spec)]
    if recorded is not None and [int(v) for v in recorded] != shape:
        raise ModelFileError(f"the model's input shape {list(recorded)} differs from the spec's network input {shape} "
                             f"(C, H, W) of {experiment_spec_file}", location=model)
    deployed = getattr(arch, "deployed_output_names", None)
    check_outputs(predictor, arch.output_names(spec), model, deployed(spec) if deployed is not None else None)

    known_categories = {int(c["id"]) for c in truth["categories"]}
    detections: list[dict[str, Any]] = []
    image_ids: list[int] = []
    with progress(unit="img", desc="Evaluating", leave=False) as bar:
        try:
            for images, infos in arch.evaluation_images(spec, batch_size=batch_size):
                outputs = predictor(np.asarray(images))
                found = arch.decode_instances(spec, outputs, [(info.width, info.height) for info in infos])
                for info, instances in zip(infos, found, strict=True):
                    detections += coco_results(info.image_id, instances, known_categories)
                    image_ids.append(int(info.image_id))
                bar.update(len(infos))
        except tf.errors.OpError as err:
            from libtlt.data.image_check import image_error

            raise (image_error(err.message)
                   or DataError(f"an image of the dataset cannot be read ({err.message.splitlines()[0]})")) from None
    if not image_ids:
        raise DataError("the evaluation set holds no images", location=str(experiment_spec_file))
    stats = {iou_type: coco_stats(truth, detections, iou_type, image_ids) for iou_type in ("bbox", "segm")}
    for iou_type, numbers in stats.items():
        click.echo(format_stats(numbers, iou_type))

    out_dir = Path(results_dir) if results_dir else Path(model).resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model), "experiment_spec": str(experiment_spec_file), "num_images": len(image_ids),
              "num_detections": len(detections), "coco_bbox": stats["bbox"], "coco_segm": stats["segm"]}
    write_text(out_dir / DETECTIONS_FILE, json.dumps(detections) + "\n")
    write_text(out_dir / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    logger.info("Wrote %s and %s (%d detections in %d images) to %s", REPORT_FILE, DETECTIONS_FILE,
                len(detections), len(image_ids), out_dir)
    return stats


def complete_ground_truth(truth: dict[str, Any]) -> dict[str, Any]:
    """The COCO dataset with what COCOeval needs and a hand-written json may leave out: ``iscrowd`` (0) and
    ``area`` (the box's) per annotation."""
    for field in ("images", "annotations", "categories"):
        if not isinstance(truth.get(field), list):
            raise DataError(f"the COCO ground truth has no '{field}' list")
    for annotation in truth["annotations"]:
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation:
            _, _, w, h = annotation.get("bbox", (0, 0, 0, 0))
            annotation["area"] = float(w) * float(h)
    return truth


def coco_results(image_id: int, instances: Any, known_categories: set[int]) -> list[dict[str, Any]]:
    """One image's detections as COCO result dicts (box x y w h, score, category, mask RLE)."""
    boxes = np.asarray(instances.boxes, dtype=np.float64).reshape(-1, 4)
    masks = np.asarray(instances.masks)
    if len(masks) != len(boxes):
        raise ModelFileError(f"the decoder returned {len(boxes)} boxes but {len(masks)} masks")
    results = []
    for box, score, category, mask in zip(boxes, instances.confidences, instances.class_ids, masks, strict=True):
        if int(category) not in known_categories:
            raise DataError(f"the model predicts category id {int(category)}, which the COCO ground truth does not "
                            f"list (its ids: {sorted(known_categories)})")
        results.append(result_entry(image_id, box, score, category, np.asarray(mask) >= 0.5))
    return results
