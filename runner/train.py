"""`train(cfg)`: compose → validate → seed → instantiate → fit → return the results."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.cli import hydra_output_dir, write_job_status
from runner.data import build_data_loaders
from runner.errors import instantiate
from runner.training.distributed import broadcast_object, distributed_context
from runner.training.utils import resolve_device, setup_training_environment

log = logging.getLogger("runner")


def train(cfg: DictConfig) -> dict[str, Any]:
    with distributed_context(cfg.device.name) as (rank, world_size, device_name):
        device = resolve_device(device_name)
        output_dir = broadcast_object(hydra_output_dir() or Path(cfg.paths.output_root) / cfg.experiment_name)
        setup_training_environment(cfg, output_dir, create_dirs=rank == 0)
        if world_size > 1:
            log.info("DDP: %d processes, per-process batch %d, global batch %d", world_size, cfg.data.batch_size,
                     cfg.data.batch_size * world_size * cfg.trainer.accumulate_grad_batches)
        train_loader, val_loader, extra_val_loaders = build_data_loaders(cfg.data, seed=cfg.seed, rank=rank,
                                                                         world_size=world_size)
        model = instantiate(cfg.model)
        log.info("model %s (%s head): %.2fM parameters; device %s; output %s", cfg.model.name, model.head,
                 sum(p.numel() for p in model.parameters()) / 1e6, device, output_dir)
        trainer = instantiate(cfg.trainer)(model=model, train_loader=train_loader, val_loader=val_loader, config=cfg,
                                           device=device, output_dir=output_dir, extra_val_loaders=extra_val_loaders,
                                           rank=rank, world_size=world_size)
        results = trainer.train()
    final = results["final_metrics"]
    log.info("best %s=%.4f at epoch %d; final val seq_accuracy=%.4f cer=%.4f; outputs in %s", results["monitor"],
             results["best_metric"], results["best_epoch"], final["val/seq_accuracy"], final["val/cer"], output_dir)
    for split, metrics in results["extra_val_metrics"].items():
        log.info("%s: seq_accuracy=%.4f cer=%.4f", split, metrics[f"{split}/seq_accuracy"], metrics[f"{split}/cer"])
    write_job_status("completed", best_metric=results["best_metric"], best_epoch=results["best_epoch"],
                     monitor=results["monitor"])
    return results
