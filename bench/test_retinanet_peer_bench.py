"""RetinaNet side by side with keras-hub's RetinaNet (issue 15; not part of ``make test``; peers from bench/peers.txt).

Both on the same generated KITTI frames at 384×256 (``RETINANET_PEER_FRAMES`` training frames, seed 11; 100
held-out frames, seed 1011), batch 8, the same ResNet10 shape (basic blocks [1, 1, 1, 1]: TLT's template for ours,
``keras_hub.models.ResNetBackbone`` for the peer), FPN levels P3–P7 of 256 channels, one 3×3 conv of 256 in each
subnet, three anchors per cell (ratios 1, 2, 0.5 with one scale per level), focal loss α 0.25 γ 2 and a smooth-L1
box loss. Ours is the RetinaNet demo spec with ``feature_size: 256`` so that the heads are the peer's size.

* training images/s: ``tlt-train``'s input pipeline (records → decode → augmentation → targets) feeding a fit of our
  model, against the peer's ``fit`` on one in-memory batch (its targets are computed inside its train step; it gets
  no decoding or augmentation, so the comparison favours the peer); our bare fit on one in-memory batch too. Best of
  two alternating 30-step fits per side.
* inference images/s, on the trained models of the mAP test (so that NMS sees trained scores): what each runs on a
  Keras model — ours ``predict_on_batch`` + the NumPy decoding and NMS of tlt-infer, the peer's network + decoding +
  NMS as one traced function; and ours deployed: the FP32 ``.etlt`` (decoder and NMS in the ONNX graph) in
  onnxruntime. Best of five. Floating-point operations per image are reported for both networks (TLT's
  ResNet keeps stage 4 at stride 16 and adds ``expand_conv1`` for C5, so ours does more work than the peer's).
* mAP@0.5 on the held-out frames after the same number of steps (``RETINANET_PEER_EPOCHS`` × frames / 8), computed by
  the same evaluator (the spec's eval_config) from each model's detections: ours trained by the installed
  ``tlt-train`` (with the spec's augmentation), the peer by ``fit`` on the same frames (no augmentation; Adam with
  the same warm-up and peak learning rate, cosine decay; NMS 0.5, confidence ≥ 0.01, 200 per image).

Goal: ours ≥ 1.0× the peer for training and inference images/s.

Measured 2026-12-05 (2 cores; the mAP run shared the machine with other work): mAP ours 0.7834, peer 0.2981 after 480
steps (ours 987 s of tlt-train, peer 890 s of fit). Training (fresh models, alone): ours 4.34 images/s through
tlt-train's pipeline, 4.90 on one in-memory batch, peer 5.68: 0.77 / 0.86 (not met). GFLOPs per image: ours 13.93,
peer 11.11 (TLT's ResNet keeps stage 4 at stride 16), so per operation ours is 1.08×. Inference: ours 8.43 images/s
(Keras + NumPy NMS), 15.62 (FP32 .etlt in onnxruntime), peer 18.43: 0.46 / 0.85 (not met). docs/retinanet.md.

The same backbone (2026-12-06): keras-hub's RetinaNet also runs on ours (``peer_same_backbone``: TLT's ResNet10 template
and our ``expand_conv1`` as its image encoder, 13.54 GFLOPs per image against our 13.93), so that the comparison is
of the detection parts, as the issue asks ("of the same backbone and input size"). One run with 160 frames and 3
epochs (``RETINANET_PEER_FRAMES=160 RETINANET_PEER_EPOCHS=3``), on 2 cores shared with two other jobs (absolute
numbers low, ratios from interleaved fits): training ours 1.99 images/s through tlt-train's pipeline, 2.05 in
memory, the same-backbone peer 1.94: **1.03 / 1.06 (met)**; against keras-hub's own ResNet (2.31) 0.86 / 0.89 as
before. Inference after only 60 steps (scores still near the prior, so both NMS see thousands of candidates; not
representative): ours Keras + NumPy NMS 4.04, network alone 6.97, FP32 .etlt 4.83, same-backbone peer 4.75: 0.85 /
1.02. The NumPy NMS of tlt-infer is 8.7× faster since this session (blocked suppression, same rows); the inference
ratios on trained models (the 480-step run) are still to be re-measured.

Trained models (2026-12-06, alone on 2 cores, ``RETINANET_PEER_FRAMES=240 RETINANET_PEER_EPOCHS=8``, 240 steps): mAP
ours 0.6831 (458 s of tlt-train), keras-hub peer 0.1921 (430 s), same-backbone peer 0.0003 (572 s: it has not started
to detect, so its NMS still sees untrained scores). Inference images/s: ours Keras + NumPy decoding/NMS 8.65, network
alone 15.55, FP32 .etlt 14.99; peer 18.06, same-backbone peer 14.62: against the same backbone **FP32 .etlt 1.03×
(met)**, Keras path 0.59× (not met: decoding + NMS still take 44 % of it); against keras-hub's lighter ResNet 0.83 / 0.48.
After the Keras path's NMS moved into onnxruntime (2026-12-06, the export's own tail, ``run_tail``; the same 240-step
run, 2 cores with niced work beside it): mAP ours 0.6746 (473 s), keras-hub peer 0.1921, same-backbone peer 0.0003.
Inference images/s: ours Keras path 13.75, network alone 14.90, FP32 .etlt 15.03; peer 16.50, same-backbone peer
13.49: against the same backbone **Keras path 1.02×, FP32 .etlt 1.11× (both met)**; against keras-hub's lighter
ResNet 0.83 / 0.91.
The peers' fits above drew one batch order for all epochs (Keras 3.15's ``fit(x, y, shuffle=True)`` does after
``keras.utils.set_random_seed``: found 2026-12-06, see ``libtlt.testing.reshuffled_batches``); they now get a new
order every epoch, as ours does. Not re-measured since.
Run: make bench (a fresh checkout needs ``make .venv/.bench-peers``), or
.venv/bin/python -m pytest bench/test_retinanet_peer_bench.py --benchmark-only -q -s
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libtlt.samples import generate_detection_dataset
from libtlt.testing import reshuffled_batches

BIN = Path(sys.executable).parent
KEY = "bench_key"
WIDTH, HEIGHT, BATCH = 384, 256, 8
FRAMES = int(os.environ.get("RETINANET_PEER_FRAMES", "320"))
EPOCHS = int(os.environ.get("RETINANET_PEER_EPOCHS", "12"))
SPEED_STEPS = int(os.environ.get("RETINANET_PEER_SPEED_STEPS", "30"))
#: What the mAP test leaves for the speed test: the trained models (and our .tlt's path).
TRAINED: dict[str, Any] = {}
MEANS_BGR = np.array([103.939, 116.779, 123.68], np.float32)


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from libtlt.registry import get_architecture
    from libtlt.testing import convert_kitti

    base = tmp_path_factory.mktemp("retinanet_peer")
    for name, frames, seed in (("train", FRAMES, 11), ("val", 100, 1011)):
        generate_detection_dataset(base / name, num_images=frames, width=WIDTH, height=HEIGHT, seed=seed)
        convert_kitti(base / name, base / name / "tfrecords")
    arch = get_architecture("retinanet")
    text = str(arch.demo_spec(train_records=f"{base}/train/tfrecords/*", train_images=base / "train",
                              val_records=f"{base}/val/tfrecords/*", val_images=base / "val", width=WIDTH,
                              height=HEIGHT, epochs=EPOCHS))
    assert "feature_size: 128" in text
    path = base / "spec.txt"
    path.write_text(text.replace("feature_size: 128", "feature_size: 256"), encoding="utf-8")
    return path


def load(spec_path: Path) -> tuple[Any, Any]:
    from libtlt.registry import get_architecture
    from libtlt.spec import load_spec

    arch = get_architecture("retinanet")
    return arch, load_spec(spec_path, arch.spec_message())


def to_peer_images(images: np.ndarray) -> np.ndarray:
    """Our network input (BGR − means, NCHW) → the peer's (RGB in [0, 1], NHWC)."""
    bgr = images + MEANS_BGR[None, :, None, None]
    return (bgr[:, ::-1].transpose(0, 2, 3, 1) / 255.0).astype(np.float32)


def frames(arch: Any, spec: Any, *, training: bool) -> tuple[np.ndarray, list[Any]]:
    """The training (or held-out) frames as our network sees them, with ground truth in input pixels."""
    images, truths = [], []
    for batch, truth in arch.evaluation_batches(spec, use_training_set=training, batch_size=BATCH):
        images.append(batch)
        truths.extend(truth)
    stacked = np.concatenate(images)
    count = FRAMES if training else len(stacked)
    return stacked[:count], truths[:count]


def padded_targets(truths: list[Any]) -> dict[str, np.ndarray]:
    most = max(1, max(len(t.class_ids) for t in truths))
    boxes = np.zeros((len(truths), most, 4), np.float32)
    labels = np.full((len(truths), most), -1, np.float32)
    for row, truth in enumerate(truths):
        boxes[row, :len(truth.class_ids)] = truth.boxes
        labels[row, :len(truth.class_ids)] = truth.class_ids
    return {"boxes": boxes, "labels": labels}


def our_backbone_as_image_encoder() -> Any:
    """Our backbone as a keras-hub image encoder (``inputs`` + ``pyramid_outputs``), so that the peer runs the same
    backbone as ours: the peer's RGB [0, 1] NHWC input turned into ours (BGR − means, the 0–255 scale), TLT's ResNet10
    detector template (stage 4 at stride 16) for P3 and P4, and our ``expand_conv1`` (3×3, stride 2, 256, ReLU) as
    P5 — the layers our RetinaNet has before its FPN."""
    import keras

    from libtlt.backbones import build_backbone

    image = keras.Input((HEIGHT, WIDTH, 3), name="peer_image")
    means = keras.ops.convert_to_tensor(MEANS_BGR.reshape(1, 1, 1, 3))
    ours = keras.layers.Lambda(lambda x: keras.ops.flip(x, axis=-1) * 255.0 - means, name="to_our_input")(image)
    levels = build_backbone("resnet10", ours, tlt_template=True)
    c5 = keras.layers.Conv2D(256, 3, strides=2, padding="same", kernel_initializer="he_normal",
                             name="expand_conv1")(levels["P4"])
    c5 = keras.layers.ReLU(name="expand_conv1_relu")(c5)
    encoder = keras.Model(image, {"P3": levels["P3"], "P4": levels["P4"], "P5": c5}, name="tlt_resnet10_encoder")
    encoder.pyramid_outputs = {"P3": levels["P3"], "P4": levels["P4"], "P5": c5}
    return encoder


def peer_model(num_classes: int, total_steps: int, *, same_backbone: bool = False) -> Any:
    """keras-hub's RetinaNet on its own ResNet of our block counts, or (``same_backbone``) on ours."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = our_backbone_as_image_encoder() if same_backbone else keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(HEIGHT, WIDTH, 3))
    retina_backbone = keras_hub.models.RetinaNetBackbone(image_encoder=backbone, min_level=3, max_level=7,
                                                         use_p5=False, image_shape=(HEIGHT, WIDTH, 3))
    anchors = keras_hub.layers.AnchorGenerator("xyxy", min_level=3, max_level=7, num_scales=1,
                                               aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4)
    decoder = keras_hub.layers.NonMaxSuppression(bounding_box_format="xyxy", from_logits=True, iou_threshold=0.5,
                                                 confidence_threshold=0.01, max_detections=200)
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=retina_backbone, anchor_generator=anchors, num_classes=num_classes, bounding_box_format="xyxy",
        pre_logits_num_conv_layers=1, prediction_decoder=decoder)
    warmup = max(1, int(0.1 * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(1e-5, total_steps - warmup, alpha=1e-2, warmup_target=1e-3,
                                                      warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.Adam(schedule, global_clipnorm=10.0))
    return model


def gflops(model: Any, image_shape: tuple[int, ...]) -> float:
    """Floating-point operations of one image through the network (TensorFlow's profiler on the frozen graph), in
    billions: the same count for both models whatever their layer structure."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    traced = tf.function(lambda images: model(images, training=False))
    frozen = convert_variables_to_constants_v2(traced.get_concrete_function(tf.TensorSpec((1, *image_shape))))
    profiler = tf.compat.v1.profiler
    info = profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                            options=profiler.ProfileOptionBuilder(profiler.ProfileOptionBuilder.float_operation())
                            .with_empty_output().build())
    return round(info.total_float_ops / 1e9, 2)


def peer_predictor(model: Any) -> Any:
    """The peer's network, decoding and NMS as one traced function (its ``predict_on_batch`` cannot unpack an
    images-only batch in keras-hub 0.32)."""
    import tensorflow as tf

    return tf.function(lambda images: model.decode_predictions(model(images, training=False), images))


def best_fit_seconds(fits: dict[str, Any]) -> dict[str, float]:
    """Each side fitted twice, alternating (tf.data iterators keep prefetching for a while after a fit)."""
    seconds = dict.fromkeys(fits, math.inf)
    for _ in range(2):
        for name, fit in fits.items():
            fit(3)  # trace and warm up
            started = time.perf_counter()
            fit(SPEED_STEPS)
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    return seconds


def fastest(call: Any, rounds: int = 5) -> float:
    call()
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def test_map_after_the_same_steps(benchmark: Any, spec_path: Path, tmp_path: Path) -> None:
    from libtlt.layers.ssd_family import evaluate_model
    from libtlt.runtime.keras_model import load_tlt_model

    arch, spec = load(spec_path)
    classes = arch.class_names(spec)
    steps = EPOCHS * math.ceil(FRAMES / BATCH)
    numbers: dict[str, Any] = {"frames": FRAMES, "epochs": EPOCHS, "steps": steps}
    results = tmp_path / "results"
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "tlt-train"), "retinanet", "-e", str(spec_path), "-r", str(results), "-n", "m"],
                          capture_output=True, text=True, env={**os.environ, "TLT_KEY": KEY}, timeout=7200)
    assert done.returncode == 0, done.stderr[-3000:]
    numbers["ours_train_seconds"] = round(time.perf_counter() - started, 1)
    model, _ = load_tlt_model(results / "weights" / "m.tlt", KEY, architecture="retinanet")
    TRAINED.update(ours=model, ours_path=results / "weights" / "m.tlt")
    numbers["ours_mAP"] = round(float(evaluate_model(arch, model, spec).mean_average_precision), 4)

    images, truths = frames(arch, spec, training=True)
    for name, same_backbone in (("peer", False), ("peer_same_backbone", True)):
        peer = peer_model(len(classes), steps, same_backbone=same_backbone)
        started = time.perf_counter()

        def fit(model: Any = peer) -> None:
            # a new order every epoch (Keras's own shuffle=True repeats one order after set_random_seed)
            model.fit(reshuffled_batches(to_peer_images(images), padded_targets(truths), batch_size=BATCH, seed=0),
                      epochs=EPOCHS, verbose=0)

        if same_backbone:
            fit()
        else:
            benchmark.pedantic(fit, rounds=1, iterations=1)
        numbers[f"{name}_train_seconds"] = round(time.perf_counter() - started, 1)
        evaluator, predict = arch.evaluator(spec, classes), peer_predictor(peer)
        for batch, batch_truths in arch.evaluation_batches(spec, batch_size=BATCH):
            found = {k: np.asarray(v) for k, v in predict(to_peer_images(batch)).items()}
            for row, truth in enumerate(batch_truths):
                count = int(found["num_detections"][row])
                evaluator.add_image(np.asarray(found["boxes"][row, :count]),
                                    np.asarray(found["confidence"][row, :count]),
                                    np.asarray(found["labels"][row, :count]).astype(int), truth.boxes, truth.class_ids)
        TRAINED[name] = peer
        numbers[f"{name}_mAP"] = round(float(evaluator.result().mean_average_precision), 4)
    benchmark.extra_info.update(numbers)
    print(f"\nretinanet vs keras-hub after {steps} steps: {json.dumps(numbers)}")


def test_training_speed_against_keras_hub(benchmark: Any, spec_path: Path) -> None:
    """Fresh models (a step costs the same whatever the weights): runs on its own with ``-k training_speed``."""
    import keras
    import tensorflow as tf

    arch, spec = load(spec_path)
    train_images, train_truths = frames(arch, spec, training=True)
    ours = arch.build(spec)
    ours.compile(optimizer=keras.optimizers.Adam(1e-4), loss=arch.loss(spec))
    peer = peer_model(len(arch.class_names(spec)), 1000)
    same = peer_model(len(arch.class_names(spec)), 1000, same_backbone=True)
    pipeline = arch.training_data(spec, batch_size=BATCH, seed=0).train
    one_batch = tf.data.Dataset.from_tensors(next(iter(pipeline))).repeat()
    peer_batch = tf.data.Dataset.from_tensors(
        (to_peer_images(train_images[:BATCH]), padded_targets(train_truths[:BATCH]))).repeat()
    seconds = best_fit_seconds({
        "ours_pipeline": lambda steps: ours.fit(pipeline, steps_per_epoch=steps, epochs=1, verbose=0),
        "ours_in_memory": lambda steps: ours.fit(one_batch, steps_per_epoch=steps, epochs=1, verbose=0),
        "peer_in_memory": lambda steps: peer.fit(peer_batch, steps_per_epoch=steps, epochs=1, verbose=0),
        "peer_same_backbone_in_memory": lambda steps: same.fit(peer_batch, steps_per_epoch=steps, epochs=1,
                                                               verbose=0)})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    numbers = {
        "params": {"ours": ours.count_params(), "peer": peer.count_params(), "peer_same_backbone": same.count_params()},
        "gflops_per_image": {"ours": gflops(ours, (3, HEIGHT, WIDTH)), "peer": gflops(peer, (HEIGHT, WIDTH, 3)),
                             "peer_same_backbone": gflops(same, (HEIGHT, WIDTH, 3))},
        "training_images_per_s": {k: round(SPEED_STEPS * BATCH / v, 2) for k, v in seconds.items()},
        "training_ratio_pipeline_to_peer": round(seconds["peer_in_memory"] / seconds["ours_pipeline"], 2),
        "training_ratio_in_memory": round(seconds["peer_in_memory"] / seconds["ours_in_memory"], 2),
        "training_ratio_pipeline_to_same_backbone_peer": round(
            seconds["peer_same_backbone_in_memory"] / seconds["ours_pipeline"], 2),
        "training_ratio_in_memory_same_backbone": round(
            seconds["peer_same_backbone_in_memory"] / seconds["ours_in_memory"], 2)}
    numbers["goal_met"] = bool(numbers["training_ratio_pipeline_to_same_backbone_peer"] >= 1.0)
    benchmark.extra_info.update(numbers)
    print(f"\nretinanet vs keras-hub training, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")


def test_inference_speed_against_keras_hub(benchmark: Any, spec_path: Path, tmp_path: Path) -> None:
    """On the models the mAP test trained (NMS then sees a trained network's scores)."""
    import onnxruntime as ort

    from libtlt.io.modelfile import load_model_file

    if "peer" not in TRAINED:
        pytest.skip("needs test_map_after_the_same_steps first")
    arch, spec = load(spec_path)
    train_images, _ = frames(arch, spec, training=True)
    ours, peer = TRAINED["ours"], TRAINED["peer"]
    detect, names = arch.detector(spec), arch.export_outputs(spec)
    batch = train_images[:BATCH]
    peer_input = to_peer_images(batch)

    def ours_inference() -> Any:
        return detect(dict(zip(names, ours.predict_on_batch(batch), strict=True)))

    peer_predict = peer_predictor(peer)
    same_predict = peer_predictor(TRAINED["peer_same_backbone"])
    etlt = tmp_path / "fp32.etlt"
    subprocess.run([str(BIN / "tlt-export"), "retinanet", "-m", str(TRAINED["ours_path"]), "-e", str(spec_path),
                    "-o", str(etlt), "-k", KEY], check=True, capture_output=True, timeout=1800)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    engine = ort.InferenceSession(load_model_file(etlt, KEY).files["model.onnx"], options,
                                  providers=["CPUExecutionProvider"])
    feed = {engine.get_inputs()[0].name: batch}
    infer = {"ours": fastest(ours_inference), "ours_onnx_fp32_with_nms": fastest(lambda: engine.run(None, feed)),
             "ours_network_only": fastest(lambda: ours.predict_on_batch(batch)),
             "peer": fastest(lambda: peer_predict(peer_input)),
             "peer_same_backbone": fastest(lambda: same_predict(peer_input))}
    benchmark.pedantic(ours_inference, rounds=1, iterations=1)
    numbers = {"inference_images_per_s": {k: round(BATCH / v, 2) for k, v in infer.items()},
               "inference_ratio": round(infer["peer"] / infer["ours"], 2),
               "inference_ratio_onnx": round(infer["peer"] / infer["ours_onnx_fp32_with_nms"], 2),
               "inference_ratio_same_backbone": round(infer["peer_same_backbone"] / infer["ours"], 2),
               "inference_ratio_onnx_same_backbone": round(
                   infer["peer_same_backbone"] / infer["ours_onnx_fp32_with_nms"], 2)}
    numbers["goal_met"] = bool(numbers["inference_ratio_same_backbone"] >= 1.0)
    benchmark.extra_info.update(numbers)
    print(f"\nretinanet vs keras-hub inference, resnet10 {WIDTH}x{HEIGHT} batch {BATCH}: {json.dumps(numbers)}")
