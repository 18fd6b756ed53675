"""Deterministic, learnable sample datasets for tests, benchmarks and the demo.

``generate_detection_dataset`` writes a KITTI detection dataset (000 §6.2) of street-like frames
with cars, pedestrians and cyclists; ``generate_classification_dataset`` writes a classification
tree (000 §6.1) of shapes; ``generate_coco_dataset`` writes COCO instances (polygons) for instance segmenters. Classes differ by shape, never by colour; the same seed gives
byte-identical files. Command line: ``python -m libtlt.samples detection|classification OUT``.
"""

from __future__ import annotations

from libtlt.samples.classification import (
    CLASSIFICATION_CLASSES,
    ClassificationSample,
    generate_classification_dataset,
    render_classification_image,
)
from libtlt.samples.detection import (
    DETECTION_CLASSES,
    DetectionSample,
    FrameConfig,
    RenderedFrame,
    SampleObject,
    generate_detection_dataset,
    render_detection_frame,
    sequence_layout,
)
from libtlt.samples.instances import INSTANCE_CLASSES, CocoSample, generate_coco_dataset
from libtlt.samples.specs import kitti_convert_spec

__all__ = [
    "CLASSIFICATION_CLASSES",
    "DETECTION_CLASSES",
    "INSTANCE_CLASSES",
    "ClassificationSample",
    "CocoSample",
    "DetectionSample",
    "FrameConfig",
    "RenderedFrame",
    "SampleObject",
    "generate_classification_dataset",
    "generate_coco_dataset",
    "generate_detection_dataset",
    "kitti_convert_spec",
    "render_classification_image",
    "render_detection_frame",
    "sequence_layout",
]
