"""BaseTrainer: the training loop, read top to bottom in `train` and `_train_epoch`.

What the loop owns: mixed precision (bf16 autocast on CPU, fp16 + GradScaler on CUDA), gradient
accumulation and clipping, LR schedules, early stopping, checkpoints (atomic, self-contained),
exact resume (model, optimizer, scheduler, scaler, early stopping, RNG, epoch/step, TensorBoard
step), NaN/Inf batches, SIGINT/SIGTERM, and a per-epoch progress bar. What it leaves to
subclasses: how to validate (`_validate_epoch`) and what to report at the end (`_final_reports`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import signal
import sys
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from runner.data.loaders import set_loader_epoch
from runner.device import resolve_amp
from runner.errors import CheckpointError, UserError, instantiate
from runner.training.checkpoint import CheckpointManager, build_checkpoint, git_commit, load_checkpoint
from runner.training.budget import (PLAN_AFTER_S, RECENT_BATCHES, SKIP_FIRST_STEPS, SchedulePlan, fit_plan,
                                    initial_plan, needs_refit)
from runner.training.distributed import any_rank, broadcast_object
from runner.training.early_stopping import EarlyStopping
from runner.training.run_dir import check_run_dir_free

log = logging.getLogger("runner.trainer")
clock = time.perf_counter  # every duration and the time budget read this clock (tests replace it)


class TrainingInterrupted(UserError):
    """SIGINT/SIGTERM: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


class NonFiniteLossError(UserError):
    """Too many consecutive NaN/Inf losses."""


class OutOfMemory(UserError):
    """The device ran out of memory; the message names the settings that lower it."""


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


class BaseTrainer(ABC):
    def __init__(self, model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, config: DictConfig,
                 device: torch.device | str, *, output_dir: str | Path | None = None,
                 extra_val_loaders: Optional[dict[str, DataLoader]] = None, rank: int = 0, world_size: int = 1,
                 started_at: Optional[float] = None, **settings: Any) -> None:
        """`settings` are trainer.* values (as `instantiate(cfg.trainer)` passes them); they win over
        config.trainer, so `OCRTrainer(..., max_epochs=3)` works in a notebook too. `started_at` is
        the job's start (a time.perf_counter() value): trainer.max_time_minutes counts from there,
        data preparation included; by default from the trainer's construction."""
        self.config = config
        self.tcfg = OmegaConf.merge(config.trainer, settings) if settings else config.trainer
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        self.output_dir = Path(output_dir or ".")
        self.train_loader, self.val_loader = train_loader, val_loader
        self.extra_val_loaders = dict(extra_val_loaders or {})

        self.raw_model = model.to(self.device)
        if config.device.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        self.model: nn.Module = self.raw_model
        if world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        if config.device.compile:
            self.model = torch.compile(self.model)

        self.loss_fn = self._create_loss_function()
        self.metrics = self._create_metrics_calculator()
        self.global_batch_size = config.data.batch_size * world_size * self.tcfg.accumulate_grad_batches
        self.lr = scaled_lr(config.optimizer.lr, self.global_batch_size, self.tcfg.lr_scaling,
                            self.tcfg.reference_batch_size)
        self.optimizer = instantiate(config.optimizer, lr=self.lr)(self.raw_model.parameters())
        self.steps_per_epoch = max(1, math.ceil(self._train_batches_per_epoch() / self.tcfg.accumulate_grad_batches))
        self.scheduler = instantiate(config.scheduler)(
            self.optimizer, epochs=self.tcfg.max_epochs, steps_per_epoch=self.steps_per_epoch, mode=self.tcfg.mode)

        self.amp_dtype = resolve_amp(config.device.amp, self.device, announce=self.is_main)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        es = self.tcfg.early_stopping
        self.early_stopping = EarlyStopping(self.tcfg.monitor, self.tcfg.mode, es.patience, es.min_delta,
                                            es.restore_best_weights, es.enabled, es.best_tolerance)
        ck = self.tcfg.checkpoint
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", keep_n=ck.keep_n,
                                             every_n_epochs=ck.every_n_epochs, save_last=ck.save_last)
        self.epoch = 0  # completed epochs
        self.global_step = 0  # optimizer steps
        self.step_in_epoch = 0  # batches consumed in the current (interrupted) epoch
        self.history: list[dict[str, float]] = []
        self.elapsed_before_resume = 0.0  # job-clock seconds spent by earlier processes of this run
        self._clock_start = clock() if started_at is None else started_at
        self.full_steps = self.tcfg.max_epochs * self.steps_per_epoch
        self.plan = SchedulePlan(self.full_steps, self.full_steps)
        # this process's training batches after start-up, in all and since the last plan (the recent speed)
        self._speed = {"seen": 0, "batches": 0, "seconds": 0.0, "recent_batches": 0, "recent_seconds": 0.0}
        self._val_batch_s: Optional[float] = None  # measured seconds per validation batch
        self._plan_complete = False
        self._step_time = 0.0  # job-clock time of the last optimizer step
        self._resumed_plan = False  # the plan came from a checkpoint
        self._partial_epoch: Optional[dict[str, float]] = None
        self._stop_signal: Optional[int] = None
        self._commit = git_commit() if self.is_main else "unknown"
        self.writer: Optional[SummaryWriter] = None

    # ------------------------------------------------------------------ hooks
    def _create_loss_function(self) -> nn.Module:
        loss_fn = instantiate(self.config.loss)
        loss_fn.bind(self.raw_model)  # fails at start-up if the loss does not fit the head
        return loss_fn

    def _create_metrics_calculator(self) -> Any:
        return instantiate(self.config.metrics)

    @abstractmethod
    def _validate_epoch(self, loader: DataLoader, split: str, *, collect_examples: bool = False) -> dict[str, float]:
        """Run `loader` without gradients; return `{split}/loss`, `{split}/seq_accuracy`, ..."""

    @abstractmethod
    def _final_reports(self, results: dict[str, Any]) -> None:
        """Write the end-of-run artefacts (confusion matrix, error report, ...)."""

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict[str, Any]:
        """Train until max_epochs, early stopping, stop_at or the time budget; return the results."""
        resumed = self._maybe_resume()
        if self.is_main:
            self.writer = SummaryWriter(str(self.output_dir / "tensorboard"),
                                        purge_step=self.global_step if resumed else None)
        self._start_plan()
        start = clock()
        stop_reason = "max_epochs"
        with self._signal_handlers(), self._out_of_memory_advice():
            while self.epoch < self.tcfg.max_epochs:
                epoch_start = clock()
                train_stats = self._train_epoch()
                val_start = clock()
                val_stats = self._validate_epoch(self._val_loader(), "val")
                self._val_batch_s = (clock() - val_start) / max(1, self._val_batches(self._val_loader()))
                self.epoch += 1
                self.step_in_epoch = 0
                stats = {"epoch": self.epoch, **train_stats, **val_stats,
                         "lr": self.optimizer.param_groups[0]["lr"], "epoch_time_s": clock() - epoch_start}
                self.history.append(stats)
                monitored = stats.get(self.tcfg.monitor)
                if monitored is None:
                    raise UserError(f"trainer.monitor={self.tcfg.monitor!r} is not a logged metric; "
                                    f"choose one of {sorted(k for k in stats if '/' in k)}.")
                self.scheduler.step_epoch(monitored)
                should_stop = self.early_stopping.step(monitored, self.epoch, self.raw_model)
                improved = self.early_stopping.best_epoch == self.epoch
                self._log_epoch(stats, improved)
                if not self._plan_complete:
                    self._refit_plan(at_epoch_end=True)
                self._save_checkpoint(stats, is_best=improved)
                now = self._now()
                # one process stops inside the epoch, at the step that completes the plan (its LR the final one);
                # under DDP the ranks' clocks differ, so the deadline is checked here, together
                out_of_time = self._plan_complete or (self.world_size > 1 and self.plan.past_deadline(now))
                out_of_time = any_rank(out_of_time, self.device)  # ranks' clocks differ; stop together
                if should_stop:
                    stop_reason = f"early stopping (no improvement of {self.tcfg.monitor} for {self.early_stopping.wait} epochs)"
                    break
                if self.tcfg.stop_at is not None and self._reached(monitored, self.tcfg.stop_at):
                    stop_reason = f"{self.tcfg.monitor} reached stop_at={self.tcfg.stop_at}"
                    break
                if out_of_time:
                    stop_reason = self._budget_stop_reason()
                    break
        train_time = self.elapsed_before_resume + clock() - start
        log.info("stopped after epoch %d: %s", self.epoch, stop_reason)
        return self._finish(stop_reason, train_time)

    def _train_epoch(self) -> dict[str, float]:
        self.model.train()
        loader = self._epoch_loader(self.epoch)
        total = self._train_batches_per_epoch()
        sums = self._partial_epoch or {"loss": 0.0, "correct": 0.0, "samples": 0.0, "batches": 0.0,
                                       "nan_batches": 0.0, "data_time": 0.0, "step_time": 0.0}
        self._partial_epoch = None
        skip = self.step_in_epoch  # resumed mid-epoch: the same data order, minus what was already seen
        batches = itertools.islice(loader, skip, total)
        accumulate = self.tcfg.accumulate_grad_batches
        consecutive_nan = 0
        bar = tqdm(total=total, initial=skip, desc=f"epoch {self.epoch + 1}/{self.tcfg.max_epochs}",
                   disable=not self._show_progress(), leave=False, dynamic_ncols=True)
        tick = clock()
        for batch_index, batch in enumerate(batches, start=skip):
            data_ready = clock()
            batch = self._to_device(batch)
            with self._autocast():
                logits = self.model(batch["images"], batch["targets"])
                loss = self.loss_fn(logits, batch)
            if not torch.isfinite(loss):
                consecutive_nan += 1
                sums["nan_batches"] += 1
                log.warning("non-finite loss (%s) at epoch %d batch %d: batch skipped", loss.item(), self.epoch + 1, batch_index)
                self.optimizer.zero_grad(set_to_none=True)
                if consecutive_nan >= self.tcfg.max_nan_batches:
                    raise NonFiniteLossError(
                        f"{consecutive_nan} consecutive batches had a NaN/Inf loss at epoch {self.epoch + 1}; training "
                        f"stopped. The last good checkpoint is kept in {self.checkpoints.directory}. Lower optimizer.lr, "
                        f"set trainer.grad_clip_norm, or try device.amp=off.")
                continue
            consecutive_nan = 0
            self.scaler.scale(loss / accumulate).backward()
            last_of_epoch = batch_index + 1 == total
            stepped = (batch_index + 1) % accumulate == 0 or last_of_epoch
            if stepped:
                grad_norm = self._optimizer_step()
                if self.is_main and self.global_step % self.tcfg.log_every_n_steps == 0:
                    self._log_step(loss.item(), grad_norm, batch["images"].shape[0], clock() - tick)
            size = batch["images"].shape[0]
            correct = self._count_correct(logits.detach(), batch)
            sums["loss"] += loss.item() * size
            sums["correct"] += correct
            sums["samples"] += size
            sums["batches"] += 1
            now = clock()
            sums["data_time"] += data_ready - tick
            sums["step_time"] += now - tick
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss'] / sums['samples']:.4f}", acc=f"{sums['correct'] / sums['samples']:.3f}",
                            img_s=f"{sums['samples'] / max(sums['step_time'], 1e-9):.0f}", refresh=False)
            self.step_in_epoch = batch_index + 1
            self._measure_speed(now - tick)
            tick = clock()
            stop_requested = self._stop_signal is not None
            if self.world_size > 1:
                stop_requested = any_rank(stop_requested, self.device)  # every rank saves at the same batch
                if stop_requested and self._stop_signal is None:
                    self._stop_signal = signal.SIGTERM
            if stop_requested:
                bar.close()
                self._interrupt(sums)
            if stepped and self._plan_reached():
                self._plan_complete = True
                break
        bar.close()
        totals = self._reduce_sums(sums)
        samples = max(totals["samples"], 1.0)
        return {"train/loss": totals["loss"] / samples, "train/seq_accuracy": totals["correct"] / samples,
                "train/epoch_fraction": sums["batches"] / max(1, total),
                "train/samples_per_s": totals["samples"] / max(sums["step_time"], 1e-9),
                "train/data_wait_fraction": sums["data_time"] / max(sums["step_time"], 1e-9),
                "train/nan_batches": totals["nan_batches"]}

    def _optimizer_step(self) -> float:
        self.scaler.unscale_(self.optimizer)
        max_norm = self.tcfg.grad_clip_norm if self.tcfg.grad_clip_norm is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        self._step_time = self._now()  # one reading for the schedule and the plan's end
        self.scheduler.advance_to(self.plan.schedule_step(self.global_step, self._step_time))
        return grad_norm

    # ------------------------------------------------------------------ the time budget's plan
    def _now(self) -> float:
        """Seconds on the job clock: this process since the job started, plus earlier processes of the run."""
        return self.elapsed_before_resume + clock() - self._clock_start

    def _budget_s(self) -> Optional[float]:
        minutes = self.tcfg.max_time_minutes
        return None if minutes is None else 60.0 * float(minutes)

    def _start_plan(self) -> None:
        """The stored plan on resume (same budget and length), else the configured length until speed is measured."""
        budget = self._budget_s()
        stored = self.plan if self._resumed_plan else None
        if stored is None or stored.full_steps != self.full_steps or stored.budget_s != budget:
            self.plan = initial_plan(self.full_steps, budget, self._now(), self._final_eval_s())
        self.plan.time_floor = self.world_size == 1
        if budget is not None and self.is_main:
            spent = self._now()
            log.info("time budget: %.3g min for the whole job, %.2g min already spent before training; the LR schedule "
                     "is fitted to the measured speed after %.0f s of training or the first epoch", budget / 60,
                     spent / 60, PLAN_AFTER_S)
            if spent > 0.5 * budget:
                log.warning("time budget: data preparation took %.1f of the %.1f minutes; training gets what is left. "
                            "Raise trainer.max_time_minutes or lower data.train_size for a better-trained model.",
                            spent / 60, budget / 60)

    def _measure_speed(self, batch_seconds: float) -> None:
        speed = self._speed
        speed["seen"] += 1
        if speed["seen"] > SKIP_FIRST_STEPS * self.tcfg.accumulate_grad_batches:
            for prefix in ("", "recent_"):
                speed[prefix + "batches"] += 1
                speed[prefix + "seconds"] += batch_seconds

    def _step_seconds(self) -> Optional[float]:
        """Seconds per optimizer step: since the last plan when that has enough batches (the speed drifts as
        oneDNN caches kernels for new widths, or as the machine's load changes), else since start-up."""
        speed = self._speed
        prefix = "recent_" if speed["recent_batches"] >= RECENT_BATCHES else ""
        if speed[prefix + "batches"] == 0:
            return None
        return speed[prefix + "seconds"] / speed[prefix + "batches"] * self.tcfg.accumulate_grad_batches

    def _val_batches(self, loader: Any) -> int:
        batches = len(loader)
        limit = self.tcfg.limit_val_batches
        return min(batches, limit) if limit else batches

    def _val_batch_seconds(self) -> float:
        """Measured seconds per validation batch; before the first validation, half a training step."""
        if self._val_batch_s is not None:
            return self._val_batch_s
        step = self._step_seconds()
        return 0.5 * step if step is not None else 0.0  # no backward pass: well under a training step

    def _final_eval_s(self) -> float:
        """Seconds the final evaluation (val and every extra split) is expected to take."""
        batches = self._val_batches(self._val_loader()) + sum(self._val_batches(loader)
                                                              for loader in self.extra_val_loaders.values())
        return self._val_batch_seconds() * batches

    def _refit_plan(self, at_epoch_end: bool) -> None:
        """Fit the plan to the measured speed: first after PLAN_AFTER_S or epoch 1, later only on drift."""
        if not at_epoch_end and (self.plan.fitted or self.world_size > 1 or self._speed["seconds"] < PLAN_AFTER_S):
            return
        budget, step_s = self._budget_s(), self._step_seconds()
        if budget is None or step_s is None:
            return
        val_epoch_s = self._val_batch_seconds() * self._val_batches(self._val_loader())
        refit = fit_plan(self.plan, budget_s=budget, now_s=self._now(), step=self.global_step, epochs_done=self.epoch,
                         steps_per_epoch=self.steps_per_epoch, step_s=step_s, val_epoch_s=val_epoch_s,
                         final_eval_s=self._final_eval_s())
        if self.world_size > 1:
            refit = broadcast_object(refit)  # rank 0's measurements decide for every rank
        self._speed.update(recent_batches=0, recent_seconds=0.0)
        if needs_refit(self.plan, refit):
            self.plan = refit
            if self.is_main:
                log.info("time budget plan: %s", refit.note)

    def _plan_reached(self) -> bool:
        """Within an epoch: the budget's plan is complete (steps done, or the deadline came first)."""
        if self.plan.deadline_s is None:
            return False  # without a budget the epoch loop ends the run
        if self.plan.done(self.global_step, self._step_time):
            return True
        self._refit_plan(at_epoch_end=False)
        return False

    def _budget_stop_reason(self) -> str:
        minutes = self.tcfg.max_time_minutes
        if self.global_step >= self.plan.full_steps:
            return "max_epochs"
        if self.global_step >= self.plan.planned_steps:
            return (f"time budget of {minutes:g} min: the planned {self.plan.planned_steps:,} optimizer steps are done "
                    f"and the LR schedule has reached its end")
        return (f"time budget of {minutes:g} min: the deadline came at step {self.global_step:,} of the planned "
                f"{self.plan.planned_steps:,}; the LR schedule has reached its end")

    # ------------------------------------------------------------------ data order and devices
    def _epoch_loader(self, epoch: int) -> DataLoader:
        """Fix the data order of `epoch` so a resumed run sees exactly the batches it would have."""
        loader = self._overfit_loader() if self.tcfg.overfit_batches else self.train_loader
        if isinstance(loader, DataLoader):
            set_loader_epoch(loader, epoch)  # DistributedSampler shuffle, on-the-fly renders
        if getattr(loader, "generator", None) is not None:
            loader.generator.manual_seed(self.config.seed * 1_000_003 + epoch)
        return loader

    def _batch_sampler_state(self) -> Optional[dict]:
        """The width-bucketing sampler's state (data.bucketing), saved so a resume checks it gets the same batches."""
        sampler = getattr(self.train_loader, "batch_sampler", None)
        return sampler.state_dict() if hasattr(sampler, "state_dict") else None

    def _overfit_loader(self) -> list[dict]:
        if not hasattr(self, "_overfit_batches"):
            self._overfit_batches = list(itertools.islice(self.train_loader, self.tcfg.overfit_batches))
        return _ListLoader(self._overfit_batches)

    def _val_loader(self) -> Any:
        return self._overfit_loader() if self.tcfg.overfit_batches else self.val_loader

    def _train_batches_per_epoch(self) -> int:
        if self.tcfg.overfit_batches:
            return self.tcfg.overfit_batches
        total = len(self.train_loader)
        return min(total, self.tcfg.limit_train_batches) if self.tcfg.limit_train_batches else total

    def _to_device(self, batch: dict) -> dict:
        moved = dict(batch)
        for key in ("images", "targets", "target_lengths"):
            moved[key] = batch[key].to(self.device, non_blocking=True)
        if self.config.device.channels_last:
            moved["images"] = moved["images"].contiguous(memory_format=torch.channels_last)
        return moved

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _count_correct(self, logits: torch.Tensor, batch: dict) -> float:
        model = _unwrap(self.model)
        # decode_texts skips the confidences; a model of one's own may only have decode_logits
        texts = model.decode_texts(logits.float()) if hasattr(model, "decode_texts") else \
            model.decode_logits(logits.float())[0]
        return float(sum(p == t for p, t in zip(texts, batch["texts"])))

    def _reached(self, value: float, target: float) -> bool:
        return value >= target if self.tcfg.mode == "max" else value <= target

    # ------------------------------------------------------------------ distributed helpers
    def _reduce_sums(self, sums: dict[str, float]) -> dict[str, float]:
        if self.world_size == 1:
            return dict(sums)
        keys = sorted(sums)
        values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(keys, values.tolist()))

    # ------------------------------------------------------------------ logging
    def _show_progress(self) -> bool:
        if not self.is_main:
            return False
        if self.tcfg.progress_bar is None:
            return sys.stderr.isatty()
        return bool(self.tcfg.progress_bar)

    def _log_step(self, loss: float, grad_norm: float, batch_size: int, step_time: float) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("train/loss_step", loss, self.global_step)
        self.writer.add_scalar("train/grad_norm", grad_norm, self.global_step)
        self.writer.add_scalar("train/lr", self.optimizer.param_groups[0]["lr"], self.global_step)
        self.writer.add_scalar("train/samples_per_s_step", batch_size / max(step_time, 1e-9), self.global_step)

    def _log_epoch(self, stats: dict[str, float], improved: bool) -> None:
        if not self.is_main:
            return
        shown = " ".join(f"{k}={v:.4f}" for k, v in stats.items()
                         if k.startswith(("train/loss", "train/seq", "val/")) and k != "val/images" and isinstance(v, float))
        planned = self.plan.planned_steps / self.steps_per_epoch
        of = f"{planned:.1f} planned" if self.plan.planned_steps < self.plan.full_steps else str(self.tcfg.max_epochs)
        partial = stats.get("train/epoch_fraction", 1.0)
        log.info("epoch %d/%s%s %s lr=%.2e time=%.1fs%s", stats["epoch"], of,
                 f" ({partial:.0%} of its batches)" if partial < 1 else "", shown, stats["lr"], stats["epoch_time_s"],
                 " *best*" if improved else "")
        if self.writer is not None:
            for key, value in stats.items():
                if "/" in key:
                    self.writer.add_scalar(key, value, self.global_step)
            self.writer.add_scalar("epoch/lr", stats["lr"], self.global_step)
            self.writer.add_scalar("epoch/epoch", stats["epoch"], self.global_step)
            self.writer.flush()

    # ------------------------------------------------------------------ checkpoints and resume
    def _checkpoint_payload(self, metrics: dict[str, float]) -> dict:
        training_state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "early_stopping": self.early_stopping.state_dict(),
            "rng": _rng_state(),
            "step_in_epoch": self.step_in_epoch,
            "batch_sampler": self._batch_sampler_state(),
            "partial_epoch": self._partial_epoch,
            "history": self.history,
            "elapsed_s": self._now(),
            "plan": self.plan.state_dict(),
        }
        return build_checkpoint(model=_unwrap(self.raw_model), epoch=self.epoch, global_step=self.global_step,
                                metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                                config_yaml=OmegaConf.to_yaml(self.config, resolve=True),
                                preprocess={"height": self.config.data.image_height, "width": self.config.data.image_width,
                                            "crop": bool(self.config.data.get("bucketing", False)),
                                            "text_crop": bool(self.config.data.get("text_crop", False))},
                                training_state=training_state, commit=self._commit)

    def _save_checkpoint(self, metrics: dict[str, float], *, is_best: bool) -> None:
        if not self.is_main:
            return
        self.checkpoints.save(self._checkpoint_payload(metrics), epoch=self.epoch, is_best=is_best)

    def _resume_path(self) -> Optional[Path]:
        resume = self.config.resume
        check_run_dir_free(self.output_dir, resume)
        if not resume:
            return None
        if resume == "auto":
            last = self.checkpoints.last_path
            if last.is_file():
                return last
            log.info("resume=auto: no checkpoint in %s yet, starting fresh", self.checkpoints.directory)
            return None
        path = Path(resume).expanduser()
        if path.is_dir():
            path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else path / "last.pt"
        return path

    def _maybe_resume(self) -> bool:
        path = self._resume_path()
        if path is None:
            return False
        payload = load_checkpoint(path, map_location="cpu")
        state = payload.get("training_state")
        if state is None:
            raise CheckpointError(f"{path} holds weights only (a best.pt or exported checkpoint), not a resumable "
                                  f"training state; resume from checkpoints/last.pt instead.")
        stored = payload["model"]
        if stored["config"] != _unwrap(self.raw_model).config_dict():
            raise CheckpointError(f"{path} was written for model {stored['name']!r} with a different configuration than "
                                  f"this run's model {_unwrap(self.raw_model).name!r}; resume with the same model=... and "
                                  f"data size settings as the original run.")
        try:
            if not isinstance(state, dict):
                raise TypeError(f"training_state is a {type(state).__name__}, not a mapping")
            self._load_training_state(payload, state)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as error:
            raise CheckpointError(f"{path} holds a damaged training state ({type(error).__name__}: {error}); "
                                  f"resume from another checkpoint of the run (epoch_NNN.pt) or start afresh in a "
                                  f"new run dir.") from error
        # mid-epoch, the batches already trained on are skipped: they must be the very same batches
        if self.step_in_epoch and state.get("batch_sampler", self._batch_sampler_state()) != self._batch_sampler_state():
            raise CheckpointError(f"{path} was saved mid-epoch while training on other batches (data, image widths, "
                                  f"data.batch_size or seed differ); resume with the data settings of the original "
                                  f"run.")
        log.info("resumed from %s at epoch %d (step %d%s)", path, self.epoch, self.global_step,
                 f", batch {self.step_in_epoch} of the epoch" if self.step_in_epoch else "")
        return True

    def _load_training_state(self, payload: dict, state: dict) -> None:
        _unwrap(self.raw_model).load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.early_stopping.load_state_dict(state["early_stopping"])
        self.epoch, self.global_step = int(payload["epoch"]), int(payload["global_step"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self._partial_epoch = state.get("partial_epoch")
        self.history = list(state["history"])
        self.elapsed_before_resume = float(state.get("elapsed_s", 0.0))
        if state.get("plan"):
            self.plan, self._resumed_plan = SchedulePlan.from_state(state["plan"]), True
        _set_rng_state(state["rng"])

    # ------------------------------------------------------------------ signals
    @contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM finish the current batch, save checkpoints/last.pt, and exit with a resume hint."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def request_stop(signum: int, _frame: Any) -> None:
            if self._stop_signal is not None:  # a second Ctrl-C: stop now
                signal.default_int_handler(signum, _frame)
            self._stop_signal = signum
            log.warning("received %s: saving a checkpoint after this batch", signal.Signals(signum).name)

        for sig in previous:
            signal.signal(sig, request_stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _interrupt(self, sums: dict[str, float]) -> None:
        self._partial_epoch = dict(sums)
        self._save_checkpoint({}, is_best=False)
        name = signal.Signals(self._stop_signal).name
        raise TrainingInterrupted(
            f"stopped by {name} during epoch {self.epoch + 1} after batch {self.step_in_epoch}; the state is saved in "
            f"{self.checkpoints.last_path}. Resume exactly where it stopped with: python -m runner <same overrides> "
            f"resume={self.checkpoints.last_path} hydra.run.dir={self.output_dir}")

    @contextmanager
    def _out_of_memory_advice(self) -> Iterator[None]:
        """A CUDA out-of-memory error becomes one paragraph naming the knobs, not a traceback."""
        try:
            yield
        except torch.OutOfMemoryError as error:
            batch, accumulate = self.config.data.batch_size, self.tcfg.accumulate_grad_batches
            smaller = max(1, batch // 2)
            raise OutOfMemory(
                f"out of memory on {self.device} in epoch {self.epoch + 1} with data.batch_size={batch}, "
                f"trainer.accumulate_grad_batches={accumulate}, device.amp={self.config.device.amp}. Lower "
                f"data.batch_size; data.batch_size={smaller} trainer.accumulate_grad_batches="
                f"{accumulate * batch // smaller} keeps the effective batch of {batch * accumulate}. Mixed precision "
                f"halves activation memory: use device.amp=auto (fp16 on CUDA) if it is off. A smaller model= also "
                f"helps. Checkpoints of completed epochs are kept in {self.checkpoints.directory}; continue with "
                f"resume=auto hydra.run.dir={self.output_dir}. ({str(error).splitlines()[0]})") from error

    # ------------------------------------------------------------------ end of run
    def _finish(self, stop_reason: str, train_time: float) -> dict[str, Any]:
        restored = self.early_stopping.restore(self.raw_model)
        eval_start = clock()
        extra: dict[str, dict[str, float]] = {}
        for split, loader in self.extra_val_loaders.items():
            extra[split] = self._validate_epoch(loader, split)
        # last, so the metrics object holds the validation split for the reports
        final = self._validate_epoch(self._val_loader(), "val", collect_examples=True)
        best_epoch = self.early_stopping.best_epoch
        best_row = next((row for row in self.history if row["epoch"] == best_epoch), self.history[-1] if self.history else {})
        results: dict[str, Any] = {
            "monitor": self.tcfg.monitor,
            "best_metric": self.early_stopping.best,
            "best_epoch": best_epoch,
            "best_val_loss": min((row["val/loss"] for row in self.history), default=math.nan),
            "best_weights_restored": restored,
            "stop_reason": stop_reason,
            "epochs_completed": self.epoch,
            "global_step": self.global_step,
            "final_metrics": final,
            "best_epoch_metrics": {k: v for k, v in best_row.items() if isinstance(v, (int, float))},
            "extra_val_metrics": extra,
            "timings": {"train_s": train_time, "final_eval_s": clock() - eval_start,
                        "mean_epoch_s": float(np.mean([r["epoch_time_s"] for r in self.history])) if self.history else 0.0},
            "history": self.history,
            "paths": {"output_dir": str(self.output_dir), "best_checkpoint": str(self.checkpoints.best_path),
                      "last_checkpoint": str(self.checkpoints.last_path),
                      "tensorboard": str(self.output_dir / "tensorboard")},
        }
        if self.is_main:
            self._final_reports(results)
            with open(self.output_dir / "metrics.json", "w", encoding="utf-8") as handle:
                json.dump(results, handle, indent=2, ensure_ascii=False)
            if self.writer is not None:
                self.writer.close()
        return results


def scaled_lr(lr: float, global_batch_size: int, rule: str, reference_batch_size: int) -> float:
    """optimizer.lr scaled to the global batch: none, linear (Goyal et al.) or sqrt."""
    ratio = global_batch_size / reference_batch_size
    factor = {"none": 1.0, "linear": ratio, "sqrt": math.sqrt(ratio)}[rule]
    if factor != 1.0:
        log.info("lr scaled %s: %.3g x %.3g (global batch %d / reference %d) = %.3g", rule, lr, factor,
                 global_batch_size, reference_batch_size, lr * factor)
    return lr * factor


class _ListLoader(list):
    """A fixed list of batches that quacks like a DataLoader for overfit mode."""

    dataset = None
    generator = None
    sampler = None


def _rng_state() -> dict:
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


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
