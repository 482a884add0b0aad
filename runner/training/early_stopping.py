"""Early stopping on a monitored metric, with best-weight restore and a history."""

from __future__ import annotations

import copy
import math
from typing import Optional

import torch


class EarlyStopping:
    def __init__(self, monitor: str = "val/seq_accuracy", mode: str = "max", patience: int = 5,
                 min_delta: float = 0.0, restore_best_weights: bool = True, enabled: bool = True) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best_weights, self.enabled = min_delta, restore_best_weights, enabled
        self.best: float = -math.inf if mode == "max" else math.inf
        self.best_epoch: int = 0
        self.wait: int = 0
        self.stopped_epoch: Optional[int] = None
        self.history: list[dict] = []
        self.best_weights: Optional[dict[str, torch.Tensor]] = None

    def is_improvement(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def step(self, value: float, epoch: int, model: Optional[torch.nn.Module] = None) -> bool:
        """Record the epoch's metric; return True when training should stop."""
        improved = self.is_improvement(value)
        if improved:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if model is not None and self.restore_best_weights:
                self.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
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
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "history": copy.deepcopy(self.history),
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.stopped_epoch, self.history = state["stopped_epoch"], list(state["history"])
        self.best_weights = state.get("best_weights")
