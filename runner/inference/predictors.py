"""Inference shared by `runner.evaluate`, `runner.predict`, `runner.export` and the benchmark.

One `Predictor` interface, whatever the model file:

    predictor = load_predictor("outputs/default/2025-01-01/12-00-00")   # run dir -> checkpoints/best.pt
    predictor = load_predictor("model.onnx")                              # + model.onnx.json / embedded metadata
    texts, confidences = predictor.predict(images)                        # images: float [B, 1, H, W]

Images always go through `runner.data.preprocess_image` at the size stored with the model, and a
model trained with width bucketing (`preprocess.crop`) reads every batch cropped to its widest
image, as it was trained, so a checkpoint, its ONNX export and the training loop all see the same
pixels.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from runner import __version__
from runner.charset import charset_signature, check_charset
from runner.config import TrainingConfig
from runner.data.config import AugmentConfig, DataConfig, as_data_config, register_data_configs
from runner.data.dataset import KhmerDigitsDataset, LabeledFolderDataset, build_datasets, make_loader
from runner.data.generate import data_fonts, resolve_path
from runner.data.preprocess import (CROP_MULTIPLE, MIN_CROP_WIDTH, content_width, crop_to_content, load_image,
                                    preprocess_image)
from runner.data.render import render_sample, sample_key
from runner.errors import CheckpointError, ConfigError, DataError, UserError
from runner.metrics import CLASS_LABELS, OCRMetrics
from runner.schema import help_field
from runner.stored import NotPlainData, check_plain_data
from runner.training.checkpoint import (check_stored_layout, git_commit, load_model, model_from_stored_config,
                                       resolve_checkpoint_path, stored_model_options)

log = logging.getLogger("runner.inference")

EXPORT_FORMAT = "khmer-digits-ocr.export"
METADATA_KEY = "khmer_digits_ocr"  # ONNX metadata_props key / TorchScript extra file holding the sidecar JSON
SPLITS = ("val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts", "train")


class ExportError(UserError):
    """An exported model that does not reproduce its checkpoint."""


class PredictionFailures(DataError):
    """Some input files could not be read; their lines were written with an empty prediction."""

    exit_code = 1


# --------------------------------------------------------------------------- configs
@dataclass
class _InferenceConfig:
    checkpoint: str = help_field("A checkpoint .pt, a run dir (uses checkpoints/best.pt) or an exported .onnx file.")
    batch_size: int = help_field("Images per forward pass.", 64)
    device: str = help_field("auto (cuda if available), cpu or cuda.", "auto")
    num_threads: Optional[int] = help_field("torch / ONNX Runtime intra-op threads; null = library default.", None)


@dataclass
class EvaluateConfig(_InferenceConfig):
    """Root config of `python -m runner.evaluate` (conf/evaluate.yaml)."""

    split: str = help_field(f"Split of a generated dataset: one of {list(SPLITS)} (ignored for a data=folder dir).",
                       "val")
    metadata: Optional[str] = help_field("A generated dataset's metadata.yaml (or its folder); overrides data.*.", None)
    seed: Optional[int] = help_field("Seed of the generated dataset; null = the seed the checkpoint was trained with.",
                                None)
    worst_k: int = help_field("Worst errors written to worst_errors.tsv.", 50)
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class PredictConfig(_InferenceConfig):
    """Root config of `python -m runner.predict` (conf/predict.yaml)."""

    inputs: str = help_field("An image file, a folder (searched recursively for images) or a glob such as 'scans/*.jpg'.")
    output: Optional[str] = help_field("File to write `path<TAB>text<TAB>confidence` lines to; null = stdout.", None)
    overwrite: bool = help_field("Replace an existing output file (never without it, and never an input image "
                                 "unless set).", False)


@dataclass
class ExportConfig:
    """Root config of `python -m runner.export` (conf/export.yaml)."""

    checkpoint: str = help_field("A checkpoint .pt or a run dir (uses checkpoints/best.pt).")
    format: str = help_field("onnx or torchscript.", "onnx")
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


def check_positive(value: Any, key: str) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value!r}; fix it on the command line ({key}=...).")


# --------------------------------------------------------------------------- predictors
class Predictor:
    """A model that turns preprocessed images [B, 1, height, width] into (texts, confidences)."""

    def __init__(self, source: Path, metadata: dict[str, Any]) -> None:
        self.source = source
        self.metadata = metadata
        self.height = int(metadata["preprocess"]["height"])
        self.width = int(metadata["preprocess"]["width"])
        # Trained on batches cropped to their widest image (data.bucketing); absent in older models.
        self.crop = bool(metadata["preprocess"].get("crop", False))
        # Cut to the text box before resizing (data.text_crop); absent in older models.
        self.text_crop = bool(metadata["preprocess"].get("text_crop", False))
        self.max_length = int(metadata["max_length"])
        self.name = str(metadata["model"]["name"])
        self.head = str(metadata["model"]["head"])

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def training(self) -> dict[str, Any]:
        """{'seed': int, 'data': dict} the model was trained with, or {} when unknown."""
        return self.metadata.get("training") or {}

    def predict(self, images: torch.Tensor) -> tuple[list[str], list[float]]:
        raise NotImplementedError

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Full greedy logits (attention: max_length+1 steps), as the exported graph computes them."""
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.height, self.width, self.text_crop)

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        """Check the shape of preprocessed images; crop the batch as the model was trained to read it.

        A cropping model also takes a batch already cropped (narrower than `width`)."""
        widths = range(1, self.width + 1) if self.crop else (self.width,)
        if images.dim() != 4 or tuple(images.shape[1:3]) != (1, self.height) or images.shape[-1] not in widths:
            raise ValueError(f"{self.source} reads images of shape [B, 1, {self.height}, {self.width}], got "
                             f"{list(images.shape)}; preprocess them with Predictor.preprocess.")
        return crop_to_content(images) if self.crop else images


class TorchPredictor(Predictor):
    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], source: Path,
                 device: torch.device = torch.device("cpu")) -> None:
        super().__init__(source, metadata)
        self.model = model.to(device).eval()
        self.device = device

    @property
    def kind(self) -> str:
        return "pytorch"

    def predict(self, images: torch.Tensor) -> tuple[list[str], list[float]]:
        return self.model.predict_with_confidence(self._model_input(images).to(self.device))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self._model_input(images)
        with torch.inference_mode():
            return self.model(images.to(self.device)).float().cpu()


class OnnxPredictor(Predictor):
    def __init__(self, path: Path, metadata: dict[str, Any], num_threads: Optional[int] = None) -> None:
        import onnxruntime

        super().__init__(path, metadata)
        # decode_logits depends only on the head, so a weightless instance of the same class decodes; built
        # (and its stored config checked) before ONNX Runtime reads the file
        self.decoder = model_from_stored_config(metadata.get("model"), str(path)).eval()
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        self.session = _onnx_session(path, options)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def kind(self) -> str:
        return "onnxruntime"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self._model_input(images)
        array = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])

    def predict(self, images: torch.Tensor) -> tuple[list[str], list[float]]:
        return self.decoder.decode_logits(self.logits(images))


def _onnx_session(path: Path, options: Any) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise CheckpointError(f"{path} cannot be loaded by ONNX Runtime ({str(error).splitlines()[0]}); it is not "
                              f"a valid ONNX model. Re-export it with `python -m runner.export`.") from error


def checkpoint_metadata(payload: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """What travels with an exported model (the sidecar JSON): enough to preprocess, decode and trace it."""
    model = payload["model"]
    training: dict[str, Any] = {}
    if payload.get("config_yaml"):
        try:
            trained = OmegaConf.to_container(OmegaConf.create(payload["config_yaml"]), resolve=False)
            training = {"seed": trained.get("seed"), "data": trained.get("data")}
            check_plain_data(training, "config_yaml")
            if not isinstance(training["seed"], (int, type(None))) or \
                    not isinstance(training["data"], (dict, type(None))):
                raise NotPlainData("config_yaml has a seed that is not an integer or data that is not a mapping")
        except Exception as error:  # a hand-edited or foreign config must not block inference
            log.warning("%s: its stored training config cannot be used (%s); ignoring it", source, error)
            training = {}
    return {
        "format": EXPORT_FORMAT,
        "model": {"name": model["name"], "head": model["head"], "config": model["config"]},
        "charset": payload.get("charset") or charset_signature(),
        "preprocess": {"height": int(payload["preprocess"]["height"]), "width": int(payload["preprocess"]["width"]),
                       "crop": bool(payload["preprocess"].get("crop", False)),
                       "text_crop": bool(payload["preprocess"].get("text_crop", False))},
        "max_length": int(model["config"]["max_length"]),
        "source_checkpoint": str(source),
        "checkpoint_epoch": payload.get("epoch"),
        "checkpoint_metrics": payload.get("metrics", {}),
        "checkpoint_git_commit": payload.get("git_commit", "unknown"),
        "git_commit": git_commit(),
        "runner_version": __version__,
        "training": training,
    }


def sidecar_path(model_path: str | Path) -> Path:
    """model.onnx -> model.onnx.json"""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def read_export_metadata(path: Path) -> dict[str, Any]:
    """The sidecar JSON of an exported model, else the copy embedded in the ONNX file. CheckpointError if neither."""
    sidecar = sidecar_path(path)
    source = str(sidecar)
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8")
    else:
        import onnx

        try:
            props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as error:
            raise CheckpointError(f"{path} is not a readable ONNX file ({str(error).splitlines()[0]}); "
                                  f"re-export it with `python -m runner.export`.") from error
        if METADATA_KEY not in props:
            raise CheckpointError(f"{path} has no {sidecar.name} beside it and no '{METADATA_KEY}' metadata inside, so "
                                  f"its preprocessing and decoding are unknown; export it with `python -m runner.export` "
                                  f"(which writes both).")
        text, source = props[METADATA_KEY], f"{path} (embedded metadata)"
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source} is not valid JSON ({error}); re-export the model.") from error
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{source} is not khmer-digits-ocr export metadata (no '{EXPORT_FORMAT}' marker).")
    check_charset(metadata.get("charset", {}), source)
    check_stored_layout(metadata, source)
    stored_length = stored_model_options(metadata["model"], source)[1]["max_length"]
    if type(metadata.get("max_length")) is not int or metadata["max_length"] != stored_length:
        raise CheckpointError(f"{source}: max_length is {metadata.get('max_length')!r} but model.config says "
                              f"{stored_length!r}; the file was edited or is damaged. Re-export the model.")
    try:
        check_plain_data(metadata.get("training") or {}, "training")
    except NotPlainData as error:
        raise CheckpointError(f"{source}: {error}. Re-export the model from its checkpoint.") from error
    return metadata


def load_predictor(path: str | Path, device: str = "cpu", num_threads: Optional[int] = None) -> Predictor:
    """A checkpoint .pt, a run dir (its best checkpoint) or an exported .onnx file, ready to predict.

    Every failure to load is a CheckpointError that says what the file is and what to do.
    """
    from runner.training.utils import resolve_device

    path = resolve_path(path)
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.set_flush_denormal(True)  # as in training: denormal activations make CPU kernels crawl
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise CheckpointError(f"ONNX model {path} does not exist; export one with `python -m runner.export`.")
        return OnnxPredictor(path, read_export_metadata(path), num_threads)
    resolved_device = resolve_device(device)
    path = resolve_checkpoint_path(path)
    model, payload = load_model(path, resolved_device)
    return TorchPredictor(model, checkpoint_metadata(payload, path), path, resolved_device)


def predictor_files(predictor: Predictor) -> list[Path]:
    """The files a predictor was loaded from (model and, for an export, its sidecar): never an output."""
    return [predictor.source, sidecar_path(predictor.source)]


# --------------------------------------------------------------------------- prediction on files
@dataclass
class ImageInput:
    path: Path  # where to read it
    name: str  # how it is reported: as given, or relative to the input folder


@dataclass
class Prediction:
    name: str
    text: str
    confidence: float
    error: Optional[str] = None

    def line(self) -> str:
        """`path<TAB>text<TAB>confidence` (4 decimals); an unreadable file has an empty text and 0.0000."""
        return f"{self.name}\t{self.text}\t{self.confidence:.4f}"


def image_suffixes() -> set[str]:
    return {suffix.lower() for suffix in Image.registered_extensions()}


def discover_images(inputs: str | Path) -> list[ImageInput]:
    """Files named by `inputs`: one file, a folder (recursive, image suffixes only, sorted) or a glob.

    A named file or a glob match is read whatever its suffix (the user picked it), so a broken or
    mislabelled file is reported rather than skipped silently.
    """
    given = str(inputs)
    path = resolve_path(given)
    if path.is_dir():
        suffixes = image_suffixes()
        found = sorted(p for p in _existing_files(path.rglob("*")) if p.suffix.lower() in suffixes
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            raise DataError(f"inputs={given}: folder {path} holds no image files (looked for "
                            f"{', '.join(sorted(s for s in suffixes if s in ('.png', '.jpg', '.jpeg', '.tif', '.bmp', '.webp')))} ...).")
        return [ImageInput(p, p.relative_to(path).as_posix()) for p in found]
    if path.is_file():
        return [ImageInput(path, given)]
    if glob.has_magic(given):
        pattern = given if Path(given).is_absolute() else str(resolve_path(".") / given)
        base = len(str(resolve_path("."))) + 1
        matches = sorted(str(p) for p in _existing_files(Path(p) for p in glob.glob(pattern, recursive=True)))
        if not matches:
            raise DataError(f"inputs={given}: the pattern matches no files; check the folder and quote the pattern "
                            f"so the shell does not expand it.")
        return [ImageInput(Path(p), p if Path(given).is_absolute() else p[base:]) for p in matches]
    raise DataError(f"inputs={given}: no such file or folder ({path}); give an image, a folder of images or a glob "
                    f"such as 'scans/*.png'.")


def _existing_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The regular files among `paths`; a symbolic link to nothing is skipped with a warning."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_symlink() and not path.exists():
            log.warning("skipping %s: it is a symbolic link to %s, which does not exist", path, os.readlink(path))


def predict_files(predictor: Predictor, images: Sequence[ImageInput], batch_size: int = 64,
                  chunk_batches: int = 16) -> Iterator[Prediction]:
    """Predictions in input order; an unreadable file yields Prediction(error=...) and the rest go on.

    A cropping model (`predictor.crop`) reads the files in chunks of `chunk_batches` batches, each
    chunk sorted by text width, so its batches are cropped like the width-bucketed training batches.
    """
    chunk = batch_size * (chunk_batches if predictor.crop else 1)
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        tensors: list[torch.Tensor] = []
        readable: list[int] = []
        results: list[Optional[Prediction]] = [None] * len(part)
        for index, item in enumerate(part):
            try:
                tensors.append(predictor.preprocess(load_image(item.path)))
                readable.append(index)
            except DataError as error:
                log.warning("skipping %s: %s", item.name, error)
                results[index] = Prediction(item.name, "", 0.0, str(error))
        order = list(range(len(tensors)))
        if predictor.crop:
            order.sort(key=lambda i: content_width(tensors[i], multiple=1, min_width=1))
        for first in range(0, len(order), batch_size):
            members = order[first:first + batch_size]
            texts, confidences = predictor.predict(torch.stack([tensors[i] for i in members]))
            for member, text, confidence in zip(members, texts, confidences):
                index = readable[member]
                results[index] = Prediction(part[index].name, text, float(confidence))
        yield from results  # type: ignore[misc]


# --------------------------------------------------------------------------- evaluation
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
            if key == "augment" or key.startswith("data."):
                path = "augment" if key == "augment" else key[len("data."):]
                OmegaConf.update(base, path, OmegaConf.select(data, path), merge=False)
        data = base
    config = as_data_config(data)
    # image size and preprocessing always follow the model
    config.image_height, config.image_width = predictor.height, predictor.width
    config.text_crop, config.bucketing = predictor.text_crop, predictor.crop
    config.cache_in_memory = False  # one pass over the data: a cache only costs memory
    return config, from_training


def evaluation_seed(predictor: Predictor, data: DataConfig, seed: Optional[int] = None) -> int:
    """The seed of the data to evaluate on: the command's, else data.seed, else the one training used."""
    return next(value for value in (seed, data.seed, predictor.training.get("seed"), TrainingConfig.seed)
                if value is not None)


def evaluation_dataset(data: DataConfig, split: str, seed: int, metadata: Optional[str] = None,
                       whole_folder: bool = False) -> tuple[torch.utils.data.Dataset, str]:
    """(dataset, description) of the split to evaluate.

    `metadata` names a generated dataset directly; `whole_folder` reads every image of a labelled
    folder (a user's test set) instead of the seeded val/train split training made of it.
    """
    if metadata:
        # a folder or a missing file is handled (and explained) by the dataset's own metadata reader
        dataset = KhmerDigitsDataset(resolve_path(metadata), split, data.image_height, data.image_width, data.max_length,
                                     cache_in_memory=False, text_crop=data.text_crop)
        return dataset, f"{dataset.metadata_path} [{split}]"
    if data.kind == "folder" and whole_folder:
        dataset = LabeledFolderDataset(resolve_path(data.dir), data.labels_file, data.max_length, data.image_height,
                                       data.image_width, cache_in_memory=False, text_crop=data.text_crop)
        return dataset, f"{resolve_path(data.dir) / data.labels_file} (all images)"
    datasets = build_datasets(data, seed)
    if split not in datasets:
        raise DataError(f"split={split} does not exist in this {data.kind} dataset; it has {sorted(datasets)}. "
                        f"Pick one with split=... .")
    dataset = datasets[split]
    where = getattr(dataset, "metadata_path", None) or getattr(dataset, "root", None) or f"{data.kind} data"
    return dataset, f"{where} [{split}]"


def evaluate_dataset(predictor: Predictor, dataset: torch.utils.data.Dataset, batch_size: int = 64,
                     worst_k: int = 50, num_workers: int = 0, max_length: int = 8) -> OCRMetrics:
    """Run `predictor` over `dataset` (already preprocessed at the predictor's size) and score it."""
    if tuple(dataset[0]["image"].shape) != (1, predictor.height, predictor.width):
        raise DataError(f"the dataset yields images of shape {list(dataset[0]['image'].shape)}, but "
                        f"{predictor.source} reads [1, {predictor.height}, {predictor.width}].")
    metrics = OCRMetrics(worst_k=worst_k)
    # A cropping model reads width-sorted batches, as in validation during training.
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, max_length=max_length,
                         bucketing=predictor.crop)
    for batch in loader:
        texts, confidences = predictor.predict(batch["images"])
        metrics.update(texts, batch["texts"], paths=batch["paths"], confidences=confidences)
    return metrics


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def metrics_report(metrics: OCRMetrics) -> dict[str, Any]:
    """Everything metrics.json holds about the predictions (JSON-safe: NaN becomes null)."""
    statistics = metrics.statistics()
    return {
        "metrics": metrics.compute(),
        "per_length_accuracy": {str(k): v for k, v in statistics.pop("per_length_accuracy").items()},
        "length_histogram": {str(k): v for k, v in statistics.pop("length_histogram").items()},
        "per_class_accuracy": {k: _finite(v) for k, v in metrics.per_class_accuracy().items()},
        "statistics": statistics,
        "error_analysis": metrics.error_analysis(),
        "confusion_matrix": {"labels": list(CLASS_LABELS), "counts": metrics.confusion_matrix().tolist()},
    }


def format_report_table(report: dict[str, Any]) -> str:
    """A plain-text table for the terminal: headline metrics, then per-length and per-digit accuracy."""
    scores = report["metrics"]
    lines = [f"{'metric':<22}{'value':>10}", "-" * 32]
    for key in ("char_accuracy", "seq_accuracy", "cer", "norm_edit_distance"):
        lines.append(f"{key:<22}{scores[key]:>10.4f}")
    lines.append(f"{'samples':<22}{int(scores['count']):>10d}")
    lines += ["", f"{'length':<8}{'samples':>9}{'seq_acc':>10}", "-" * 27]
    for length, accuracy in report["per_length_accuracy"].items():
        lines.append(f"{length:<8}{report['length_histogram'][length]:>9d}{accuracy:>10.4f}")
    lines += ["", f"{'digit':<8}{'char_acc':>10}", "-" * 18]
    for position, (digit, accuracy) in enumerate(report["per_class_accuracy"].items()):
        shown = "-" if accuracy is None else f"{accuracy:.4f}"
        lines.append(f"{digit} ({position})".ljust(8) + f"{shown:>10}")
    return "\n".join(lines)


def write_evaluation(metrics: OCRMetrics, output_dir: Path, context: dict[str, Any]) -> dict[str, Path]:
    """metrics.json (report + `context`), confusion_matrix.png and worst_errors.tsv in `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {**context, **metrics_report(metrics)}
    paths = {"metrics": output_dir / "metrics.json", "confusion_matrix": output_dir / "confusion_matrix.png",
             "worst_errors": output_dir / "worst_errors.tsv"}
    paths["metrics"].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    metrics.plot_confusion_matrix(paths["confusion_matrix"])
    with open(paths["worst_errors"], "w", encoding="utf-8") as handle:
        handle.write("path\ttruth\tprediction\tconfidence\tedit_distance\n")
        for example in metrics.error_analysis()["worst_examples"]:
            confidence = "" if example["confidence"] is None else f"{example['confidence']:.4f}"
            handle.write(f"{example['path'] or ''}\t{example['truth']}\t{example['prediction']}\t{confidence}\t"
                         f"{example['distance']}\n")
    return paths


# --------------------------------------------------------------------------- export
def render_images(count: int, max_length: int = 8, seed: int = 0,
                  augment: Optional[AugmentConfig] = None) -> list[tuple[Image.Image, str]]:
    """`count` freshly rendered (image, label) pairs, drawn like the training data (light augmentation)."""
    fonts = data_fonts(DataConfig())
    augment = augment or AugmentConfig()
    samples = []
    for index in range(count):
        image, spec = render_sample(sample_key(seed, "inference_check", index), fonts, augment, 1, max_length)
        samples.append((image, spec.text))
    return samples


def rendered_images(count: int, height: int, width: int, max_length: int, seed: int = 0,
                    augment: Optional[AugmentConfig] = None, text_crop: bool = False) -> tuple[torch.Tensor, list[str]]:
    """`count` rendered samples preprocessed to [count, 1, height, width], and their labels."""
    samples = render_images(count, max_length, seed, augment)
    return (torch.stack([preprocess_image(image, height, width, text_crop) for image, _ in samples]),
            [text for _, text in samples])


@dataclass
class ParityReport:
    images: int
    max_abs_diff: float
    mismatches: list[tuple[int, str, str]]  # (image index, reference text, exported text)


def parity_batches(images: torch.Tensor, crop: bool, group: int = 8) -> list[torch.Tensor]:
    """[B, 1, H, W] images as parity-check batches: all at once and, for a cropping model, also in
    groups of `group` sorted by text width, so the export is checked at several batch widths."""
    if not crop or len(images) <= group:
        return [images]
    order = sorted(range(len(images)), key=lambda i: content_width(images[i], multiple=1, min_width=1))
    return [images] + [images[order[start:start + group]] for start in range(0, len(order), group)]


def check_parity(reference: Predictor, exported: Predictor, images: torch.Tensor, atol: float = 1e-3) -> ParityReport:
    """Compare logits and decoded texts; ExportError if any text differs or logits drift beyond `atol`."""
    difference, texts_reference, texts_exported = 0.0, [], []
    for batch in parity_batches(images, reference.crop):
        expected, actual = reference.logits(batch), exported.logits(batch)
        if expected.shape != actual.shape:
            raise ExportError(f"{exported.source} returns logits of shape {list(actual.shape)}, the checkpoint "
                              f"{list(expected.shape)}; the export is broken.")
        difference = max(difference, float((expected - actual).abs().max()))
        texts_reference += reference.predict(batch)[0]
        texts_exported += exported.predict(batch)[0]
    mismatches = [(i, a, b) for i, (a, b) in enumerate(zip(texts_reference, texts_exported)) if a != b]
    report = ParityReport(len(images), difference, mismatches)
    if mismatches or not difference <= atol:
        examples = ", ".join(f"image {i}: {a!r} vs {b!r}" for i, a, b in mismatches[:3]) or "texts equal"
        raise ExportError(f"{exported.source} ({exported.kind}) disagrees with {reference.source}: "
                          f"{len(mismatches)} of {len(images)} rendered images read differently ({examples}); max "
                          f"abs logit difference {difference:.3g} (tolerance {atol:g}). Nothing was written; try the "
                          f"other ONNX exporter (dynamo=true/false) or report the model.")
    return report


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' narration (every decomposition, folding pass, missing torchvision op);
    none of it is actionable, and the parity check is what tells whether the export is right."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir", "torch.export")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _onnx_export_kwargs(dynamo: bool, ctc: bool, opset: Optional[int]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"input_names": ["images"], "output_names": ["logits"], "verbose": False, "dynamo": dynamo}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        # one self-contained file (the weights are a few MB), not model.onnx + model.onnx.data
        columns = torch.export.Dim("columns", min=MIN_CROP_WIDTH // CROP_MULTIPLE, max=65536)
        kwargs.update(dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536), 3: CROP_MULTIPLE * columns},),
                      external_data=False)
    else:
        kwargs["dynamic_axes"] = {"images": {0: "batch", 3: "width"},
                                  "logits": {0: "batch", 1: "steps"} if ctc else {0: "batch"}}
    return kwargs


def export_onnx(predictor: TorchPredictor, output: Path, dynamo: bool = True, opset: Optional[int] = None) -> Path:
    """Write `predictor`'s model as ONNX with dynamic batch and width axes and its metadata embedded.

    The width is dynamic (a multiple of 4) so a cropping model reads cropped batches; CTC logits
    then have one step per 4 columns.
    """
    import onnx

    model = predictor.model.cpu().eval()
    example = torch.zeros(2, 1, predictor.height, predictor.width)
    output.parent.mkdir(parents=True, exist_ok=True)
    ctc = predictor.head == "ctc"
    with _quiet_exporter():
        if dynamo:
            try:
                torch.onnx.export(model, (example,), str(output), **_onnx_export_kwargs(True, ctc, opset))
            except Exception as error:  # torch.export is young: fall back to the mature exporter, parity-checked too
                lines = str(error).strip().splitlines() or [type(error).__name__]
                reason = next((line for line in lines if line.startswith("<class")), lines[0])  # its summary line
                log.warning("the dynamo ONNX exporter failed on %s (%s); exporting with the TorchScript-based exporter "
                            "instead (dynamo=false)", predictor.name, reason[:200])
                dynamo = False
        if not dynamo:
            torch.onnx.export(model, (example,), str(output), **_onnx_export_kwargs(False, ctc, opset))
    graph = onnx.load(str(output))
    if ctc:  # the dynamo exporter declares the example's step count; ONNX Runtime would warn on every other width
        graph.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "steps"
        del graph.graph.value_info[:]  # optional shape hints, some with that count; ONNX Runtime infers its own
    graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(predictor.metadata, ensure_ascii=False))
    graph.producer_name = "khmer-digits-ocr"
    onnx.save(graph, str(output))
    predictor.model.to(predictor.device)
    return output


def export_torchscript(predictor: TorchPredictor, output: Path) -> Path:
    """Trace the inference forward (fixed-length greedy loop) with the metadata as an extra file."""
    model = predictor.model.cpu().eval()
    example = torch.zeros(2, 1, predictor.height, predictor.width)
    output.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_exporter(), torch.no_grad():  # also hides torch.jit's deprecation notices
        traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(output), _extra_files={f"{METADATA_KEY}.json": json.dumps(predictor.metadata)})
    predictor.model.to(predictor.device)
    return output


class TorchScriptPredictor(Predictor):
    """Only used to check an export: TorchScript archives are not loaded as user inputs (they carry code)."""

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        super().__init__(path, metadata)
        with _quiet_exporter():
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        self.decoder = model_from_stored_config(metadata.get("model"), str(path))

    @property
    def kind(self) -> str:
        return "torchscript"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self._model_input(images)
        with torch.no_grad():
            return self.module(images).float()

    def predict(self, images: torch.Tensor) -> tuple[list[str], list[float]]:
        return self.decoder.decode_logits(self.logits(images))


def write_sidecar(path: Path, model_file: str, metadata: dict[str, Any], format: str) -> Path:
    """The JSON beside an exported model (`model_file`, its name in the same folder)."""
    content = {**metadata, "export": {"format": format, "file": model_file,
                                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "torch_version": str(torch.__version__)}}
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
