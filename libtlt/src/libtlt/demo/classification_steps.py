"""Demo steps of the classification workflow: tlt-train, tlt-evaluate, tlt-infer classification."""

from __future__ import annotations

import shutil
from pathlib import Path

from libtlt.demo.context import KEY, DemoContext, run_command
from libtlt.demo.data_steps import CLASSIFICATION_CLASSES
from libtlt.io.atomic import write_text

CLASSIFICATION_SPEC = """# tlt-train / tlt-evaluate classification (000 7.1) on the demo's sample data, trained from scratch.
# In this (prototxt) form unwritten augmentation fields are off, so random crop and colour are switched on here.
model_config {
  arch: "resnet"
  n_layers: %(layers)d
  use_batch_norm: true
  all_projections: true
  input_image_size: "3,%(size)d,%(size)d"
}
train_config {
  train_dataset_path: "%(root)s/train"
  val_dataset_path: "%(root)s/val"
  optimizer: "adam"
  batch_size_per_gpu: 32
  n_epochs: %(epochs)d
  checkpoint_interval: 3
  random_seed: 1
  label_smoothing: 0.0
  reg_config { type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }
  lr_config { scheduler: "cosine" learning_rate: 0.001 soft_start: 0.05 }
}
eval_config {
  eval_dataset_path: "%(root)s/test"
  model_path: "%(model)s"
  top_k: 1
  batch_size: 16
}
augment { enable_random_crop: true enable_color_augmentation: true mixup_alpha: 0.0 }
"""


def train_classification(ctx: DemoContext) -> None:
    root = Path(ctx.results["classification"].root).resolve()
    results = (ctx.outdir / "classification").resolve()
    shutil.rmtree(results, ignore_errors=True)  # a re-run trains again instead of resuming a finished run
    model = results / "weights" / f"resnet_{ctx.size.classification_epochs:03d}.tlt"
    spec = ctx.outdir / "specs" / "classification.txt"
    write_text(spec, CLASSIFICATION_SPEC % {"root": root, "epochs": ctx.size.classification_epochs, "model": model,
                                            "layers": ctx.size.classification_layers,
                                            "size": ctx.size.classification_input_size})
    run_command(["tlt-train", "classification", "-e", str(spec), "-r", str(results), "-k", KEY])
    ctx.results["classification_spec"] = spec
    ctx.results["classification_model"] = model
    ctx.summary.append(f"classification model: {model} (classmap: {results / 'classmap.json'}; "
                       f"log: {results / 'status.json'})")


def evaluate_classification(ctx: DemoContext) -> None:
    model = ctx.results["classification_model"]
    run_command(["tlt-evaluate", "classification", "-e", str(ctx.results["classification_spec"]),
                 "-k", KEY])
    ctx.summary.append(f"classification evaluation: {model.parent / 'evaluation.json'}")


def infer_classification(ctx: DemoContext) -> None:
    model = ctx.results["classification_model"]
    images = Path(ctx.results["classification"].root) / "test" / CLASSIFICATION_CLASSES[0]
    classmap = model.parent.parent / "classmap.json"
    run_command(["tlt-infer", "classification", "-m", str(model), "-d", str(images), "-k", KEY,
                 "-cm", str(classmap), "-b", "8"])
    ctx.summary.append(f"classification inference: {images / 'result.csv'}")
