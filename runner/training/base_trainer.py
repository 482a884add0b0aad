"""BaseTrainer: the training loop, read top to bottom in `train` and `_train_epoch`.

What the loop owns: mixed precision (bf16 autocast on CPU, fp16 + GradScaler on CUDA), gradient
accumulation and clipping, LR schedules, early stopping, checkpoints (atomic, self-contained),
the time budget's plan and a per-epoch progress bar. It calls on its neighbours for the rest:
resume and the checkpoint's training state (state.py), SIGINT/SIGTERM, NaN/Inf losses and out of
memory (guards.py), TensorBoard (tensorboard.py), the LR scaled to the global batch
(schedulers.py). What it leaves to subclasses: how to validate (`_validate_epoch`), how many
samples of a batch the model gets right (`_count_correct`) and what to report at the end
(`_final_reports`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import signal
import time
from abc import ABC, abstractmethod
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter

from runner.charset import config_charset
from runner.data.loaders import set_loader_epoch
from runner.device import resolve_amp
from runner.errors import ConfigError, UserError, instantiate
from runner.progress import QUIET_S, progress_bar
from runner.training import state, tensorboard
from runner.training.budget import (PLAN_AFTER_S, SchedulePlan, StepSpeed, fit_plan, initial_plan, needs_refit,
                                    stop_reason)
from runner.training.checkpoint import CheckpointManager, checkpoints_dir, git_commit
from runner.training.config import TrainerConfig
from runner.training.distributed import any_rank, broadcast_object
from runner.training.early_stopping import EarlyStopping
from runner.training.guards import NonFiniteLosses, StopSignals, interrupted, out_of_memory_advice
from runner.training.plots import CURVES_FILE, write_curves
from runner.training.schedulers import scaled_lr

log = logging.getLogger("runner.trainer")
clock = time.perf_counter  # every duration and the time budget read this clock (tests replace it)


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
        TrainerConfig.validate(self.tcfg)  # trainer.monitor and the ranges, before any step is spent
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0
        self.output_dir = Path(output_dir or ".")
        self.train_loader, self.val_loader = train_loader, val_loader
        self.extra_val_loaders = dict(extra_val_loaders or {})

        self.raw_model = model.to(self.device)
        # the run's vocabulary (cfg.charset): what the loss, the metrics and every checkpoint follow
        self.charset = config_charset(config)
        model_charset = getattr(model, "charset", self.charset)
        if model_charset != self.charset:
            raise ConfigError(f"the model reads {model_charset} but the run config sets charset={self.charset.name}; "
                              f"build the model with create_model(..., charset={self.charset.name!r}) or set "
                              f"charset={model_charset.name}.")
        if config.device.channels_last:
            self.raw_model = self.raw_model.to(memory_format=torch.channels_last)
        self.model: nn.Module = self.raw_model
        if world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        if config.device.compile:
            self.model = torch.compile(self.model)

        self.loss_fn = self._create_loss_function()
        self.metrics = self._create_metrics_calculator()  # built here so a bad metrics config fails at start-up
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
        self.checkpoints = CheckpointManager(checkpoints_dir(self.output_dir), keep_n=ck.keep_n,
                                             every_n_epochs=ck.every_n_epochs, save_last=ck.save_last)
        self.epoch = 0  # completed epochs
        self.global_step = 0  # optimizer steps
        self.step_in_epoch = 0  # batches consumed in the current (interrupted) epoch
        self.history: list[dict[str, float]] = []
        self.elapsed_before_resume = 0.0  # job-clock seconds spent by earlier processes of this run
        self._clock_start = clock() if started_at is None else started_at
        self.full_steps = self.tcfg.max_epochs * self.steps_per_epoch
        self.plan = SchedulePlan(self.full_steps, self.full_steps)
        self._speed = StepSpeed(self.tcfg.accumulate_grad_batches)
        self._val_batch_s: Optional[float] = None  # measured seconds per validation batch
        self._plan_complete = False
        self._step_time = 0.0  # job-clock time of the last optimizer step
        self.resumed_plan = False  # the plan came from a checkpoint
        self.partial_epoch: Optional[dict[str, float]] = None  # sums of the epoch a stop interrupted
        self._stop = StopSignals()
        self.commit = git_commit() if self.is_main else "unknown"
        self.writer: Optional[SummaryWriter] = None
        self.final_evaluation = False  # the passes after training; they show progress in logs too

    # ------------------------------------------------------------------ hooks
    def _create_loss_function(self) -> nn.Module:
        loss_fn = instantiate(self.config.loss, charset=self.charset.name)
        loss_fn.bind(self.raw_model)  # fails at start-up if the loss does not fit the head
        return loss_fn

    def _create_metrics_calculator(self) -> Any:
        return instantiate(self.config.metrics, idx_to_char=self.charset.name)

    @abstractmethod
    def _validate_epoch(self, loader: DataLoader, split: str, *, collect_examples: bool = False) -> dict[str, float]:
        """Run `loader` without gradients; return `{split}/loss`, `{split}/seq_accuracy`, ...
        `collect_examples`: keep this pass's samples, by split, for `_final_reports`."""

    @abstractmethod
    def _count_correct(self, logits: torch.Tensor, batch: dict) -> float:
        """How many samples of a training batch the model's (teacher-forced) `logits` read right."""

    @abstractmethod
    def _final_reports(self, results: dict[str, Any]) -> None:
        """Write the end-of-run artefacts (confusion matrix, error report, ...)."""

    # ------------------------------------------------------------------ the loop
    def train(self) -> dict[str, Any]:
        """Train until max_epochs, early stopping, stop_at or the time budget; return the results."""
        resumed = self._maybe_resume()
        if self.is_main:
            self.writer = tensorboard.open_writer(self.output_dir, purge_step=self.global_step if resumed else None)
        self._start_plan()
        start = clock()
        reason = "max_epochs"
        with self._stop.installed(), out_of_memory_advice(self):
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
                now = self.elapsed_s()
                # one process stops inside the epoch, at the step that completes the plan (its LR the final one);
                # under DDP the ranks' clocks differ, so the deadline is checked here, together
                out_of_time = self._plan_complete or (self.world_size > 1 and self.plan.past_deadline(now))
                out_of_time = any_rank(out_of_time, self.device)  # ranks' clocks differ; stop together
                if should_stop:
                    reason = f"early stopping (no improvement of {self.tcfg.monitor} for {self.early_stopping.wait} epochs)"
                    break
                if self.tcfg.stop_at is not None and self._reached(monitored, self.tcfg.stop_at):
                    reason = f"{self.tcfg.monitor} reached stop_at={self.tcfg.stop_at}"
                    break
                if out_of_time:
                    reason = stop_reason(self.plan, self.global_step, self.tcfg.max_time_minutes)
                    break
        train_time = self.elapsed_before_resume + clock() - start
        log.info("stopped after epoch %d: %s", self.epoch, reason)
        return self._finish(reason, train_time)

    def _train_epoch(self) -> dict[str, float]:
        self.model.train()
        loader = self._epoch_loader(self.epoch)
        total = self._train_batches_per_epoch()
        sums = self.partial_epoch or {"loss": 0.0, "correct": 0.0, "samples": 0.0, "batches": 0.0,
                                      "nan_batches": 0.0, "data_time": 0.0, "step_time": 0.0}
        self.partial_epoch = None
        skip = self.step_in_epoch  # resumed mid-epoch: the same data order, minus what was already seen
        batches = itertools.islice(loader, skip, total)
        accumulate = self.tcfg.accumulate_grad_batches
        nonfinite = NonFiniteLosses(self.tcfg.max_nan_batches, self.checkpoints.directory)
        bar = self._progress_bar(total, f"epoch {self.epoch + 1}/{self.tcfg.max_epochs}", initial=skip, delay=0.0)
        tick = clock()
        logged_at, logged_images = tick, 0  # throughput since the last logged step
        for batch_index, batch in enumerate(batches, start=skip):
            data_ready = clock()
            batch = self._to_device(batch)
            with self._autocast():
                logits = self.model(batch["images"], batch["targets"])
                loss = self.loss_fn(logits, batch)
            if not torch.isfinite(loss):
                sums["nan_batches"] += 1
                self.optimizer.zero_grad(set_to_none=True)
                nonfinite.skipped(loss, epoch=self.epoch + 1, batch=batch_index)
                continue
            nonfinite.finite()
            self.scaler.scale(loss / accumulate).backward()
            last_of_epoch = batch_index + 1 == total
            stepped = (batch_index + 1) % accumulate == 0 or last_of_epoch
            size = batch["images"].shape[0]
            logged_images += size
            if stepped:
                grad_norm = self._optimizer_step()
                if self.is_main and self.global_step % self.tcfg.log_every_n_steps == 0:
                    if self.writer is not None:
                        tensorboard.log_step(self.writer, self.global_step, loss=loss.item(), grad_norm=grad_norm,
                                             lr=self.optimizer.param_groups[0]["lr"], images=logged_images,
                                             seconds=clock() - logged_at)
                    logged_at, logged_images = clock(), 0
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
            self._speed.add(now - tick)
            tick = clock()
            stop_requested = self._stop.received is not None
            if self.world_size > 1:
                stop_requested = any_rank(stop_requested, self.device)  # every rank saves at the same batch
                if stop_requested and self._stop.received is None:
                    self._stop.received = signal.SIGTERM
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
        self._step_time = self.elapsed_s()  # one reading for the schedule and the plan's end
        self.scheduler.advance_to(self.plan.schedule_step(self.global_step, self._step_time))
        return grad_norm

    # ------------------------------------------------------------------ the time budget's plan
    def elapsed_s(self) -> float:
        """Seconds on the job clock: this process since the job started, plus earlier processes of the run."""
        return self.elapsed_before_resume + clock() - self._clock_start

    def _budget_s(self) -> Optional[float]:
        minutes = self.tcfg.max_time_minutes
        return None if minutes is None else 60.0 * float(minutes)

    def _start_plan(self) -> None:
        """The stored plan on resume (same budget and length), else the configured length until speed is measured."""
        budget = self._budget_s()
        stored = self.plan if self.resumed_plan else None
        if stored is None or stored.full_steps != self.full_steps or stored.budget_s != budget:
            self.plan = initial_plan(self.full_steps, budget, self.elapsed_s(), self._final_eval_s())
        self.plan.time_floor = self.world_size == 1
        if budget is not None and self.is_main:
            spent = self.elapsed_s()
            log.info("time budget: %.3g min for the whole job, %.2g min already spent before training; the LR schedule "
                     "is fitted to the measured speed after %.0f s of training or the first epoch", budget / 60,
                     spent / 60, PLAN_AFTER_S)
            if spent > 0.5 * budget:
                log.warning("time budget: data preparation took %.1f of the %.1f minutes; training gets what is left. "
                            "Raise trainer.max_time_minutes or lower data.train_size for a better-trained model.",
                            spent / 60, budget / 60)

    def _val_batches(self, loader: Any) -> int:
        batches = len(loader)
        limit = self.tcfg.limit_val_batches
        return min(batches, limit) if limit else batches

    def _val_batch_seconds(self) -> float:
        """Measured seconds per validation batch; before the first validation, half a training step."""
        if self._val_batch_s is not None:
            return self._val_batch_s
        step = self._speed.step_seconds()
        return 0.5 * step if step is not None else 0.0  # no backward pass: well under a training step

    def _final_eval_s(self) -> float:
        """Seconds the final evaluation (val and every extra split) is expected to take."""
        batches = self._val_batches(self._val_loader()) + sum(self._val_batches(loader)
                                                              for loader in self.extra_val_loaders.values())
        return self._val_batch_seconds() * batches

    def _refit_plan(self, at_epoch_end: bool) -> None:
        """Fit the plan to the measured speed: first after PLAN_AFTER_S or epoch 1, later only on drift."""
        if not at_epoch_end and (self.plan.fitted or self.world_size > 1 or self._speed.seconds < PLAN_AFTER_S):
            return
        budget, step_s = self._budget_s(), self._speed.step_seconds()
        if budget is None or step_s is None:
            return
        val_epoch_s = self._val_batch_seconds() * self._val_batches(self._val_loader())
        refit = fit_plan(self.plan, budget_s=budget, now_s=self.elapsed_s(), step=self.global_step, epochs_done=self.epoch,
                         steps_per_epoch=self.steps_per_epoch, step_s=step_s, val_epoch_s=val_epoch_s,
                         final_eval_s=self._final_eval_s())
        if self.world_size > 1:
            refit = broadcast_object(refit)  # rank 0's measurements decide for every rank
        self._speed.restart_recent()
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

    # ------------------------------------------------------------------ data order and devices
    def _epoch_loader(self, epoch: int) -> DataLoader:
        """Fix the data order of `epoch` so a resumed run sees exactly the batches it would have."""
        loader = self._overfit_loader() if self.tcfg.overfit_batches else self.train_loader
        if isinstance(loader, DataLoader):
            set_loader_epoch(loader, epoch)  # DistributedSampler shuffle, on-the-fly renders
        if getattr(loader, "generator", None) is not None:
            loader.generator.manual_seed(self.config.seed * 1_000_003 + epoch)
        return loader

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
    def _progress_bar(self, total: int, desc: str, *, initial: int = 0, log_lines: bool = False,
                      delay: float = QUIET_S) -> Any:
        """A bar on rank 0 as trainer.progress_bar says (null = on a terminal only); with `log_lines`, log lines
        where there is no terminal (runner.progress)."""
        return progress_bar(total, desc, "batch", show=self.tcfg.progress_bar if self.is_main else False,
                            log_lines=log_lines and self.is_main, initial=initial, leave=False, delay=delay)

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
            tensorboard.log_epoch(self.writer, self.global_step, stats)
        write_curves(self.history, self.output_dir / CURVES_FILE)

    # ------------------------------------------------------------------ checkpoints, resume and stops
    def _save_checkpoint(self, metrics: dict[str, float], *, is_best: bool) -> None:
        if not self.is_main:
            return
        self.checkpoints.save(state.checkpoint_payload(self, metrics), epoch=self.epoch, is_best=is_best)

    def _maybe_resume(self) -> bool:
        """Restore everything from the checkpoint config.resume names, if any (state.py)."""
        return state.resume(self)

    def _interrupt(self, sums: dict[str, float]) -> None:
        """A stop signal came: save the state mid-epoch and end the run with the command that resumes it."""
        self.partial_epoch = dict(sums)
        self._save_checkpoint({}, is_best=False)
        raise interrupted(self._stop.received, epoch=self.epoch + 1, batch=self.step_in_epoch,
                          last_checkpoint=self.checkpoints.last_path, run_dir=self.output_dir)

    # ------------------------------------------------------------------ end of run
    def _finish(self, reason: str, train_time: float) -> dict[str, Any]:
        restored = self.early_stopping.restore(self.raw_model)
        eval_start = clock()
        self.final_evaluation = True
        extra: dict[str, dict[str, float]] = {}
        for split, loader in self.extra_val_loaders.items():
            extra[split] = self._validate_epoch(loader, split, collect_examples=True)
        # the validation split last; every split's samples are kept for the end-of-run reports
        final = self._validate_epoch(self._val_loader(), "val", collect_examples=True)
        best_epoch = self.early_stopping.best_epoch
        best_row = next((row for row in self.history if row["epoch"] == best_epoch), self.history[-1] if self.history else {})
        results: dict[str, Any] = {
            "monitor": self.tcfg.monitor,
            "best_metric": self.early_stopping.best,
            "best_epoch": best_epoch,
            "best_val_loss": min((row["val/loss"] for row in self.history), default=math.nan),
            "best_weights_restored": restored,
            "stop_reason": reason,
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
                      "tensorboard": str(tensorboard.tensorboard_dir(self.output_dir)),
                      "curves": str(self.output_dir / CURVES_FILE)},
        }
        if self.is_main:
            self._final_reports(results)
            with open(self.output_dir / "metrics.json", "w", encoding="utf-8") as handle:
                json.dump(results, handle, indent=2, ensure_ascii=False)
            if self.writer is not None:
                self.writer.close()
        return results


class _ListLoader(list):
    """A fixed list of batches that quacks like a DataLoader for overfit mode."""

    dataset = None
    generator = None
    sampler = None
