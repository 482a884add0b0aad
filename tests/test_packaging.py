"""pyproject.toml and runner/schema.py: the wheel carries every package, conf/ and the shipped model, and finds conf/."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from runner.extras import TRAIN_MODULES

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


def optional_dependencies() -> dict[str, list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"base": project["dependencies"], **project["optional-dependencies"]}


def distribution_names(requirements: list[str]) -> set[str]:
    """Normalised names of `requirements` (PEP 503: case and -_. folded); self-references dropped."""
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in requirements}
    return {re.sub(r"[-_.]+", "-", name).lower() for name in names} - {"khmer-digits-ocr"}


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in runner/ (also inside functions) -> the files."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "runner").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "runner":
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_the_base_install_is_what_the_onnx_path_needs_and_the_train_extra_is_what_the_cli_checks():
    extras = optional_dependencies()
    assert distribution_names(extras["base"]) == distribution_names(extras["infer"]) == {"numpy", "pillow",
                                                                                          "onnxruntime"}
    assert distribution_names(extras["train"]) == set(TRAIN_MODULES.values())
    assert {"tensorboard", "matplotlib"} <= distribution_names(extras["train"])


def test_every_import_is_declared_and_every_declared_dependency_is_used():
    extras = optional_dependencies()
    declared = set().union(*(distribution_names(extras[name]) for name in ("base", "train", "onnx")))
    distributions = importlib.metadata.packages_distributions()
    imported = {module: re.sub(r"[-_.]+", "-", distributions[module][0]).lower() for module in third_party_imports()}
    undeclared = {module: files for module, files in third_party_imports().items() if imported[module] not in declared}
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"
    # Used without an import statement of their own: torch.utils.tensorboard needs tensorboard, and
    # torch.onnx.export needs onnxscript.
    used_through_torch = {"tensorboard", "onnxscript"}
    assert declared - set(imported.values()) == used_through_torch


def test_a_cli_job_without_the_train_extra_says_which_extra_to_install(tmp_path):
    """A base install (no hydra, no torch): `python -m runner.predict` names the extra instead of a traceback."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("hydra", "torch"):
                    raise ImportError(name)
        sys.meta_path.insert(0, Blocked())
        import importlib.util
        real_find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name in ("hydra", "torch") else real_find_spec(name, *a)
    """))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "PATH": os.environ["PATH"]}
    for module in ("runner", "runner.predict", "runner.evaluate", "runner.export", "runner.generate",
                   "runner.data.samples", "runner.release", "runner.summarize"):
        done = subprocess.run([sys.executable, "-m", module], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 2, (module, done.stderr[-2000:])
        assert "Traceback" not in done.stderr
        assert "needs the `train` extra" in done.stderr and "torch, hydra-core" in " ".join(done.stderr.split())
        assert "pip install 'khmer-digits-ocr[train]'" in " ".join(done.stderr.split())
