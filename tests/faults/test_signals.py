"""SIGINT, SIGTERM and SIGKILL against the installed tools that start worker processes.

Required (issue 12 §3): SIGINT/SIGTERM end a run within 2 s, always, with exit 130/143 and one line
saying how many frames were completed; workers never outlive the tool; every output pair (image and
label) is whole or absent. The signal path is stressed in a loop at different moments (start-up,
mid-run, last frames), with one and with two workers, so that a rare deadlock shows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType

from libtlt.samples import generate_detection_dataset
from libtlt.samples.specs import kitti_convert_spec

NUM_FRAMES = 200
DONE_LINE = re.compile(r"^Interrupted by (SIGINT|SIGTERM): (\d+)(?: of 200)? frames completed")

#: (signal, moment, workers): ten runs, every moment with both signals and worker counts.
CASES = [
    (signal.SIGINT, "start-up", 2), (signal.SIGTERM, "start-up", 1),
    (signal.SIGINT, "mid-run", 2), (signal.SIGTERM, "mid-run", 2), (signal.SIGINT, "mid-run", 1),
    (signal.SIGTERM, "mid-run", 1), (signal.SIGINT, "last frames", 2), (signal.SIGTERM, "last frames", 2),
    (signal.SIGINT, "last frames", 1), (signal.SIGINT, "mid-run", 2),
]


def default_signals() -> None:
    """In the child: SIGINT as at a terminal, even when the test run itself is a background job (whose
    SIGINT is ignored, and a tool rightly keeps an ignored signal ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Run:
    """A tlt-augment run whose stderr is read as it comes (to know when it has started)."""

    def __init__(self, faults: ModuleType, dataset: Path, spec: Path, output: Path, workers: int):
        self.output = output
        self.process = subprocess.Popen(
            [faults.tool("tlt-augment"), "-d", str(dataset), "-a", str(spec), "-o", str(output), "-j", str(workers)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=default_signals)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def frames_written(self) -> int:
        try:
            return len(os.listdir(self.output / "labels"))
        except OSError:
            return 0

    def wait_until(self, ready: str, timeout: float = 60.0) -> None:
        """Wait for the moment: the tool's first log line, 30 % of the frames, or all but the last few."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.process.poll() is None:
            if ready == "start-up" and self.lines:
                return
            if ready == "mid-run" and self.frames_written() >= NUM_FRAMES * 3 // 10:
                return
            if ready == "last frames" and self.frames_written() >= NUM_FRAMES - 6:
                return
            time.sleep(0.002)

    def stop(self, signum: int) -> tuple[int, float]:
        """Send ``signum``; returns the exit status and the seconds the tool took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"still running 20 s after {signal.Signals(signum).name}; stderr: {self.lines}") from None
        self.reader.join(5)
        return status, time.monotonic() - sent


def test_sigint_and_sigterm_stop_augment_at_any_moment(faults: ModuleType, frames_dataset: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    dataset, spec = frames_dataset
    slowest = 0.0
    for index, (signum, moment, workers) in enumerate(CASES):
        output = tmp_path / f"out{index}"
        run = Run(faults, dataset, spec, output, workers)
        run.wait_until(moment)
        workers_seen = faults.children(run.process.pid)
        status, seconds = run.stop(signum)
        case = f"case {index}: {signal.Signals(signum).name} at {moment} with {workers} worker(s)"
        slowest = max(slowest, seconds)
        assert seconds < 2.0, f"{case}: took {seconds:.2f} s to exit"
        assert "Traceback" not in "\n".join(run.lines), f"{case}: {run.lines}"
        pairs = faults.check_pairs(output)
        if status == 0:  # the last frames were done before the signal arrived
            assert moment == "last frames" and pairs == NUM_FRAMES, f"{case}: exit 0 with {pairs} frames"
        else:
            assert status == 128 + signum, f"{case}: exit status {status}; {run.lines[-3:]}"
            done = [DONE_LINE.match(line) for line in run.lines if line.startswith("Interrupted")]
            assert len(done) == 1 and done[0] is not None, f"{case}: {run.lines[-3:]}"
            assert int(done[0].group(2)) == pairs, f"{case}: reported {done[0].group(2)}, found {pairs} pairs"
        time.sleep(0.2)
        alive = [pid for pid in workers_seen if faults.running(pid)]
        assert not alive, f"{case}: worker processes still running: {alive}"
    print(f"slowest exit after a signal: {slowest:.2f} s")


def test_sigkill_of_augment_takes_its_workers_with_it(faults: ModuleType, frames_dataset: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    dataset, spec = frames_dataset
    run = Run(faults, dataset, spec, tmp_path / "out", workers=2)
    run.wait_until("mid-run")
    workers = faults.children(run.process.pid)
    assert len(workers) == 2, f"expected 2 worker processes, found {workers}"
    run.process.kill()
    run.process.wait(10)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(faults.running(pid) for pid in workers):
        time.sleep(0.02)
    alive = [pid for pid in workers if faults.running(pid)]
    for pid in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived a SIGKILLed tlt-augment"


# ------------------------------------------------------------------------------- tlt-dataset-convert


def _staging_dirs(folder: Path) -> list[Path]:
    return sorted(folder.glob(".tlt-dataset-convert.*.staging"))


STAGE_AND_WAIT = textwrap.dedent("""
    import os, signal, sys, time
    from tlt_dataset_convert.output import StagedOutputs
    staged = StagedOutputs(sys.argv[1])
    with staged.tfrecord_writer(os.path.join(sys.argv[1], "kitti-fold-000-of-002-shard-00000-of-00001")) as w:
        w.write(b"record")
    print("staged", flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
""")


def test_dataset_convert_removes_staging_folders_of_dead_runs_only(faults: ModuleType, tmp_path: Path) -> None:
    """A SIGKILLed run leaves its staging folder; the next run in that folder removes it, but never
    the staging folder of a run that is still alive."""
    generate_detection_dataset(tmp_path / "ds", num_images=6, width=64, height=48, seed=1)
    spec = tmp_path / "convert.txt"
    spec.write_text(kitti_convert_spec(tmp_path / "ds"), encoding="utf-8")
    out = tmp_path / "tfrecords"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", STAGE_AND_WAIT, str(out), "live"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "staged"
        dead = subprocess.run([sys.executable, "-c", STAGE_AND_WAIT, str(out), "die"], capture_output=True, text=True,
                              timeout=60)
        assert dead.returncode == -signal.SIGKILL and "staged" in dead.stdout, dead.stderr
        before = _staging_dirs(out)
        assert len(before) == 2
        owners = {json.loads((d / "owner.json").read_text())["pid"]: d for d in before}
        assert live.pid in owners
        dead_pid = next(pid for pid in owners if pid != live.pid)
        # Without owner.json: a dead PID in the name; an earlier version's name, old and recent.
        (out / f".tlt-dataset-convert.{dead_pid}.abcd1234.staging").mkdir()
        old_version, recent = out / ".tlt-dataset-convert.k2j4h5g6.staging", out / ".tlt-dataset-convert.a1b2c3d4.staging"
        old_version.mkdir()
        recent.mkdir()
        os.utime(old_version, (time.time() - 7200, time.time() - 7200))

        result = faults.run("tlt-dataset-convert", "-d", spec, "-o", out / "kitti")
        assert result.returncode == 0, result.stderr
        assert _staging_dirs(out) == sorted([owners[live.pid], recent]), \
            "dead runs' staging folders must go; the live run's, and one that may be starting, stay"
        assert "left by an interrupted run" in result.stderr
    finally:
        live.kill()
        live.wait()


def test_sigterm_stops_dataset_convert_with_nothing_written(faults: ModuleType, tmp_path: Path) -> None:
    """A signal while tlt-dataset-convert reads 1,500 frames: exit 143, one line, no shard and no staging
    folder (earlier outputs untouched); if the run finished first, exit 0 with every shard."""
    root = tmp_path / "ds"
    generate_detection_dataset(root, num_images=15, width=64, height=48, seed=4)
    for image in sorted((root / "images").glob("*.png")):
        for copy in range(1, 100):
            os.link(image, image.with_name(f"{image.stem}_{copy}.png"))
            os.link(root / "labels" / f"{image.stem}.txt", root / "labels" / f"{image.stem}_{copy}.txt")
    spec = tmp_path / "convert.txt"
    spec.write_text(kitti_convert_spec(root, num_shards=4), encoding="utf-8")
    out = tmp_path / "tf"
    out.mkdir()
    (out / "kitti_warning.json").write_text("earlier\n")
    process = subprocess.Popen([faults.tool("tlt-dataset-convert"), "-d", str(spec), "-o", str(out / "kitti")],
                               stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    assert process.stderr is not None
    first = process.stderr.readline()  # the tool has started: the spec is loaded
    assert "[INFO]" in first, first
    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=20)[1]
    if process.returncode == 0:
        assert len(list(out.glob("kitti-fold-*"))) == 8
        return
    assert process.returncode == 143, rest
    lines = [line for line in rest.splitlines() if line.startswith("Interrupted")]
    assert lines == ["Interrupted by SIGTERM: nothing written (earlier outputs are unchanged)."], rest
    assert sorted(p.name for p in out.iterdir()) == ["kitti_warning.json"]
    assert (out / "kitti_warning.json").read_text() == "earlier\n"
