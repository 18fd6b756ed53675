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
        def spec_message(self): return dict
        def default_spec(self): return ""
        def validate(self, spec): return None
        def build(self, spec, classes=None): return None
        def label_encoder(self, spec): return None
        def loss(self, spec): return None
        def post_process(self, spec): return None
        def export_outputs(self, spec): return ["out"]
        def train_plan(self, spec): return None
        def training_data(self, spec, *, batch_size, seed=None, strict=False): return None
        def metrics(self, spec): return []

    class Broken:
        name = "broken"

    class Misnamed(Toy):
        name = "other"
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
    install_plugin(tmp_path, {"toy": "toyarch:Toy", "broken": "toyarch:Broken", "misnamed": "toyarch:Misnamed"})
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
        ("broken", "architecture from 'toyarch:Broken' lacks spec_message"),
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


def test_check_architecture_lists_every_missing_attribute() -> None:
    with pytest.raises(RegistryError) as info:
        check_architecture(object(), "pkg:obj")
    for attribute in REQUIRED_ATTRIBUTES:
        assert attribute in str(info.value)
