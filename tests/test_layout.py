"""The house: what the wheel holds, that it installs beside python-daemon, and that the
package list in pyproject.toml names every package folder."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests import REPO as ROOT

FOLDERS = {f: f"hallwatch.{f}" for f in ("daemon", "sensors", "alerts")}


def _declared() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(pyproject["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_declared() -> None:
    """Each folder with an __init__.py under daemon/, sensors/ and alerts/ is in the wheel's list,
    and the list names nothing else (a new subpackage cannot be left out of the install)."""
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found == _declared()


MAX_LINES = 500


def test_no_module_over_500_lines() -> None:
    """Every Python module of the product and of its tests holds at most 500 lines: a module
    that grows past that holds more than one concept and is split (ruff keeps McCabe <= 15)."""
    long = {
        str(p.relative_to(ROOT)): n
        for folder in (*FOLDERS, "tests")
        for p in (ROOT / folder).rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("hallwatch-*.whl")
    return whl


def test_wheel_holds_the_product_and_no_harness(wheel: Path) -> None:
    """Everything in the wheel is under hallwatch/ (or its metadata): no test, benchmark or fault
    harness, no top-level `daemon`, and the hall screen's static files are there."""
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if not n.startswith("hallwatch-")]
    assert code and all(n.startswith("hallwatch/") for n in code), code
    for harness in ("tests/", "faultload", "fakes.py", "procs.py", "mosquitto.py", "bench.py"):
        assert not [n for n in code if harness in n], harness
    assert any(n.startswith("hallwatch/daemon/web/static/") for n in code)
    assert "hallwatch/daemon/main.py" in code


@pytest.mark.slow
def test_installs_beside_python_daemon_and_survives_its_removal(
    wheel: Path, tmp_path: Path
) -> None:
    """In one fresh venv, python-daemon keeps its top-level `daemon` and hallwatch imports as
    hallwatch.daemon; uninstalling python-daemon leaves hallwatch whole (it used to delete
    hallwatch's daemon/__init__.py)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")

    def pip(*args: str) -> None:
        subprocess.run([py, "-m", "pip", "-q", *args], check=True, capture_output=True)

    pip("install", "python-daemon")
    pip("install", str(wheel))
    probe = (
        "import daemon, hallwatch.daemon.main, hallwatch.daemon.cli.main;"
        "print(hasattr(daemon, 'DaemonContext'), hallwatch.daemon.main.__name__)"
    )
    both = subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert both.stdout.split() == ["True", "hallwatch.daemon.main"], both.stderr
    pip("uninstall", "-y", "python-daemon")
    alone = subprocess.run(
        [py, "-c", "import hallwatch.daemon.main as m; print(m.__name__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert alone.stdout.strip() == "hallwatch.daemon.main", alone.stderr
    cli = subprocess.run(
        [str(venv / "bin" / "hallwatch"), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert cli.returncode == 0 and "demo" in cli.stdout, cli.stderr


def test_import_contracts_hold() -> None:
    """lint-imports passes: the layers and the no-cycle contracts of pyproject.toml are kept."""
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_package_is_in_a_layer() -> None:
    """Each hallwatch.daemon subpackage (and sensors, alerts) has a place in the layers contract."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [c for c in pyproject["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    top = {".".join(p.split(".")[: 3 if ".daemon." in p else 2]) for p in _declared()}
    top = top - {"hallwatch.daemon"} | {"hallwatch.daemon.main"}
    assert top - placed == set(), "add these to a layer in [tool.importlinter]"
