"""MaskRCNN's sample spec for the registry's test harness: the default spec on ``libtlt.testing.SampleData``'s COCO
records, shrunk so that training, evaluation and inference run in seconds on a CPU (128×128, ResNet10, small
proposal, ROI and mask counts, a few steps from scratch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libtlt.spec.edits import edit_spec_text

#: The default spec's lines and what the sample spec puts instead (besides the data paths and class count).
_SMALL = {
    'checkpoint: "/workspace/tlt-experiments/maskrcnn/pretrained_resnet50/resnet50.hdf5"\n': "",
    "warmup_steps: 1000": "warmup_steps: 2",
    'learning_rate_steps: "[10000, 15000, 20000]"': 'learning_rate_steps: "[5]"',
    'learning_rate_decay_levels: "[0.1, 0.02, 0.01]"': 'learning_rate_decay_levels: "[0.1]"',
    "num_steps_per_eval: 5000": "num_steps_per_eval: 3",
    "warmup_learning_rate: 0.0001": "warmup_learning_rate: 0.001",
    "init_learning_rate: 0.01": "init_learning_rate: 0.005",
    'image_size: "(832, 1344)"': 'image_size: "(128, 128)"',
    "eval_samples: 500": "eval_samples: 8",
    "nlayers: 50": "nlayers: 10",
    "freeze_bn: True": "freeze_bn: False",
    '  freeze_blocks: "[0,1]"\n': "",
    "gt_mask_size: 112": "gt_mask_size: 28",
    "rpn_batch_size_per_im: 256": "rpn_batch_size_per_im: 64",
    "batch_size_per_im: 512": "batch_size_per_im: 32",
    "fast_rcnn_mlp_head_dim: 1024": "fast_rcnn_mlp_head_dim: 64",
    "mrcnn_resolution: 28": "mrcnn_resolution: 14",
    "train_rpn_pre_nms_topn: 2000": "train_rpn_pre_nms_topn: 300",
    "train_rpn_post_nms_topn: 1000": "train_rpn_post_nms_topn: 64",
    "test_detections_per_image: 100": "test_detections_per_image: 20",
    "test_rpn_pre_nms_topn: 1000": "test_rpn_pre_nms_topn: 200",
    "test_rpn_post_nms_topn: 1000": "test_rpn_post_nms_topn: 50",
    "max_level: 6": "max_level: 5",
    "anchor_scale: 8": "anchor_scale: 4",
}


def num_classes_of(annotations: str | Path) -> int:
    """``max category id + 1`` of a COCO json (MaskRCNN's ``num_classes`` counts the background and uses ids as is)."""
    try:
        categories = json.loads(Path(annotations).read_text(encoding="utf-8"))["categories"]
        return max(int(c["id"]) for c in categories) + 1
    except (OSError, ValueError, KeyError):
        return 4  # no data behind the paths (a spec that is only built): the sample's three shapes


def edited_default(default: str, *, train: str, val: str, annotations: str | Path, total_steps: int,
                   batch: int, edits: dict[str, str]) -> str:
    """The default spec on other records, ``total_steps`` of ``batch``, with ``edits`` applied after the data's."""
    data = {
        'training_file_pattern: "/workspace/tlt-experiments/data/train*.tfrecord"':
            f'training_file_pattern: "{train}"',
        'validation_file_pattern: "/workspace/tlt-experiments/data/val*.tfrecord"':
            f'validation_file_pattern: "{val}"',
        'val_json_file: "/workspace/tlt-experiments/data/annotations/instances_val2017.json"':
            f'val_json_file: "{annotations}"',
        "num_classes: 91": f"num_classes: {num_classes_of(annotations)}",
        "total_steps: 25000": f"total_steps: {total_steps}",
        "train_batch_size: 2": f"train_batch_size: {batch}",
        "eval_batch_size: 4": f"eval_batch_size: {batch}",
    }
    return edit_spec_text(default, {**data, **edits}, "the default mask_rcnn spec")


def sample_spec(arch: Any, data: Any) -> str:
    """Six steps of batch 2 on the sample records (two validation rounds), small counts (module docstring)."""
    annotations = getattr(data, "annotations", "") or str(Path(data.root) / "instances_val.json")
    return edited_default(arch.default_spec(), train=data.train, val=getattr(data, "val", data.train),
                          annotations=annotations, total_steps=6, batch=2, edits=_SMALL)


def demo_spec(arch: Any, *, train_records: str, val_records: str, annotations: str | Path, width: int, height: int,
              steps: int, pruned_model: str | Path | None = None) -> str:
    """The demo's (and the learning bench's) spec: the sample's small network at ``height`` × ``width`` for ``steps``
    steps of batch 4 from scratch — learning rate 0.02 after a linear warm-up from 0.002 over the first 5 %, ×0.1 at
    75 % and ×0.01 at 90 % of the steps, one validation at the end (up to 500 frames); from ``pruned_model`` when given
    (retraining).
    240 frames of 128×128 and 1200 steps reach bbox and segm AP50 above 0.5 on held-out frames."""
    first, second = max(1, steps * 3 // 4), steps * 9 // 10
    decay_steps = [str(first), str(second)] if second > first else [str(first)]
    edits = {**_SMALL,
             'image_size: "(832, 1344)"': f'image_size: "({height}, {width})"',
             "warmup_steps: 1000": f"warmup_steps: {max(1, steps // 20)}",
             "warmup_learning_rate: 0.0001": "warmup_learning_rate: 0.002",
             "init_learning_rate: 0.01": "init_learning_rate: 0.02",
             'learning_rate_steps: "[10000, 15000, 20000]"': f'learning_rate_steps: "[{", ".join(decay_steps)}]"',
             'learning_rate_decay_levels: "[0.1, 0.02, 0.01]"':
                 f'learning_rate_decay_levels: "[{", ".join(("0.1", "0.01")[:len(decay_steps)])}]"',
             "num_steps_per_eval: 5000": f"num_steps_per_eval: {steps}",
             "eval_samples: 500": "eval_samples: 500"}  # every held-out frame (the sample spec looks at 8)
    if pruned_model is not None:
        edits["seed: 123"] = f'seed: 123\npruned_model_path: "{pruned_model}"'
    return edited_default(arch.default_spec(), train=train_records, val=val_records, annotations=annotations,
                          total_steps=steps, batch=4, edits=edits)
