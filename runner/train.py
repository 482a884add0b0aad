"""`train(cfg)`: compose → validate → seed → instantiate → fit → return the results."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from runner.charset import config_charset
from runner.cli import hydra_output_dir, write_job_status
from runner.data import build_data_loaders
from runner.data.config import as_data_config
from runner.data.fonts import families
from runner.data.generate import data_fonts
from runner.device import decide_amp
from runner.errors import instantiate
from runner.training.distributed import broadcast_object, distributed_context
from runner.training.utils import resolve_device, setup_training_environment

log = logging.getLogger("runner")


ONE_FAMILY_COST = ("a model trained on the pip Noto Sans Khmer alone read 70% of the numbers printed in the twelve "
                   "Khmer OS families (the default recipe; 45% of an independent held-out set before data.augment."
                   "allograph_p), against 97% for one trained with both Debian packages (docs/results.md 'Unseen "
                   "fonts')")


def announce_fonts(data_cfg: DictConfig) -> None:
    """Log the font families a rendered dataset draws from; warn loudly when there is only one."""
    if data_cfg.kind == "folder" or data_cfg.get("dir"):
        return  # the images exist already: the fonts they were drawn with are not ours to choose
    found = families(data_fonts(as_data_config(data_cfg)))
    log.info("fonts: %d Khmer families found: %s", len(found), ", ".join(found))
    if len(found) < 2:
        log.warning("ONLY ONE KHMER FONT FAMILY (%s): %s. Run `make fonts` (fonts-khmeros and fonts-noto-core, with "
                    "or without root) or set data.fonts_dir to a folder of Khmer fonts, then train again.",
                    ", ".join(found), ONE_FAMILY_COST)


def font_families(loader: Any) -> set[str]:
    """The font families a generated split's samples were drawn with (empty for other datasets)."""
    records = getattr(getattr(loader, "dataset", None), "records", [])
    return {str(record["font"]) for record in records if isinstance(record, dict) and record.get("font")}


def split_table(results: dict[str, Any], loaders: dict[str, Any]) -> str:
    """split | images | fonts | seq accuracy | CER, one row per validation split (the end-of-training report)."""
    scores = {"val": results["final_metrics"], **results["extra_val_metrics"]}
    lines = [f"{'split':<24}{'images':>8}  {'fonts':<36}{'seq acc':>9}{'CER':>9}", "-" * 86]
    for split, metrics in scores.items():
        images = int(metrics.get(f"{split}/images", 0))
        fonts = sorted(font_families(loaders.get(split)))
        shown = ", ".join(fonts) if len(fonts) <= 2 else f"{len(fonts)} families"
        lines.append(f"{split:<24}{images:>8}  {shown or '-':<36}{metrics[f'{split}/seq_accuracy']:>9.4f}"
                     f"{metrics[f'{split}/cer']:>9.4f}")
    return "\n".join(lines)


def train(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()  # trainer.max_time_minutes counts from here: data preparation is part of the job
    with distributed_context(cfg.device.name) as (rank, world_size, device_name):
        device = resolve_device(device_name)
        decide_amp(cfg.device.amp, device)  # device.amp=bf16 without native bf16 fails here, before any data work
        output_dir = broadcast_object(hydra_output_dir() or Path(cfg.paths.output_root) / cfg.experiment_name)
        setup_training_environment(cfg, output_dir, create_dirs=rank == 0)
        if world_size > 1:
            log.info("DDP: %d processes, per-process batch %d, global batch %d", world_size, cfg.data.batch_size,
                     cfg.data.batch_size * world_size * cfg.trainer.accumulate_grad_batches)
        if rank == 0:
            announce_fonts(cfg.data)
        charset = config_charset(cfg)  # the vocabulary data, model, loss, metrics and checkpoints follow
        train_loader, val_loader, extra_val_loaders = build_data_loaders(cfg.data, seed=cfg.seed, rank=rank,
                                                                         world_size=world_size, charset=charset)
        model = instantiate(cfg.model, charset=charset.name)
        log.info("model %s (%s head, %s): %.2fM parameters; device %s; output %s", cfg.model.name, model.head,
                 charset, sum(p.numel() for p in model.parameters()) / 1e6, device, output_dir)
        trainer = instantiate(cfg.trainer)(model=model, train_loader=train_loader, val_loader=val_loader, config=cfg,
                                           device=device, output_dir=output_dir, extra_val_loaders=extra_val_loaders,
                                           rank=rank, world_size=world_size, started_at=started)
        results = trainer.train()
        del trainer, model  # their DistributedDataParallel wrapper holds the process group the context shuts down
    log.info("best %s=%.4f at epoch %d (%s); outputs in %s", results["monitor"], results["best_metric"],
             results["best_epoch"], results["stop_reason"], output_dir)
    log.info("the kept weights on every validation split:\n%s",
             split_table(results, {"val": val_loader, **extra_val_loaders}))
    if "val_unseen_fonts" in extra_val_loaders and font_families(extra_val_loaders["val_unseen_fonts"]) <= \
            font_families(train_loader):
        log.warning("val_unseen_fonts is drawn from the training families themselves (one family installed: it holds "
                    "out a region of the variable font's axes), so it is a weak estimate of fonts the model never saw. "
                    "Run `make fonts` for whole held-out families.")
    write_job_status("completed", best_metric=results["best_metric"], best_epoch=results["best_epoch"],
                     monitor=results["monitor"])
    return results
