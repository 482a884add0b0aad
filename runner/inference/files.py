"""Prediction on image files: which files an `inputs=` names, and their predictions in input order."""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import torch
from PIL import Image

from runner.data.generate import resolve_path
from runner.data.preprocess import content_width, load_image
from runner.errors import DataError
from runner.inference.predictors import Predictor
from runner.progress import progress_bar

log = logging.getLogger("runner.inference")


class PredictionFailures(DataError):
    """Some input files could not be read; their lines were written with an empty prediction."""

    exit_code = 1


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

    A cropping model (`predictor.bucketing`) reads the files in chunks of `chunk_batches` batches, each
    chunk sorted by text width, so its batches are cropped like the width-bucketed training batches.
    """
    chunk = batch_size * (chunk_batches if predictor.bucketing else 1)
    with progress_bar(len(images), "predicting", "images") as bar:
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
            if predictor.bucketing:
                order.sort(key=lambda i: content_width(tensors[i], multiple=1, min_width=1))
            for first in range(0, len(order), batch_size):
                members = order[first:first + batch_size]
                texts, confidences = predictor.predict(torch.stack([tensors[i] for i in members]))
                for member, text, confidence in zip(members, texts, confidences):
                    index = readable[member]
                    results[index] = Prediction(part[index].name, text, float(confidence))
            yield from results  # type: ignore[misc]
            bar.update(len(part))
