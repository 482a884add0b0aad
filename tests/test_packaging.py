"""pyproject.toml and runner/schema.py: the wheel carries every package, conf/ and the shipped model, and finds conf/."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def setuptools_table() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_runner_package_and_conf_travel_in_the_wheel():
    packages = set(setuptools_table()["packages"])
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "runner").rglob("__init__.py")}
    assert found | {"runner.conf"} == packages
    assert setuptools_table()["package-dir"] == {"runner.conf": "conf"}


def test_an_installed_copy_without_a_checkout_finds_its_own_conf(tmp_path):
    """The layout of an installed wheel: site-packages/runner/ with conf/ inside it, no conf/ beside it."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "runner", site / "runner", ignore=shutil.ignore_patterns("__pycache__", "shipped"))
    shutil.copytree(REPO / "conf", site / "runner" / "conf")
    found = subprocess.run([sys.executable, "-c", "from runner.schema import CONF_DIR; print(CONF_DIR)"], cwd=tmp_path,
                           env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == site / "runner" / "conf"
