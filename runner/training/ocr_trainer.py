"""OCRTrainer: validation by real greedy decoding, OCR metrics and end-of-run reports."""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from runner.calibration import fit_calibration
from runner.data.generate import groups_by_path
from runner.metrics import (
    ScoredSamples,
    metrics_report,
    plot_confusion_matrix,
    readings_report,
)
from runner.report import write_report
from runner.training import tensorboard
from runner.training.base_trainer import BaseTrainer
from runner.training.checkpoint import store_calibration
from runner.training.distributed import unwrap
from runner.training.plots import ShownExample


class ExamplePicker:
    """The validation images TensorBoard shows, picked during the pass: the `limit` most confident misreads,
    then, if there are fewer, correct ones from batches spread over the pass (across widths when batches
    are width-sorted). Only the images kept are copied."""

    def __init__(self, limit: int, batches: int) -> None:
        self.limit = limit
        spread = np.linspace(0, max(batches - 1, 0), num=min(limit, batches)) if limit else []
        self.correct_batches = {int(round(index)) for index in spread}
        self.misreads: list[tuple[float, int, ShownExample]] = []  # a min-heap on confidence, then earlier first
        self.correct: list[ShownExample] = []
        self.seen = 0

    def add(self, batch_index: int, images: torch.Tensor, predictions: Sequence[str], truths: Sequence[str],
            confidences: Sequence[float]) -> None:
        if not self.limit:
            return
        take_correct = batch_index in self.correct_batches
        for image, prediction, truth, confidence in zip(images, predictions, truths, confidences):
            self.seen += 1
            key = (float(confidence), -self.seen)
            if prediction == truth:
                if take_correct:
                    self.correct.append(ShownExample(image.float().cpu(), truth, prediction, float(confidence)))
                    take_correct = False
            elif len(self.misreads) < self.limit or key > self.misreads[0][:2]:
                entry = (*key, ShownExample(image.float().cpu(), truth, prediction, float(confidence)))
                (heapq.heappush if len(self.misreads) < self.limit else heapq.heapreplace)(self.misreads, entry)

    def picked(self) -> list[ShownExample]:
        """The misreads, most confident first, then correct ones evenly spread over the pass."""
        misreads = [entry[2] for entry in sorted(self.misreads, key=lambda entry: entry[:2], reverse=True)]
        room = self.limit - len(misreads)
        if room <= 0 or not self.correct:
            return misreads
        spread = np.linspace(0, len(self.correct) - 1, num=min(room, len(self.correct)))
        return misreads + [self.correct[int(round(index))] for index in spread]


class OCRTrainer(BaseTrainer):
    """Trains any model of the shared interface (attention or CTC head) on batches of the run's charset."""

    _final_samples: Optional[dict[str, ScoredSamples]] = None  # every split's final pass: reports and calibration

    # ------------------------------------------------------------------ seed API: validation and reports run on it
    def _decode_predictions(self, predictions: torch.Tensor, *,
                            with_confidences: bool = False) -> list[str] | tuple[list[str], list[float]]:
        """Logits [B, T, V] → decoded strings (with the model's charset); with `with_confidences`, (strings, each
        string's confidence)."""
        model = unwrap(self.model)
        if with_confidences:
            return tuple(model.decode_logits(predictions.float())[:2])
        # decode_texts skips the confidences; a model of one's own may only have decode_logits
        if hasattr(model, "decode_texts"):
            return model.decode_texts(predictions.float())
        return model.decode_logits(predictions.float())[0]

    def _scored(self, predictions: Sequence[str], targets: Sequence[str], paths: Optional[Sequence[str]] = None,
                confidences: Optional[Sequence[float]] = None) -> Any:
        """The metrics calculator (self.metrics) holding exactly these samples."""
        self.metrics.reset()
        self.metrics.update(predictions, targets, paths=paths, confidences=confidences)
        return self.metrics

    def _calculate_metrics(self, predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
        """char_accuracy, seq_accuracy, cer, norm_edit_distance and count (runner/metrics.py)."""
        return self._scored(predictions, targets).compute()

    def _analyze_errors(self, predictions: Sequence[str], targets: Sequence[str], paths: Optional[Sequence[str]] = None,
                        confidences: Optional[Sequence[float]] = None) -> dict[str, Any]:
        """Substitution/insertion/deletion counts, the most confused digits and the worst examples."""
        return self._scored(predictions, targets, paths, confidences).error_analysis()

    def _generate_confusion_matrix(self, predictions: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """11x11 counts: rows truth ០..៩ then ∅ (inserted), columns prediction ០..៩ then ∅ (deleted)."""
        return self._scored(predictions, targets).confusion_matrix()

    # ------------------------------------------------------------------ training accuracy
    def _count_correct(self, logits: torch.Tensor, batch: dict) -> float:
        texts = self._decode_predictions(logits)
        return float(sum(p == t for p, t in zip(texts, batch["texts"])))

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def _validate_epoch(self, loader: DataLoader, split: str, *, collect_examples: bool = False) -> dict[str, float]:
        self.model.eval()
        model = unwrap(self.model)
        samples = ScoredSamples()
        loss_sum, count = 0.0, 0
        total = self._val_batches(loader)
        shown = ExamplePicker(self.tcfg.num_image_samples if split == "val" and self.is_main else 0, total)
        bar = self._progress_bar(total, f"validating {split}", log_lines=self.final_evaluation)
        for batch_index, batch in enumerate(itertools.islice(loader, total)):
            batch = self._to_device(batch)
            with self._autocast():
                logits = model(batch["images"], batch["targets"])
                loss = self.loss_fn(logits, batch)
                # attention heads are scored on their own greedy decoding, never on teacher forcing
                inference_logits = model(batch["images"]) if model.head == "attention" else logits
            texts, confidences = self._decode_predictions(inference_logits, with_confidences=True)
            samples.extend(texts, list(batch["texts"]), list(batch["paths"]), confidences)
            size = batch["images"].shape[0]
            loss_sum += float(loss) * size
            count += size
            shown.add(batch_index, batch["images"], texts, batch["texts"], confidences)
            bar.update(1)
        bar.close()
        sums = self._reduce_sums({"loss": loss_sum, "samples": float(count)})
        if self.world_size > 1:
            gathered: list[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, samples)
            samples = ScoredSamples.joined(gathered)
        computed = self._calculate_metrics(samples.predictions, samples.targets)
        results = {f"{split}/loss": sums["loss"] / max(sums["samples"], 1.0)}
        for key in ("char_accuracy", "seq_accuracy", "cer", "norm_edit_distance"):
            results[f"{split}/{key}"] = float(computed[key])
        results[f"{split}/images"] = float(computed["count"])
        if split == "val" and self.is_main and self.writer is not None:
            confusion = self._generate_confusion_matrix(samples.predictions, samples.targets)
            tensorboard.log_validation_figures(self.writer, self.global_step, confusion, len(samples.predictions),
                                               shown.picked(), labels=self.metrics.class_labels)
        if collect_examples:
            self._final_samples = {**(self._final_samples or {}), split: samples}
        self.model.train()
        return results

    # ------------------------------------------------------------------ reports
    def _final_reports(self, results: dict[str, Any]) -> None:
        from runner.training.plots import write_error_report

        out = Path(self.output_dir)
        samples = (self._final_samples or {}).get("val", ScoredSamples())
        predictions, targets = samples.predictions, samples.targets
        plot_confusion_matrix(self._generate_confusion_matrix(predictions, targets), out / "confusion_matrix.png",
                              sequences=len(predictions), labels=self.metrics.class_labels)
        analysis = self._analyze_errors(predictions, targets, samples.paths, samples.confidences)
        write_error_report(out / "errors.md", self._calculate_metrics(predictions, targets), analysis,
                           self.tcfg.num_worst_examples)
        results["calibration"] = self._calibrate()
        results.update(self._write_report(out / "report.html", results, samples))
        results["paths"].update({"confusion_matrix": str(out / "confusion_matrix.png"), "error_report": str(out / "errors.md"),
                                 "report": str(out / "report.html")})
        if self.writer is not None:
            tensorboard.log_hparams(self.writer, self.global_step, self.config, results)

    def _calibrate(self) -> dict[str, Any]:
        """Fit the confidence calibration on every validation split's final pass (clean and degraded, seen and
        unseen fonts) and store it in the best and last checkpoints, which predict and export read."""
        splits = self._final_samples or {}
        pooled = ScoredSamples.joined(list(splits.values()))
        calibration = fit_calibration(pooled.confidences, pooled.correct(), fitted_on=" + ".join(splits) or "nothing")
        for path in (self.checkpoints.best_path, self.checkpoints.last_path):
            if path.is_file():
                store_calibration(path, calibration)
        return calibration

    def _write_report(self, path: Path, results: dict[str, Any], samples: ScoredSamples) -> dict[str, Any]:
        """report.html of the final validation pass (runner/report.py); returns its per-font, per-degradation and
        confidence figures for metrics.json."""
        groups = groups_by_path(getattr(self._val_loader(), "dataset", None))
        readings = readings_report(samples, groups, results.get("calibration"))
        scores = {"val": results["final_metrics"], **results["extra_val_metrics"]}
        splits = {split: {"images": int(row.get(f"{split}/images", 0)), "seq_accuracy": row.get(f"{split}/seq_accuracy"),
                          "cer": row.get(f"{split}/cer")} for split, row in scores.items()}
        data = self.config.data
        curves = path.parent / "curves.png"
        write_report(path, {**metrics_report(samples.scored(0, self.charset), readings),
                            "data": {"source": "validation split of the training data"}}, samples,
                     title=f"What {self.config.model.name} gets wrong on val (end of training)", splits=splits,
                     groups=groups, preprocess=(data.image_height, data.image_width, bool(data.text_crop)),
                     history=self.history, curves_png=curves if curves.is_file() else None)
        return readings
