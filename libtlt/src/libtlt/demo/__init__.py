"""``python -m libtlt.demo OUTDIR`` (``make demo``): the whole toolkit on small sample data.

The demo is a list of named steps (``STEPS``), run in order; each logs
``[INFO] libtlt.demo: step N/M: <name>``. Tools run as commands, as in a Makefile; a step reads what
earlier steps left in ``DemoContext.results`` and adds its own. Re-running overwrites every output
(the sample generators are deterministic). ``--quick`` runs every step on a few frames and one epoch
(what the test suite checks); the default sizes show real accuracy (see ``context.FULL``). ``--arch ARCH`` runs
one box detector's pipeline instead (``libtlt.demo.arch_steps``).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from libtlt.cli_options import run_tool, verbose_option
from libtlt.demo import classification_steps as cls
from libtlt.demo import data_steps as data
from libtlt.demo import detection_steps as det
from libtlt.demo.context import FULL, QUICK, DemoContext, DemoSize, DemoStep, logger
from libtlt.demo.data_steps import CLASSIFICATION_CLASSES, DETECTION_SIZE

__all__ = ["CLASSIFICATION_CLASSES", "DETECTION_SIZE", "STEPS", "DemoContext", "DemoStep", "run_demo"]

STEPS: list[DemoStep] = [
    DemoStep("generate detection sample data", data.generate_detection_data),
    DemoStep("generate classification sample data", data.generate_classification_data),
    DemoStep("preview detection labels", data.preview_detection),
    DemoStep("preview classification images", data.preview_classification),
    DemoStep("augment the detection data (tlt-augment)", data.augment_detection_data),
    DemoStep("convert to TFRecords (tlt-dataset-convert)", data.convert_to_tfrecords),
    DemoStep("train a classifier (tlt-train classification)", cls.train_classification),
    DemoStep("evaluate the classifier (tlt-evaluate classification)", cls.evaluate_classification),
    DemoStep("classify the test images (tlt-infer classification)", cls.infer_classification),
    DemoStep("train a detector (tlt-train detectnet_v2)", det.train_detectnet),
    DemoStep("evaluate the detector (tlt-evaluate detectnet_v2)", det.evaluate_detectnet),
    DemoStep("prune the detector (tlt-prune)", det.prune_detectnet),
    DemoStep("retrain the pruned detector (tlt-train detectnet_v2)", det.retrain_detectnet),
    DemoStep("detect objects in the validation frames (tlt-infer detectnet_v2)", det.infer_detectnet),
    DemoStep("export INT8 (tlt-int8-tensorfile, tlt-export)", det.export_int8),
    DemoStep("build the INT8 engine (tlt-converter)", det.convert_engine),
    DemoStep("evaluate the engine (tlt-evaluate detectnet_v2)", det.evaluate_engine),
    DemoStep("detect objects with the engine (tlt-infer detectnet_v2)", det.infer_engine),
]


def run_demo(outdir: str | Path, steps: list[DemoStep] | None = None, seed: int = 0,
             size: DemoSize = FULL) -> DemoContext:
    """Run ``steps`` (default ``STEPS``) in order into ``outdir`` and print a summary with each step's time."""
    steps = STEPS if steps is None else steps
    ctx = DemoContext(outdir=Path(outdir), seed=seed, size=size)
    ctx.outdir.mkdir(parents=True, exist_ok=True)
    times: list[str] = []
    started_all = time.perf_counter()
    for number, step in enumerate(steps, start=1):
        logger.info("step %d/%d: %s", number, len(steps), step.name)
        started = time.perf_counter()
        step.run(ctx)
        seconds = time.perf_counter() - started
        logger.info("step %d/%d done in %.1f s", number, len(steps), seconds)
        times.append(f"{seconds:.0f} s {step.name}")
    click.echo("Demo summary:")
    for line in ctx.summary:
        click.echo(f"  {line}")
    click.echo(f"Time: {time.perf_counter() - started_all:.0f} s in all")
    for line in times:
        click.echo(f"  {line}")
    return ctx


@click.command(name="libtlt.demo", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Every step on a few frames and one epoch (minutes, not accuracy).")
@click.option("--arch", default=None, help="Run one box detector's whole pipeline instead (e.g. ssd, dssd): "
              "augment, convert, train, evaluate, prune, retrain, export INT8, convert, evaluate, infer.")
@verbose_option
def main(outdir: str, seed: int, quick: bool, arch: str | None, verbose: bool) -> None:
    """Run the demo pipeline on small sample data, writing everything under OUTDIR."""

    def body() -> None:
        steps = None
        if arch is not None:
            from libtlt.demo.arch_steps import arch_steps

            steps = arch_steps(arch)
        run_demo(outdir, steps=steps, seed=seed, size=QUICK if quick else FULL)

    run_tool(body, verbose=verbose)
