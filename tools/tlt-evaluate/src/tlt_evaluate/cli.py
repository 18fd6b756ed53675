"""tlt-evaluate command line: a parser plus one call into the tool's logic.

``tlt-evaluate ARCH [OPTIONS]``: everything after ARCH is parsed by that architecture's command
(``tlt-evaluate classification -h`` shows its options). Architectures whose issue has not landed
exit with status 2 and "not implemented yet".
"""

from __future__ import annotations

import click

from libtlt.cli_options import key_option, not_implemented, run_tool, spec_option, tool_command, verbose_option
from tlt_evaluate import __version__

#: Architectures still pending, and the issue that brings them.
PENDING_ISSUES: dict[str, str] = {}
LATER = "a later issue"
#: Every architecture name of the manuals (000 §9: ``yolo``; specs call it ``yolo_v3``).
KNOWN_ARCHS = ("classification", "detectnet_v2", "faster_rcnn", "ssd", "dssd", "retinanet", "yolo", "yolo_v3",
               "mask_rcnn")


@click.command(name="tlt-evaluate classification", context_settings={"help_option_names": ["-h", "--help"]})
@spec_option()
@key_option(required=False)
@click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
              help="Model to evaluate (default: eval_config.model_path of the spec).")
@click.option("-r", "--results_dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluation.json and confusion_matrix.png are written (default: the model's directory).")
@click.option("--batch_size", type=int, default=None, help="Images per batch (default: eval_config.batch_size).")
@click.option("-f", "--framework", type=click.Choice(["tlt", "tensorrt", "onnxruntime"]), default=None,
              help="tlt (Keras .tlt), onnxruntime (.etlt or onnxruntime engine) or tensorrt (TensorRT engine or "
                   ".etlt); default: by the model file.")
@verbose_option
def classification(experiment_spec_file: str, key: str | None, model: str | None, results_dir: str | None,
                   batch_size: int | None, framework: str | None, verbose: bool) -> None:
    """Evaluate a classification model: loss, top-k accuracy, precision, recall, confusion matrix."""

    def body() -> None:
        from tlt_evaluate.classification import evaluate_classification

        evaluate_classification(experiment_spec_file, key, model=model, results_dir=results_dir,
                                batch_size=batch_size, framework=framework)

    run_tool(body, verbose=verbose)


@click.command(name="tlt-evaluate detectnet_v2", context_settings={"help_option_names": ["-h", "--help"]})
@spec_option(help="Experiment spec file (the training spec).")
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="The model to evaluate: .tlt, .etlt or engine.")
@key_option(required=False)
@click.option("--use_training_set", is_flag=True, help="Evaluate on the training and validation records.")
@click.option("-f", "--framework", type=click.Choice(["tlt", "tensorrt", "onnxruntime"]), default=None,
              help="tlt (Keras .tlt), onnxruntime (.etlt or onnxruntime engine) or tensorrt (TensorRT engine or "
                   ".etlt); default: by the model file.")
@click.option("-r", "--results_dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluation.json and the precision-recall PNGs go (default: the model's directory).")
@click.option("--batch_size", type=int, default=None,
              help="Images per batch (default: training_config.batch_size_per_gpu).")
@verbose_option
def detectnet_v2(experiment_spec_file: str, model: str, key: str | None, use_training_set: bool, framework: str | None,
                 results_dir: str | None, batch_size: int | None, verbose: bool) -> None:
    """Evaluate a DetectNet_v2 model: per-class average precision and mAP."""

    def body() -> None:
        from tlt_evaluate.detectnet_v2 import evaluate_detectnet_v2

        if batch_size is not None and batch_size < 1:
            raise click.BadParameter(f"must be >= 1, got {batch_size}", param_hint="--batch_size")
        evaluate_detectnet_v2(experiment_spec_file, model, key, use_training_set=use_training_set,
                              framework=framework, results_dir=results_dir, batch_size=batch_size)

    run_tool(body, verbose=verbose)


COMMANDS = {"classification": classification, "detectnet_v2": detectnet_v2}


@tool_command("tlt-evaluate", __version__, ignore_unknown_options=True, allow_interspersed_args=False)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@verbose_option
def main(arch: str | None, list_archs: bool, args: tuple[str, ...], verbose: bool) -> None:
    """Evaluate a trained model.

    Usage: tlt-evaluate ARCH [OPTIONS] — the options depend on the architecture
    (tlt-evaluate ARCH -h lists them).
    """
    if list_archs:
        from libtlt.registry import architecture_names

        for name in architecture_names():
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError("missing the architecture (e.g. tlt-evaluate classification -e SPEC -k KEY)")
    command = COMMANDS.get(arch)
    if command is not None:
        command.main(args=[*args, *(["--verbose"] if verbose else [])], prog_name=f"tlt-evaluate {arch}")
        return
    from libtlt.registry import architecture_names

    if arch not in KNOWN_ARCHS and arch not in architecture_names():
        raise click.UsageError(f"unknown architecture '{arch}' (one of: {', '.join(KNOWN_ARCHS)})")
    run_tool(not_implemented(f"tlt-evaluate {arch}", PENDING_ISSUES.get(arch, LATER)), verbose=verbose)
