"""Losses for both model heads behind one wrapper, `OCRLoss`, built from `conf/loss/*.yaml`.

    loss_fn = OCRLoss("focal", gamma=2.0).bind(model)   # checks loss/model fit, picks the variant
    loss = loss_fn(model(batch["images"], batch["targets"]), batch)

Attention logits [B, S-1, V] are scored against batch["targets"][:, 1:] (digits, EOS, PAD);
CTC logits [B, T, V] against the digits batch["targets"][:, 1:1+target_lengths] with every
input length T. All losses compute in float32, even inside a bf16/fp16 autocast region.

    name          attention head                           ctc head
    crossentropy  token CE, PAD ignored, label smoothing   (does not fit)
    ctc           (does not fit)                           CTC, blank=BLANK, zero_infinity
    focal         token focal loss, PAD masked, alpha      focal CTC: (1 - p(label))^gamma * CTC
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from hydra.core.config_store import ConfigStore
from torch import nn

from runner.charset import BLANK, FIRST_CHAR, PAD, Charset, as_charset
from runner.errors import ConfigError, require
from runner.schema import help_field

ATTENTION_MODELS = "small, medium, large"
LOSSES_BY_HEAD: dict[str, tuple[str, ...]] = {"attention": ("crossentropy", "focal"), "ctc": ("ctc", "focal")}


class LossName(StrEnum):
    """loss.name: which loss OCRLoss computes."""

    crossentropy = "crossentropy"
    ctc = "ctc"
    focal = "focal"


@dataclass
class LossConfig:
    """Schema of conf/loss."""

    _target_: str = help_field("Class built by hydra.utils.instantiate.", "runner.losses.OCRLoss")
    name: LossName = help_field("crossentropy | ctc | focal (focal fits both heads).", LossName.crossentropy)
    label_smoothing: float = help_field("Cross-entropy/focal label smoothing in [0, 1); attention models only.", 0.0)
    gamma: float = help_field("Focal exponent: (1 - p)^gamma down-weights easy tokens.", 2.0)
    alpha: Optional[list[float]] = help_field(
        "Focal per-class weights: one per character of the charset (digits: 10, ០..៩; the special tokens get 1) or "
        "one per token id (digits: 14); null = 1.", None)
    zero_infinity: bool = help_field("CTC: zero losses of impossible alignments (image too narrow for its label).", True)


def register_loss_configs(cs: ConfigStore) -> None:
    """Store LossConfig as group `loss`, name `_loss_schema` (used by conf/loss/*.yaml)."""
    cs.store(group="loss", name="_loss_schema", node=LossConfig)


def _sequence_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """targets[:, 1:] aligned to the logits' S-1 steps: extra target columns must be PAD."""
    shifted = targets[:, 1:]
    steps = logits.shape[1]
    if shifted.shape[1] < steps:
        return F.pad(shifted, (0, steps - shifted.shape[1]), value=PAD)
    if (shifted[:, steps:] != PAD).any():
        raise ValueError(
            f"attention logits cover {steps} steps but batch['targets'] has {shifted.shape[1]} non-SOS columns with "
            f"tokens beyond step {steps}; was the model built with a smaller max_length than the data?"
        )
    return shifted[:, :steps]


def _ctc_log_probs_and_targets(logits: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    log_probs = torch.log_softmax(logits, dim=-1).transpose(0, 1)  # [T, B, V] as ctc_loss wants
    lengths = batch["target_lengths"].to(device=logits.device, dtype=torch.long)
    targets = batch["targets"][:, 1:].to(logits.device)
    keep = torch.arange(targets.shape[1], device=logits.device).unsqueeze(0) < lengths.unsqueeze(1)
    input_lengths = torch.full_like(lengths, logits.shape[1])
    return log_probs, targets[keep], input_lengths, lengths


class OCRLoss(nn.Module):
    """One loss by name. Call `bind(model)` once before training: it rejects a loss that does not
    fit the model's head and picks the sequence or CTC variant of focal. `charset` (a Charset or its name,
    default digits) is the run's: it sizes `alpha`."""

    def __init__(self, name: str = "crossentropy", label_smoothing: float = 0.0, gamma: float = 2.0,
                 alpha: Optional[Sequence[float]] = None, zero_infinity: bool = True,
                 charset: Charset | str | None = None) -> None:
        super().__init__()
        self.charset = as_charset(charset)
        self.name = str(name)
        require(self.name in tuple(LossName), "loss.name", f"must be one of {', '.join(LossName)} (conf/loss/)", name)
        require(0.0 <= float(label_smoothing) < 1.0, "loss.label_smoothing", "must be in [0, 1)", label_smoothing)
        require(float(gamma) >= 0, "loss.gamma", "must be >= 0 (0 turns focal loss into cross-entropy)", gamma)
        self.label_smoothing = float(label_smoothing)
        self.gamma = float(gamma)
        self.zero_infinity = bool(zero_infinity)
        # A buffer so .to(device) moves it; None means every class weighs 1.
        self.register_buffer("alpha", self._alpha_per_token(alpha, self.charset), persistent=False)
        self.head: str | None = {"crossentropy": "attention", "ctc": "ctc"}.get(self.name)

    @staticmethod
    def _alpha_per_token(alpha: Optional[Sequence[float]], charset: Charset) -> torch.Tensor | None:
        if alpha is None:
            return None
        values = [float(value) for value in alpha]
        if len(values) == len(charset.chars):
            values = [1.0] * FIRST_CHAR + values
        if len(values) != charset.vocab_size or min(values) < 0:
            raise ConfigError(
                f"loss.alpha={list(alpha)} must be {len(charset.chars)} non-negative weights (one per character of "
                f"{charset}) or {charset.vocab_size} (one per token id, see runner/charset.py), or null for equal "
                f"weights."
            )
        return torch.tensor(values, dtype=torch.float32)

    def check_compatible(self, head: str, model_name: str) -> None:
        """Raise ConfigError naming both choices if loss=self.name cannot train a `head` model."""
        if head not in LOSSES_BY_HEAD:
            raise ConfigError(f"model={model_name} has head {head!r}; losses exist for heads {sorted(LOSSES_BY_HEAD)}.")
        fits = LOSSES_BY_HEAD[head]
        if self.name not in fits:
            other = "pick a ctc_* model" if head == "attention" else f"pick an attention model ({ATTENTION_MODELS})"
            kind = "an attention model" if head == "attention" else "a CTC model"
            raise ConfigError(f"loss={self.name} does not fit model={model_name} ({kind}); "
                              f"use loss={' or loss='.join(fits)}, or {other}.")
        self.head = head

    def bind(self, model: nn.Module) -> "OCRLoss":
        """check_compatible() with the model's `head` and `name` (unwrapping DDP); returns self."""
        model = getattr(model, "module", model)
        self.check_compatible(model.head, getattr(model, "name", type(model).__name__))
        return self

    def forward(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        if self.head is None:
            raise RuntimeError(f"loss={self.name} fits both heads; call loss_fn.bind(model) before computing it.")
        # Autocast off: log-softmax, CTC and focal weights lose too much in bf16.
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = logits.float()
            if self.head == "ctc":
                return self._ctc(logits, batch)
            return self._sequence(logits, batch["targets"].to(logits.device))

    def _sequence(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = _sequence_targets(logits, targets).reshape(-1)
        logits = logits.reshape(-1, logits.shape[-1])
        if self.name == "crossentropy":
            return F.cross_entropy(logits, targets, ignore_index=PAD, label_smoothing=self.label_smoothing)
        token_loss = F.cross_entropy(logits, targets, ignore_index=PAD, label_smoothing=self.label_smoothing,
                                     reduction="none")
        # p_t from the unsmoothed probability of the true class, as in Lin et al. 2017.
        p_true = torch.softmax(logits, dim=-1).gather(1, targets.unsqueeze(1)).squeeze(1)
        weight = (1.0 - p_true).clamp(min=0.0).pow(self.gamma)
        if self.alpha is not None:
            weight = weight * self.alpha.to(logits.device)[targets]
        mask = targets != PAD
        return (weight * token_loss)[mask].sum() / mask.sum().clamp(min=1)

    def _ctc(self, logits: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        log_probs, targets, input_lengths, target_lengths = _ctc_log_probs_and_targets(logits, batch)
        if self.name == "ctc":
            return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="mean",
                              zero_infinity=self.zero_infinity)
        # Focal CTC (Feng et al. 2019): weight each sequence's -log p(label) by (1 - p(label))^gamma.
        nll = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="none",
                         zero_infinity=self.zero_infinity)
        weight = (1.0 - torch.exp(-nll)).clamp(min=0.0).pow(self.gamma)
        if self.alpha is not None:
            # A sequence weighs the mean alpha of its digits.
            alpha = self.alpha.to(logits.device)[targets]
            sample = torch.repeat_interleave(torch.arange(len(target_lengths), device=logits.device), target_lengths)
            weight = weight * torch.zeros_like(nll).index_add_(0, sample, alpha) / target_lengths.clamp(min=1)
        # Same normalisation as reduction="mean": per-sequence loss / label length, then batch mean.
        return (weight * nll / target_lengths.clamp(min=1)).mean()
