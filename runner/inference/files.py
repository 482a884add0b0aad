"""Prediction on image files: which files an `inputs=` names, and their predictions in input order.

`inputs=` is one image, a folder (recursive), a glob, `@LIST` (a text file naming one image per line) or
`-` (the same lines on stdin). In a list, blank lines and lines starting with `#` are skipped, each line
is stripped of surrounding whitespace, and a relative path is relative to the list file's folder (so a
list travels with its images), or for stdin to the folder the command was started in. A listed file
that is missing or unreadable gets an empty prediction like any unreadable image.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import torch
from PIL import Image

from runner.charset import Charset
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
    text: str  # empty for an unreadable file
    confidence: float  # 0.0 for an unreadable file
    error: Optional[str] = None
    char_confidences: list[float] = field(default_factory=list)  # one per character of `text`

    @property
    def value(self) -> str:
        """The text with Khmer digits as ASCII digits (១២,៥០០៛ -> 12,500៛), see Charset.value."""
        return Charset.value(self.text)


def image_suffixes() -> set[str]:
    return {suffix.lower() for suffix in Image.registered_extensions()}


STDIN = "-"  # inputs=- reads the list from stdin
LIST_PREFIX = "@"  # inputs=@FILE reads it from FILE


def list_file(inputs: str) -> Optional[Path]:
    """The list file `inputs=@FILE` names (an input too: never written over), else None."""
    return resolve_path(inputs[len(LIST_PREFIX):]) if inputs.startswith(LIST_PREFIX) else None


def discover_images(inputs: str | Path) -> list[ImageInput]:
    """Files named by `inputs`: one file, a folder (recursive, image suffixes only, sorted), a glob (sorted),
    or the lines of a list file (`@FILE`) or of stdin (`-`), in their order.

    A named file or a glob match is read whatever its suffix (the user picked it), so a broken or
    mislabelled file is reported rather than skipped silently.
    """
    given = str(inputs)
    if given == STDIN:
        return _listed_images(_read_stdin(), resolve_path("."), given, "stdin")
    listed = list_file(given)
    if listed is not None:
        return _listed_images(_read_list_file(listed, given), listed.parent, given, f"the list file {listed}")
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


def _read_list_file(path: Path, given: str) -> str:
    if not path.is_file():
        raise DataError(f"inputs={given}: no such list file ({path}); give a text file naming one image per line, "
                        f"e.g. inputs=@scans.txt (a file whose name starts with @ is inputs=./@name).")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"inputs={given}: the list file {path} is not UTF-8 text (byte {error.start} is "
                        f"{error.object[error.start:error.start + 1]!r}); give a text file naming one image per line."
                        ) from error
    except OSError as error:
        raise DataError(f"inputs={given}: the list file {path} cannot be read ({error.strerror}).") from error


def _read_stdin() -> str:
    if sys.stdin is None:
        raise DataError(f"inputs={STDIN}: this process has no stdin to read image paths from; pipe them in "
                        f"(find scans -name '*.png' | python -m runner.predict ... inputs=-) or use inputs=@LIST.")
    if sys.stdin.isatty():
        log.info("reading image paths from stdin, one per line; end with Ctrl-D")
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as error:
        raise DataError(f"inputs={STDIN}: stdin is not UTF-8 text (byte {error.start}); pipe in one image path per "
                        f"line.") from error


def _listed_images(text: str, base: Path, given: str, source: str) -> list[ImageInput]:
    """One image per line of `text`, named as written; relative paths are relative to `base`."""
    images = []
    for number, line in enumerate(text.split("\n"), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if "\0" in entry:
            raise DataError(f"inputs={given}: line {number} of {source} holds a NUL byte; it is not a list of paths "
                            f"(one image path per line).")
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else base / path
        if path.is_dir():
            raise DataError(f"inputs={given}: line {number} of {source} names a folder ({entry}); list image files, "
                            f"one per line, or give the folder itself as inputs={entry}.")
        images.append(ImageInput(path, entry))
    if not images:
        raise DataError(f"inputs={given}: {source} names no images (only blank lines and # comments); list one "
                        f"image path per line.")
    return images


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
                texts, confidences, char_confidences = predictor.predict(torch.stack([tensors[i] for i in members]))
                for member, text, confidence, per_char in zip(members, texts, confidences, char_confidences):
                    index = readable[member]
                    results[index] = Prediction(part[index].name, text, float(confidence),
                                                char_confidences=[float(c) for c in per_char])
            yield from results  # type: ignore[misc]
            bar.update(len(part))
