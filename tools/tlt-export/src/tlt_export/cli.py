"""tlt-export command line (000 §12, 001 export): a parser plus one call into the tool's logic.

``tlt-export ARCH -m MODEL.tlt -k KEY [options]``: the options are the same for every architecture;
ARCH is looked up in the registry (``--list-archs`` shows the installed ones).
"""

from __future__ import annotations

import click

from libtlt.cli_options import key_option, run_tool, tool_command, verbose_option
from tlt_export import __version__


@tool_command("tlt-export", __version__)
@click.argument("arch", required=False)
@click.option("--list-archs", is_flag=True, help="List the architectures this tool can handle.")
@click.option("-m", "--model", type=click.Path(dir_okay=False), default=None,
              help="Path to the .tlt model file to export (from tlt-train).")
@key_option(required=False, help="The key used to save the .tlt model file (or --key_file FILE, or TLT_KEY).")
@click.option("-o", "--output_file", type=click.Path(dir_okay=False), default=None,
              help="Path to save the exported model to (default: the model's path with .etlt).")
@click.option("--data_type", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Engine data type; int8 also writes the calibration cache.")
@click.option("-s", "--strict_type_constraints", is_flag=True,
              help="Apply strict type constraints when building the engine (int8).")
@click.option("--cal_data_file", type=click.Path(dir_okay=False), default=None,
              help="Calibration tensorfile from tlt-int8-tensorfile (an output file with --cal_image_dir).")
@click.option("--cal_image_dir", type=click.Path(file_okay=False), default=None,
              help="Directory of images (jpg, jpeg, png) to calibrate on.")
@click.option("--cal_cache_file", type=click.Path(dir_okay=False), default="./cal.bin", show_default=True,
              help="Path to save the calibration cache to.")
@click.option("--batches", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of batches to calibrate over.")
@click.option("--batch_size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Batch size used for calibration.")
@click.option("--max_batch_size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Maximum batch size of the engine.")
@click.option("--max_workspace_size", type=click.IntRange(min=1), default=1 << 30, show_default=True,
              help="Maximum workspace size of the TensorRT engine in bytes.")
@click.option("-e", "--experiment_spec", type=click.Path(dir_okay=False), default=None,
              help="Experiment spec (output names of the architecture; training-loader calibration).")
@click.option("--engine_file", type=click.Path(dir_okay=False), default=None,
              help="Also build an engine here (TensorRT, or onnxruntime where TensorRT is not installed).")
@click.option("--force_ptq", is_flag=True, help="Calibrate (post-training quantization) even for a QAT model.")
@click.option("--gen_ds_config", is_flag=True,
              help="Write nvinfer_config.txt and labels.txt beside the output file (DeepStream template).")
@verbose_option
def main(arch: str | None, list_archs: bool, model: str | None, key: str | None, output_file: str | None,
         data_type: str, strict_type_constraints: bool, cal_data_file: str | None, cal_image_dir: str | None,
         cal_cache_file: str, batches: int, batch_size: int, max_batch_size: int, max_workspace_size: int,
         experiment_spec: str | None, engine_file: str | None, force_ptq: bool, gen_ds_config: bool,
         verbose: bool) -> None:
    """Export a trained model to an encrypted ONNX .etlt.

    Usage: tlt-export ARCH -m MODEL.tlt -k KEY [OPTIONS]
    """
    if list_archs:
        from libtlt.registry import architectures_for

        for name in architectures_for("export"):
            click.echo(name)
        return
    if arch is None:
        raise click.UsageError("missing the architecture (e.g. tlt-export classification -m model.tlt -k KEY)")
    if model is None or key is None:
        raise click.UsageError("-m/--model and the key (-k KEY, --key_file FILE or TLT_KEY) are required")

    def body() -> None:
        from tlt_export.export import export

        export(arch, model, key, output_file=output_file, data_type=data_type, cal_data_file=cal_data_file,
               cal_image_dir=cal_image_dir, cal_cache_file=cal_cache_file, batches=batches, batch_size=batch_size,
               max_batch_size=max_batch_size, max_workspace_size=max_workspace_size,
               experiment_spec=experiment_spec, engine_file=engine_file, force_ptq=force_ptq,
               gen_ds_config=gen_ds_config, strict_type_constraints=strict_type_constraints, verbose=verbose)

    run_tool(body, verbose=verbose)
