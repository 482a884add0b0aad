"""Preprocessed pixels stored beside a generated dataset, so training never decodes its PNGs.

The render workers of `runner.generate` preprocess every image as they draw it (the same
`preprocess_image_uint8` a dataset applies to the PNG, which is lossless) and write it into one
uint8 array per split: `pixels/<split>-<H>x<W>[-textbox]-v<N>.npy`, beside a JSON note of what the
array holds (split, size, preprocessing, and a hash of the split's image list in order). A
dataset with a memory cache loads the array instead of decoding the files, when the note matches
its own image list and preprocessing; anything else (another size, an edited metadata.yaml, a
foreign or damaged file) falls back to decoding with a log line. Loaded with allow_pickle=False:
the file holds numbers, never objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

log = logging.getLogger("runner.data")

PIXELS_VERSION = 1  # bump when preprocess_image_uint8 changes what it returns


def pixels_path(dataset_dir: Path, split: str, height: int, width: int, text_crop: bool) -> Path:
    return dataset_dir / "pixels" / f"{split}-{height}x{width}{'-textbox' if text_crop else ''}-v{PIXELS_VERSION}.npy"


def image_list_digest(images: Sequence[str]) -> str:
    """What ties an array to one split's images in one order."""
    return hashlib.sha256("\n".join(images).encode("utf-8")).hexdigest()


def _note(path: Path) -> Path:
    return path.with_suffix(".json")


def create(path: Path, images: Sequence[str], height: int, width: int, text_crop: bool) -> None:
    """An empty array for `images` (filled in place by the render workers) and its note."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(images), height, width)).flush()
    note = {"version": PIXELS_VERSION, "count": len(images), "height": height, "width": width,
            "text_crop": bool(text_crop), "images_sha256": image_list_digest(images)}
    _note(path).write_text(json.dumps(note, indent=2), encoding="utf-8")


def open_for_writing(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r+", allow_pickle=False)


def load(path: Path, images: Sequence[str], height: int, width: int, text_crop: bool) -> Optional[np.ndarray]:
    """The stored pixels of exactly these images and this preprocessing, or None (decode instead)."""
    if not path.is_file():
        return None
    expected = {"version": PIXELS_VERSION, "count": len(images), "height": height, "width": width,
                "text_crop": bool(text_crop), "images_sha256": image_list_digest(images)}
    try:
        note = json.loads(_note(path).read_text(encoding="utf-8"))
        pixels = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        log.warning("ignoring the stored pixels %s (%s); decoding the images instead", path, error)
        return None
    if note != expected or pixels.dtype != np.uint8 or pixels.shape != (len(images), height, width):
        log.warning("ignoring the stored pixels %s: they were made for other images or settings; decoding the "
                    "images instead", path)
        return None
    return pixels
