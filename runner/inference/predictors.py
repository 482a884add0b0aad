"""Predictors: one interface that turns preprocessed images into texts, whatever the model file.

    predictor = load_predictor("outputs/default/2025-01-01/12-00-00")   # run dir -> checkpoints/best.pt
    predictor = load_predictor("model.onnx")                              # + model.onnx.json / embedded metadata
    texts, confidences = predictor.predict(images)                        # images: float [B, 1, H, W]

Images always go through `runner.data.preprocess_image` at the size stored with the model, and a
model trained with width bucketing (`preprocess.bucketing`) reads every batch cropped to its widest
image, as it was trained, so a checkpoint, its ONNX export and the training loop all see the same
pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from runner.calibration import Calibration
from runner.data.generate import resolve_path
from runner.decoding import DECODERS
from runner.data.preprocess import crop_to_content, preprocess_image
from runner.errors import CheckpointError
from runner.inference.export import quiet_exporter
from runner.inference.metadata import checkpoint_metadata, read_export_metadata, sidecar_path
from runner.training.checkpoint import load_model, resolve_checkpoint_path


class Predictor:
    """A model that turns preprocessed images [B, 1, height, width] into (texts, confidences)."""

    def __init__(self, source: Path, metadata: dict[str, Any]) -> None:
        self.source = source
        self.metadata = metadata
        self.height = int(metadata["preprocess"]["height"])
        self.width = int(metadata["preprocess"]["width"])
        # Trained on batches cropped to their widest image (data.bucketing); absent in older models.
        self.bucketing = metadata["preprocess"]["bucketing"]
        # Cut to the text box before resizing (data.text_crop); absent in older models.
        self.text_crop = metadata["preprocess"]["text_crop"]
        self.max_length = int(metadata["max_length"])
        self.name = str(metadata["model"]["name"])
        self.head = str(metadata["model"]["head"])
        self.calibration = Calibration.from_stored(metadata["calibration"], str(source))

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def training(self) -> dict[str, Any]:
        """{'seed': int, 'data': dict} the model was trained with, or {} when unknown."""
        return self.metadata.get("training") or {}

    def predict(self, images: torch.Tensor) -> tuple[list[str], list[float]]:
        """Texts and confidences: the logits greedily decoded (runner.decoding, one rule for every runtime),
        the confidences through the calibration stored with the model (none: the raw ones)."""
        texts, confidences = DECODERS[self.head](self.logits(images).numpy())
        return texts, self.calibration.apply(confidences)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Full greedy logits (attention: max_length+1 steps), as the exported graph computes them."""
        raise NotImplementedError

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.height, self.width, self.text_crop)

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        """Check the shape of preprocessed images; crop the batch as the model was trained to read it.

        A cropping model also takes a batch already cropped (narrower than `width`)."""
        widths = range(1, self.width + 1) if self.bucketing else (self.width,)
        if images.dim() != 4 or tuple(images.shape[1:3]) != (1, self.height) or images.shape[-1] not in widths:
            raise ValueError(f"{self.source} reads images of shape [B, 1, {self.height}, {self.width}], got "
                             f"{list(images.shape)}; preprocess them with Predictor.preprocess.")
        return crop_to_content(images) if self.bucketing else images


class TorchPredictor(Predictor):
    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], source: Path,
                 device: torch.device = torch.device("cpu")) -> None:
        super().__init__(source, metadata)
        self.model = model.to(device).eval()
        self.device = device

    @property
    def kind(self) -> str:
        return "pytorch"

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        images = self._model_input(images)
        with torch.inference_mode():
            return self.model(images.to(self.device)).float().cpu()


class OnnxPredictor(Predictor):
    def __init__(self, path: Path, metadata: dict[str, Any], num_threads: Optional[int] = None) -> None:
        import onnxruntime

        super().__init__(path, metadata)
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


def _onnx_session(path: Path, options: Any) -> Any:
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise CheckpointError(f"{path} cannot be loaded by ONNX Runtime ({str(error).splitlines()[0]}); it is not "
                              f"a valid ONNX model. Re-export it with `python -m runner.export`.") from error


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
        images = self._model_input(images)
        with torch.no_grad():
            return self.module(images).float()


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
    path = resolve_checkpoint_path(path)  # the one rule for which file a run dir means
    model, payload = load_model(path, resolved_device)
    return TorchPredictor(model, checkpoint_metadata(payload, path), path, resolved_device)


def predictor_files(predictor: Predictor) -> list[Path]:
    """The files a predictor was loaded from (model and, for an export, its sidecar): never an output."""
    return [predictor.source, sidecar_path(predictor.source)]
