"""Datasets of labelled image files (a generated dataset's splits, a folder with labels.tsv) and their memory cache.

Every label is checked against the run's charset when the dataset is opened: a label with a character outside
it is a DataError naming the file, the line (or split and position) and the characters, never a skipped sample.
"""

from __future__ import annotations

import logging
import os
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from runner.charset import Charset, as_charset
from runner.data import pixel_store
from runner.data.generate import METADATA_FILE, read_metadata
from runner.data.preprocess import content_widths, fitted_size, load_image, preprocess_image_uint8, uint8_to_tensor
from runner.errors import DataError
from runner.progress import progress_bar

Sample = dict[str, Any]  # {"image": float32 [1, H, W], "text": str, "path": str}
log = logging.getLogger("runner.data")


class ImageListDataset(Dataset):
    """Labelled image files, preprocessed on access; optionally cached in memory as uint8.

    Labels and file existence are checked here (cheap); decoding errors surface per sample with
    the file's path. With DataLoader workers each worker process keeps its own cache.
    """

    def __init__(self, items: Sequence[tuple[Path, str]], image_height: int = 32, image_width: int = 128,
                 cache_in_memory: bool = True, source: str = "dataset", text_crop: bool = False):
        if not items:
            raise DataError(f"{source} has no samples; add images (and their labels) or point at another split.")
        self.paths = [Path(path) for path, _ in items]
        self.texts = [text for _, text in items]
        self.image_height, self.image_width, self.text_crop = image_height, image_width, text_crop
        self.source = source
        self.cache: Optional[np.ndarray] = None
        self.cached: Optional[np.ndarray] = None
        self._widths: Optional[np.ndarray] = None
        if cache_in_memory:
            self.cache = np.zeros((len(items), image_height, image_width), dtype=np.uint8)
            self.cached = np.zeros(len(items), dtype=bool)

    def __len__(self) -> int:
        return len(self.paths)

    def _preprocess(self, index: int) -> np.ndarray:
        return preprocess_image_uint8(load_image(self.paths[index]), self.image_height, self.image_width,
                                      self.text_crop)

    def pixels(self, index: int) -> np.ndarray:
        if self.cached is not None and self.cached[index]:
            return self.cache[index]
        pixels = self._preprocess(index)
        if self.cached is not None:
            self.cache[index] = pixels
            self.cached[index] = True
        return pixels

    def __getitem__(self, index: int) -> Sample:
        return {"image": uint8_to_tensor(self.pixels(index)), "text": self.texts[index],
                "path": str(self.paths[index])}

    def __getitems__(self, indices: Sequence[int]) -> list[Sample]:
        """The samples of one batch (the DataLoader asks for them together): one uint8 → float
        conversion for the whole batch instead of one per image."""
        images = uint8_to_tensor(np.stack([self.pixels(index) for index in indices]))
        return [{"image": image, "text": self.texts[index], "path": str(self.paths[index])}
                for image, index in zip(images, indices)]

    def fill_cache(self, workers: Optional[int] = None, chunk: int = 512) -> None:
        """Decode and preprocess every image not yet in the memory cache, in `workers` processes
        (default: torch's thread count, the cores this run was given)."""
        missing = np.flatnonzero(~self.cached) if self.cached is not None else np.array([], dtype=np.int64)
        if not len(missing):
            return
        started = time.perf_counter()
        stored = self._stored_pixels()
        if stored is not None:
            self.cache[:] = stored
            self.cached[:] = True
            log.info("loaded %d preprocessed images into memory in %.1f s", len(self.cache), time.perf_counter() - started)
            return
        workers = min(workers or torch.get_num_threads(), -(-len(missing) // chunk))
        with progress_bar(len(missing), f"decoding {self.source}", "images") as bar:
            if workers <= 1 or os.name != "posix":
                for index in missing:
                    self.pixels(int(index))
                    bar.update(1)
            else:
                global _FILLING
                _FILLING = self  # forked workers inherit it: nothing but the indices crosses the pipe
                parts = [missing[start:start + chunk] for start in range(0, len(missing), chunk)]
                try:
                    with get_context("fork").Pool(workers) as pool:
                        for indices, pixels in zip(parts, pool.imap(_preprocess_part, parts)):
                            self.cache[indices] = pixels
                            self.cached[indices] = True
                            bar.update(len(indices))
                finally:
                    _FILLING = None
        log.info("decoded %d images into memory in %.1f s (%d processes)", len(missing), time.perf_counter() - started,
                 workers)

    def _stored_pixels(self) -> Optional[np.ndarray]:
        """Preprocessed pixels stored with the dataset (runner.data.pixel_store), if it has them."""
        return None

    def widths(self) -> np.ndarray:
        """Columns each image fills after preprocessing, to batch similar widths together.

        With the memory cache every image is decoded now (as the first epoch would) and measured up
        to its last ink column (`content_widths`); without it the width is estimated from the file
        header (exact without text_crop). A file whose header cannot be read counts as full width
        here and fails with its own error when it is loaded.
        """
        if self._widths is None and self.cache is not None:
            self.fill_cache()
            self._widths = content_widths(torch.from_numpy(self.cache), multiple=1, min_width=1).numpy()
        if self._widths is None:
            widths = np.full(len(self.paths), self.image_width, dtype=np.int64)
            for index, path in enumerate(self.paths):
                try:
                    with Image.open(path) as image:
                        size = image.size
                except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
                    continue
                widths[index] = fitted_size(size[0], size[1], self.image_height, self.image_width)[0]
            self._widths = widths
        return self._widths


_FILLING: Optional[ImageListDataset] = None


def _preprocess_part(indices: np.ndarray) -> np.ndarray:
    return np.stack([_FILLING._preprocess(index) for index in indices])


def _check_files_exist(items: Sequence[tuple[Path, str]], where: Sequence[str]) -> None:
    for (path, _), source in zip(items, where):
        if not path.is_file():
            raise DataError(f"{source}: image file {path} does not exist; restore it or remove the entry.")


class KhmerDigitsDataset(ImageListDataset):
    """One split of a dataset written by `python -m runner.generate` (metadata.yaml + images)."""

    def __init__(self, metadata_path: Union[str, Path], split: str = "train", image_height: int = 32,
                 image_width: int = 128, max_length: int = 8, cache_in_memory: bool = True,
                 metadata: Optional[dict[str, Any]] = None, text_crop: bool = False,
                 charset: Charset | str | None = None):
        charset = as_charset(charset)
        metadata_path = Path(metadata_path)
        if metadata_path.is_dir():
            metadata_path = metadata_path / METADATA_FILE
        if metadata is None:  # callers opening several splits pass the parsed file once
            metadata = read_metadata(metadata_path)
        splits = [key for key, value in metadata.items() if isinstance(value, list)]
        if split not in metadata:
            raise DataError(f"{metadata_path} has no split {split!r}; it has {splits}.")
        entries = metadata[split]
        if not isinstance(entries, list) or not entries:
            raise DataError(f"{metadata_path}: split {split!r} is empty; regenerate the dataset with a size > 0.")
        counts = (metadata.get("dataset_info") or {}).get("counts") or {}
        if isinstance(counts, dict) and split in counts and counts[split] != len(entries):
            raise DataError(f"{metadata_path}: split {split!r} lists {len(entries)} samples but dataset_info.counts "
                            f"says {counts[split]!r}; the file was cut short or edited. Regenerate the dataset.")
        root = metadata_path.parent
        items, where = [], []
        for position, entry in enumerate(entries):
            source = f"{metadata_path} [{split}][{position}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or "label" not in entry:
                raise DataError(f"{source}: each sample needs an 'image' path and a 'label', got {entry!r}.")
            image = Path(os.path.normpath(root / entry["image"]))
            if Path(entry["image"]).is_absolute() or not image.is_relative_to(Path(os.path.normpath(root))):
                raise DataError(f"{source}: image {entry['image']!r} lies outside {root}; a dataset names only its "
                                f"own files. Regenerate the dataset.")
            items.append((image, charset.validate_text(entry["label"], source, max_length)))
            where.append(source)
        _check_files_exist(items, where)
        super().__init__(items, image_height, image_width, cache_in_memory, source=f"{metadata_path} [{split}]",
                         text_crop=text_crop)
        self.metadata_path, self.split = metadata_path, split
        self.records: list[dict[str, Any]] = entries

    def _stored_pixels(self) -> Optional[np.ndarray]:
        path = pixel_store.pixels_path(self.metadata_path.parent, self.split, self.image_height, self.image_width,
                                       self.text_crop)
        return pixel_store.load(path, [str(entry["image"]) for entry in self.records], self.image_height,
                                self.image_width, self.text_crop)


def read_labels_tsv(path: Union[str, Path], max_length: int = 8,
                    charset: Charset | str | None = None) -> list[tuple[Path, str]]:
    """(image path, label) pairs of a `file<TAB>text` labels file; paths are relative to its folder.

    Blank lines and lines starting with '#' are skipped, and so is a first line `file<TAB>text`
    (a header). Labels must be characters of `charset` (default digits: Khmer digits only, Arabic
    digits are rejected, not converted); DataError naming the line and the characters otherwise.
    """
    charset = as_charset(charset)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"labels file {path} does not exist; create it with one `image-file<TAB>khmer-digits` "
                        f"line per image.")
    items, where = [], []
    first_line: dict[str, int] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            source = f"{path}:{number}"
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise DataError(f"{source}: the line is not UTF-8 text (byte {raw[error.start]:#04x} at column "
                                f"{error.start + 1}); save the labels file as UTF-8.") from error
            if not line.strip() or line.startswith("#") or (number == 1 and line.lower() == "file\ttext"):
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0]:
                raise DataError(f"{source}: expected `file<TAB>text` (two tab-separated fields), got {line!r}.")
            file, text = fields[0].strip(), fields[1].strip()
            image = Path(os.path.normpath(path.parent / file))
            if Path(file).is_absolute() or not image.is_relative_to(Path(os.path.normpath(path.parent))):
                raise DataError(f"{source}: image {file!r} lies outside {path.parent}; a labels file may only name "
                                f"images in its own folder and below. Copy the image there and name it relative "
                                f"to the labels file.")
            if str(image) in first_line:
                raise DataError(f"{source}: {file} is already listed on line {first_line[str(image)]}; every image "
                                f"appears once. Remove one of the two lines.")
            first_line[str(image)] = number
            items.append((image, charset.validate_text(text, source, max_length)))
            where.append(source)
    if not items:
        raise DataError(f"labels file {path} lists no images; add `image-file<TAB>khmer-digits` lines.")
    _check_files_exist(items, where)
    return items


class LabeledFolderDataset(ImageListDataset):
    """A folder of the user's images with a labels.tsv; `indices` selects a subset (for a val split)."""

    def __init__(self, root: Union[str, Path], labels_file: str = "labels.tsv", max_length: int = 8,
                 image_height: int = 32, image_width: int = 128, cache_in_memory: bool = True,
                 indices: Optional[Sequence[int]] = None, text_crop: bool = False,
                 charset: Charset | str | None = None):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist; set data.dir to a folder of images with a "
                            f"{labels_file}.")
        items = read_labels_tsv(root / labels_file, max_length, charset)
        if indices is not None:
            items = [items[i] for i in indices]
        super().__init__(items, image_height, image_width, cache_in_memory, source=f"{root / labels_file}",
                         text_crop=text_crop)
        self.root = root
