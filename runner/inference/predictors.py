"""Predictors: one interface that turns preprocessed images into texts, whatever the model file.

    predictor = load_predictor("outputs/default/2025-01-01/12-00-00")   # run dir -> checkpoints/best.pt
    predictor = load_predictor("model.onnx")                              # + model.onnx.json / embedded metadata
    texts, confidences, char_confidences = predictor.predict(images)      # images: float [B, 1, H, W]

Images always go through `runner.data.preprocess_image` at the size stored with the model, and a
model trained with width bucketing (`preprocess.bucketing`) reads every batch cropped to its widest
image, as it was trained (runner.inference.stored_model), so a checkpoint, its ONNX export and the
training loop all see the same pixels. Every predictor reads with the charset stored with its model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from runner.data.generate import resolve_path
from runner.data.preprocess import preprocess_image, uint8_to_tensor
from runner.decoding import Decoded
from runner.inference.export import quiet_exporter
from runner.inference.metadata import checkpoint_metadata, sidecar_path
from runner.inference.onnx import OnnxModel
from runner.inference.stored_model import StoredModel
from runner.training.checkpoint import load_model, resolve_checkpoint_path


class Predictor(StoredModel):
    """A model that turns preprocessed images [B, 1, height, width] (torch tensors) into (texts, confidences,
    char_confidences)."""

    def predict(self, images: torch.Tensor) -> Decoded:
        """Texts, confidences and per-character confidences of preprocessed images (see StoredModel.decode)."""
        return self.decode(self.logits(images).numpy())

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Full greedy logits (attention: max_length+1 steps), as the exported graph computes them."""
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.height, self.width, self.text_crop)

    def read_pixels(self, pixels: np.ndarray) -> Decoded:
        return self.predict(uint8_to_tensor(pixels))


class TorchPredictor(Predictor):
    """A checkpoint's model; `logits` may be called from several threads (inference mode, no state)."""

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], source: Path,
                 device: torch.device = torch.device("cpu")) -> None:
        super().__init__(source, metadata)
        self.model = model.to(device).eval()
        self.device = device

    @property
    def kind(self) -> str:
        return "pytorch"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self.model_input(images)
        with torch.inference_mode():
            return self.model(images.to(self.device)).float().cpu()


class OnnxPredictor(Predictor):
    """An ONNX export behind the torch interface (evaluate, export parity): it runs through OnnxModel, the one
    ONNX path."""

    def __init__(self, path: Path, metadata: Optional[dict[str, Any]] = None, num_threads: Optional[int] = None
                 ) -> None:
        self.runtime = OnnxModel(path, metadata, num_threads)
        super().__init__(self.runtime.source, self.runtime.metadata)

    @property
    def kind(self) -> str:
        return self.runtime.kind

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.runtime.logits(images.detach().cpu().numpy()))


class TorchScriptPredictor(Predictor):
    """Only used to check an export: TorchScript archives are not loaded as user inputs (they carry code)."""

    def __init__(self, path: Path, metadata: dict[str, Any]) -> None:
        super().__init__(path, metadata)
        with quiet_exporter():
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    @property
    def kind(self) -> str:
        return "torchscript"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self.model_input(images)
        with torch.no_grad():
            return self.module(images).float()


def load_predictor(path: str | Path, device: str = "cpu", num_threads: Optional[int] = None) -> Predictor:
    """A checkpoint .pt, a run dir (its best checkpoint) or an exported .onnx file, ready to predict, for a command:
    it also sets torch's thread count (`num_threads`) and flushes denormals, for the whole process.

    Every failure to load is a CheckpointError that says what the file is and what to do.
    """
    path = resolve_path(path)
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.set_flush_denormal(True)  # as in training: denormal activations make CPU kernels crawl
    if path.suffix.lower() == ".onnx":
        return OnnxPredictor(path, num_threads=num_threads)
    return load_checkpoint_predictor(path, device)


def load_checkpoint_predictor(path: str | Path, device: str = "cpu") -> TorchPredictor:
    """The model of a checkpoint .pt or a run dir (its best checkpoint) on `device`, without process-wide settings."""
    from runner.training.utils import resolve_device

    resolved_device = resolve_device(device)
    path = resolve_checkpoint_path(path)  # the one rule for which file a run dir means
    model, payload = load_model(path, resolved_device)
    return TorchPredictor(model, checkpoint_metadata(payload, path), path, resolved_device)


def predictor_files(predictor: Predictor) -> list[Path]:
    """The files a predictor was loaded from (model and, for an export, its sidecar): never an output."""
    return [predictor.source, sidecar_path(predictor.source)]
