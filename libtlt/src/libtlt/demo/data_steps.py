"""Demo steps on data: generate the samples, preview them, tlt-augment, tlt-dataset-convert."""

from __future__ import annotations

import shutil
from pathlib import Path

from libtlt.demo.context import DemoContext, run_command
from libtlt.io.atomic import write_text
from libtlt.samples import generate_classification_dataset, generate_detection_dataset, kitti_convert_spec
from libtlt.samples.preview import classification_contact_sheet, detection_contact_sheet

DETECTION_SIZE = (480, 272)
CLASSIFICATION_CLASSES = ("circle", "triangle", "star")


def generate_detection_data(ctx: DemoContext) -> None:
    """Training frames, and held-out validation frames from another seed (so that no augmented copy of a
    validation frame is trained on)."""
    width, height = DETECTION_SIZE
    data = ctx.outdir / "data"
    sample = generate_detection_dataset(data / "detection", num_images=ctx.size.detection_frames, width=width,
                                        height=height, seed=ctx.seed, with_sequence_map=True)
    val = generate_detection_dataset(data / "detection_val", num_images=ctx.size.detection_val_frames, width=width,
                                     height=height, seed=ctx.seed + 1000)
    ctx.results["detection"] = sample
    ctx.results["detection_val"] = val
    counts = ", ".join(f"{name} {n}" for name, n in sample.object_counts.items())
    ctx.summary.append(f"detection dataset: {sample.root} ({len(sample.frame_ids)} frames {width}x{height}; "
                       f"objects: {counts}); validation: {val.root} ({len(val.frame_ids)} frames)")


def generate_classification_data(ctx: DemoContext) -> None:
    sample = generate_classification_dataset(ctx.outdir / "data" / "classification", classes=CLASSIFICATION_CLASSES,
                                             images_per_split=ctx.size.classification_splits, seed=ctx.seed)
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


def augment_detection_data(ctx: DemoContext) -> None:
    width, height = DETECTION_SIZE
    spec = ctx.outdir / "specs" / "augment.txt"
    write_text(spec, AUGMENT_SPEC % {"width": width, "height": height})
    source, target = ctx.results["detection"].root, ctx.outdir / "data" / "detection_augmented"
    run_command(["tlt-augment", "-d", str(source), "-a", str(spec), "-o", str(target), "-v"])
    ctx.results["augmented"] = target
    ctx.summary.append(f"augmented dataset: {target} (annotated copies in {target / 'images' / 'annotated'})")


def convert_to_tfrecords(ctx: DemoContext) -> None:
    """The original and augmented frames, merged into one KITTI folder (distinct ids), become the training
    records (both folds); the held-out frames the validation records (both folds too)."""
    merged = ctx.outdir / "data" / "detection_train"
    shutil.rmtree(merged, ignore_errors=True)
    for sub in ("images", "labels"):
        (merged / sub).mkdir(parents=True, exist_ok=True)
        for prefix, root in (("orig_", ctx.results["detection"].root), ("aug_", ctx.results["augmented"])):
            for item in (Path(root) / sub).iterdir():
                if item.is_file():
                    shutil.copyfile(item, merged / sub / f"{prefix}{item.name}")
    outputs = {}
    for name, root in (("kitti", merged), ("val", Path(ctx.results["detection_val"].root))):
        spec = ctx.outdir / "specs" / f"convert_{name}.txt"
        write_text(spec, kitti_convert_spec(root.resolve()))
        folder = ctx.outdir / "tfrecords" / name
        shutil.rmtree(folder, ignore_errors=True)
        run_command(["tlt-dataset-convert", "-d", str(spec), "-o", str(folder / name)])
        outputs[name] = folder
    ctx.results["tfrecords"] = outputs["kitti"]
    ctx.results["tfrecords_val"] = outputs["val"]
    ctx.results["detection_train"] = merged
    shards = sorted(p.name for p in outputs["kitti"].glob("kitti-fold-*"))
    ctx.summary.append(f"TFRecords: {outputs['kitti']} ({len(shards)} shards, e.g. {shards[0]}); validation: "
                       f"{outputs['val']}")
