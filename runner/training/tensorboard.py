"""What a run writes to TensorBoard: per-step and per-epoch scalars, validation figures and hparams."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from runner.metrics import confusion_matrix_figure
from runner.training.plots import ShownExample, examples_figure

TENSORBOARD_DIR = "tensorboard"  # in the run dir


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD_DIR


def open_writer(run_dir: str | Path, purge_step: Optional[int] = None) -> SummaryWriter:
    """The run's event writer; a resumed run passes its step so events logged after that step are dropped."""
    return SummaryWriter(str(tensorboard_dir(run_dir)), purge_step=purge_step)


def log_step(writer: SummaryWriter, step: int, *, loss: float, grad_norm: float, lr: float, images: int,
             seconds: float) -> None:
    """The step's loss, gradient norm and LR, and the images per second since the last logged step."""
    writer.add_scalar("train/loss_step", loss, step)
    writer.add_scalar("train/grad_norm", grad_norm, step)
    writer.add_scalar("train/lr", lr, step)
    writer.add_scalar("train/images_per_s", images / max(seconds, 1e-9), step)


# epoch stats shown under another tag: the history's name is kept for metrics.json readers
_EPOCH_TAGS = {"train/samples_per_s": "epoch/images_per_s"}


def log_epoch(writer: SummaryWriter, step: int, stats: dict[str, float]) -> None:
    """Every `split/name` value of the epoch's stats, its LR, throughput and number."""
    for key, value in stats.items():
        if "/" in key:
            writer.add_scalar(_EPOCH_TAGS.get(key, key), value, step)
    writer.add_scalar("epoch/lr", stats["lr"], step)
    writer.add_scalar("epoch/epoch", stats["epoch"], step)
    writer.flush()


def log_validation_figures(writer: SummaryWriter, step: int, confusion: np.ndarray, sequences: int,
                           examples: Sequence[ShownExample], labels: Sequence[str] | None = None) -> None:
    """The annotated confusion matrix (classes `labels`, default digits) of `sequences` samples and a grid of
    `examples` (misreads first)."""
    writer.add_figure("val/confusion_matrix", confusion_matrix_figure(confusion, sequences=sequences, labels=labels),
                      step)
    if examples:
        writer.add_figure("val/examples", examples_figure(examples), step)


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
