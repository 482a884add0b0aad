"""Makefile targets whose command line is a promise: `make -n` shows what would run."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def dry_run(target: str, *variables: str, env: dict | None = None) -> str:
    """The line of `make -n target` that runs `target` (also when the tests themselves run under make)."""
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    result = subprocess.run(["make", "--no-print-directory", "-n", target, *variables], cwd=REPO, capture_output=True,
                            text=True, timeout=60,
                            env={**{k: v for k, v in os.environ.items() if k not in outer}, **(env or {})})
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if f"bin/{target}" in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_tensorboard_serves_localhost_unless_another_host_is_named():
    assert dry_run("tensorboard").endswith("--logdir outputs --host localhost")
    assert dry_run("tensorboard", env={"HOST": "this-machine.example"}).endswith("--host localhost")  # zsh sets HOST
    assert dry_run("tensorboard", "HOST=0.0.0.0").endswith("--host 0.0.0.0")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_report_evaluates_the_named_run_and_is_listed_in_help():
    result = subprocess.run(["make", "--no-print-directory", "-n", "report", "ARGS=checkpoint=outputs/run split=val_hard"],
                            cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith("-m runner.evaluate checkpoint=outputs/run split=val_hard")
    listed = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "report.html" in listed.stdout
