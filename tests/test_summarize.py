"""runner/summarize.py end to end: sweeps, the sweep summary, optuna, joblib, submitit_local, sweep presets.

Sweeps run as subprocesses (`python -m runner -m ...`), as a user runs them, each on debug=fast cut
to one train and one val batch, with outputs under a tmp dir. Presets are checked by composition.
"""

import csv
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.types import RunMode

from runner import summarize
from runner.config import CONF_DIR, compose_config, register_configs, validate
from runner.data.generate import default_workers as available_cores

REPO = Path(__file__).resolve().parents[1]
TINY = ["debug=fast", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1"]
PRESETS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))


def run_sweep(output_root: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run `python -m runner -m TINY overrides` and return the process and its one sweep dir."""
    env = {key: value for key, value in os.environ.items() if key not in ("HYDRA_FULL_ERROR", "KHMER_OCR_OUTPUTS")}
    command = [sys.executable, "-m", "runner", "-m", *TINY, *overrides, f"paths.output_root={output_root}"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    sweep_dirs = [path for path in output_root.glob("*/multirun/*/*") if path.is_dir()]
    assert len(sweep_dirs) == 1, (f"expected one sweep dir under {output_root}, found {sweep_dirs}.\n"
                                  f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}")
    return result, sweep_dirs[0]


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def logged_threads(job_dir: Path) -> int:
    line = next(line for line in (job_dir / "train.log").read_text().splitlines() if "torch threads:" in line)
    return int(line.split("torch threads:")[1].split()[0])


def hydra_config(overrides: list[str]):
    """The composed config with its `hydra` node (mode, sweeper, launcher), as the command line sees it."""
    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


# --- a basic sweep with one good and one failing job ------------------------------------------------

@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    return run_sweep(tmp_path_factory.mktemp("sweep"), "optimizer.lr=1e-3,-1")


def test_multirun_writes_one_dir_per_job_and_a_summary_row_per_job(lr_sweep):
    _, sweep_dir = lr_sweep
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    for name in ("summary.csv", "summary.md", "summary.png"):
        assert (sweep_dir / name).is_file(), name
    rows = summary_rows(sweep_dir)
    assert len(rows) == 2
    best = rows[0]
    assert best["status"] == "completed" and "optimizer.lr=0.001" in best["overrides"]
    assert 0.0 <= float(best["best_val_seq_accuracy"]) <= 1.0 and 0.0 <= float(best["val_cer"])
    assert best["best_epoch"] == "1" and float(best["wall_time_s"]) > 0
    assert Path(best["output_dir"]) == sweep_dir / "0" and (sweep_dir / "0" / "metrics.json").is_file()
    markdown = (sweep_dir / "summary.md").read_text()
    assert "Overrides common to every job: `debug=fast" in markdown and "| 1 | `optimizer.lr=0.001` | completed |" in markdown


def test_a_failed_job_is_a_row_with_its_error_the_others_run_and_the_sweep_exits_nonzero(lr_sweep):
    result, sweep_dir = lr_sweep
    assert result.returncode != 0
    assert "1 of 2 sweep jobs failed" in result.stderr
    failed = summary_rows(sweep_dir)[1]
    assert failed["status"] == "failed" and "optimizer.lr=-1" in failed["overrides"]
    assert "optimizer.lr must be > 0" in failed["error"] and failed["best_val_seq_accuracy"] == ""
    assert "optimizer.lr must be > 0" in (sweep_dir / "summary.md").read_text()


def test_summarize_cli_rebuilds_the_summary(lr_sweep, capsys):
    _, sweep_dir = lr_sweep
    before = summary_rows(sweep_dir)
    for name in ("summary.csv", "summary.md", "summary.png"):
        (sweep_dir / name).unlink()
    assert summarize.main([str(sweep_dir)]) == 0
    assert summary_rows(sweep_dir) == before and (sweep_dir / "summary.png").is_file()
    assert "# Sweep summary" in capsys.readouterr().out


def test_summarize_cli_explains_a_wrong_dir(tmp_path, capsys):
    assert summarize.main([str(tmp_path / "missing")]) == 2
    assert "is not a directory" in " ".join(capsys.readouterr().err.split())


# --- optuna ------------------------------------------------------------------------------------------

def test_optuna_search_feeds_the_returned_metric_to_the_sweeper_and_the_summary(tmp_path):
    result, sweep_dir = run_sweep(tmp_path, "hparams_search=lr_optuna", "hydra.sweeper.n_trials=2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep_dir)
    assert [row["status"] for row in rows] == ["completed", "completed"]
    for knob in ("optimizer.lr=", "optimizer.weight_decay=", "loss.label_smoothing="):
        assert all(knob in row["overrides"] for row in rows), knob
    optuna_result = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert optuna_result["best_value"] == pytest.approx(float(rows[0]["best_val_seq_accuracy"]))


def test_optuna_survives_failed_trials(tmp_path):
    """A failed trial returns the worst value, not NaN (which aborts hydra-optuna-sweeper's study)."""
    result, sweep_dir = run_sweep(tmp_path, "hparams_search=lr_optuna", "hydra.sweeper.n_trials=2",
                                  "optimizer.lr=choice(-1.0)")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (sweep_dir / "optimization_results.yaml").is_file()
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["failed", "failed"]


# --- launchers -----------------------------------------------------------------------------------------

def test_joblib_runs_jobs_in_separate_dirs_splitting_the_cores(tmp_path):
    result, sweep_dir = run_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer.lr=1e-3,3e-4")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary_rows(sweep_dir)
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert sorted(Path(row["output_dir"]).name for row in rows) == ["0", "1"]
    for job in ("0", "1"):  # logged inside the joblib worker process that ran the job
        assert logged_threads(sweep_dir / job) == max(1, available_cores() // min(2, available_cores()))


def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    result, sweep_dir = run_sweep(tmp_path, "hydra/launcher=submitit_local", "optimizer.lr=1e-3,3e-4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["completed", "completed"]
    assert (sweep_dir / ".submitit").is_dir()
    assert logged_threads(sweep_dir / "0") == 1  # both jobs start at once: the cores are split between them


def test_slurm_launcher_preset_composes():
    cfg = hydra_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "optimizer.lr=3e-4"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 120)


# --- presets -------------------------------------------------------------------------------------------

def sweep_points(params) -> list[list[str]]:
    """Every job's overrides of a basic-sweeper `params` block (comma-separated values)."""
    choices = [[f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()]
    return [list(point) for point in itertools.product(*choices)]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes_and_sweep_presets_sweep(preset):
    cfg = compose_config("train", [f"experiment={preset}"])
    validate(cfg)
    assert cfg.experiment_name == preset
    hydra = hydra_config([f"experiment={preset}"]).hydra
    if hydra.mode != RunMode.MULTIRUN:
        assert not hydra.sweeper.get("params"), f"{preset} sets sweeper params but not hydra.mode: MULTIRUN"
        return
    points = sweep_points(hydra.sweeper.params)
    assert len(points) > 1
    for point in points:
        validate(compose_config("train", [f"experiment={preset}", *point]))


def test_compare_models_gives_ctc_models_the_ctc_loss():
    cfg = compose_config("train", ["experiment=compare_models", "model=ctc_small"])
    assert cfg.loss.name == "ctc"


def test_lr_optuna_searches_log_lr_and_maximizes():
    hydra = hydra_config(["hparams_search=lr_optuna"]).hydra
    assert hydra.mode == RunMode.MULTIRUN and hydra.sweeper.direction == "maximize"
    assert hydra.sweeper.params["optimizer.lr"].startswith("tag(log") and len(hydra.sweeper.params) >= 2


def test_the_summary_links_each_jobs_report_when_it_exists(tmp_path):
    for job, with_report in (("0", True), ("1 lr", False)):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={job[0]}\n")
        (tmp_path / job / "metrics.json").write_text('{"monitor": "val/seq_accuracy", "best_metric": 0.5}')
        if with_report:
            (tmp_path / job / "report.html").write_text("<html></html>")
    summary = summarize.summarize(tmp_path) and (tmp_path / "summary.md").read_text(encoding="utf-8")
    rows = {line.split("|")[9].strip(): line.split("|")[10].strip() for line in summary.splitlines()
            if line.startswith("| ") and line[2].isdigit()}
    assert rows == {"0/": "[report](0/report.html)", "1 lr/": "-"}
