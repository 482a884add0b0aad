"""The learning rate: optimizer.lr scaled to the global batch, and schedules built from torch.optim.lr_scheduler.

Each factory is a Hydra `_target_` (instantiated with `_partial_: true`); the trainer completes
it with the optimizer, the epoch count and the optimizer steps per epoch, so configs never
hard-code a step count. Knobs that a schedule does not use are accepted and ignored, which keeps
one typed schema (runner.training.config.SchedulerConfig) for every option.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Optional

from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

log = logging.getLogger("runner.trainer")


def scaled_lr(lr: float, global_batch_size: int, rule: str, reference_batch_size: int) -> float:
    """optimizer.lr scaled to the global batch: none, linear (Goyal et al.) or sqrt."""
    ratio = global_batch_size / reference_batch_size
    factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[rule]
    if factor != 1.0:
        log.info("lr scaled %s: %.3g x %.3g (global batch %d / reference %d) = %.3g", rule, lr, factor,
                 global_batch_size, reference_batch_size, lr * factor)
    return lr * factor


@dataclass
class ScheduledLR:
    """A torch scheduler plus when it steps: every optimizer step or every epoch."""

    scheduler: Any
    interval: str  # "step" or "epoch"
    needs_metric: bool = False
    position: int = 0  # optimizer steps the schedule has taken

    def step_batch(self) -> None:
        self.advance_to(self.position + 1)

    def advance_to(self, step: int) -> None:
        """Move a per-step schedule forward to `step` (a shorter plan skips ahead; it never goes back)."""
        if self.interval != "step":
            return
        while self.position < step:
            self.scheduler.step()
            self.position += 1

    def step_epoch(self, metric: Optional[float]) -> None:
        if self.interval != "epoch":
            return
        if self.needs_metric:
            if metric is not None:
                self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return {**self.scheduler.state_dict(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        # checkpoints before the time-budget plan: one scheduler step per optimizer step
        self.position = int(state.pop("position", state.get("last_epoch", 0) if self.interval == "step" else 0))
        self.scheduler.load_state_dict(state)


def _base_lr(optimizer: Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def steplr(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, step_size: int = 10,
           gamma: float = 0.5, **_: Any) -> ScheduledLR:
    """Multiply the LR by `gamma` every `step_size` epochs."""
    return ScheduledLR(sched.StepLR(optimizer, step_size=step_size, gamma=gamma), "epoch")


def cosine(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, min_lr_ratio: float = 1e-3,
           **_: Any) -> ScheduledLR:
    """Cosine decay from optimizer.lr to min_lr_ratio x lr over the whole run, per step."""
    total = max(1, epochs * steps_per_epoch)
    return ScheduledLR(sched.CosineAnnealingLR(optimizer, T_max=total, eta_min=_base_lr(optimizer) * min_lr_ratio), "step")


def plateau(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, mode: str = "max",
            factor: float = 0.5, patience: int = 2, min_lr_ratio: float = 1e-3, **_: Any) -> ScheduledLR:
    """Reduce the LR when the monitored validation metric stops improving (stepped per epoch)."""
    scheduler = sched.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience,
                                        min_lr=_base_lr(optimizer) * min_lr_ratio)
    return ScheduledLR(scheduler, "epoch", needs_metric=True)


def onecycle(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, warmup_fraction: float = 0.15,
             min_lr_ratio: float = 1e-3, **_: Any) -> ScheduledLR:
    """One-cycle: warm up to optimizer.lr over warmup_fraction of the steps, then anneal (cosine)."""
    div_factor = 25.0
    scheduler = sched.OneCycleLR(
        # OneCycleLR reaches its final LR at step total_steps - 1; the trainer steps epochs x steps_per_epoch times
        optimizer, max_lr=_base_lr(optimizer), total_steps=max(2, epochs * steps_per_epoch + 1),
        pct_start=max(warmup_fraction, 1e-3), div_factor=div_factor,
        final_div_factor=1.0 / (div_factor * min_lr_ratio),
    )
    return ScheduledLR(scheduler, "step")


def warmup_cosine(optimizer: Optimizer, *, epochs: int, steps_per_epoch: int, warmup_fraction: float = 0.05,
                  min_lr_ratio: float = 1e-3, **_: Any) -> ScheduledLR:
    """Linear warm-up from 1% of the LR, then cosine decay to min_lr_ratio x lr, per step."""
    total = max(2, epochs * steps_per_epoch)
    warmup = max(1, int(total * warmup_fraction))
    scheduler = sched.SequentialLR(
        optimizer,
        schedulers=[
            sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup),
            sched.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min=_base_lr(optimizer) * min_lr_ratio),
        ],
        milestones=[warmup],
    )
    return ScheduledLR(scheduler, "step")
