"""COCO evaluation of a MaskRCNN Keras inference model on the spec's validation records, for the validation that
tlt-train runs every ``num_steps_per_eval`` steps (tlt-evaluate has its own, generic instance-segmenter path)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from libtlt.log import get_logger

logger = get_logger("libtlt.archs.mask_rcnn")


def coco_results(image_id: int, instances: Any) -> list[dict[str, Any]]:
    """One image's detections as COCO result dicts (x y w h box, score, category id, mask RLE)."""
    from libtlt.metrics.coco import result_entry

    return [result_entry(image_id, box, score, category, mask) for box, score, category, mask in
            zip(instances.boxes, instances.confidences, instances.class_ids, instances.masks, strict=True)]


def evaluate_model(arch: Any, spec: Any, model: Any) -> dict[str, dict[str, float]]:
    """``{"bbox": 12 stats, "segm": 12 stats}`` of ``model`` on the validation records against ``val_json_file``."""
    from libtlt.metrics.coco import coco_stats

    truth = arch.coco_ground_truth(spec)
    for annotation in truth.get("annotations", []):
        annotation.setdefault("iscrowd", 0)
    names = arch.output_names(spec)
    detections: list[dict[str, Any]] = []
    image_ids: list[int] = []
    for images, infos in arch.evaluation_images(spec):
        outputs = dict(zip(names, (np.asarray(o) for o in model.predict_on_batch(images)), strict=True))
        for info, found in zip(infos, arch.decode_instances(spec, outputs, [(i.width, i.height) for i in infos]),
                               strict=True):
            detections += coco_results(info.image_id, found)
            image_ids.append(int(info.image_id))
    return {kind: coco_stats(truth, detections, kind, image_ids) for kind in ("bbox", "segm")}


def validation_callback(arch: Any, spec: Any, model: Any) -> Any:
    """``bbox_AP``, ``bbox_AP50``, ``segm_AP`` and ``segm_AP50`` in the epoch logs (each ``num_steps_per_eval``
    steps), computed on the inference ``model`` (the fitted model is the trainer)."""
    import keras

    class Validation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs is None:
                return
            stats = evaluate_model(arch, spec, model)
            for kind in ("bbox", "segm"):
                for name in ("AP", "AP50"):
                    value = stats[kind].get(name, math.nan)
                    logs[f"{kind}_{name}"] = value
            logger.info("Validation after interval %d: bbox AP %.4f AP50 %.4f, segm AP %.4f AP50 %.4f", epoch + 1,
                        logs["bbox_AP"], logs["bbox_AP50"], logs["segm_AP"], logs["segm_AP50"])

    return Validation()
