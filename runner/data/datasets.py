"""Datasets and loaders: a generated dataset on disk, fresh renders every epoch, or the user's folder.

Every dataset yields {"image": float32 [1, H, W], "text": str, "path": str}; `collate_batch`
turns a list of them into THE batch every model, loss and metric reads:

    images          float32 [B, 1, H, W]      preprocess_image output (0 = background, 1 = ink)
    targets         int64   [B, max_length+2] SOS, digit ids..., EOS, then PAD
    target_lengths  int64   [B]               number of digits (CTC labels are targets[:, 1:1+len])
    texts           list[str]
    paths           list[str]                 image file, or "" for on-the-fly samples

With `bucketing` (data.bucketing, the default) a loader over image files batches images of similar
width (`WidthBucketBatchSampler`) and `collate_batch` crops every batch to its widest image
(`crop_to_content`): W is then at most image_width and varies from batch to batch.

Under DDP (world_size > 1) loaders use a DistributedSampler (or split every bucketed batch
between the ranks): call `set_loader_epoch(loader, epoch)` at the start of every epoch (it also
advances on-the-fly rendering).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from runner.charset import EOS, PAD, SOS, encode, validate_text
from runner.data.config import AugmentConfig, DataConfig, as_data_config
from runner.data.fonts import FontSpec
from runner.data.generate import (METADATA_FILE, SplitPlan, data_fonts, ensure_generated_dataset, plan_splits,
                                  read_metadata, resolve_path)
from runner.data import pixel_store
from runner.data.preprocess import crop_to_content, fitted_size, load_image, preprocess_image_uint8, uint8_to_tensor
from runner.data.render import render_sample, sample_key
from runner.errors import DataError

Sample = dict[str, Any]
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
        conversion for the whole batch instead of one per image, a quarter of the loading time."""
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
        if workers <= 1 or os.name != "posix":
            for index in missing:
                self.pixels(int(index))
        else:
            global _FILLING
            _FILLING = self  # forked workers inherit it: nothing but the indices crosses the pipe
            parts = [missing[start:start + chunk] for start in range(0, len(missing), chunk)]
            try:
                with get_context("fork").Pool(workers) as pool:
                    for indices, pixels in zip(parts, pool.imap(_preprocess_part, parts)):
                        self.cache[indices] = pixels
                        self.cached[indices] = True
            finally:
                _FILLING = None
        log.info("decoded %d images into memory in %.1f s (%d processes)", len(missing), time.perf_counter() - started,
                 workers)

    def _stored_pixels(self) -> Optional[np.ndarray]:
        """Preprocessed pixels stored with the dataset (runner.data.pixel_store), if it has them."""
        return None

    def widths(self) -> np.ndarray:
        """Columns each image fills after preprocessing, to batch similar widths together.

        With the memory cache every image is decoded now (as the first epoch would) and measured;
        without it the width is estimated from the file header (exact without text_crop). A file
        whose header cannot be read counts as full width here and fails with its own error when it
        is loaded.
        """
        if self._widths is None and self.cache is not None:
            self.fill_cache()
            ink = self.cache.any(axis=1)  # [N, W]: columns holding any ink
            self._widths = np.where(ink.any(axis=1), self.image_width - np.argmax(ink[:, ::-1], axis=1), 1)
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
                 metadata: Optional[dict[str, Any]] = None, text_crop: bool = False):
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
            items.append((image, validate_text(entry["label"], source, max_length)))
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


def read_labels_tsv(path: Union[str, Path], max_length: int = 8) -> list[tuple[Path, str]]:
    """(image path, label) pairs of a `file<TAB>text` labels file; paths are relative to its folder.

    Blank lines and lines starting with '#' are skipped, and so is a first line `file<TAB>text`
    (a header). Labels must be Khmer digits: Arabic digits are rejected, not converted.
    """
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
            items.append((image, validate_text(text, source, max_length)))
            where.append(source)
    if not items:
        raise DataError(f"labels file {path} lists no images; add `image-file<TAB>khmer-digits` lines.")
    _check_files_exist(items, where)
    return items


class LabeledFolderDataset(ImageListDataset):
    """A folder of the user's images with a labels.tsv; `indices` selects a subset (for a val split)."""

    def __init__(self, root: Union[str, Path], labels_file: str = "labels.tsv", max_length: int = 8,
                 image_height: int = 32, image_width: int = 128, cache_in_memory: bool = True,
                 indices: Optional[Sequence[int]] = None, text_crop: bool = False):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"data folder {root} does not exist; set data.dir to a folder of images with a "
                            f"{labels_file}.")
        items = read_labels_tsv(root / labels_file, max_length)
        if indices is not None:
            items = [items[i] for i in indices]
        super().__init__(items, image_height, image_width, cache_in_memory, source=f"{root / labels_file}",
                         text_crop=text_crop)
        self.root = root


class OnTheFlyDataset(Dataset):
    """Freshly rendered samples: sample i of epoch e is a function of (seed, split, i, e).

    With `vary_by_epoch=False` the samples are fixed (a validation set) and identical to those a
    generated dataset with the same seed would contain, before PNG encoding.
    Index with an int (uses `self.epoch`) or with an (epoch, index) pair, which is what
    `EpochSampler` yields so persistent DataLoader workers follow `set_epoch` too.
    """

    def __init__(self, fonts: Sequence[FontSpec], augment: AugmentConfig, size: int, seed: int,
                 split: str = "train", min_length: int = 1, max_length: int = 8, image_height: int = 32,
                 image_width: int = 128, vary_by_epoch: bool = True, hard_augment: Optional[AugmentConfig] = None,
                 hard_fraction: float = 0.0, text_crop: bool = False):
        if size <= 0:
            raise DataError(f"on-the-fly split {split!r} has size {size}; set its size > 0.")
        self.fonts, self.augment, self.size, self.seed, self.split = list(fonts), augment, size, seed, split
        self.plan = SplitPlan(split, size, self.fonts, augment, hard_augment, hard_fraction)
        self.min_length, self.max_length = min_length, max_length
        self.image_height, self.image_width, self.text_crop = image_height, image_width, text_crop
        self.vary_by_epoch = vary_by_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def render(self, index: Union[int, tuple[int, int]]):
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        key = sample_key(self.seed, self.split, index, epoch if self.vary_by_epoch else None)
        return render_sample(key, self.fonts, self.plan.augment_for(index), self.min_length, self.max_length)

    def __getitem__(self, index: Union[int, tuple[int, int]]) -> Sample:
        image, spec = self.render(index)
        pixels = preprocess_image_uint8(image, self.image_height, self.image_width, self.text_crop)
        return {"image": uint8_to_tensor(pixels), "text": spec.text, "path": ""}


class EpochSampler(Sampler):
    """Yields (dataset.epoch, index) for the indices of `base`, read in the main process each epoch."""

    def __init__(self, base: Sampler, dataset: OnTheFlyDataset):
        self.base, self.dataset = base, dataset

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        return ((epoch, index) for index in self.base)

    def __len__(self) -> int:
        return len(self.base)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)


class WidthBucketBatchSampler(Sampler[list[int]]):
    """Batches of images of similar width, so that cropping a batch to its widest image drops most
    of the padding columns (the CNN and the BiLSTM cost grows with the width).

    shuffle=True (training): a permutation of (seed, epoch) is cut into chunks of `chunk_batches`
    global batches (batch_size * world_size samples); each chunk is sorted by width and cut into
    global batches, and the order of all batches is shuffled again. Within a chunk the samples are
    still a random draw, so every batch mixes lengths, fonts and degradations like an unsorted
    one, only with similar widths. shuffle=False (evaluation): sorted by width, in order.

    Under DDP the index list is padded to a multiple of world_size by repeating its first samples
    (as DistributedSampler does) and rank r takes the r-th slice of every global batch, so every
    rank runs the same number of steps.
    """

    def __init__(self, widths: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False, chunk_batches: int = 16) -> None:
        self.widths = np.asarray(widths)
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), int(seed)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.chunk_batches = int(chunk_batches)
        self.epoch = 0
        self._planned: tuple[int, list[np.ndarray]] | None = None  # (epoch, its batches): ~10 ms for 120k images

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, Any]:
        """What decides every epoch's batches besides the epoch: a resumed run must find the same."""
        digest = hashlib.sha256(np.ascontiguousarray(self.widths, dtype=np.int64).tobytes()).hexdigest()[:16]
        return {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.world_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last, "chunk_batches": self.chunk_batches,
                "widths": digest}

    def _global_batches(self) -> list[np.ndarray]:
        if self._planned is None or self._planned[0] != self.epoch:
            self._planned = (self.epoch, self._plan())
        return self._planned[1]

    def _plan(self) -> list[np.ndarray]:
        count, world = len(self.widths), self.world_size
        global_size = self.batch_size * world
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(count) if self.shuffle else np.argsort(self.widths, kind="stable")
        if count % world:
            order = np.concatenate([order, np.resize(order, world - count % world)])
        chunk = global_size * self.chunk_batches if self.shuffle else len(order)
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start:start + chunk]
            if self.shuffle:
                part = part[np.argsort(self.widths[part], kind="stable")]
            batches.extend(part[i:i + global_size] for i in range(0, len(part), global_size))
        if self.drop_last and batches and len(batches[-1]) < global_size:
            batches.pop()  # only the very last batch can be short: every chunk but the last is whole
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            share = len(batch) // self.world_size
            yield batch[self.rank * share:(self.rank + 1) * share].tolist()

    def __len__(self) -> int:
        padded = -(-len(self.widths) // self.world_size) * self.world_size
        global_size = self.batch_size * self.world_size
        return padded // global_size if self.drop_last else -(-padded // global_size)


def collate_batch(samples: Sequence[Sample], max_length: int = 8, crop: bool = False) -> dict[str, Any]:
    """Stack samples into the batch contract (see the module docstring); `crop` cuts the padding
    columns no image of the batch needs (`crop_to_content`)."""
    rows, lengths = [], []  # plain lists, one tensor each at the end: per-row tensor writes cost ~1 ms a batch
    for sample in samples:
        ids = encode(sample["text"], sample["path"] or "rendered sample")
        if len(ids) > max_length:
            raise DataError(f"{sample['path'] or 'rendered sample'}: label {sample['text']!r} has {len(ids)} digits, "
                            f"more than max_length={max_length}; raise data.max_length.")
        rows.append([SOS, *ids, EOS] + [PAD] * (max_length - len(ids)))
        lengths.append(len(ids))
    images = torch.stack([sample["image"] for sample in samples])
    return {"images": crop_to_content(images) if crop else images,
            "targets": torch.tensor(rows, dtype=torch.long).reshape(len(samples), max_length + 2),
            "target_lengths": torch.tensor(lengths, dtype=torch.long), "texts": [sample["text"] for sample in samples],
            "paths": [sample["path"] for sample in samples]}


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in each DataLoader worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int = 0,
                rank: int = 0, world_size: int = 1, pin_memory: bool = False, max_length: int = 8,
                drop_last: bool = False, bucketing: bool = False) -> DataLoader:
    """A DataLoader with the batch contract, seeded shuffling and (world_size > 1) a DistributedSampler.

    Shuffled generated data uses a DistributedSampler even in one process: its permutation depends
    only on (seed, epoch), so N processes with batch b see, step for step, the same samples as one
    process with batch N*b — the property that makes a DDP run comparable to a single-process run.
    `bucketing` crops every batch to its widest image and, for image files, batches similar widths
    (`WidthBucketBatchSampler`, which keeps that property for the samples; each rank crops its own
    share).
    """
    collate = functools.partial(collate_batch, max_length=max_length, crop=bucketing)
    # Every loader owns its generator: starting an epoch's iterator draws the workers' base seed from it,
    # which would otherwise advance the global RNG (dropout's), so a resumed epoch would differ.
    generator = torch.Generator().manual_seed(seed)
    if bucketing and isinstance(dataset, ImageListDataset):
        batch_sampler = WidthBucketBatchSampler(dataset.widths(), batch_size, shuffle, seed, rank, world_size,
                                                drop_last)
        return DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers, collate_fn=collate,
                          pin_memory=pin_memory, worker_init_fn=seed_worker if num_workers > 0 else None,
                          persistent_workers=num_workers > 0, generator=generator)
    sampler: Optional[Sampler] = None
    if world_size > 1 or (shuffle and not isinstance(dataset, OnTheFlyDataset)):
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                     drop_last=drop_last)
    if isinstance(dataset, OnTheFlyDataset):
        # Fresh renders need no shuffling; the epoch travels with each index instead.
        sampler = EpochSampler(sampler or SequentialSampler(dataset), dataset)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      num_workers=num_workers, collate_fn=collate,
                      pin_memory=pin_memory, drop_last=drop_last, generator=generator,
                      worker_init_fn=seed_worker if num_workers > 0 else None,
                      persistent_workers=num_workers > 0)


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Call at the start of each epoch: reshuffles samplers (DistributedSampler, width buckets), advances
    on-the-fly renders."""
    for owner in (loader.sampler, loader.batch_sampler, loader.dataset):
        if hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)


def create_data_loaders(metadata_path: Union[str, Path], batch_size: int = 32, num_workers: int = 0,
                        image_height: int = 32, image_width: int = 128, max_length: int = 8, seed: int = 0,
                        rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                        cache_in_memory: bool = True, bucketing: bool = True, text_crop: bool = True
                        ) -> tuple[DataLoader, DataLoader]:
    """(train_loader, val_loader) over the train and val splits of a generated dataset."""
    loaders = []
    metadata = read_metadata(metadata_path)
    for split in ("train", "val"):
        dataset = KhmerDigitsDataset(metadata_path, split, image_height, image_width, max_length, cache_in_memory,
                                     metadata, text_crop)
        loaders.append(make_loader(dataset, batch_size, split == "train", num_workers, seed, rank, world_size,
                                   pin_memory, max_length, bucketing=bucketing))
    return loaders[0], loaders[1]


def folder_datasets(cfg: DataConfig, seed: int) -> tuple[LabeledFolderDataset, LabeledFolderDataset]:
    """(train, val) from data.dir, with val from data.val_dir or a seeded data.val_fraction of the files."""
    root = resolve_path(cfg.dir)
    common = dict(labels_file=cfg.labels_file, max_length=cfg.max_length, image_height=cfg.image_height,
                  image_width=cfg.image_width, cache_in_memory=cfg.cache_in_memory, text_crop=cfg.text_crop)
    if cfg.val_dir:
        return LabeledFolderDataset(root, **common), LabeledFolderDataset(resolve_path(cfg.val_dir), **common)
    total = len(read_labels_tsv(root / cfg.labels_file, cfg.max_length))
    val_count = int(round(total * cfg.val_fraction))
    if cfg.val_fraction > 0:
        val_count = max(1, val_count)
    if val_count == 0 or val_count >= total:
        raise DataError(f"{root / cfg.labels_file} has {total} images; data.val_fraction={cfg.val_fraction} leaves "
                        f"{total - val_count} for training and {val_count} for validation. Add images, change "
                        f"data.val_fraction, or give a separate data.val_dir.")
    order = np.random.default_rng(seed).permutation(total)
    val_indices, train_indices = sorted(order[:val_count]), sorted(order[val_count:])
    return (LabeledFolderDataset(root, indices=train_indices, **common),
            LabeledFolderDataset(root, indices=val_indices, **common))


def build_datasets(cfg: DataConfig, seed: int, rank: int = 0) -> dict[str, Dataset]:
    """Every split for `cfg.kind`: train, val and, where available, the extra val_* splits."""
    if cfg.kind == "folder":
        train, val = folder_datasets(cfg, seed)
        return {"train": train, "val": val}
    if cfg.kind == "onthefly":
        datasets: dict[str, Dataset] = {}
        for plan in plan_splits(cfg, data_fonts(cfg)):
            datasets[plan.name] = OnTheFlyDataset(plan.fonts, plan.augment, plan.size, seed, plan.name,
                                                  cfg.min_length, cfg.max_length, cfg.image_height,
                                                  cfg.image_width, vary_by_epoch=plan.name == "train",
                                                  hard_augment=plan.hard_augment, hard_fraction=plan.hard_fraction,
                                                  text_crop=cfg.text_crop)
        return datasets
    metadata_path = (resolve_path(cfg.dir) / METADATA_FILE if cfg.dir
                     else ensure_generated_dataset(cfg, seed, rank))
    try:
        metadata = read_metadata(metadata_path)
        splits = [key for key, value in metadata.items() if isinstance(value, list)]
        return {split: KhmerDigitsDataset(metadata_path, split, cfg.image_height, cfg.image_width, cfg.max_length,
                                          cfg.cache_in_memory, metadata, cfg.text_crop) for split in splits}
    except DataError as error:
        if cfg.dir:
            raise
        raise DataError(f"{error} {metadata_path.parent} is this run's dataset cache: delete that folder and run "
                        f"again to regenerate it.") from error


def build_data_loaders(data_cfg: Union[DataConfig, DictConfig], seed: int, rank: int = 0, world_size: int = 1
                       ) -> tuple[DataLoader, DataLoader, dict[str, DataLoader]]:
    """(train_loader, val_loader, extra_val_loaders) for the trainer; extras are the other val_* splits."""
    cfg = as_data_config(data_cfg)
    data_seed = cfg.seed if cfg.seed is not None else seed
    datasets = build_datasets(cfg, data_seed, rank)
    for required in ("train", "val"):
        if required not in datasets:
            raise DataError(f"the {cfg.kind} dataset has no {required!r} split; its splits are {list(datasets)}.")
    loaders = {name: make_loader(dataset, cfg.batch_size, name == "train", cfg.num_workers, seed, rank, world_size,
                                 cfg.pin_memory, cfg.max_length, bucketing=cfg.bucketing)
               for name, dataset in datasets.items()}
    train, val = loaders.pop("train"), loaders.pop("val")
    return train, val, loaders
