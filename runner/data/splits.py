"""The datasets of a run's splits (train, val and the extra val_* splits) for each data.kind."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

from runner.charset import Charset
from runner.data.config import DataConfig
from runner.data.datasets import KhmerDigitsDataset, LabeledFolderDataset, read_labels_tsv
from runner.data.generate import (METADATA_FILE, data_fonts, ensure_generated_dataset, plan_splits, read_metadata,
                                  resolve_path)
from runner.data.onthefly import OnTheFlyDataset
from runner.errors import DataError


def generated_metadata(cfg: DataConfig, seed: int, rank: int = 0) -> Path:
    """metadata.yaml of the generated dataset: data.dir's, else this run's cache (generated once for `seed`)."""
    return resolve_path(cfg.dir) / METADATA_FILE if cfg.dir else ensure_generated_dataset(cfg, seed, rank)


def generated_datasets(metadata_path: Union[str, Path], splits: Optional[Sequence[str]] = None, image_height: int = 32,
                       image_width: int = 128, max_length: int = 8, cache_in_memory: bool = True,
                       text_crop: bool = False, run_cache: bool = False, charset: Charset | str | None = None
                       ) -> dict[str, KhmerDigitsDataset]:
    """`splits` (default: every split it lists) of a generated dataset, labels checked against `charset`. With
    `run_cache` the dataset is this run's cache (data.dir=null), so an error opening it also says how to
    regenerate it."""
    try:
        metadata = read_metadata(metadata_path)  # parsed once for every split
        if splits is None:
            splits = [key for key, value in metadata.items() if isinstance(value, list)]
        return {split: KhmerDigitsDataset(metadata_path, split, image_height, image_width, max_length, cache_in_memory,
                                          metadata, text_crop, charset) for split in splits}
    except DataError as error:
        if not run_cache:
            raise
        raise DataError(f"{error} {Path(metadata_path).parent} is this run's dataset cache: delete that folder and "
                        f"run again to regenerate it.") from error


def folder_datasets(cfg: DataConfig, seed: int, charset: Charset | str | None = None
                    ) -> tuple[LabeledFolderDataset, LabeledFolderDataset]:
    """(train, val) from data.dir, with val from data.val_dir or a seeded data.val_fraction of the files."""
    root = resolve_path(cfg.dir)
    common = dict(labels_file=cfg.labels_file, max_length=cfg.max_length, image_height=cfg.image_height,
                  image_width=cfg.image_width, cache_in_memory=cfg.cache_in_memory, text_crop=cfg.text_crop,
                  charset=charset)
    if cfg.val_dir:
        return LabeledFolderDataset(root, **common), LabeledFolderDataset(resolve_path(cfg.val_dir), **common)
    total = len(read_labels_tsv(root / cfg.labels_file, cfg.max_length, charset))
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


def build_datasets(cfg: DataConfig, seed: int, rank: int = 0, charset: Charset | str | None = None
                   ) -> dict[str, Dataset]:
    """Every split for `cfg.kind`: train, val and, where available, the extra val_* splits. `seed` is the
    data's (`runner.data.config.data_seed`); labels of image files are checked against `charset` (rendered
    ones when a batch encodes them)."""
    if cfg.kind == "folder":
        train, val = folder_datasets(cfg, seed, charset)
        return {"train": train, "val": val}
    if cfg.kind == "onthefly":
        datasets: dict[str, Dataset] = {}
        for plan in plan_splits(cfg, data_fonts(cfg)):
            datasets[plan.name] = OnTheFlyDataset(plan.fonts, plan.augment, plan.size, seed, plan.name,
                                                  cfg.min_length, cfg.max_length, cfg.image_height,
                                                  cfg.image_width, vary_by_epoch=plan.name == "train",
                                                  hard_augment=plan.hard_augment, hard_fraction=plan.hard_fraction,
                                                  text_crop=cfg.text_crop, formats=cfg.formats,
                                                  ascii_digits=cfg.ascii_digits)
        return datasets
    return generated_datasets(generated_metadata(cfg, seed, rank), None, cfg.image_height, cfg.image_width,
                              cfg.max_length, cfg.cache_in_memory, cfg.text_crop, run_cache=not cfg.dir,
                              charset=charset)
