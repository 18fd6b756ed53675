"""tlt-infer command line: a parser plus one call into the tool's logic.

``tlt-infer ARCH [OPTIONS]``: everything after ARCH is parsed by the command of the architecture's task type
(``tlt-infer classification -h`` shows its options); a box detector's command adds the architecture's own
options (``inference_options``). Which names exist, and which are not implemented yet, comes from the
architecture registry: this tool holds no list of architectures.
"""

from __future__ import annotations

from typing import Any

import click

from libtlt.cli_options import architecture_tool, framework_option, key_option, run_tool, verbose_option
from libtlt.registry import BOX_DETECTOR, CLASSIFIER, INSTANCE_SEGMENTER
from tlt_infer import __version__


@click.command(name="tlt-infer classifier", context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_obj
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="The model: .tlt, .etlt or engine.")
@click.option("-i", "--image", type=click.Path(), default=None, help="A single image file for inference.")
@click.option("-d", "--image_dir", type=click.Path(), default=None,
              help="A directory of images; result.csv is written into it.")
@click.option("-b", "--batch_size", type=int, default=1, show_default=True, help="Inference batch size.")
@key_option(required=False)
@click.option("-cm", "--class_map", required=True, type=click.Path(dir_okay=False),
              help="The classmap.json written by training (class name → index).")
@framework_option
@verbose_option
def classifier(arch: str, model: str, image: str | None, image_dir: str | None, batch_size: int, key: str | None,
                   class_map: str, framework: str | None, verbose: bool) -> None:
    """Classify one image (-i) or every image of a directory (-d)."""

    def body() -> None:
        from tlt_infer.classifier import infer_classifier

        infer_classifier(arch, model, key, class_map, image=image, image_dir=image_dir, batch_size=batch_size,
                         framework=framework)

    run_tool(body, verbose=verbose)


def box_detector(architecture: Any) -> click.Command:
    """The box detectors' command: ``-e -i -o -k`` plus the architecture's own options."""

    def run(inference_spec: str, inference_input: str | None, inference_output: str | None, key: str | None,
            verbose: bool, out_label_file: str | None = None, **options: Any) -> None:
        def body() -> None:
            from tlt_infer.box_detector import infer_box_detector

            infer_box_detector(architecture.name, inference_spec, inference_input, inference_output, key,
                               out_label_file=out_label_file, **options)

        run_tool(body, verbose=verbose)

    command = click.command(name=f"tlt-infer {architecture.name}",
                            context_settings={"help_option_names": ["-h", "--help"]},
                            help="Detect objects: annotated images and KITTI labels with confidences"
                                 + (", and instance masks (masks/)." if architecture.task == INSTANCE_SEGMENTER
                                    else "."))
    decorators = [
        click.option("-e", "--inference_spec", "--experiment_spec", "inference_spec", required=True,
                     type=click.Path(dir_okay=False), help="The spec that names the model and its post-processing."),
        click.option("-i", "--inference_input", type=click.Path(), default=None,
                     help="An image, or a directory of images, to run inference on (default: the spec's, for "
                          "architectures whose spec names one, e.g. FasterRCNN's inference_config.images_dir)."),
        click.option("-o", "--inference_output", type=click.Path(file_okay=False), default=None,
                     help="Output directory: images_annotated/ and labels/ are written into it (default: the "
                          "spec's folders, e.g. FasterRCNN's detection_image_output_dir and labels_dump_dir)."),
        key_option(required=False, names=("-k", "--enc_key", "--key")),
        *([click.option("-l", "--out_label_file", type=click.Path(), default=None,
                        help="Also write the detections in COCO's results format (bbox, score, RLE segmentation): "
                             "one json file when the path ends in .json, else a directory of <image stem>.json.")]
          if architecture.task == INSTANCE_SEGMENTER else []),
        *architecture.inference_options(),
        verbose_option,
    ]
    for decorate in reversed(decorators):
        run = decorate(run)
    return command(run)


COMMANDS = {CLASSIFIER: classifier, BOX_DETECTOR: box_detector, INSTANCE_SEGMENTER: box_detector}


main = architecture_tool("tlt-infer", "infer", __version__, summary="Run inference with a trained model.",
                         commands=COMMANDS, example="tlt-infer classification -m MODEL -k KEY -i IMAGE -cm CLASSMAP")
