"""``python -m libtlt.samples detection|classification|instances OUT``: write a sample dataset."""

from __future__ import annotations

import click

from libtlt.cli_options import run_tool, verbose_option
from libtlt.errors import UnsupportedError
from libtlt.samples.classification import CLASSIFICATION_CLASSES, generate_classification_dataset
from libtlt.samples.detection import DETECTION_CLASSES, PNG_COMPRESS_LEVEL, generate_detection_dataset
from libtlt.samples.instances import INSTANCE_CLASSES, generate_coco_dataset


def _class_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Write deterministic sample datasets (KITTI detection, classification folders, COCO instances)."""


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--num-images", "-n", type=int, default=20, show_default=True)
@click.option("--width", type=int, default=480, show_default=True)
@click.option("--height", type=int, default=272, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ext", "image_extension", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
@click.option("--classes", default=",".join(DETECTION_CLASSES), show_default=True, help="Comma-separated names.")
@click.option("--sequence-map", is_flag=True, help="Also write kitti_seq_to_map.json.")
@click.option("--min-objects", type=int, default=2, show_default=True)
@click.option("--max-objects", type=int, default=8, show_default=True)
@click.option("--workers", "-j", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--png-compress-level", type=int, default=PNG_COMPRESS_LEVEL, show_default=True,
              help="zlib level of PNG files (1 is fastest; encoding dominates the run time).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@verbose_option
def detection(out: str, num_images: int, width: int, height: int, seed: int, image_extension: str, classes: str,
              sequence_map: bool, min_objects: int, max_objects: int, workers: int, png_compress_level: int,
              no_progress: bool, verbose: bool) -> None:
    """Write a KITTI detection dataset to OUT (images/, labels/)."""
    run_tool(lambda: generate_detection_dataset(
        out, num_images=num_images, width=width, height=height, seed=seed, image_extension=image_extension,
        classes=_class_list(classes), with_sequence_map=sequence_map, objects_per_image=(min_objects, max_objects),
        workers=workers, progress=not no_progress, png_compress_level=png_compress_level,
    ), verbose=verbose)


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--classes", default=",".join(CLASSIFICATION_CLASSES), show_default=True,
              help="Comma-separated names (circle, triangle, star, square, cross, ring; others take unused shapes).")
@click.option("--train", type=int, default=40, show_default=True, help="Training images per class.")
@click.option("--val", type=int, default=10, show_default=True, help="Validation images per class.")
@click.option("--test", type=int, default=10, show_default=True, help="Test images per class.")
@click.option("--width", type=int, default=64, show_default=True)
@click.option("--height", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ext", "image_extension", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True)
@verbose_option
def classification(out: str, classes: str, train: int, val: int, test: int, width: int, height: int, seed: int,
                   image_extension: str, verbose: bool) -> None:
    """Write a classification dataset to OUT (<split>/<class>/<n>.<ext>)."""

    def body() -> None:
        splits = {name: count for name, count in (("train", train), ("val", val), ("test", test)) if count}
        if not splits:
            raise UnsupportedError("every split is empty (--train, --val and --test are all 0)")
        generate_classification_dataset(out, classes=_class_list(classes), images_per_split=splits,
                                        size=(width, height), seed=seed, image_extension=image_extension)

    run_tool(body, verbose=verbose)


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--classes", default=",".join(INSTANCE_CLASSES), show_default=True,
              help="Comma-separated shapes (circle, triangle, square).")
@click.option("--train", type=int, default=64, show_default=True, help="Training images.")
@click.option("--val", type=int, default=16, show_default=True, help="Validation images.")
@click.option("--width", type=int, default=96, show_default=True)
@click.option("--height", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@verbose_option
def instances(out: str, classes: str, train: int, val: int, width: int, height: int, seed: int,
              verbose: bool) -> None:
    """Write a COCO instance-segmentation dataset to OUT (train/, val/, annotations/instances_<split>.json)."""

    def body() -> None:
        first_id = 1
        for split, count, split_seed in (("train", train, seed), ("val", val, seed + 1000)):
            if count:
                generate_coco_dataset(out, split=split, num_images=count, width=width, height=height,
                                      classes=_class_list(classes), seed=split_seed, first_image_id=first_id)
                first_id += count

    run_tool(body, verbose=verbose)


if __name__ == "__main__":
    main()
