"""What every entry point shares: the conf/ path for @hydra.main, job status, and human-readable failures."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from runner.errors import LOW_LEVEL_EXIT_CODE, UserError, failure_paragraph, format_user_error
from runner.outputs import write_text_atomic
from runner.schema import CONF_DIR

# Sweep workers (joblib, submitit) unpickle the task, which imports this module, and then resolve
# hydra.sweep.dir: importing runner.config registers its ${run_id:} resolver there first.
import runner.config  # noqa: E402,F401

log = logging.getLogger("runner")
F = TypeVar("F", bound=Callable[[DictConfig], Any])

CONFIG_PATH = str(CONF_DIR)  # every entry point's @hydra.main(config_path=CONFIG_PATH)


def hydra_output_dir() -> Path | None:
    """This job's run dir; None outside Hydra, on DDP ranks > 0 and in a job that keeps no run dir (Hydra's
    `output_subdir: null`, as on those ranks and in predict without save_run): all of them write nothing."""
    if not HydraConfig.initialized() or int(os.environ.get("RANK", "0")) > 0:
        return None
    if HydraConfig.get().output_subdir is None:
        return None
    return Path(HydraConfig.get().runtime.output_dir)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def write_job_status(status: str, error: str | None = None, **extra: Any) -> None:
    """job_status.json in the run dir: what a sweep summary reads for failed and finished jobs."""
    out = hydra_output_dir()
    if out is None:
        return
    payload = {"status": status, "error": error, **extra}
    _write_job_status(out / "job_status.json", payload)


def _write_job_status(path: Path, payload: dict[str, Any]) -> None:
    """Bookkeeping: a full disk here must not hide the error being reported, so it is only logged."""
    try:
        write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False))
    except (OSError, UserError) as error:
        log.warning("could not record the job status in %s: %s", path, error)


def failed_job_value() -> Any:
    """What a failed multirun job returns: NaN, or under the optuna sweeper the worst value.

    hydra-optuna-sweeper (optuna 2.x) aborts the whole study when a trial returns NaN; -inf when
    maximizing (+inf when minimizing) keeps the search going and steers it away from that region.
    """
    sweeper = HydraConfig.get().sweeper if HydraConfig.initialized() else {}
    if "optuna" not in str(sweeper.get("_target_", "")):
        return math.nan
    direction = sweeper.get("direction")

    def worst(one_direction: Any) -> float:
        return -math.inf if "max" in str(one_direction).lower() else math.inf

    return [worst(d) for d in direction] if isinstance(direction, (list, ListConfig)) else worst(direction)


def exit_on_user_error(error: UserError) -> NoReturn:
    """Print a UserError as one paragraph on stderr and exit with its code (2 by default)."""
    log.debug("user error", exc_info=error)
    print(format_user_error(error), file=sys.stderr)
    sys.exit(error.exit_code)


def entry_point(task: F) -> F:
    """Wrap a command (a Hydra task, or a plain main) so failures are one clear paragraph, never a wall
    of traceback.

    Single run: a UserError prints its message and exits with its code (2 by default); any other
    exception (a oneDNN or CUDA failure, a library error) prints one paragraph naming what failed,
    where, the device settings and which to change, writes the traceback to the job's log file,
    and exits with 1. Multirun: any failure is logged with its traceback to the
    job's log, recorded in job_status.json, and the job returns `failed_job_value()`, so the
    remaining jobs run and the sweep summary lists it as a failed row (the sweep then exits non-zero).
    HYDRA_FULL_ERROR=1 re-raises everything untouched. Outside Hydra (an argparse main) nothing is
    written: no run dir exists.
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cfg = args[0] if args and isinstance(args[0], DictConfig) else None
        started = time.time()
        if cfg is not None:
            _save_resolved_config(cfg)
        write_job_status("running")
        try:
            result = task(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - reported, then re-raised or turned into a failed row
            if isinstance(error, SystemExit) and not error.code:
                raise
            message = format_user_error(error) if isinstance(error, UserError) else f"{type(error).__name__}: {error}"
            write_job_status("failed", message, wall_time_s=time.time() - started,
                             traceback=None if isinstance(error, UserError) else traceback.format_exc(limit=20))
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if in_multirun() and isinstance(error, Exception):
                log.error("job failed: %s", message, exc_info=not isinstance(error, UserError))
                return failed_job_value()
            if isinstance(error, UserError):
                exit_on_user_error(error)
            if isinstance(error, Exception):  # oneDNN, CUDA, a library: one paragraph, the traceback in the log
                print(failure_paragraph(error, *_settings_and_advice(cfg), _log_traceback(error)), file=sys.stderr)
                sys.exit(LOW_LEVEL_EXIT_CODE)
            raise
        _update_job_status(status="completed", wall_time_s=time.time() - started)
        return result

    return wrapper  # type: ignore[return-value]


def _settings_and_advice(cfg: DictConfig | None) -> tuple[str, str]:
    """The device settings a low-level failure ran with, and which of them to change first."""
    if cfg is None:
        return "", "If it persists, report it with the traceback (HYDRA_FULL_ERROR=1 prints it)."
    device = cfg.get("device")
    if not isinstance(device, DictConfig):  # evaluate, predict, export: fp32 inference
        settings = f"device={device}, num_threads={cfg.get('num_threads')}"
        return settings, "Try device=cpu or num_threads=1; inference never uses mixed precision."
    from runner.device import decide_amp
    from runner.training.utils import resolve_device

    try:
        resolved = resolve_device(device.name)
        precision = decide_amp(device.amp, resolved).name
    except Exception:  # noqa: BLE001 - the paragraph is about the first failure, not this one
        resolved, precision = None, "undecided"

    def shown(value: Any) -> str:
        return json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)

    settings = (f"device={device.name}, device.amp={device.amp} ({precision} here), device.compile="
                f"{shown(device.compile)}, device.channels_last={shown(device.channels_last)}, device.num_threads="
                f"{shown(device.num_threads)}")
    changes = [change for change, applies in (
        ("device.amp=off (fp32: no bf16/fp16 kernels)", precision != "fp32"),
        ("device.compile=false", bool(device.compile)),
        ("device.channels_last=false", bool(device.channels_last)),
        ("device=cpu", resolved is not None and resolved.type == "cuda")) if applies]
    if not changes:
        return settings, "Try device.num_threads=1; if it persists, report it with the traceback."
    return settings, f"Change the first of these that applies and run again: {'; '.join(changes)}."


def _log_traceback(error: BaseException) -> Path | None:
    """Write the traceback to the job's log file only (not the console); return that file."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            record = logging.LogRecord("runner", logging.ERROR, __file__, 0, "job failed", None,
                                       (type(error), error, error.__traceback__))
            handler.handle(record)
            return Path(handler.baseFilename)
    return None


def _save_resolved_config(cfg: DictConfig) -> None:
    """.hydra/config_resolved.yaml beside Hydra's own (unresolved) config.yaml."""
    out = hydra_output_dir()
    if out is None or not (out / ".hydra").is_dir():
        return
    try:
        OmegaConf.save(cfg, out / ".hydra" / "config_resolved.yaml", resolve=True)
    except Exception:  # noqa: BLE001 - an unresolvable value is reported by the task's own validation
        pass


def _update_job_status(**fields: Any) -> None:
    out = hydra_output_dir()
    if out is None:
        return
    path = out / "job_status.json"
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        current = {}
    current = current if isinstance(current, dict) else {}  # a stored file is data: anything else is replaced
    current.update(fields)
    _write_job_status(path, current)
