"""tlt-train command line (000 ch. 8): a parser plus one call into :func:`tlt_train.train.train`.

``tlt-train ARCH -e SPEC -r RESULTS_DIR -k KEY [-n MODEL_NAME] [--gpus N] [--gpu_index I ...] [--use_amp]
[--log_file F] [-v]``; ``tlt-train --list-archs`` lists the registered architectures.
"""

from __future__ import annotations

import click

from libtlt.cli_options import (
    gpus_option,
    key_option,
    log_file_option,
    run_tool,
    spec_option,
    tool_command,
    verbose_option,
)
from tlt_train import __version__


@tool_command("tlt-train", __version__)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can train, then exit.")
@spec_option(required=False)
@click.option("-r", "--results_dir", type=click.Path(file_okay=False),
              help="Directory where checkpoints, logs, status.json and the final model are written.")
@key_option(required=False)
@click.option("-n", "--model_name", default=None,
              help="Also save the final model as RESULTS_DIR/weights/<model_name>.tlt.")
@click.option("-m", "--resume_model_weights", "pretrained_model", type=click.Path(dir_okay=False), default=None,
              help="A pre-trained or pruned .tlt to start from (replaces the spec's pretrained model).")
@gpus_option
@click.option("--use_amp", is_flag=True,
              help="Automatic mixed precision (float16 compute); also TF_ENABLE_AUTO_MIXED_PRECISION=1.")
@click.option("--strict", is_flag=True, help="Fail on the first unreadable image instead of skipping it.")
@log_file_option
@verbose_option
def main(arch: str | None, list_archs: bool, experiment_spec_file: str | None, results_dir: str | None,
         key: str | None, model_name: str | None, pretrained_model: str | None, gpus: int,
         gpu_index: tuple[int, ...], use_amp: bool, strict: bool, log_file: str | None, verbose: bool) -> None:
    """Train a model from an experiment spec: tlt-train ARCH -e SPEC -r RESULTS_DIR -k KEY.

    Re-running the same command after an interruption resumes from the last checkpoint in
    RESULTS_DIR/weights.
    """
    if list_archs:
        from libtlt.registry import architectures_for

        for name in architectures_for("train"):
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError("missing the architecture, e.g. tlt-train classification -e SPEC -r DIR -k KEY "
                               "(tlt-train --list-archs lists them)")

    def body() -> None:
        from tlt_train.train import check_architecture, train

        architecture = check_architecture(arch)
        results = results_dir
        if results is None and experiment_spec_file and hasattr(architecture, "results_dir"):
            # The manuals' form for FasterRCNN has no -r: the spec's output_model says where the results go.
            from tlt_train.train import load_experiment_spec

            results = architecture.results_dir(load_experiment_spec(architecture, experiment_spec_file))
        missing = [flag for flag, value in (("-e", experiment_spec_file), ("-r", results),
                                            ("-k KEY (or --key_file FILE, or TLT_KEY)", key))
                   if not value]
        if missing:
            raise click.UsageError(f"missing option(s) {', '.join(missing)}")
        train(arch, experiment_spec_file=str(experiment_spec_file), results_dir=str(results), key=str(key),
              gpus=gpus, gpu_index=gpu_index, use_amp=use_amp, strict=strict, model_name=model_name,
              pretrained_model=pretrained_model)

    run_tool(body, verbose=verbose, log_file=log_file)
