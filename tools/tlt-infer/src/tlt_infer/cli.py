"""tlt-infer command line: a parser plus one call into the tool's logic.

``tlt-infer ARCH [OPTIONS]``: everything after ARCH is parsed by that architecture's command
(``tlt-infer classification -h`` shows its options). Architectures whose issue has not landed exit
with status 2 and "not implemented yet".
"""

from __future__ import annotations

import click

from libtlt.cli_options import key_option, not_implemented, run_tool, tool_command, verbose_option
from tlt_infer import __version__

#: Architectures still pending, and the issue that brings them.
PENDING_ISSUES: dict[str, str] = {}
LATER = "a later issue"
#: Every architecture name of the manuals (000 §10: ``yolo``; specs call it ``yolo_v3``).
KNOWN_ARCHS = ("classification", "detectnet_v2", "faster_rcnn", "ssd", "dssd", "retinanet", "yolo", "yolo_v3",
               "mask_rcnn")


@click.command(name="tlt-infer classification", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="The model: .tlt, .etlt or engine.")
@click.option("-i", "--image", type=click.Path(), default=None, help="A single image file for inference.")
@click.option("-d", "--image_dir", type=click.Path(), default=None,
              help="A directory of images; result.csv is written into it.")
@click.option("-b", "--batch_size", type=int, default=1, show_default=True, help="Inference batch size.")
@key_option(required=False)
@click.option("-cm", "--class_map", required=True, type=click.Path(dir_okay=False),
              help="The classmap.json written by training (class name → index).")
@click.option("-f", "--framework", type=click.Choice(["tlt", "tensorrt", "onnxruntime"]), default=None,
              help="tlt (Keras .tlt), onnxruntime (.etlt or onnxruntime engine) or tensorrt (TensorRT engine or "
                   ".etlt); default: by the model file.")
@verbose_option
def classification(model: str, image: str | None, image_dir: str | None, batch_size: int, key: str | None,
                   class_map: str, framework: str | None, verbose: bool) -> None:
    """Classify one image (-i) or every image of a directory (-d)."""

    def body() -> None:
        from tlt_infer.classification import infer_classification

        infer_classification(model, key, class_map, image=image, image_dir=image_dir, batch_size=batch_size,
                             framework=framework)

    run_tool(body, verbose=verbose)


@click.command(name="tlt-infer detectnet_v2", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--inference_spec", required=True, type=click.Path(dir_okay=False),
              help="Path to the inference spec file (inferencer_config and bbox_handler_config).")
@click.option("-i", "--inference_input", required=True, type=click.Path(),
              help="An image, or a directory of images, to run inference on.")
@click.option("-o", "--inference_output", required=True, type=click.Path(file_okay=False),
              help="Output directory: images_annotated/ and labels/ are written into it.")
@key_option(required=False, names=("-k", "--enc_key", "--key"))
@verbose_option
def detectnet_v2(inference_spec: str, inference_input: str, inference_output: str, key: str | None, verbose: bool) -> None:
    """Detect objects: annotated images and (with kitti_dump) KITTI labels with confidences."""

    def body() -> None:
        from tlt_infer.detectnet_v2 import infer_detectnet_v2

        infer_detectnet_v2(inference_spec, inference_input, inference_output, key)

    run_tool(body, verbose=verbose)


COMMANDS = {"classification": classification, "detectnet_v2": detectnet_v2}


@tool_command("tlt-infer", __version__, ignore_unknown_options=True, allow_interspersed_args=False)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(arch: str | None, list_archs: bool, args: tuple[str, ...], verbose: bool) -> None:
    """Run inference with a trained model.

    Usage: tlt-infer ARCH [OPTIONS] — the options depend on the architecture
    (tlt-infer ARCH -h lists them).
    """
    if list_archs:
        from libtlt.registry import architecture_names

        for name in architecture_names():
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError("missing the architecture (e.g. tlt-infer classification -m MODEL -k KEY ...)")
    command = COMMANDS.get(arch)
    if command is not None:
        command.main(args=[*args, *(["--verbose"] if verbose else [])], prog_name=f"tlt-infer {arch}")
        return
    from libtlt.registry import architecture_names

    if arch not in KNOWN_ARCHS and arch not in architecture_names():
        raise click.UsageError(f"unknown architecture '{arch}' (one of: {', '.join(KNOWN_ARCHS)})")
    run_tool(not_implemented(f"tlt-infer {arch}", PENDING_ISSUES.get(arch, LATER)), verbose=verbose)
