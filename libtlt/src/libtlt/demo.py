"""``python -m libtlt.demo OUTDIR`` (``make demo``): the whole toolkit on small sample data.

The demo is a list of named steps (``STEPS``), run in order; each logs
``[INFO] libtlt.demo: step N/M: <name>``. Tools run as commands, as in a Makefile; later issues
append steps (train, evaluate, prune, export, ...);
a step reads what earlier steps left in ``DemoContext.results`` and adds its own. Re-running
overwrites every output (the sample generators are deterministic).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from libtlt.cli_options import run_tool, verbose_option
from libtlt.errors import TltError
from libtlt.io.atomic import write_text
from libtlt.log import get_logger
from libtlt.samples import generate_classification_dataset, generate_detection_dataset
from libtlt.samples.preview import classification_contact_sheet, detection_contact_sheet

logger = get_logger("libtlt.demo")

DETECTION_FRAMES = 40
DETECTION_SIZE = (480, 272)
CLASSIFICATION_CLASSES = ("circle", "triangle", "star")
CLASSIFICATION_SPLITS = {"train": 40, "val": 10, "test": 10}


@dataclass
class DemoContext:
    """Where the demo writes, and what each step produced (by name) for the steps after it."""

    outdir: Path
    seed: int = 0
    results: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DemoStep:
    name: str
    run: Callable[[DemoContext], None]


def generate_detection_data(ctx: DemoContext) -> None:
    width, height = DETECTION_SIZE
    sample = generate_detection_dataset(ctx.outdir / "data" / "detection", num_images=DETECTION_FRAMES, width=width,
                                        height=height, seed=ctx.seed, with_sequence_map=True)
    ctx.results["detection"] = sample
    counts = ", ".join(f"{name} {n}" for name, n in sample.object_counts.items())
    ctx.summary.append(f"detection dataset: {sample.root} ({len(sample.frame_ids)} frames {width}x{height}; "
                       f"objects: {counts})")


def generate_classification_data(ctx: DemoContext) -> None:
    sample = generate_classification_dataset(ctx.outdir / "data" / "classification", classes=CLASSIFICATION_CLASSES,
                                             images_per_split=CLASSIFICATION_SPLITS, seed=ctx.seed)
    ctx.results["classification"] = sample
    per_split = "; ".join(f"{split}: " + ", ".join(f"{name} {n}" for name, n in counts.items())
                          for split, counts in sample.counts.items())
    ctx.summary.append(f"classification dataset: {sample.root} ({per_split})")


def preview_detection(ctx: DemoContext) -> None:
    sample = ctx.results["detection"]
    path = detection_contact_sheet(sample.image_dir, sample.label_dir, ctx.outdir / "preview_detection.png",
                                   classes=sample.classes, image_extension="png", count=6, columns=2)
    ctx.summary.append(f"detection preview: {path}")


def preview_classification(ctx: DemoContext) -> None:
    sample = ctx.results["classification"]
    path = classification_contact_sheet(sample.root, "train", sample.classes,
                                        ctx.outdir / "preview_classification.png", per_class=8)
    ctx.summary.append(f"classification preview: {path}")


AUGMENT_SPEC = """# The manual's sample augmentation (000 ch. 5) at the sample data's size, plus a horizontal flip.
spatial_config {
  rotation_config { angle: 5.0 units: "degrees" }
  shear_config { shear_ratio_x: 0.3 }
  flip_config { flip_horizontal: true }
  translation_config { translate_x: 8 }
}
color_config {
  hue_saturation_config { hue_rotation_angle: 25.0 saturation_shift: 1.0 }
}
dataset_config { image_path: "images" label_path: "labels" }
output_image_width: %(width)d
output_image_height: %(height)d
output_image_channel: 3
image_extension: ".png"
"""

CONVERT_SPEC = """# tlt-dataset-convert (000 6.3): an 80/20 random split of the original and augmented frames.
kitti_config {
  root_directory_path: "%(root)s"
  image_dir_name: "images"
  label_dir_name: "labels"
  image_extension: ".png"
  partition_mode: "random"
  num_partitions: 2
  val_split: 20
  num_shards: 2
}
image_directory_path: "%(root)s"
"""


def run_command(args: list[str]) -> None:
    """Run an installed tlt tool the way a Makefile would: by its command name, in a child process."""
    tool = Path(sys.executable).parent / args[0]
    executable = str(tool) if tool.exists() else shutil.which(args[0])
    if executable is None:
        raise TltError(f"{args[0]} is not installed (run `make install`)")
    logger.info("$ %s", " ".join(args))
    result = subprocess.run([executable, *args[1:]], check=False)
    if result.returncode != 0:
        raise TltError(f"{args[0]} failed with exit status {result.returncode}")


def augment_detection_data(ctx: DemoContext) -> None:
    width, height = DETECTION_SIZE
    spec = ctx.outdir / "specs" / "augment.txt"
    write_text(spec, AUGMENT_SPEC % {"width": width, "height": height})
    source, target = ctx.results["detection"].root, ctx.outdir / "data" / "detection_augmented"
    run_command(["tlt-augment", "-d", str(source), "-a", str(spec), "-o", str(target), "-v"])
    ctx.results["augmented"] = target
    ctx.summary.append(f"augmented dataset: {target} (annotated copies in {target / 'images' / 'annotated'})")


def convert_to_tfrecords(ctx: DemoContext) -> None:
    # Merge the original and augmented frames into one KITTI folder (distinct ids), then convert it.
    merged = ctx.outdir / "data" / "detection_train"
    for sub in ("images", "labels"):
        (merged / sub).mkdir(parents=True, exist_ok=True)
        for prefix, root in (("orig_", ctx.results["detection"].root), ("aug_", ctx.results["augmented"])):
            for item in (Path(root) / sub).iterdir():
                if item.is_file():
                    shutil.copyfile(item, merged / sub / f"{prefix}{item.name}")
    spec = ctx.outdir / "specs" / "convert.txt"
    write_text(spec, CONVERT_SPEC % {"root": merged.resolve()})
    output = ctx.outdir / "tfrecords" / "kitti"
    run_command(["tlt-dataset-convert", "-d", str(spec), "-o", str(output)])
    shards = sorted(p.name for p in output.parent.glob("kitti-fold-*"))
    ctx.results["tfrecords"] = output
    ctx.summary.append(f"TFRecords: {output.parent} ({len(shards)} shards, e.g. {shards[0]})")


CLASSIFICATION_KEY = "tlt_demo_key"
CLASSIFICATION_EPOCHS = 6
CLASSIFICATION_SPEC = """# tlt-train / tlt-evaluate classification (000 7.1) on the demo's sample data: a small, quick run.
model_config {
  arch: "resnet"
  n_layers: 10
  use_batch_norm: true
  all_projections: true
  input_image_size: "3,32,32"
}
train_config {
  train_dataset_path: "%(root)s/train"
  val_dataset_path: "%(root)s/val"
  optimizer: "adam"
  batch_size_per_gpu: 16
  n_epochs: %(epochs)d
  checkpoint_interval: 3
  random_seed: 1
  label_smoothing: 0.0
  reg_config { type: "L2" scope: "Conv2D,Dense" weight_decay: 0.00005 }
  lr_config { scheduler: "cosine" learning_rate: 0.002 soft_start: 0.1 }
}
eval_config {
  eval_dataset_path: "%(root)s/test"
  model_path: "%(model)s"
  top_k: 1
  batch_size: 16
}
augment { mixup_alpha: 0.0 }
"""


def train_classification(ctx: DemoContext) -> None:
    root = Path(ctx.results["classification"].root).resolve()
    results = (ctx.outdir / "classification").resolve()
    shutil.rmtree(results, ignore_errors=True)  # a re-run trains again instead of resuming a finished run
    model = results / "weights" / f"resnet_{CLASSIFICATION_EPOCHS:03d}.tlt"
    spec = ctx.outdir / "specs" / "classification.txt"
    write_text(spec, CLASSIFICATION_SPEC % {"root": root, "epochs": CLASSIFICATION_EPOCHS, "model": model})
    run_command(["tlt-train", "classification", "-e", str(spec), "-r", str(results), "-k", CLASSIFICATION_KEY])
    ctx.results["classification_spec"] = spec
    ctx.results["classification_model"] = model
    ctx.summary.append(f"classification model: {model} (classmap: {results / 'classmap.json'}; "
                       f"log: {results / 'status.json'})")


def evaluate_classification(ctx: DemoContext) -> None:
    model = ctx.results["classification_model"]
    run_command(["tlt-evaluate", "classification", "-e", str(ctx.results["classification_spec"]),
                 "-k", CLASSIFICATION_KEY])
    ctx.summary.append(f"classification evaluation: {model.parent / 'evaluation.json'}")


def infer_classification(ctx: DemoContext) -> None:
    model = ctx.results["classification_model"]
    images = Path(ctx.results["classification"].root) / "test" / CLASSIFICATION_CLASSES[0]
    classmap = model.parent.parent / "classmap.json"
    run_command(["tlt-infer", "classification", "-m", str(model), "-d", str(images), "-k", CLASSIFICATION_KEY,
                 "-cm", str(classmap), "-b", "8"])
    ctx.summary.append(f"classification inference: {images / 'result.csv'}")


STEPS: list[DemoStep] = [
    DemoStep("generate detection sample data", generate_detection_data),
    DemoStep("generate classification sample data", generate_classification_data),
    DemoStep("preview detection labels", preview_detection),
    DemoStep("preview classification images", preview_classification),
    DemoStep("augment the detection data (tlt-augment)", augment_detection_data),
    DemoStep("convert to TFRecords (tlt-dataset-convert)", convert_to_tfrecords),
    DemoStep("train a classifier (tlt-train classification)", train_classification),
    DemoStep("evaluate the classifier (tlt-evaluate classification)", evaluate_classification),
    DemoStep("classify the test images (tlt-infer classification)", infer_classification),
]


def run_demo(outdir: str | Path, steps: list[DemoStep] | None = None, seed: int = 0) -> DemoContext:
    """Run ``steps`` (default ``STEPS``) in order into ``outdir`` and print a summary."""
    steps = STEPS if steps is None else steps
    ctx = DemoContext(outdir=Path(outdir), seed=seed)
    ctx.outdir.mkdir(parents=True, exist_ok=True)
    for number, step in enumerate(steps, start=1):
        logger.info("step %d/%d: %s", number, len(steps), step.name)
        started = time.perf_counter()
        step.run(ctx)
        logger.debug("step %d/%d done in %.1f s", number, len(steps), time.perf_counter() - started)
    click.echo("Demo summary:")
    for line in ctx.summary:
        click.echo(f"  {line}")
    return ctx


@click.command(name="libtlt.demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
@verbose_option
def main(outdir: str, seed: int, verbose: bool) -> None:
    """Run the demo pipeline on small sample data, writing everything under OUTDIR."""
    run_tool(lambda: run_demo(outdir, seed=seed), verbose=verbose)


if __name__ == "__main__":
    main()
