"""Typed schemas of the training groups: conf/trainer, conf/optimizer and conf/scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from runner.errors import require
from runner.metrics import MONITORABLE_METRICS
from runner.schema import help_field


class Mode(StrEnum):
    """Whether a larger or a smaller monitored value is better."""

    max = "max"
    min = "min"


class LrScaling(StrEnum):
    """How optimizer.lr follows the global batch size (runner.training.schedulers.scaled_lr)."""

    none = "none"
    linear = "linear"
    sqrt = "sqrt"


# --------------------------------------------------------------------------- optimizer
@dataclass
class AdamConfig:
    _target_: str = help_field("torch.optim.Adam or torch.optim.AdamW.", "torch.optim.AdamW")
    _partial_: bool = True
    lr: float = help_field("Peak learning rate (the max LR for one-cycle/warm-up schedules).", 2e-3)
    weight_decay: float = help_field("Weight decay (decoupled for AdamW).", 1e-4)
    betas: list[float] = help_field("Adam betas.", factory=lambda: [0.9, 0.999])
    eps: float = help_field("Adam epsilon.", 1e-8)
    fused: bool = help_field("One fused kernel for the whole step (CPU and CUDA) instead of a loop over parameters. "
                             "false = PyTorch's default implementation.", True)


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = help_field("Peak learning rate.", 0.05)
    weight_decay: float = help_field("L2 weight decay.", 1e-4)
    momentum: float = help_field("Momentum factor.", 0.9)
    nesterov: bool = help_field("Use Nesterov momentum.", True)
    fused: bool = help_field("One fused kernel for the whole step (CPU and CUDA). false = PyTorch's default "
                             "implementation.", True)


# --------------------------------------------------------------------------- scheduler
@dataclass
class SchedulerConfig:
    """Every scheduler factory in runner.training.schedulers takes these plus the optimizer,
    the number of epochs and the optimizer steps per epoch, supplied by the trainer."""

    _target_: str = help_field("Factory in runner.training.schedulers.", "runner.training.schedulers.onecycle")
    _partial_: bool = True
    warmup_fraction: float = help_field("Fraction of all optimizer steps spent warming up (onecycle, warmup_cosine).", 0.15)
    step_size: int = help_field("Epochs between LR decays (steplr).", 10)
    gamma: float = help_field("Multiplicative LR decay (steplr).", 0.5)
    min_lr_ratio: float = help_field("Final/minimum LR as a fraction of optimizer.lr (cosine, onecycle, plateau, warmup_cosine).", 1e-3)
    factor: float = help_field("LR reduction factor when the monitored metric plateaus (plateau).", 0.5)
    patience: int = help_field("Epochs without improvement before reducing LR (plateau).", 2)

    def validate(self) -> None:
        require(0 <= self.warmup_fraction < 1, "scheduler.warmup_fraction", "must be in [0, 1)", self.warmup_fraction)
        require(self.step_size > 0, "scheduler.step_size", "must be > 0", self.step_size)
        require(0 < self.gamma <= 1, "scheduler.gamma", "must be in (0, 1]", self.gamma)
        require(0 < self.factor < 1, "scheduler.factor", "must be in (0, 1)", self.factor)
        require(0 < self.min_lr_ratio <= 1, "scheduler.min_lr_ratio", "must be in (0, 1]", self.min_lr_ratio)
        require(self.patience >= 0, "scheduler.patience", "must be >= 0", self.patience)


# --------------------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    enabled: bool = help_field("Stop when the monitored metric stops improving.", True)
    patience: int = help_field("Epochs without improvement (>= min_delta) before stopping.", 5)
    min_delta: float = help_field("Smallest change that counts as an improvement.", 1e-4)
    restore_best_weights: bool = help_field("Load the best epoch's weights before the final evaluation.", True)
    best_tolerance: float = help_field(
        "The best checkpoint is the latest epoch within this of the best monitored value seen: later epochs have "
        "trained longer, and 0.001 is 2 of the 2,000 val images, below the noise. 0 = ties only.", 1e-3)


@dataclass
class CheckpointConfig:
    every_n_epochs: int = help_field("Also keep epoch_NNN.pt every N epochs (0 = never).", 0)
    keep_n: int = help_field("How many epoch_NNN.pt files to keep (newest first).", 3)
    save_last: bool = help_field("Write checkpoints/last.pt after every epoch (needed for resume).", True)


@dataclass
class TrainerConfig:
    _target_: str = help_field("Trainer class.", "runner.training.OCRTrainer")
    _partial_: bool = True
    max_epochs: int = help_field("Upper bound on epochs.", 8)
    max_time_minutes: Optional[float] = help_field(
        "Wall-clock budget of the whole job: data preparation, training and the final evaluation. The LR schedule is "
        "fitted to the speed measured in the first minute of training so it ends annealed when the budget runs out; "
        "a slower machine sees fewer images, never a schedule cut short. null = no budget (max_epochs decides).", 14.0)
    stop_at: Optional[float] = help_field("Stop as soon as the monitored metric reaches this value.", None)
    monitor: str = help_field("Metric that selects the best checkpoint and drives early stopping/plateau: "
                              "<split>/<metric> of a validation split this run has.", "val/seq_accuracy")
    mode: Mode = help_field("max or min for the monitored metric.", Mode.max)
    grad_clip_norm: Optional[float] = help_field("Clip the global gradient norm to this value (null = no clipping, norm still logged).", 5.0)
    accumulate_grad_batches: int = help_field("Optimizer step every k batches (effective batch = k x data.batch_size).", 1)
    lr_scaling: LrScaling = help_field("Scale optimizer.lr with the global batch (data.batch_size x processes x "
                                       "accumulation) relative to reference_batch_size: none, linear or sqrt.",
                                       LrScaling.none)
    reference_batch_size: int = help_field("Global batch size at which optimizer.lr is meant (for lr_scaling).", 64)
    log_every_n_steps: int = help_field("TensorBoard scalar logging interval in optimizer steps.", 25)
    limit_train_batches: Optional[int] = help_field("Use only this many training batches per epoch.", None)
    limit_val_batches: Optional[int] = help_field("Use only this many validation batches.", None)
    overfit_batches: int = help_field("Train and validate on the same first N training batches (debug=overfit).", 0)
    max_nan_batches: int = help_field("Consecutive non-finite losses tolerated (skipped) before the run stops.", 5)
    progress_bar: Optional[bool] = help_field("Per-epoch progress bar; null = only when stderr is a TTY.", None)
    num_image_samples: int = help_field("Validation images shown with predicted vs true text in TensorBoard.", 16)
    num_worst_examples: int = help_field("Worst validation examples written to errors.md.", 25)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def validate(self) -> None:
        """Ranges and the monitored metric; BaseTrainer also calls it, so a trainer built in Python is checked
        before its first step."""
        require(self.max_epochs > 0, "trainer.max_epochs", "must be > 0", self.max_epochs)
        require(self.accumulate_grad_batches > 0, "trainer.accumulate_grad_batches", "must be > 0",
                self.accumulate_grad_batches)
        require(self.grad_clip_norm is None or self.grad_clip_norm > 0, "trainer.grad_clip_norm", "must be > 0 or null",
                self.grad_clip_norm)
        require(self.mode in tuple(Mode), "trainer.mode", "must be max or min", self.mode)
        require(self.lr_scaling in tuple(LrScaling), "trainer.lr_scaling", "must be none, linear or sqrt",
                self.lr_scaling)
        require(self.reference_batch_size > 0, "trainer.reference_batch_size", "must be > 0", self.reference_batch_size)
        es, ckpt = self.early_stopping, self.checkpoint
        require(es.patience >= 0, "trainer.early_stopping.patience", "must be >= 0", es.patience)
        require(es.min_delta >= 0, "trainer.early_stopping.min_delta", "must be >= 0", es.min_delta)
        require(es.best_tolerance >= 0, "trainer.early_stopping.best_tolerance", "must be >= 0", es.best_tolerance)
        require(ckpt.keep_n >= 1, "trainer.checkpoint.keep_n", "must be >= 1", ckpt.keep_n)
        require(ckpt.every_n_epochs >= 0, "trainer.checkpoint.every_n_epochs", "must be >= 0", ckpt.every_n_epochs)
        require(self.log_every_n_steps > 0, "trainer.log_every_n_steps", "must be > 0", self.log_every_n_steps)
        for key in ("max_time_minutes", "limit_train_batches", "limit_val_batches"):
            value = getattr(self, key)
            require(value is None or value > 0, f"trainer.{key}", "must be > 0 or null", value)
        require(self.overfit_batches >= 0, "trainer.overfit_batches", "must be >= 0", self.overfit_batches)
        require(self.max_nan_batches >= 1, "trainer.max_nan_batches", "must be >= 1", self.max_nan_batches)
        require(self.monitor in MONITORABLE_METRICS, "trainer.monitor",
                f"must be one of {', '.join(MONITORABLE_METRICS)}", self.monitor)


def register_training_configs(cs: Any) -> None:
    """Store the schemas conf/trainer, conf/optimizer and conf/scheduler extend."""
    cs.store(group="trainer", name="_trainer_schema", node=TrainerConfig)
    cs.store(group="optimizer", name="_adam_schema", node=AdamConfig)
    cs.store(group="optimizer", name="_sgd_schema", node=SGDConfig)
    cs.store(group="scheduler", name="_scheduler_schema", node=SchedulerConfig)
