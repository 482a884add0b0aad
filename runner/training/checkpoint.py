"""Checkpoints: atomic writes, retention, and safe self-contained loading.

A checkpoint is a dict of plain Python values and tensors, so it loads with
`torch.load(..., weights_only=True)` (no pickled code runs). It carries everything inference
needs (model config, charset, preprocessing size) and, for resume, the full training state. The model is
rebuilt with the charset the checkpoint stores (`Charset.signature`), never with the reader's.
"""

from __future__ import annotations

import logging
import pickle
import re
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from runner import __version__
from runner.charset import DEFAULT_CHARSET, Charset, charset_from_stored
from runner.errors import CheckpointError
from runner.outputs import atomic_path
from runner.stored import FORMAT_VERSION, check_stored_layout, upgrade

log = logging.getLogger(__name__)

FORMAT = "khmer-digits-ocr.checkpoint"


def git_commit() -> str:
    """The commit of the code that wrote a checkpoint ('unknown' outside a git checkout)."""
    try:
        root = Path(__file__).resolve().parent.parent.parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        if out.returncode == 0 and commit:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def atomic_save(payload: dict, path: Path) -> None:
    """torch.save through `atomic_path`: a crash or a full disk while saving leaves the previous file
    intact, never a truncated one."""
    with atomic_path(Path(path)) as temporary, open(temporary, "wb") as handle:
        torch.save(payload, handle)


def build_checkpoint(*, model: torch.nn.Module, epoch: int, global_step: int, metrics: dict[str, float],
                     config_yaml: str, preprocess: dict[str, Any], training_state: Optional[dict] = None,
                     commit: str = "unknown") -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "runner_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "torch_version": str(torch.__version__),
        "model": {"name": model.name, "head": model.head, "config": model.config_dict()},
        "charset": getattr(model, "charset", DEFAULT_CHARSET).signature(),
        "preprocess": {"bucketing": False, "text_crop": False, **preprocess},
        "calibration": None,  # set at the end of training (runner.calibration.fit_calibration)
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": int(epoch),
        "global_step": int(global_step),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "config_yaml": config_yaml,
        "training_state": training_state,
    }


# Where a run dir keeps its checkpoints: <run dir>/checkpoints/{best,last,epoch_NNN}.pt. Everything that
# writes, finds or names a run's checkpoint goes through the functions below.
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_KINDS = ("best", "last")  # best: inference only; last: the resumable training state


def checkpoints_dir(run_dir: str | Path) -> Path:
    """The folder of a run dir that holds its checkpoints."""
    return Path(run_dir) / CHECKPOINTS_DIR


def checkpoint_file(directory: str | Path, which: str) -> Path:
    """best.pt or last.pt in a checkpoints folder."""
    if which not in CHECKPOINT_KINDS:
        raise ValueError(f"which must be one of {CHECKPOINT_KINDS}, got {which!r}")
    return Path(directory) / f"{which}.pt"


def run_checkpoint(run_dir: str | Path, which: str = "best") -> Path:
    """Where a run dir keeps its best or its last (resumable) checkpoint."""
    return checkpoint_file(checkpoints_dir(run_dir), which)


def resolve_checkpoint_path(path: str | Path, prefer: tuple[str, ...] = CHECKPOINT_KINDS) -> Path:
    """Accept a .pt file, or a run dir (or its checkpoints folder): its first checkpoint of `prefer` that exists."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = [run_checkpoint(path, which) for which in prefer] + [checkpoint_file(path, which)
                                                                          for which in prefer]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        wanted = " or ".join(f"{CHECKPOINTS_DIR}/{which}.pt" for which in prefer)
        raise CheckpointError(f"{path} is a directory without {wanted}; point at a run dir that finished at least "
                              f"one epoch, or at a .pt file.")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a .pt file or a run dir under outputs/.")
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint safely (weights_only=True). Raises CheckpointError."""
    path = resolve_checkpoint_path(path)
    if _is_torchscript_archive(path):
        raise CheckpointError(f"{path} is a TorchScript archive (python -m runner.export format=torchscript). Such "
                              f"archives carry code, so they are never loaded here; use the .pt checkpoint it was "
                              f"exported from, or an ONNX export (format=onnx).")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's first line suggests weights_only=False, the very thing that would run the file's code:
        # report the line that names the refused object instead
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line), lines[-1] if lines else "")
        raise CheckpointError(
            f"{path} was refused by the safe loader (it contains pickled objects other than tensors and plain "
            f"values, so loading it could run code). Only load checkpoints written by khmer-digits-ocr. "
            f"Detail: {detail}") from error
    except Exception as error:  # torch raises RuntimeError, EOFError, KeyError... for non-checkpoint bytes
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file: {str(error).splitlines()[0]}). "
            f"Use another checkpoint of the run (checkpoints/best.pt, last.pt or epoch_NNN.pt, whichever is "
            f"intact).") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a torch file but not a khmer-digits-ocr checkpoint (no '{FORMAT}' marker); "
                              f"it may be a bare state_dict or another project's file.")
    upgrade(payload, str(path), unversioned=0)
    charset_from_stored(payload.get("charset"), str(path))  # a vocabulary this runner knows, else CheckpointError
    check_stored_layout(payload, str(path))
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{path} has no state_dict of weights; it was edited or is damaged. Use another "
                              f"checkpoint of the run.")
    return payload


def store_calibration(path: Path, calibration: dict[str, Any]) -> None:
    """Add the confidence calibration fitted at the end of training to a checkpoint the run wrote (atomically)."""
    payload = load_checkpoint(path)
    payload["calibration"] = calibration
    atomic_save(payload, path)


def _is_torchscript_archive(path: Path) -> bool:
    """A zip with the `code/` (or `constants.pkl`) entries torch.jit.save writes; a checkpoint has neither."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name or name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def model_from_checkpoint(payload: dict, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild the model a checkpoint describes and load its weights (eval mode, CPU).

    The stored config names a class of this project's registry and is checked option by option
    before anything is built (runner/models/registry.py): a file never chooses what code runs. Its output
    layer follows the stored charset.
    """
    model = model_from_stored_config(payload.get("model"), source, charset_from_stored(payload.get("charset"), source))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError, KeyError, ValueError) as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise CheckpointError(f"{source}: weights do not fit model {payload['model'].get('name')!r} "
                              f"({first[0].strip()}); the file was written for another architecture.") from error
    return model.eval()


def stored_model_options(stored: Any, source: str) -> tuple[type, dict[str, Any]]:
    """(model class, checked options) of a stored `model` entry ({name, head, config}) of a checkpoint or an
    export sidecar; CheckpointError unless the config passes every check of runner/models/registry.py."""
    from runner.errors import ConfigError
    from runner.models.registry import checked_model_options

    config = stored.get("config") if isinstance(stored, dict) else None
    try:
        model_class, options = checked_model_options(config, "model.config")
    except ConfigError as error:
        raise CheckpointError(f"{source}: {error} Nothing was built from it. Use a model written by khmer-digits-ocr "
                              f"(python -m runner, python -m runner.export) that nobody edited.") from error
    if stored.get("head") not in (None, model_class.head):
        raise CheckpointError(f"{source}: model.head is {stored.get('head')!r} but model.config builds a "
                              f"{model_class.head!r} model; the file was edited or is damaged. Use another copy.")
    return model_class, options


def model_from_stored_config(stored: Any, source: str, charset: Charset | None = None) -> torch.nn.Module:
    """The model of a stored `model` entry (for the stored `charset`, default digits), built only after
    `stored_model_options` accepted it."""
    from runner.errors import ConfigError

    model_class, options = stored_model_options(stored, source)
    try:
        return model_class(**options, charset=charset)
    except ConfigError as error:  # a check of the class itself, e.g. the CTC width
        raise CheckpointError(f"{source}: {error}") from error


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Inference entry: (model on `device` in eval mode, checkpoint payload)."""
    payload = load_checkpoint(path)
    model = model_from_checkpoint(payload, str(path)).to(device)
    return model, payload


class CheckpointManager:
    """Writes last.pt, best.pt and every-N-epoch snapshots under `directory`, keeping `keep_n`."""

    def __init__(self, directory: str | Path, *, keep_n: int = 3, every_n_epochs: int = 0,
                 save_last: bool = True) -> None:
        self.directory = Path(directory)
        self.keep_n = keep_n
        self.every_n_epochs = every_n_epochs
        self.save_last = save_last

    @property
    def last_path(self) -> Path:
        return checkpoint_file(self.directory, "last")

    @property
    def best_path(self) -> Path:
        return checkpoint_file(self.directory, "best")

    def save(self, payload: dict, *, epoch: int, is_best: bool) -> list[Path]:
        """Save the epoch's checkpoint where the policy asks; returns the paths written.

        last.pt is written last: it is what resume reads, so a kill between two writes resumes
        from the previous last.pt and replays the epoch, rewriting best.pt and the snapshot too.
        """
        self._remove_stale_temp_files()
        written = []
        if is_best:
            # the best file does not need the resume state: keep it small and inference-only
            atomic_save({**payload, "training_state": None}, self.best_path)
            written.append(self.best_path)
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            path = self.directory / f"epoch_{epoch:03d}.pt"
            atomic_save(payload, path)
            written.append(path)
            self._prune()
        if self.save_last:
            atomic_save(payload, self.last_path)
            written.append(self.last_path)
        return written

    def _remove_stale_temp_files(self) -> None:
        """Temp files of a save that was killed (kill -9, power loss); this run is the dir's only writer."""
        for stale in self.directory.glob(".*.pt.*.tmp"):
            stale.unlink(missing_ok=True)
            log.debug("removed %s left by an interrupted save", stale)

    def snapshots(self) -> list[Path]:
        pattern = re.compile(r"epoch_(\d+)\.pt$")
        found = [p for p in self.directory.glob("epoch_*.pt") if pattern.search(p.name)]
        return sorted(found, key=lambda p: int(pattern.search(p.name).group(1)))

    def _prune(self) -> None:
        for old in self.snapshots()[: -self.keep_n]:
            old.unlink(missing_ok=True)
            log.debug("removed old checkpoint %s", old)
