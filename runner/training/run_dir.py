"""A run dir belongs to one run: a fresh run never starts in a dir that holds another run's checkpoint.

The check runs twice: as a Hydra callback before Hydra writes anything into the dir (`.hydra/`, the
log file, job_status.json), so a refused run leaves the earlier run's records as they were, and in
the trainer, for runs started in Python (`train(cfg)`, notebooks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from runner.errors import UserError
from runner.training.checkpoint import run_checkpoint


class RunDirInUse(UserError):
    """A fresh run was started in a run dir that already holds another run's checkpoint."""


def check_run_dir_free(output_dir: Path, resume: Optional[str]) -> None:
    """RunDirInUse when `output_dir` holds a run's checkpoints/last.pt and this run does not resume."""
    last = run_checkpoint(output_dir, "last")
    if not resume and last.is_file():
        raise RunDirInUse(
            f"{output_dir} already holds a run (its checkpoint {last}); a fresh run here would overwrite it, so "
            f"nothing was written there. Continue that run with: python -m runner <same overrides> resume=auto "
            f"hydra.run.dir={output_dir}. To start a new run, leave out hydra.run.dir (every run gets its own dir) "
            f"or point it at an empty folder.")


class RunDirGuard(Callback):
    """Hydra callback (conf/train.yaml): refuse a taken run dir before the job's files are written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from runner.cli import exit_on_user_error  # the entry points' reporter; cli imports the trainer

        try:
            check_run_dir_free(Path(config.hydra.run.dir), config.get("resume"))
        except UserError as error:  # before the task's own entry_point: Hydra would print a traceback
            exit_on_user_error(error)
