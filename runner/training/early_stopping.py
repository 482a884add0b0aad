"""Early stopping on a monitored metric, with best-weight restore and a history.

Two questions, two rules:
- Which epoch is the best checkpoint? The latest one whose value is within `best_tolerance` of the
  best value seen (0 = ties only). A saturated metric (clean validation near 1.0 in several epochs,
  a few images apart) cannot tell the epochs apart, and the later one has trained longer and, under
  an annealing schedule, ended at a lower learning rate, so it tends to read harder (degraded)
  images better.
- When does patience reset? Only on an improvement by more than `min_delta` over the value of the
  last improvement, so a run creeping up by less than that still stops.
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch


class EarlyStopping:
    def __init__(self, monitor: str = "val/seq_accuracy", mode: str = "max", patience: int = 5,
                 min_delta: float = 0.0, restore_best_weights: bool = True, enabled: bool = True,
                 best_tolerance: float = 0.0) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best_weights, self.enabled = min_delta, restore_best_weights, enabled
        self.best_tolerance = best_tolerance
        self.best: float = -math.inf if mode == "max" else math.inf  # value of the best checkpoint's epoch
        self.peak: float = self.best  # best value seen
        self.reference: float = self.best  # value at the last improvement (patience)
        self.best_epoch: int = 0
        self.wait: int = 0
        self.stopped_epoch: Optional[int] = None
        self.history: list[dict] = []
        self.best_weights: Optional[dict[str, torch.Tensor]] = None

    def is_improvement(self, value: float) -> bool:
        """Better than the last improvement by more than min_delta (resets patience)."""
        if math.isnan(value):
            return False
        if self.mode == "max":
            return value > self.reference + self.min_delta
        return value < self.reference - self.min_delta

    def is_new_best(self, value: float) -> bool:
        """Within best_tolerance of the best value seen (the epoch becomes the best checkpoint)."""
        if math.isnan(value):
            return False
        if self.mode == "max":
            return value >= self.peak - self.best_tolerance
        return value <= self.peak + self.best_tolerance

    def step(self, value: float, epoch: int, model: Optional[torch.nn.Module] = None) -> bool:
        """Record the epoch's metric; return True when training should stop."""
        improved = self.is_improvement(value)
        if self.is_new_best(value):
            self.best, self.best_epoch = float(value), epoch
            self.peak = max(self.peak, self.best) if self.mode == "max" else min(self.peak, self.best)
            if model is not None and self.restore_best_weights:
                self.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if improved:
            self.reference, self.wait = float(value), 0
        else:
            self.wait += 1
        self.history.append({"epoch": epoch, "value": float(value), "best": self.best, "improved": improved})
        if self.enabled and self.wait > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self, model: torch.nn.Module) -> bool:
        """Load the best weights into `model`; False if none were kept."""
        if not self.restore_best_weights or self.best_weights is None:
            return False
        model.load_state_dict(self.best_weights)
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "peak": self.peak, "reference": self.reference, "best_epoch": self.best_epoch,
                "wait": self.wait, "stopped_epoch": self.stopped_epoch, "history": copy.deepcopy(self.history),
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.peak = state.get("peak", self.best)  # checkpoints from before the tolerance rule
        self.reference = state.get("reference", self.best)
        self.stopped_epoch, self.history = state["stopped_epoch"], list(state["history"])
        self.best_weights = state.get("best_weights")
