"""tlt-evaluate command line: a parser plus one call into the tool's logic.

``tlt-evaluate ARCH [OPTIONS]``: everything after ARCH is parsed by the command of the architecture's task type
(``tlt-evaluate classification -h`` shows its options). Which names exist, and which are not implemented yet,
comes from the architecture registry (``libtlt.registry``): this tool holds no list of architectures.
"""

from __future__ import annotations

import click

from libtlt.cli_options import architecture_tool, framework_option, key_option, run_tool, spec_option, verbose_option
from libtlt.registry import BOX_DETECTOR, CLASSIFIER, INSTANCE_SEGMENTER
from tlt_evaluate import __version__


@click.command(name="tlt-evaluate classifier", context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_obj
@spec_option()
@key_option(required=False)
@click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
              help="Model to evaluate (default: eval_config.model_path of the spec).")
@click.option("-r", "--results_dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluation.json and confusion_matrix.png are written (default: the model's directory).")
@click.option("--batch_size", type=int, default=None, help="Images per batch (default: eval_config.batch_size).")
@framework_option
@verbose_option
def classifier(arch: str, experiment_spec_file: str, key: str | None, model: str | None, results_dir: str | None,
                   batch_size: int | None, framework: str | None, verbose: bool) -> None:
    """Evaluate a classifier: loss, top-k accuracy, precision, recall, confusion matrix."""

    def body() -> None:
        from tlt_evaluate.classifier import evaluate_classifier

        evaluate_classifier(arch, experiment_spec_file, key, model=model, results_dir=results_dir,
                            batch_size=batch_size, framework=framework)

    run_tool(body, verbose=verbose)


@click.command(name="tlt-evaluate box_detector", context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_obj
@spec_option(help="Experiment spec file (the training spec).")
@click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
              help="The model to evaluate: .tlt, .etlt or engine (default: the spec's, for architectures whose "
                   "spec names one, e.g. FasterRCNN's evaluation_config).")
@key_option(required=False)
@click.option("--use_training_set", is_flag=True, help="Evaluate on the training and validation records.")
@framework_option
@click.option("-r", "--results_dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluation.json and the precision-recall PNGs go (default: the model's directory).")
@click.option("--batch_size", type=int, default=None,
              help="Images per batch (default: the spec's, e.g. training_config.batch_size_per_gpu).")
@verbose_option
def box_detector(arch: str, experiment_spec_file: str, model: str | None, key: str | None, use_training_set: bool,
                 framework: str | None, results_dir: str | None, batch_size: int | None, verbose: bool) -> None:
    """Evaluate a detector: per-class average precision and mAP."""

    def body() -> None:
        from tlt_evaluate.box_detector import evaluate_box_detector

        if batch_size is not None and batch_size < 1:
            raise click.BadParameter(f"must be >= 1, got {batch_size}", param_hint="--batch_size")
        evaluate_box_detector(arch, experiment_spec_file, model, key, use_training_set=use_training_set,
                              framework=framework, results_dir=results_dir, batch_size=batch_size)

    run_tool(body, verbose=verbose)


@click.command(name="tlt-evaluate instance_segmenter", context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_obj
@spec_option(help="Experiment spec file (the training spec).")
@click.option("-m", "--model", required=True, type=click.Path(dir_okay=False),
              help="The model to evaluate: .tlt, .etlt or engine.")
@key_option(required=False)
@framework_option
@click.option("-r", "--results_dir", type=click.Path(file_okay=False), default=None,
              help="Where evaluation.json and detections.json go (default: the model's directory).")
@click.option("--batch_size", type=int, default=None, help="Images per batch (default: the spec's).")
@verbose_option
def instance_segmenter(arch: str, experiment_spec_file: str, model: str, key: str | None, framework: str | None,
                       results_dir: str | None, batch_size: int | None, verbose: bool) -> None:
    """Evaluate an instance segmenter: COCO box and mask AP/AR."""

    def body() -> None:
        from tlt_evaluate.instance_segmenter import evaluate_instance_segmenter

        if batch_size is not None and batch_size < 1:
            raise click.BadParameter(f"must be >= 1, got {batch_size}", param_hint="--batch_size")
        evaluate_instance_segmenter(arch, experiment_spec_file, model, key, framework=framework,
                                    results_dir=results_dir, batch_size=batch_size)

    run_tool(body, verbose=verbose)


COMMANDS = {CLASSIFIER: classifier, BOX_DETECTOR: box_detector, INSTANCE_SEGMENTER: instance_segmenter}


main = architecture_tool("tlt-evaluate", "evaluate", __version__, summary="Evaluate a trained model.",
                         commands=COMMANDS, example="tlt-evaluate classification -e SPEC -k KEY")
