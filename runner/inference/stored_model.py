"""What a stored model says about reading images: its input (size, text crop, width bucketing) and how its
logits become texts and confidences, with the charset stored with it (a model always reads with its own).
Numpy only: every runtime, with or without torch, builds on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runner.calibration import Calibration
from runner.data.preprocess import Images, crop_to_content, preprocess_image_uint8
from runner.charset import charset_from_stored
from runner.decoding import DECODERS, Decoded


class StoredModel:
    """A model file and its metadata (a checkpoint's, or an export's sidecar), already checked by its reader."""

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
        self.charset = charset_from_stored(metadata["charset"], str(source))
        self.calibration = Calibration.from_stored(metadata["calibration"], str(source))

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def training(self) -> dict[str, Any]:
        """{'seed': int, 'data': dict} the model was trained with, or {} when unknown."""
        return self.metadata.get("training") or {}

    def preprocess_pixels(self, image: Image.Image) -> np.ndarray:
        """Any PIL image → uint8 [height, width] (ink = 255), as this model was trained to see it."""
        return preprocess_image_uint8(image, self.height, self.width, self.text_crop)

    def read_pixels(self, pixels: np.ndarray) -> Decoded:
        """Texts, confidences and per-character confidences of a stack of `preprocess_pixels` outputs,
        uint8 [B, height, width]."""
        raise NotImplementedError

    def decode(self, logits: np.ndarray) -> Decoded:
        """Texts and confidences: the logits greedily decoded with the model's charset (runner.decoding, one rule
        for every runtime), the text confidences through the calibration stored with the model (none: the raw
        ones); the per-character confidences stay raw (the calibration is fitted on whole texts)."""
        texts, confidences, char_confidences = DECODERS[self.head](logits, self.charset)
        return Decoded(texts, self.calibration.apply(confidences), char_confidences)

    def model_input(self, images: Images) -> Images:
        """Check the shape of preprocessed images [B, 1, height, width] (numpy or torch); crop the batch as the
        model was trained to read it. A cropping model also takes a batch already cropped (narrower than `width`)."""
        widths = range(1, self.width + 1) if self.bucketing else (self.width,)
        if images.ndim != 4 or tuple(images.shape[1:3]) != (1, self.height) or images.shape[-1] not in widths:
            raise ValueError(f"{self.source} reads images of shape [B, 1, {self.height}, {self.width}], got "
                             f"{list(images.shape)}; preprocess them with Predictor.preprocess.")
        return crop_to_content(images) if self.bucketing else images
