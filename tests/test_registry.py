"""The architecture registry: entry-point discovery, protocol checks, restriction, clear errors.

A real plug-in is installed into a temporary site directory (a dist-info with entry_points.txt), so
discovery goes through importlib.metadata exactly as for a third-party package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from libtlt.registry import REQUIRED_ATTRIBUTES, RegistryError, check_architecture

PLUGIN = textwrap.dedent(
    """
    class Toy:
        name = "toy"
        task = "box_detector"
        verbs = frozenset({"train", "export"})
        def spec_message(self): return dict
        def default_spec(self): return ""
        def validate(self, spec): return None
        def build(self, spec, classes=None): return None
        def label_encoder(self, spec): return None
        def loss(self, spec): return None
        def post_process(self, spec): return None
        def export_outputs(self, spec): return ["out"]
        def metadata(self, spec, classes): return {}
        def train_plan(self, spec): return None
        def training_data(self, spec, *, batch_size, seed=None, strict=False): return None
        def metrics(self, spec): return []

    class Broken:
        name = "broken"

    class WrongTask(Toy):
        name = "wrongtask"
        task = "segmenter"

    class HalfVerb(Toy):
        name = "halfverb"
        verbs = frozenset({"train", "tensorfile"})

    class Misnamed(Toy):
        name = "other"

    class Pending(Toy):
        name = "pending"
        pending = "issue 99"
    """
)


def install_plugin(site: Path, entries: dict[str, str]) -> None:
    (site / "toyarch.py").write_text(PLUGIN)
    dist = site / "toyarch-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toyarch\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (dist / "entry_points.txt").write_text(f"[libtlt.architectures]\n{lines}\n")


def run_registry(site: Path, code: str, **env: str) -> dict:
    script = "import json, libtlt.registry as r\nfrom libtlt.errors import TltError\n" + textwrap.dedent(code)
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    environment.pop("TLT_ARCHITECTURES", None) if "TLT_ARCHITECTURES" not in env else None
    out = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    install_plugin(tmp_path, {"toy": "toyarch:Toy", "broken": "toyarch:Broken", "misnamed": "toyarch:Misnamed",
                              "wrongtask": "toyarch:WrongTask", "halfverb": "toyarch:HalfVerb",
                              "pending": "toyarch:Pending"})
    return tmp_path


def test_plugin_is_discovered_and_loaded(site: Path) -> None:
    result = run_registry(site, """
        names = r.architecture_names()
        arch = r.get_architecture("toy")
        print(json.dumps({"names": names, "outputs": arch.export_outputs(None)}))
    """)
    assert {"toy", "broken", "misnamed"} <= set(result["names"])
    assert result["outputs"] == ["out"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken", "architecture from 'toyarch:Broken' lacks task, verbs, spec_message, validate"),
        ("wrongtask", "architecture from 'toyarch:WrongTask' has task 'segmenter' (one of: classifier, box_detector, "),
        ("halfverb", "architecture from 'toyarch:HalfVerb' serves 'tensorfile' but lacks calibration_batches"),
        ("misnamed", "entry point 'misnamed' (toyarch:Misnamed) provides architecture named 'other'"),
        ("nothing", "unknown architecture 'nothing' (known: "),
    ],
)
def test_bad_plugins_are_named(site: Path, name: str, expected: str) -> None:
    result = run_registry(site, f"""
        try:
            r.get_architecture({name!r})
        except TltError as err:
            print(json.dumps({{"error": str(err)}}))
    """)
    assert result["error"].startswith(expected)


def test_environment_restricts_the_set(site: Path) -> None:
    result = run_registry(site, "print(json.dumps(r.architecture_names()))", TLT_ARCHITECTURES="toy")
    assert result == ["toy"]


def test_listing_imports_no_plugin(site: Path) -> None:
    result = run_registry(site, """
        import sys
        r.architecture_names()
        print(json.dumps("toyarch" in sys.modules))
    """)
    assert result is False


def test_verbs_and_pending_architectures(site: Path) -> None:
    result = run_registry(site, """
        served = r.architectures_for("train")
        try:
            r.resolve("tlt-int8-tensorfile", "tensorfile", "toy")
        except TltError as err:
            toy = str(err)
        try:
            r.resolve("tlt-int8-tensorfile", "tensorfile", "pending")
        except TltError as err:
            pending = str(err)
        print(json.dumps({"served": served, "toy": toy, "pending": pending,
                          "alias": r.get_architecture("yolo").name}))
    """)
    assert {"toy", "mask_rcnn", "classification"} <= set(result["served"])
    assert result["toy"] == "tlt-int8-tensorfile toy is not implemented yet (the toy architecture does not serve " \
                            "tlt-int8-tensorfile)."
    assert result["pending"] == "tlt-int8-tensorfile pending is not implemented yet (issue 99)."
    assert result["alias"] == "yolo_v3"


def test_check_architecture_lists_every_missing_attribute() -> None:
    with pytest.raises(RegistryError) as info:
        check_architecture(object(), "pkg:obj")
    for attribute in REQUIRED_ATTRIBUTES:
        assert attribute in str(info.value)
