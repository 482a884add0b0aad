"""An exported model run by ONNX Runtime on numpy arrays: the inference path that needs numpy, Pillow and
onnxruntime only (no torch, no Hydra), used by `runner.Reader` and, through `OnnxPredictor`, by every command.

    model = OnnxModel("model.onnx")                           # + model.onnx.json, else the embedded metadata
    texts, confidences, char_confidences = model.read_pixels(np.stack([model.preprocess_pixels(image)]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from runner.data.preprocess import uint8_to_array
from runner.decoding import Decoded
from runner.errors import CheckpointError
from runner.inference.metadata import read_export_metadata
from runner.inference.stored_model import StoredModel


class OnnxModel(StoredModel):
    """One ONNX Runtime session (CPU) and its model's metadata; `run` is safe to call from several threads."""

    def __init__(self, path: str | Path, metadata: Optional[dict[str, Any]] = None,
                 num_threads: Optional[int] = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"ONNX model {path} does not exist; export one with `python -m runner.export`.")
        # the metadata is checked before ONNX Runtime parses the graph: an edited file stops here
        super().__init__(path, metadata if metadata is not None else read_export_metadata(path))
        self.session = onnx_session(path, num_threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def kind(self) -> str:
        return "onnxruntime"

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Full greedy logits of preprocessed images float32 [B, 1, height, width] (see `model_input`)."""
        images = self.model_input(np.ascontiguousarray(images, dtype=np.float32))
        return self.session.run(None, {self.input_name: images})[0]

    def predict(self, images: np.ndarray) -> Decoded:
        """Texts, confidences and per-character confidences of preprocessed images float32 [B, 1, height, width]."""
        return self.decode(self.logits(images))

    def read_pixels(self, pixels: np.ndarray) -> Decoded:
        return self.predict(uint8_to_array(pixels))


def onnx_session(path: Path, num_threads: Optional[int] = None) -> Any:
    """An ONNX Runtime CPU session of `path`; `num_threads` (this session's own pool) or ONNX Runtime's default."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise CheckpointError(f"{path} cannot be loaded by ONNX Runtime ({str(error).splitlines()[0]}); it is not "
                              f"a valid ONNX model. Re-export it with `python -m runner.export`.") from error
