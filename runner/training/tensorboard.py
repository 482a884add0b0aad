"""What a run writes to TensorBoard: per-step and per-epoch scalars, validation figures and hparams."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

TENSORBOARD_DIR = "tensorboard"  # in the run dir


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


def open_writer(run_dir: str | Path, purge_step: Optional[int] = None) -> SummaryWriter:
    """The run's event writer; a resumed run passes its step so events logged after that step are dropped."""
    return SummaryWriter(str(tensorboard_dir(run_dir)), purge_step=purge_step)


def log_step(writer: SummaryWriter, step: int, *, loss: float, grad_norm: float, lr: float,
             batch_size: int, step_time: float) -> None:
    writer.add_scalar("train/loss_step", loss, step)
    writer.add_scalar("train/grad_norm", grad_norm, step)
    writer.add_scalar("train/lr", lr, step)
    writer.add_scalar("train/samples_per_s_step", batch_size / max(step_time, 1e-9), step)


def log_epoch(writer: SummaryWriter, step: int, stats: dict[str, float]) -> None:
    """Every `split/name` value of the epoch's stats, its LR and number."""
    for key, value in stats.items():
        if "/" in key:
            writer.add_scalar(key, value, step)
    writer.add_scalar("epoch/lr", stats["lr"], step)
    writer.add_scalar("epoch/epoch", stats["epoch"], step)
    writer.flush()


def log_validation_figures(writer: SummaryWriter, step: int, confusion: np.ndarray, sequences: int,
                           images: Sequence[torch.Tensor], pred: Sequence[str], true: Sequence[str]) -> None:
    """The digit confusion matrix of `sequences` samples and a grid of validation images titled 'prediction | truth'."""
    from runner.metrics import confusion_matrix_figure
    from runner.training.plots import examples_figure

    writer.add_figure("val/confusion_matrix", confusion_matrix_figure(confusion, sequences=sequences), step)
    if images:
        writer.add_figure("val/examples", examples_figure(images, pred, true), step)


def log_hparams(writer: SummaryWriter, step: int, config: DictConfig, results: dict[str, Any]) -> None:
    """The run's main settings against its final metrics (TensorBoard's HPARAMS tab)."""
    from torch.utils.tensorboard.summary import hparams

    params = {
        "model": str(config.model.name), "loss": str(config.loss.name),
        "optimizer": str(config.optimizer._target_).split(".")[-1],
        "lr": float(config.optimizer.lr), "weight_decay": float(config.optimizer.weight_decay),
        "scheduler": str(config.scheduler._target_).split(".")[-1], "batch_size": int(config.data.batch_size),
        "accumulate": int(config.trainer.accumulate_grad_batches), "max_epochs": int(config.trainer.max_epochs),
        "amp": str(config.device.amp), "seed": int(config.seed), "train_size": int(config.data.train_size),
    }
    final = results["final_metrics"]
    metric_values = {f"hparams/{k.split('/')[-1]}": float(v) for k, v in final.items()}
    metric_values["hparams/best_epoch"] = float(results["best_epoch"])
    experiment, session_start, session_end = hparams(params, metric_values)
    file_writer = writer._get_file_writer()
    for summary in (experiment, session_start, session_end):
        file_writer.add_summary(summary)
    for key, value in metric_values.items():
        writer.add_scalar(key, value, step)
    writer.flush()
