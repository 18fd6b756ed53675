"""Longer prune + retrain acceptance run for issue 7 (outside ``make test``).

``python bench/prune_acceptance.py WORKDIR [--frames 250] [--epochs 20] [--retrain-epochs 20]
[--target-ratio 0.2 | --threshold T] [--control]``

Generated KITTI frames (480×272) → ``tlt-dataset-convert`` → ``tlt-train detectnet_v2`` (resnet10 by default, L1
regularizer) → ``tlt-prune`` → ``tlt-train detectnet_v2`` with ``NO_REG``, ``load_graph: true`` and the pruned
model as ``pretrained_model_file``. Without ``--threshold`` the ``-pth`` is found by bisection (``prune_model`` in
process, about a second a try) so that the pruned model keeps ``--target-ratio`` of the parameters. Prints and
writes ``WORKDIR/prune_acceptance.json``: parameters and model file sizes before/after, the pruning ratio (NVIDIA's
advice: keep 10–30 %), the validation-fold mAP of the unpruned, the pruned (not retrained) and the retrained model,
and the time of every stage. With ``--control`` the unpruned model is also trained ``--retrain-epochs`` more with
``NO_REG`` (weights by name, same schedule), so that the retrained model is compared with an unpruned one trained
as long. Every output is kept in WORKDIR; the data, the training and the control run are skipped when their outputs
exist, and ``tlt-train`` resumes the retraining from its checkpoints, so an interrupted run can be continued. Use a
fresh WORKDIR after changing the threshold or the epochs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
KEY = "acceptance_key"


def training_spec(root: Path, args: argparse.Namespace, *, epochs: int, pretrained: Path | None,
                  load_graph: bool = True) -> str:
    """The default spec with the CPU-friendly settings of the e2e tests; L1 when training, NO_REG retraining."""
    from libtlt.archs.detectnet_v2.architecture import DetectNetV2Architecture

    text = DetectNetV2Architecture().default_spec()
    regularizer = ("type: NO_REG\n    weight: 0.0" if pretrained is not None
                   else f"type: L1\n    weight: {args.l1_weight}")
    edits = {
        "/workspace/tlt-experiments/data/tfrecords/kitti_trainval/*": f"{root}/tfrecords/*",
        "/workspace/tlt-experiments/data/training": str(root),
        "num_layers: 18": f"num_layers: {args.layers}",
        "num_epochs: 80": f"num_epochs: {epochs}",
        "batch_size_per_gpu: 8": f"batch_size_per_gpu: {args.batch}",
        "checkpoint_interval: 10": f"checkpoint_interval: {epochs}",
        "validation_period_during_training: 10": f"validation_period_during_training: {epochs}",
        "first_validation_epoch: 10": f"first_validation_epoch: {epochs}",
        "coverage_foreground_weight: 0.05": "coverage_foreground_weight: 0.75",
        "max_learning_rate: 5e-04": f"max_learning_rate: {args.lr}",
        "soft_start: 0.1": "soft_start: 0.05",
        "annealing: 0.7": "annealing: 0.8",
        "enable_autoweighting: true": "enable_autoweighting: false",
        "initial_weight: 10.0": "initial_weight: 1.0",
        "value: 0.7 }": "value: 0.5 }",
        "hue_rotation_max: 25.0": "hue_rotation_max: 0.0",
        "translate_max_x: 8.0": "translate_max_x: 0.0",
        "translate_max_y: 8.0": "translate_max_y: 0.0",
        "type: L1\n    weight: 3e-09": regularizer,
    }
    if pretrained is not None:
        graph = "\n  load_graph: true" if load_graph else ""
        edits['arch: "resnet"'] = f'arch: "resnet"\n  pretrained_model_file: "{pretrained}"{graph}'
    for old, new in edits.items():
        if old not in text:
            raise SystemExit(f"the default spec changed: {old!r} not found")
        text = text.replace(old, new)
    return text


def threshold_for(path: Path, target_ratio: float) -> float:
    """The ``-pth`` (max normalizer, union) whose pruned model keeps about ``target_ratio`` of the parameters."""
    from libtlt.runtime.keras_model import load_tlt_model
    from tlt_prune.prune import threshold_for_ratio

    model, _ = load_tlt_model(path, KEY, architecture="detectnet_v2")
    return threshold_for_ratio(model, target_ratio)


def run(*command: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / str(command[0])), *map(str, command[1:])], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--retrain-epochs", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--target-ratio", type=float, default=0.2)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--l1-weight", type=float, default=1e-5)
    parser.add_argument("--control", action="store_true",
                        help="also train the unpruned model --retrain-epochs more (NO_REG) for comparison")
    args = parser.parse_args()

    from libtlt.archs.detectnet_v2 import architecture as dn
    from libtlt.runtime.keras_model import load_tlt_model
    from libtlt.samples import generate_detection_dataset, kitti_convert_spec
    from libtlt.spec import load_spec
    from libtlt.spec.protos import detectnet_v2_pb2 as pb

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    root = work / "data"
    model_name = f"resnet{args.layers}_detector"

    started = time.perf_counter()
    if not (root / "tfrecords").is_dir():
        generate_detection_dataset(root, num_images=args.frames, seed=7)
        (work / "convert.txt").write_text(kitti_convert_spec(root, num_shards=4), encoding="utf-8")
        (root / "tfrecords").mkdir()
        run("tlt-dataset-convert", "-d", work / "convert.txt", "-o", root / "tfrecords" / "kitti")
    seconds["data"] = time.perf_counter() - started

    spec_path = work / "train.txt"
    spec_path.write_text(training_spec(root, args, epochs=args.epochs, pretrained=None), encoding="utf-8")
    unpruned = work / "unpruned" / "weights" / f"{model_name}_{args.epochs:03d}.tlt"
    started = time.perf_counter()
    if not unpruned.is_file():
        run("tlt-train", "detectnet_v2", "-e", spec_path, "-r", work / "unpruned", "-k", KEY)
    seconds["train"] = time.perf_counter() - started

    pruned = work / "pruned.tlt"
    started = time.perf_counter()
    if args.threshold is None:
        args.threshold = threshold_for(unpruned, args.target_ratio)
    done = run("tlt-prune", "-m", unpruned, "-o", pruned, "-pth", args.threshold, "-k", KEY)
    seconds["prune"] = time.perf_counter() - started
    print(done.stdout.split("\n\n")[-1].strip())
    report = json.loads((work / "pruned.json").read_text())

    retrain_path = work / "retrain.txt"
    retrain_path.write_text(training_spec(root, args, epochs=args.retrain_epochs, pretrained=pruned),
                            encoding="utf-8")
    retrained = work / "retrained" / "weights" / f"{model_name}_{args.retrain_epochs:03d}.tlt"
    started = time.perf_counter()
    run("tlt-train", "detectnet_v2", "-e", retrain_path, "-r", work / "retrained", "-k", KEY)
    seconds["retrain"] = time.perf_counter() - started

    models = [("unpruned", unpruned), ("pruned", pruned), ("retrained", retrained)]
    if args.control:
        control_path = work / "control.txt"
        control_path.write_text(training_spec(root, args, epochs=args.retrain_epochs, pretrained=unpruned,
                                              load_graph=False), encoding="utf-8")
        control = work / "control" / "weights" / f"{model_name}_{args.retrain_epochs:03d}.tlt"
        started = time.perf_counter()
        if not control.is_file():
            run("tlt-train", "detectnet_v2", "-e", control_path, "-r", work / "control", "-k", KEY)
        seconds["control"] = time.perf_counter() - started
        models.append(("unpruned_trained_as_long", control))

    spec = load_spec(spec_path, pb.Experiment)
    maps = {}
    for name, path in models:
        model, _ = load_tlt_model(path, KEY, architecture="detectnet_v2")
        maps[name] = dn.evaluate(model, spec).mean_average_precision
    result = {
        "frames": args.frames, "layers": args.layers, "epochs": args.epochs, "retrain_epochs": args.retrain_epochs,
        "threshold": args.threshold, "target_ratio": args.target_ratio, "l1_weight": args.l1_weight,
        "params_before": report["params_before"], "params_after": report["params_after"],
        "pruning_ratio": report["pruning_ratio"],
        "model_size_bytes": {name: path.stat().st_size for name, path in models},
        "mAP": maps, "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    (work / "prune_acceptance.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    if not 0.1 <= report["pruning_ratio"] <= 0.3:
        print(f"note: pruning ratio {report['pruning_ratio']:.3f} is outside the advised 0.1-0.3; "
              "adjust --threshold")


if __name__ == "__main__":
    main()
