"""The entry-point schemas of `runner.evaluate`, `runner.predict` and `runner.export`, and their value checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from runner.data.config import DataConfig, register_data_configs
from runner.errors import require
from runner.schema import help_field



class Split(StrEnum):
    """evaluate's split: a split of a generated dataset."""

    val = "val"
    val_hard = "val_hard"
    val_unseen_fonts = "val_unseen_fonts"
    val_hard_unseen_fonts = "val_hard_unseen_fonts"
    train = "train"


class ExportFormat(StrEnum):
    """export's format."""

    onnx = "onnx"
    torchscript = "torchscript"


class PredictFormat(StrEnum):
    """predict's format: tsv and csv start with a `path, text, confidence` header row; jsonl is one object a line."""

    tsv = "tsv"
    jsonl = "jsonl"
    csv = "csv"


SPLITS = tuple(Split)


@dataclass
class _InferenceConfig:
    checkpoint: Optional[str] = help_field("A checkpoint .pt, a run dir (its best checkpoint, else its last) or an "
                                           "exported .onnx file; null = the shipped digits model, `numbers` = the shipped numbers "
                                           "model (runner/shipped/).", None)
    batch_size: int = help_field("Images per forward pass.", 64)
    device: str = help_field("auto (cuda if available), cpu or cuda.", "auto")
    num_threads: Optional[int] = help_field("torch / ONNX Runtime intra-op threads; null = library default.", None)


@dataclass
class EvaluateConfig(_InferenceConfig):
    """Root config of `python -m runner.evaluate` (conf/evaluate.yaml)."""

    split: Split = help_field(f"Split of a generated dataset: one of {', '.join(SPLITS)} (ignored for a data=folder "
                              f"dir).", Split.val)
    metadata: Optional[str] = help_field("A generated dataset's metadata.yaml (or its folder); overrides data.*.", None)
    seed: Optional[int] = help_field("Seed of the generated dataset; null = the seed the checkpoint was trained with.",
                                None)
    worst_k: int = help_field("Worst errors written to worst_errors.tsv.", 50)
    report_images: int = help_field("Misreads shown in report.html, most confident first; 0 = none.", 200)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class PredictConfig(_InferenceConfig):
    """Root config of `python -m runner.predict` (conf/predict.yaml)."""

    inputs: str = help_field("An image file, a folder (searched recursively for images), a glob such as 'scans/*.jpg', "
                             "@LIST (a text file naming one image per line, relative to its folder) or - (paths "
                             "on stdin, one per line).")
    output: Optional[str] = help_field("File to write the predictions to; null = stdout.", None)
    format: PredictFormat = help_field("tsv or csv (a path, text, confidence header row, then a row per image) or "
                                       "jsonl (one JSON object per image).", PredictFormat.tsv)
    save_run: bool = help_field("Keep a run dir (outputs/predict/<date>/<time>-<id>/ with .hydra/ and predict.log); "
                                "false = write nothing but the predictions.", False)
    overwrite: bool = help_field("Replace an existing output file (never without it, and never an input image "
                                 "unless set).", False)


@dataclass
class ExportConfig:
    """Root config of `python -m runner.export` (conf/export.yaml)."""

    checkpoint: str = help_field("A checkpoint .pt or a run dir (uses checkpoints/best.pt).")
    format: ExportFormat = help_field("onnx or torchscript.", ExportFormat.onnx)
    output: Optional[str] = help_field("Exported file; null = next to the checkpoint (best.onnx / best.torchscript.pt).",
                                  None)
    dynamo: bool = help_field("ONNX: use torch.export (dynamo) exporter; false = the TorchScript-based exporter.", True)
    opset: Optional[int] = help_field("ONNX opset; null = the exporter's default.", None)
    parity_images: int = help_field("Rendered images the exported model must read exactly like the checkpoint.", 32)
    atol: float = help_field("Largest tolerated absolute logit difference in the parity check.", 1e-3)
    seed: int = help_field("Seed of the rendered parity images.", 0)
    overwrite: bool = help_field("Replace an existing output file and its .json sidecar (never the checkpoint "
                                 "exported from).", False)


def register_inference_configs(cs: Optional[ConfigStore] = None) -> ConfigStore:
    """Store the schemas conf/{evaluate,predict,export}.yaml extend; safe to call more than once."""
    cs = cs or ConfigStore.instance()
    register_data_configs(cs)
    cs.store(name="_evaluate_schema", node=EvaluateConfig)
    cs.store(name="_predict_schema", node=PredictConfig)
    cs.store(name="_export_schema", node=ExportConfig)
    return cs


def check_inference_config(cfg: Any) -> None:
    """The value checks of the settings evaluate and predict share (ConfigError naming the key)."""
    require(cfg.batch_size > 0, "batch_size", "must be > 0", cfg.batch_size)
    require(cfg.num_threads is None or cfg.num_threads > 0, "num_threads", "must be > 0 or null", cfg.num_threads)
