"""The training state a checkpoint carries, and resume: putting every piece of it back exactly."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from omegaconf import OmegaConf

from runner.charset import charset_from_stored
from runner.errors import CheckpointError
from runner.training.budget import SchedulePlan
from runner.training.checkpoint import build_checkpoint, load_checkpoint, resolve_checkpoint_path, run_checkpoint
from runner.training.distributed import unwrap
from runner.training.run_dir import check_run_dir_free

if TYPE_CHECKING:
    from runner.training.base_trainer import BaseTrainer

log = logging.getLogger("runner.trainer")


def checkpoint_payload(trainer: BaseTrainer, metrics: dict[str, float]) -> dict:
    """The checkpoint of the trainer's current state: the model for inference, and all that resume restores."""
    training_state = {
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "early_stopping": trainer.early_stopping.state_dict(),
        "rng": rng_state(),
        "step_in_epoch": trainer.step_in_epoch,
        "batch_sampler": batch_sampler_state(trainer.train_loader),
        "partial_epoch": trainer.partial_epoch,
        "history": trainer.history,
        "elapsed_s": trainer.elapsed_s(),
        "plan": trainer.plan.state_dict(),
    }
    config = trainer.config
    return build_checkpoint(model=unwrap(trainer.raw_model), epoch=trainer.epoch, global_step=trainer.global_step,
                            metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                            config_yaml=OmegaConf.to_yaml(config, resolve=True),
                            preprocess={"height": config.data.image_height, "width": config.data.image_width,
                                        "bucketing": bool(config.data.bucketing),
                                        "text_crop": bool(config.data.text_crop)},
                            training_state=training_state, commit=trainer.commit)


def resume_path(resume: Optional[str], output_dir: Path) -> Optional[Path]:
    """The checkpoint `resume` names: none, this run dir's last one (auto), or a file or run dir's last one.

    A fresh run (no resume) in a run dir that holds another run's checkpoint is refused first.
    """
    check_run_dir_free(output_dir, resume)
    if not resume:
        return None
    if resume == "auto":
        last = run_checkpoint(output_dir, "last")
        if last.is_file():
            return last
        log.info("resume=auto: no checkpoint in %s yet, starting fresh", last.parent)
        return None
    return resolve_checkpoint_path(resume, prefer=("last",))


def resume(trainer: BaseTrainer) -> bool:
    """Restore the trainer from the checkpoint config.resume names; False when there is none to resume from."""
    path = resume_path(trainer.config.resume, trainer.output_dir)
    if path is None:
        return False
    payload = load_checkpoint(path, map_location="cpu")
    state = payload.get("training_state")
    if state is None:
        raise CheckpointError(f"{path} holds weights only (a best.pt or exported checkpoint), not a resumable "
                              f"training state; resume from checkpoints/last.pt instead.")
    stored, model = payload["model"], unwrap(trainer.raw_model)
    stored_charset = charset_from_stored(payload["charset"], str(path))
    if stored_charset != trainer.charset:
        raise CheckpointError(f"{path} was trained with {stored_charset}, but this run sets "
                              f"charset={trainer.charset.name}; resume with charset={stored_charset.name} (the "
                              f"original run's), or start a new run.")
    if stored["config"] != model.config_dict():
        raise CheckpointError(f"{path} was written for model {stored['name']!r} with a different configuration than "
                              f"this run's model {model.name!r}; resume with the same model=... and "
                              f"data size settings as the original run.")
    try:
        if not isinstance(state, dict):
            raise TypeError(f"training_state is a {type(state).__name__}, not a mapping")
        _load_training_state(trainer, payload, state)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as error:
        raise CheckpointError(f"{path} holds a damaged training state ({type(error).__name__}: {error}); "
                              f"resume from another checkpoint of the run (epoch_NNN.pt) or start afresh in a "
                              f"new run dir.") from error
    # mid-epoch, the batches already trained on are skipped: they must be the very same batches
    current = batch_sampler_state(trainer.train_loader)
    if trainer.step_in_epoch and state.get("batch_sampler", current) != current:
        raise CheckpointError(f"{path} was saved mid-epoch while training on other batches (data, image widths, "
                              f"data.batch_size or seed differ); resume with the data settings of the original "
                              f"run.")
    log.info("resumed from %s at epoch %d (step %d%s)", path, trainer.epoch, trainer.global_step,
             f", batch {trainer.step_in_epoch} of the epoch" if trainer.step_in_epoch else "")
    return True


def _load_training_state(trainer: BaseTrainer, payload: dict, state: dict) -> None:
    unwrap(trainer.raw_model).load_state_dict(payload["state_dict"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    trainer.early_stopping.load_state_dict(state["early_stopping"])
    trainer.epoch, trainer.global_step = int(payload["epoch"]), int(payload["global_step"])
    trainer.step_in_epoch = int(state["step_in_epoch"])
    trainer.partial_epoch = state.get("partial_epoch")
    trainer.history = list(state["history"])
    trainer.elapsed_before_resume = float(state.get("elapsed_s", 0.0))
    if state.get("plan"):
        trainer.plan, trainer.resumed_plan = SchedulePlan.from_state(state["plan"]), True
    set_rng_state(state["rng"])


def batch_sampler_state(loader: object) -> Optional[dict]:
    """The width-bucketing sampler's state (data.bucketing), saved so a resume checks it gets the same batches."""
    sampler = getattr(loader, "batch_sampler", None)
    return sampler.state_dict() if hasattr(sampler, "state_dict") else None


def rng_state() -> dict:
    """Python, NumPy, torch (and CUDA) random states as tensors and plain values (weights_only-loadable)."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Put back the random states `rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
