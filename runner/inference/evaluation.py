"""Evaluation: which data a model is scored on, the scoring pass, and the report it writes.

A model is scored with the charset stored with it: a dataset whose labels hold characters outside it is a
DataError naming the dataset, the characters and the model's charset.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.calibration import CONFIDENT
from runner.charset import Charset, LabelOutsideCharset
from runner.config import TrainingConfig
from runner.data.config import DataConfig, as_data_config, data_seed
from runner.data.datasets import KhmerDigitsDataset, LabeledFolderDataset
from runner.data.generate import resolve_path
from runner.data.loaders import make_loader
from runner.data.splits import build_datasets
from runner.errors import CheckpointError, DataError
from runner.inference.formats import format_char_confidences
from runner.inference.predictors import Predictor
from runner.metrics import OCRMetrics, ScoredSamples, metrics_report
from runner.outputs import write_text_atomic
from runner.progress import progress


def override_keys(overrides: Sequence[str]) -> list[str]:
    """Keys of Hydra command-line overrides: '+data.dir=x' -> 'data.dir', 'data=folder' -> 'data'."""
    return [item.split("=", 1)[0].lstrip("+~") for item in overrides]


def names_data_source(overrides: Sequence[str]) -> bool:
    """True when the user said where the data is (metadata=, data=<preset>, data.dir=, data.kind=)."""
    return any(key in ("metadata", "data", "data.dir", "data.kind") for key in override_keys(overrides))


def evaluation_data_config(data: Any, predictor: Predictor, overrides: Sequence[str]) -> tuple[DataConfig, bool]:
    """(data config, taken_from_training) for an evaluation.

    When the user names no data source, the data settings are those the model was trained with
    (so the default generated dataset is the very cache training used), with any data.* /
    augment overrides of this command applied on top. Image size always follows the model.
    """
    from_training = not names_data_source(overrides) and bool(predictor.training.get("data"))
    if from_training:
        try:
            base = OmegaConf.merge(OmegaConf.structured(DataConfig), predictor.training["data"])
        except OmegaConfBaseException as error:
            raise CheckpointError(f"{predictor.source}: its stored training data settings do not fit this version "
                                  f"({str(error).splitlines()[0]}); name the data to evaluate on (metadata=..., "
                                  f"data=..., data.dir=...).") from error
        base.cache_dir = data.cache_dir  # where this machine keeps datasets, never a folder a model file names
        for key in override_keys(overrides):
            if key == "data/augment" or key.startswith("data."):
                path = "augment" if key == "data/augment" else key[len("data."):]
                OmegaConf.update(base, path, OmegaConf.select(data, path), merge=False)
        data = base
    config = as_data_config(data)
    # image size and preprocessing always follow the model
    config.image_height, config.image_width = predictor.height, predictor.width
    config.text_crop, config.bucketing = predictor.text_crop, predictor.bucketing
    config.cache_in_memory = False  # one pass over the data: a cache only costs memory
    return config, from_training


def evaluation_seed(predictor: Predictor, data: DataConfig, seed: Optional[int] = None) -> int:
    """The seed of the data to evaluate on: the command's, else data.seed, else the one training used."""
    if seed is not None:
        return seed
    trained = predictor.training.get("seed")
    return data_seed(data, trained if trained is not None else TrainingConfig.seed)


@contextlib.contextmanager
def labels_the_model_reads(model: str, charset: Optional[Charset]):
    """Turn a label outside `charset` into a DataError that also names the model and its charset."""
    try:
        yield
    except LabelOutsideCharset as error:
        if charset is None:
            raise
        other = f"a model trained with charset={error.fits[0]}" if error.fits else "a model of another charset"
        raise DataError(f"the dataset does not fit the model {model}, which reads {charset}: {error.problem}. "
                        f"Evaluate it on data labelled in its charset, or evaluate {other}.") from None


def evaluation_dataset(data: DataConfig, split: str, seed: int, metadata: Optional[str] = None,
                       whole_folder: bool = False, charset: Optional[Charset] = None, model: str = "model"
                       ) -> tuple[torch.utils.data.Dataset, str]:
    """(dataset, description) of the split to evaluate, its labels checked against `charset` (the charset of
    `model`, the model to be evaluated; default digits).

    `metadata` names a generated dataset directly; `whole_folder` reads every image of a labelled
    folder (a user's test set) instead of the seeded val/train split training made of it.
    """
    with labels_the_model_reads(model, charset):
        return _evaluation_dataset(data, split, seed, metadata, whole_folder, charset)


def _evaluation_dataset(data: DataConfig, split: str, seed: int, metadata: Optional[str], whole_folder: bool,
                        charset: Optional[Charset]) -> tuple[torch.utils.data.Dataset, str]:
    if metadata:
        # a folder or a missing file is handled (and explained) by the dataset's own metadata reader
        dataset = KhmerDigitsDataset(resolve_path(metadata), split, data.image_height, data.image_width, data.max_length,
                                     cache_in_memory=False, text_crop=data.text_crop, charset=charset)
        return dataset, f"{dataset.metadata_path} [{split}]"
    if data.kind == "folder" and whole_folder:
        dataset = LabeledFolderDataset(resolve_path(data.dir), data.labels_file, data.max_length, data.image_height,
                                       data.image_width, cache_in_memory=False, text_crop=data.text_crop,
                                       charset=charset)
        return dataset, f"{resolve_path(data.dir) / data.labels_file} (all images)"
    datasets = build_datasets(data, seed, charset=charset)
    if split not in datasets:
        raise DataError(f"split={split} does not exist in this {data.kind} dataset; it has {sorted(datasets)}. "
                        f"Pick one with split=... .")
    dataset = datasets[split]
    where = getattr(dataset, "metadata_path", None) or getattr(dataset, "root", None) or f"{data.kind} data"
    return dataset, f"{where} [{split}]"


def read_dataset(predictor: Predictor, dataset: torch.utils.data.Dataset, batch_size: int = 64,
                 num_workers: int = 0, max_length: int = 8) -> ScoredSamples:
    """Run `predictor` over `dataset` (already preprocessed at the predictor's size): what it read, per image.
    Labels are encoded with the predictor's charset (a rendered one outside it is a DataError naming the model)."""
    if tuple(dataset[0]["image"].shape) != (1, predictor.height, predictor.width):
        raise DataError(f"the dataset yields images of shape {list(dataset[0]['image'].shape)}, but "
                        f"{predictor.source} reads [1, {predictor.height}, {predictor.width}].")
    samples = ScoredSamples()
    # A cropping model reads width-sorted batches, as in validation during training.
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, max_length=max_length,
                         bucketing=predictor.bucketing, charset=predictor.charset)
    with labels_the_model_reads(str(predictor.source), predictor.charset):
        for batch in progress(loader, len(loader), "evaluating", "batches"):
            texts, confidences, char_confidences = predictor.predict(batch["images"])
            samples.extend(texts, list(batch["texts"]), list(batch["paths"]), list(confidences), char_confidences)
    return samples


def evaluate_dataset(predictor: Predictor, dataset: torch.utils.data.Dataset, batch_size: int = 64,
                     worst_k: int = 50, num_workers: int = 0, max_length: int = 8) -> OCRMetrics:
    """Run `predictor` over `dataset` and score it (over the predictor's charset)."""
    return read_dataset(predictor, dataset, batch_size, num_workers, max_length).scored(worst_k, predictor.charset)


def format_report_table(report: dict[str, Any]) -> str:
    """A plain-text table for the terminal: headline metrics, then per-length and per-digit accuracy."""
    scores = report["metrics"]
    lines = [f"{'metric':<22}{'value':>10}", "-" * 32]
    for key in ("char_accuracy", "seq_accuracy", "cer", "norm_edit_distance"):
        lines.append(f"{key:<22}{scores[key]:>10.4f}")
    lines.append(f"{'samples':<22}{int(scores['count']):>10d}")
    confidence = report.get("confidence") or {}
    if "misreads" in confidence:
        lines.append(f"{'misreads':<22}{confidence['misreads']:>10d}")
        lines.append(f"{f'  of them conf > {CONFIDENT}':<22}{confidence[f'misreads_above_{CONFIDENT}']:>10d}")
    per_format = report.get("per_format") or {}
    if len(per_format) > 1:
        lines += ["", f"{'format':<10}{'samples':>9}{'seq_acc':>10}", "-" * 29]
        lines += [f"{name:<10}{row['images']:>9d}{row['seq_accuracy']:>10.4f}" for name, row in per_format.items()]
    lines += ["", f"{'length':<8}{'samples':>9}{'seq_acc':>10}", "-" * 27]
    for length, accuracy in report["per_length_accuracy"].items():
        lines.append(f"{length:<8}{report['length_histogram'][length]:>9d}{accuracy:>10.4f}")
    lines += ["", f"{'char':<8}{'char_acc':>10}", "-" * 18]
    for position, (digit, accuracy) in enumerate(report["per_class_accuracy"].items()):
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        lines.append(f"{digit} ({position})".ljust(8) + f"{shown:>10}")
    return "\n".join(lines)


def write_evaluation(metrics: OCRMetrics, output_dir: Path, context: dict[str, Any],
                     readings: Optional[dict[str, Any]] = None) -> dict[str, Path]:
    """metrics.json (report + `context` + `readings`), confusion_matrix.png and worst_errors.tsv in `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {**context, **metrics_report(metrics, readings)}
    paths = {"metrics": output_dir / "metrics.json", "confusion_matrix": output_dir / "confusion_matrix.png",
             "worst_errors": output_dir / "worst_errors.tsv"}
    write_text_atomic(paths["metrics"], json.dumps(report, indent=2, ensure_ascii=False))
    metrics.plot_confusion_matrix(paths["confusion_matrix"])
    with open(paths["worst_errors"], "w", encoding="utf-8") as handle:
        handle.write("path\ttruth\tprediction\tvalue\tconfidence\tchar_confidences\tedit_distance\n")
        for example in metrics.error_analysis()["worst_examples"]:
            confidence = "" if example["confidence"] is None else f"{example['confidence']:.4f}"
            handle.write(f"{example['path'] or ''}\t{example['truth']}\t{example['prediction']}\t"
                         f"{example.get('value', '')}\t{confidence}\t"
                         f"{format_char_confidences(example.get('char_confidences'))}\t{example['distance']}\n")
    return paths
