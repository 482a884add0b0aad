"""User-facing errors: one paragraph that names the culprit and says what to do."""

from __future__ import annotations

import textwrap
import traceback
from pathlib import Path
from typing import Optional


class UserError(Exception):
    """A problem with the user's input (config, data, checkpoint, environment).

    Entry points (runner.cli.entry_point) catch it and print its message as one paragraph, without
    a traceback (unless HYDRA_FULL_ERROR=1), then exit with status 2.
    """

    exit_code = 2


class ConfigError(UserError):
    """A config value that is the wrong type, out of range, or incompatible with another."""


class DataError(UserError):
    """A dataset, image, label or font problem."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, foreign or unsafe."""


def require(condition: bool, key: str, requirement: str, value: object) -> None:
    """Raise ConfigError naming `key` unless `condition` holds: the value check of every config schema."""
    if not condition:
        raise ConfigError(f"{key} {requirement}, got {value!r}. Fix it on the command line ({key}=...) or in its "
                          f"YAML file.")


def format_user_error(error: BaseException | str, kind: Optional[str] = None) -> str:
    kind = kind or type(error).__name__
    return textwrap.fill(f"error ({kind}): {error}", width=100, break_long_words=False,
                         break_on_hyphens=False)


LOW_LEVEL_EXIT_CODE = 1
PHASES = {  # the runner's functions a failure is reported under: what the user was waiting for
    "_train_epoch": "a training step", "_validate_epoch": "validation", "_finish": "the final evaluation",
    "build_data_loaders": "data preparation", "write_dataset": "data generation", "fill_cache": "decoding images",
    "decide_amp": "the precision probe", "evaluate": "evaluation", "predict": "prediction", "export": "export",
}
_PACKAGE_DIR = Path(__file__).resolve().parent


def failure_paragraph(error: BaseException, settings: str = "", advice: str = "", log_file: Optional[Path] = None) -> str:
    """One paragraph for a failure that is not a UserError (oneDNN, CUDA, a library bug): what failed, where,
    under which settings, and what to change; the traceback goes to the log, not the console."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if Path(frame.filename).resolve().is_relative_to(_PACKAGE_DIR)]
    origin = "inside PyTorch" if frames and "/torch/" in frames[-1].filename.replace("\\", "/") else "in the runner"
    where = ""
    if ours:
        frame = ours[-1]
        phase = next((PHASES[f.name] for f in reversed(ours) if f.name in PHASES), None)
        where = f" in {phase}" if phase else ""
        where += f" ({frame.name} at {Path(frame.filename).resolve().relative_to(_PACKAGE_DIR.parent)}:{frame.lineno})"
    lines = str(error).strip().splitlines()
    first = lines[0].rstrip(". ") if lines else "(no message)"
    parts = [f"the run failed {origin}{where}: {first}."]
    if settings:
        parts.append(f"It ran with {settings}.")
    if advice:
        parts.append(advice)
    trace_hint = f"The full traceback is in {log_file}" if log_file is not None else "The full traceback is not shown"
    parts.append(f"{trace_hint}; HYDRA_FULL_ERROR=1 prints it here.")
    return format_user_error(" ".join(parts), kind=type(error).__name__)


def instantiate(config, *args, **kwargs):
    """hydra.utils.instantiate, but a UserError raised by the target surfaces as itself.

    Hydra wraps constructor errors in InstantiationException with a traceback-like message; a
    config mistake the target already explained (e.g. loss.label_smoothing out of range) should
    reach the user as that one paragraph.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(config, *args, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
