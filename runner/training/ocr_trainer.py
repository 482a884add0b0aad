"""OCRTrainer: validation by real greedy decoding, OCR metrics and end-of-run reports."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from runner.training.base_trainer import BaseTrainer, _unwrap

log = logging.getLogger("runner.trainer")


class OCRTrainer(BaseTrainer):
    """Trains any model of the shared interface (attention or CTC head) on Khmer digit batches."""

    _examples: Optional[dict[str, Any]] = None

    # ------------------------------------------------------------------ seed API
    def _decode_predictions(self, predictions: torch.Tensor) -> list[str]:
        """Logits [B, T, V] from the model's inference forward → decoded strings."""
        texts, _ = _unwrap(self.model).decode_logits(predictions.float())
        return texts

    def _metrics_of(self, predictions: list[str], targets: list[str]) -> Any:
        metrics = self._create_metrics_calculator()
        metrics.update(predictions, targets)
        return metrics

    def _calculate_metrics(self, predictions: list[str], targets: list[str]) -> dict[str, float]:
        return self._metrics_of(predictions, targets).compute()

    def _analyze_errors(self, predictions: list[str], targets: list[str]) -> dict[str, Any]:
        return self._metrics_of(predictions, targets).error_analysis()

    def _generate_confusion_matrix(self, predictions: list[str], targets: list[str]):
        return self._metrics_of(predictions, targets).confusion_matrix()

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def _validate_epoch(self, loader: DataLoader, split: str, *, collect_examples: bool = False) -> dict[str, float]:
        self.model.eval()
        model = _unwrap(self.model)
        self.metrics.reset()
        loss_sum, samples = 0.0, 0
        shown_images, shown_pred, shown_true = [], [], []
        limit = self.tcfg.limit_val_batches
        batches = itertools.islice(loader, limit) if limit else loader
        for batch in batches:
            batch = self._to_device(batch)
            with self._autocast():
                logits = model(batch["images"], batch["targets"])
                loss = self.loss_fn(logits, batch)
                # attention heads are scored on their own greedy decoding, never on teacher forcing
                inference_logits = model(batch["images"]) if model.head == "attention" else logits
            texts, confidences = model.decode_logits(inference_logits.float())
            self.metrics.update(texts, list(batch["texts"]), paths=list(batch["paths"]), confidences=confidences)
            size = batch["images"].shape[0]
            loss_sum += float(loss) * size
            samples += size
            if len(shown_images) < self.tcfg.num_image_samples:
                take = self.tcfg.num_image_samples - len(shown_images)
                shown_images.extend(batch["images"][:take].float().cpu())
                shown_pred.extend(texts[:take])
                shown_true.extend(batch["texts"][:take])
        sums = self._reduce_sums({"loss": loss_sum, "samples": float(samples)})
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, self.metrics.state_dict())
            self.metrics.reset()
            for state in gathered:
                self.metrics.merge(state)
        computed = self.metrics.compute()
        results = {f"{split}/loss": sums["loss"] / max(sums["samples"], 1.0)}
        for key in ("char_accuracy", "seq_accuracy", "cer", "norm_edit_distance"):
            results[f"{split}/{key}"] = float(computed[key])
        results[f"{split}/images"] = float(computed["count"])
        if split == "val" and self.is_main and self.writer is not None:
            self._log_validation_figures(shown_images, shown_pred, shown_true)
        if collect_examples:
            self._examples = {"images": shown_images, "pred": shown_pred, "true": shown_true}
        self.model.train()
        return results

    def _log_validation_figures(self, images: list[torch.Tensor], pred: list[str], true: list[str]) -> None:
        from runner.training.plots import confusion_figure, examples_figure

        self.writer.add_figure("val/confusion_matrix", confusion_figure(self.metrics), self.global_step)
        if images:
            self.writer.add_figure("val/examples", examples_figure(images, pred, true), self.global_step)

    # ------------------------------------------------------------------ reports
    def _final_reports(self, results: dict[str, Any]) -> None:
        from runner.training.plots import write_error_report

        out = Path(self.output_dir)
        self.metrics.plot_confusion_matrix(out / "confusion_matrix.png")
        analysis = self.metrics.error_analysis()
        write_error_report(out / "errors.md", self.metrics.compute(), analysis, self.tcfg.num_worst_examples)
        results["paths"].update({"confusion_matrix": str(out / "confusion_matrix.png"), "error_report": str(out / "errors.md")})
        if self.writer is not None:
            self._log_hparams(results)

    def _log_hparams(self, results: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        cfg = self.config
        params = {
            "model": str(cfg.model.name), "loss": str(cfg.loss.name), "optimizer": str(cfg.optimizer._target_).split(".")[-1],
            "lr": float(cfg.optimizer.lr), "weight_decay": float(cfg.optimizer.weight_decay),
            "scheduler": str(cfg.scheduler._target_).split(".")[-1], "batch_size": int(cfg.data.batch_size),
            "accumulate": int(cfg.trainer.accumulate_grad_batches), "max_epochs": int(cfg.trainer.max_epochs),
            "amp": str(cfg.device.amp), "seed": int(cfg.seed), "train_size": int(cfg.data.train_size),
        }
        final = results["final_metrics"]
        metric_values = {f"hparams/{k.split('/')[-1]}": float(v) for k, v in final.items()}
        metric_values["hparams/best_epoch"] = float(results["best_epoch"])
        experiment, session_start, session_end = hparams(params, metric_values)
        file_writer = self.writer._get_file_writer()
        for summary in (experiment, session_start, session_end):
            file_writer.add_summary(summary)
        for key, value in metric_values.items():
            self.writer.add_scalar(key, value, self.global_step)
        self.writer.flush()
