"""runner/cli.py through the real command line: nothing is lost on kill -9, SIGTERM, bad input or concurrent runs.

Atomic saves under a failing fsync, unreadable/foreign/crafted checkpoints (tests/training/test_checkpoint.py),
invalid config values (tests/test_config.py), in-process resume exactness (tests/training/test_state.py) and
SIGINT/SIGTERM, NaN/Inf losses and out of memory in the trainer (tests/training/test_guards.py) are covered
there; here the same failures are driven through `python -m runner` and its entry point.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from runner.config import CONF_DIR, register_configs
from runner.models import create_model
from runner.training.checkpoint import atomic_save, build_checkpoint, load_checkpoint
from training.helpers import DIGITS, assert_same_final_state, comparable

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- run dirs
def test_run_dirs_get_a_unique_suffix_that_a_sweep_shares_with_its_jobs():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        first, second = (compose("train", return_hydra_config=True) for _ in range(2))
        job = compose("train", ["seed=7"], return_hydra_config=True)
    pattern = r"/default/(multirun/)?\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}-[0-9a-f]{6}$"
    assert re.search(pattern, first.hydra.run.dir) and re.search(pattern, first.hydra.sweep.dir)
    assert first.hydra.run.dir == first.hydra.run.dir  # resolved once per launch
    assert first.hydra.run.dir != second.hydra.run.dir
    OmegaConf.copy_cache(from_config=first, to_config=job)  # what Hydra does for each multirun job
    assert job.hydra.sweep.dir == first.hydra.sweep.dir


def runner_command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "runner", *overrides]


def quiet_env() -> dict:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def test_two_runs_started_in_the_same_second_get_their_own_dirs(tmp_path):
    # both fail validation right after Hydra created their run dirs: cheap, and enough to see the dirs
    jobs = [subprocess.Popen(runner_command(f"paths.output_root={tmp_path}", "trainer.max_epochs=0", f"seed={seed}"),
                             cwd=REPO, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for seed in (1, 2)]
    for job in jobs:
        assert job.wait(timeout=120) == 2 and "trainer.max_epochs must be > 0" in job.stderr.read()
    run_dirs = sorted(tmp_path.glob("default/*/*"))
    assert len(run_dirs) == 2
    seeds = sorted(re.search(r"seed=(\d)", (d / ".hydra" / "overrides.yaml").read_text()).group(1) for d in run_dirs)
    assert seeds == ["1", "2"]
    assert all(json.loads((d / "job_status.json").read_text())["status"] == "failed" for d in run_dirs)


@pytest.mark.slow
def test_joblib_multirun_jobs_never_share_a_run_dir(tmp_path):
    command = runner_command("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "debug=fast", "model=ctc_small",
                             f"paths.output_root={tmp_path}", "trainer.limit_train_batches=1",
                             "trainer.limit_val_batches=1", "seed=1,2")
    result = subprocess.run(command, cwd=REPO, env=quiet_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = tmp_path.glob("debug_fast/multirun/*/*")
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    seeds = set()
    for job in ("0", "1"):
        assert json.loads((sweep / job / "job_status.json").read_text())["status"] == "completed"
        seeds.add(load_checkpoint(sweep / job / "checkpoints" / "last.pt")["config_yaml"].split("seed: ")[1].split()[0])
    assert seeds == {"1", "2"}


# --------------------------------------------------------------------------- kill -9 and signals through the CLI
KILL_RUN = ("debug=fast", "model=ctc_small", "data.bucketing=true", "trainer.max_epochs=3",
            "trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.progress_bar=true")


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended (rc={process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class CliRun:
    """One `python -m runner` process in `run_dir`; its stderr (progress bars, errors) goes to a file."""

    def __init__(self, run_dir: Path, name: str, *extra: str) -> None:
        self.stderr_path = run_dir.parent / f"{run_dir.name}.{name}.stderr"
        self.process = subprocess.Popen(
            runner_command(*KILL_RUN, f"paths.output_root={run_dir.parent}", f"hydra.run.dir={run_dir}", *extra),
            cwd=REPO, env=quiet_env(), stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"))

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def shows_batch(self, epoch: int, batch: int) -> Callable[[], bool]:
        bar = re.compile(rf"epoch {epoch}/3:[^\r\n]*\| {batch}/3 ")
        return lambda: bool(bar.search(self.stderr()))

    def kill(self, sig: int = signal.SIGKILL) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=300)


@pytest.mark.slow
def test_kill_9_at_any_point_then_resume_auto_ends_identical_to_an_uninterrupted_run(tmp_path):
    straight = CliRun(tmp_path / "straight", "straight")  # runs alongside; CPU results do not depend on timing
    run_dir = tmp_path / "killed"
    last = run_dir / "checkpoints" / "last.pt"

    first = CliRun(run_dir, "fresh")
    wait_for(lambda: last.exists(), first.process, "the epoch-1 checkpoint")
    first.kill()  # right after the epoch-1 checkpoints

    stopped = CliRun(run_dir, "sigterm", "resume=auto")
    wait_for(stopped.shows_batch(2, 1), stopped.process, "batch 1 of epoch 2")
    assert stopped.kill(signal.SIGTERM) == 130
    assert f"resume={last} hydra.run.dir={run_dir}" in " ".join(stopped.stderr().split())
    step = load_checkpoint(last)["training_state"]["step_in_epoch"]
    assert 0 < step < 3

    mid_epoch = CliRun(run_dir, "mid-epoch", "resume=auto")
    wait_for(mid_epoch.shows_batch(2, step + 1), mid_epoch.process, f"batch {step + 1} of epoch 2")
    mid_epoch.kill()  # after a mid-epoch resume, before the epoch's checkpoint

    for name in ("epoch-2", "epoch-3"):  # right after the epoch checkpoint; the last one during the final evaluation
        before = file_identity(last)
        run = CliRun(run_dir, name, "resume=auto")
        wait_for(lambda: file_identity(last) != before, run.process, f"the {name} checkpoint")
        run.kill()

    finish = CliRun(run_dir, "finish", "resume=auto")
    assert finish.process.wait(timeout=300) == 0, finish.stderr()[-2000:]
    assert straight.process.wait(timeout=300) == 0, straight.stderr()[-2000:]

    assert_same_final_state(tmp_path / "straight" / "checkpoints" / "last.pt", last)
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    actual = json.loads((run_dir / "metrics.json").read_text())
    assert comparable(actual["history"]) == comparable(expected["history"])
    for key in ("final_metrics", "extra_val_metrics", "best_epoch", "best_metric", "epochs_completed", "global_step"):
        assert actual[key] == expected[key], key
    assert not list(last.parent.glob(".*.tmp"))  # temp files of killed saves are cleaned up


# --------------------------------------------------------------------------- bad input through the command line
def write_images(folder: Path, labels: list[tuple[str, str]], corrupt: tuple[str, ...] = ()) -> Path:
    """A data.kind=folder dataset: one small PNG per label line (except missing ones), plus corrupt files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, _ in labels:
        if name not in corrupt and not name.startswith("missing"):
            Image.fromarray((rng.random((24, 80)) * 255).astype(np.uint8)).save(folder / name)
    for name in corrupt:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (folder / "labels.tsv").write_text("".join(f"{name}\t{text}\n" for name, text in labels), encoding="utf-8")
    return folder


GOOD_LABELS = [(f"{i}.png", DIGITS[i] * 3) for i in range(6)]


def folder_data(tmp: Path, labels=GOOD_LABELS, corrupt: tuple[str, ...] = ()) -> list[str]:
    return ["data=folder", f"data.dir={write_images(tmp / 'images', labels, corrupt)}", "model=ctc_small",
            "device=cpu", "data.batch_size=4"]


def checkpoint_file(path: Path, preset: str = "ctc_small", resumable: bool = True, **changes) -> Path:
    torch.manual_seed(0)
    payload = build_checkpoint(model=create_model(preset), epoch=1, global_step=2, metrics={}, config_yaml="",
                               preprocess={"height": 32, "width": 128},
                               training_state={"optimizer": {}} if resumable else None)
    atomic_save({**payload, **changes}, path)
    return path


def earlier_run(tmp: Path, **checkpoint_changes) -> Path:
    """A run dir holding a finished run's checkpoints and metrics."""
    run_dir = tmp / "outputs" / "default" / "2026-01-01" / "00-00-00-abc123"
    checkpoint_file(run_dir / "checkpoints" / "last.pt", **checkpoint_changes)
    checkpoint_file(run_dir / "checkpoints" / "best.pt", resumable=False)
    (run_dir / "metrics.json").write_text('{"best_metric": 0.5}')
    return run_dir


def truncated_last(tmp: Path) -> Path:
    run_dir = earlier_run(tmp)
    last = run_dir / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])
    return run_dir


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def crafted_pickle(tmp: Path) -> Path:
    _Exploit.marker = tmp / "code-ran"
    path = tmp / "evil.pt"
    torch.save({"format": "khmer-digits-ocr.checkpoint", "payload": _Exploit()}, path, pickle_module=pickle)
    return path


def not_a_checkpoint(tmp: Path) -> Path:
    torch.save({"weight": torch.zeros(2)}, tmp / "state_dict.pt")
    return tmp / "state_dict.pt"


def resume(run_dir: Path) -> list[str]:
    return ["resume=auto", f"hydra.run.dir={run_dir}"]


# case: (overrides built in a fresh tmp dir, text the error must contain)
BAD_INPUT: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "config: wrong type": (lambda t: ["trainer.max_epochs=many"],
                           "Value 'many' of type 'str' could not be converted to Integer"),
    "config: negative value": (lambda t: ["optimizer.lr=-0.001"], "optimizer.lr must be > 0, got -0.001"),
    "config: zero value": (lambda t: ["trainer.max_epochs=0"], "trainer.max_epochs must be > 0, got 0"),
    "config: unknown group option": (lambda t: ["optimizer=adamx"], "Could not find 'optimizer/adamx'"),
    "config: incompatible model and loss": (lambda t: ["model=ctc_small", "loss=crossentropy"],
                                            "loss=crossentropy does not fit model=ctc_small"),
    "config: missing required path": (lambda t: ["data=folder"], "data.dir is required for data.kind=folder"),
    "data: missing metadata": (lambda t: [f"data.dir={(t / 'empty').mkdir() or t / 'empty'}"],
                               "empty/metadata.yaml does not exist"),
    "data: empty split": (lambda t: folder_data(t, labels=[]), "lists no images"),
    "data: missing image": (lambda t: folder_data(t, GOOD_LABELS + [("missing.png", "០")]), "missing.png does not exist"),
    "data: corrupt image": (lambda t: folder_data(t, corrupt=("3.png",)), "3.png cannot be decoded"),
    "data: bad label": (lambda t: folder_data(t, GOOD_LABELS + [("6.png", "12")]),
                        "labels.tsv:7: label '12' has characters '1' (U+0031), '2' (U+0032) not in charset 'digits'"),
    "data: too long label": (lambda t: folder_data(t, GOOD_LABELS + [("6.png", "០" * 9)]),
                             "labels.tsv:7: label '០០០០០០០០០' has 9 characters, more than max_length=8"),
    "data: no Khmer font": (lambda t: ["data=onthefly", f"data.fonts_dir={(t / 'fonts').mkdir() or t / 'fonts'}",
                                       "data.use_package_font=false", "data.use_system_fonts=false"],
                            "no usable Khmer font"),
    "checkpoint: missing file": (lambda t: folder_data(t) + [f"resume={t / 'nope.pt'}"], "nope.pt does not exist"),
    "checkpoint: truncated": (lambda t: folder_data(t) + resume(truncated_last(t)), "truncated or not a torch file"),
    "checkpoint: other model": (lambda t: folder_data(t) + resume(earlier_run(t, preset="small")),
                                "was written for model 'small'"),
    "checkpoint: other charset": (lambda t: folder_data(t) + resume(earlier_run(t, charset={"tokens": ["a", "b"]})),
                                  "different charset"),
    "checkpoint: not a checkpoint": (lambda t: folder_data(t) + [f"resume={not_a_checkpoint(t)}"],
                                     "not a khmer-digits-ocr checkpoint"),
    "checkpoint: crafted pickle": (lambda t: folder_data(t) + [f"resume={crafted_pickle(t)}"],
                                   "could run code). Only load checkpoints written by khmer-digits-ocr. Detail: Trying "
                                   "to load unsupported GLOBAL posix.system"),
    "checkpoint: weights only": (lambda t: folder_data(t) + [f"resume={earlier_run(t)}/checkpoints/best.pt"],
                                 "holds weights only"),
    "run dir: another run's checkpoints, no resume": (
        lambda t: folder_data(t) + [f"hydra.run.dir={earlier_run(t)}"], "a fresh run here would overwrite it"),
}
HYDRA_BOOKKEEPING = (".hydra", "train.log", "job_status.json")


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(part in HYDRA_BOOKKEEPING for part in p.relative_to(root).parts)}


@pytest.fixture
def run_cli(run_entry):
    """`python -m runner ...` in this process: (exit code, stderr)."""
    def invoke(*overrides: str) -> tuple[int, str]:
        code, _, stderr = run_entry("runner", *overrides)
        return code, stderr

    return invoke


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_paragraph_exits_nonzero_and_writes_over_nothing(case, tmp_path, run_cli):
    build_overrides, expected = BAD_INPUT[case]
    earlier = earlier_run(tmp_path / "other")  # an unrelated earlier run under the same output root
    overrides = build_overrides(tmp_path)
    before = snapshot(tmp_path)
    code, stderr = run_cli(f"paths.output_root={earlier.parents[2]}", *overrides)
    assert code in (1, 2), stderr  # 1: Hydra rejected the command line, 2: the runner did
    assert expected in " ".join(stderr.split()), stderr
    assert "Traceback" not in stderr and "weights_only` set to `False`" not in stderr
    if code == 2:
        assert stderr.startswith("error (") and len(stderr.strip().split("\n\n")) == 1
    after = snapshot(tmp_path)
    assert {p: after.get(p) for p in before} == before, "an existing file was changed or removed"
    assert not (tmp_path / "code-ran").exists()


def test_bad_input_through_a_real_process_exits_2_with_the_paragraph_only(tmp_path):
    run_dir = truncated_last(tmp_path)
    before = (run_dir / "checkpoints" / "last.pt").read_bytes()
    result = subprocess.run(runner_command(*folder_data(tmp_path), *resume(run_dir)), cwd=REPO, env=quiet_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error (CheckpointError):") and "truncated" in result.stderr
    assert "Traceback" not in result.stderr
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == before
