"""The Python API: read Khmer numbers in images with a trained model, in three lines.

    from runner import Reader
    reader = Reader()                                   # the shipped model; Reader("numbers"): the shipped numbers
                                                        # model; or Reader("run_dir" | "m.pt" | "m.onnx")
    reader.read("scan.png")                             # Reading(text='១២៣', confidence=0.98, value='123',
                                                        #         char_confidences=[0.99, 0.99, 1.0])
    reader.read([path, pil_image, numpy_array])         # a list of Readings, in input order

An .onnx model runs with ONNX Runtime and needs no torch (runner.inference.onnx); a checkpoint or run dir
runs with PyTorch. Images are preprocessed exactly as `python -m runner.predict` does, read in batches
(a width-bucketed model's sorted by text width, as predict does), and returned in input order.

A Reader changes nothing process-wide unless asked: `num_threads` sets ONNX Runtime's pool for this
model, or, for a checkpoint, torch's thread count (and flushes denormals, as the commands do).
It holds no state between calls, so several threads may call `read` on one Reader at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from runner.data.preprocess import content_widths, load_image
from runner.errors import CheckpointError, ConfigError, DataError
from runner.inference.stored_model import StoredModel
from runner.schema import SHIPPED_MODELS, model_path

# A width-bucketed model sorts this many batches at a time by text width (as runner.inference.files does)
CHUNK_BATCHES = 16

ImageLike = Union[str, Path, Image.Image, np.ndarray]


@dataclass(frozen=True)
class Reading:
    text: str  # characters of the model's charset (Khmer digits, or numbers), '' when nothing was read
    confidence: float  # calibrated when the model stores a calibration: the probability the text is exact
    value: str  # the text with Khmer digits in ASCII ('១២,៥០០៛' -> '12,500៛'), leading zeros kept
    char_confidences: tuple[float, ...] = ()  # one per character of `text`: its max probability (raw)


class Reader:
    """A model ready to read images: `Reader(model=None, *, device="cpu", num_threads=None, batch_size=64)`.

    `model`: None (the digits model shipped with the package), "numbers" (the shipped numbers model: separators,
    signs, ASCII digits), an exported .onnx file, a checkpoint .pt or a run dir
    (its best checkpoint). `device` (checkpoints only): cpu, cuda, cuda:N or auto.
    """

    def __init__(self, model: Optional[str | Path] = None, *, device: str = "cpu", num_threads: Optional[int] = None,
                 batch_size: int = 64) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise ConfigError(f"Reader batch_size must be a positive integer, got {batch_size!r}.")
        if num_threads is not None and (type(num_threads) is not int or num_threads < 1):
            raise ConfigError(f"Reader num_threads must be a positive integer or None, got {num_threads!r}.")
        self.batch_size = batch_size
        self.model = _load(_model_path(model), device, num_threads)

    @property
    def source(self) -> Path:
        """The model file read."""
        return self.model.source

    def __repr__(self) -> str:
        return f"Reader({str(self.source)!r}, {self.model.kind}, {self.model.name})"

    def read(self, images: ImageLike | Sequence[ImageLike]) -> Reading | list[Reading]:
        """One Reading for one image (a path, a PIL image or a numpy array), a list of them for a list or tuple.

        Arrays: H×W gray or H×W×1, H×W×3 RGB or H×W×4 RGBA; uint8 (0..255) or float (0..1). An unreadable
        file or an array of another shape or type is a DataError naming the item."""
        if isinstance(images, (list, tuple)):
            return self._read_all(list(images), "item {} of the list")
        return self._read_all([images], "the image")[0]

    def _read_all(self, items: list[ImageLike], name: str) -> list[Reading]:
        """Readings of `items` in order, `chunk` images decoded at a time; `name`.format(index) names a bad one."""
        chunk = self.batch_size * (CHUNK_BATCHES if self.model.bucketing else 1)
        readings: list[Reading] = []
        for start in range(0, len(items), chunk):
            pixels = np.stack([self.model.preprocess_pixels(_as_image(item, name.format(start + offset)))
                               for offset, item in enumerate(items[start:start + chunk])])
            order = np.arange(len(pixels))
            if self.model.bucketing:  # batches of similar widths are cropped less
                order = np.argsort(content_widths(pixels, multiple=1, min_width=1), kind="stable")
            read: list[Reading] = [Reading("", 0.0, "")] * len(pixels)
            for first in range(0, len(order), self.batch_size):
                members = order[first:first + self.batch_size]
                decoded = self.model.read_pixels(pixels[members])
                for member, text, confidence, per_char in zip(members, *decoded):
                    read[member] = Reading(text, float(confidence), self.model.charset.value(text),
                                           tuple(float(c) for c in per_char))
            readings += read
        return readings


def _model_path(model: Optional[str | Path]) -> Path:
    path = model_path(model)
    if path in SHIPPED_MODELS.values() and not path.is_file():
        raise CheckpointError(f"no shipped model is installed at {path}, so Reader({model!r}) has nothing "
                              f"to read with; pass a model: Reader('outputs/<run dir>'), Reader('model.pt') or "
                              f"Reader('model.onnx') (python -m runner.export writes one).")
    return path


def _load(path: Path, device: str, num_threads: Optional[int]) -> StoredModel:
    """An .onnx file with ONNX Runtime (no torch), else a checkpoint or run dir with PyTorch."""
    if path.suffix.lower() == ".onnx":
        if device != "cpu":
            raise ConfigError(f"Reader runs ONNX models on the CPU (ONNX Runtime's CPU provider), got device="
                              f"{device!r}; pass device='cpu', or a checkpoint to run on {device}.")
        from runner.inference.onnx import OnnxModel

        return OnnxModel(path, num_threads=num_threads)
    import torch

    from runner.inference.predictors import load_checkpoint_predictor

    if num_threads:  # asked for: the process-wide settings a command makes
        torch.set_num_threads(num_threads)
        torch.set_flush_denormal(True)
    return load_checkpoint_predictor(path, device)


def _as_image(item: object, name: str) -> Image.Image:
    """A PIL image of one input; DataError starting with `name` when it cannot be one."""
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, (str, Path)):
        try:
            return load_image(Path(item).expanduser())
        except DataError as error:
            raise DataError(f"{name}: {error}") from error
    if isinstance(item, np.ndarray):
        return _array_image(item, name)
    raise DataError(f"{name} is of type {type(item).__name__}; Reader.read takes a path, a PIL image, a numpy array or a "
                    f"list of them.")


def _array_image(array: np.ndarray, name: str) -> Image.Image:
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))) or array.size == 0:
        raise DataError(f"{name} is an array of shape {list(array.shape)}; Reader reads H×W (gray), H×W×1, H×W×3 "
                        f"(RGB) or H×W×4 (RGBA) arrays of at least one pixel.")
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise DataError(f"{name} is a float array with values outside 0..1 (or NaN); Reader reads float images "
                            f"in 0..1. Divide 0..255 values by 255, or pass them as uint8.")
        array = np.rint(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataError(f"{name} is an array of {array.dtype}; Reader reads uint8 (0..255) or float (0..1) arrays. "
                        f"Convert it, e.g. array.astype(np.uint8) for 0..255 values.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array))  # uint8: L, RGB or RGBA by its shape
