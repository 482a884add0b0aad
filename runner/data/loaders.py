"""Batches and loaders: the batch contract (`collate_batch`), seeded DDP-aware DataLoaders, and the loaders of a run's splits."""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, SequentialSampler

from runner.charset import EOS, PAD, SOS, Charset, as_charset
from runner.data.config import DataConfig, as_data_config, data_seed
from runner.data.datasets import ImageListDataset, Sample
from runner.data.onthefly import OnTheFlyDataset
from runner.data.preprocess import crop_to_content
from runner.data.samplers import EpochSampler, WidthBucketBatchSampler
from runner.data.splits import build_datasets, generated_datasets, generated_metadata
from runner.errors import DataError

TrainerLoaders = tuple[DataLoader, DataLoader, dict[str, DataLoader]]  # train, val, the other val_* splits by name


def collate_batch(samples: Sequence[Sample], max_length: int = 8, bucketing: bool = False,
                  charset: Charset | str | None = None) -> dict[str, Any]:
    """Stack samples ({"image": float32 [1, H, W], "text": str, "path": str}, what every dataset
    yields) into THE batch every model, loss and metric reads:

        images          float32 [B, 1, H, W]      preprocess_image output (0 = background, 1 = ink)
        targets         int64   [B, max_length+2] SOS, character ids..., EOS, then PAD
        target_lengths  int64   [B]               number of characters (CTC labels are targets[:, 1:1+len])
        texts           list[str]
        paths           list[str]                 image file, or "" for on-the-fly samples

    Texts are encoded with `charset` (the run's; default digits): a character outside it is a DataError.
    `bucketing` (data.bucketing) cuts the padding columns no image of the batch needs (`crop_to_content`):
    W is then at most image_width and varies from batch to batch.
    """
    charset = as_charset(charset)
    rows, lengths = [], []  # plain lists, one tensor each at the end: cheaper than a tensor write per row
    for sample in samples:
        ids = charset.encode(sample["text"], sample["path"] or "rendered sample")
        if len(ids) > max_length:
            raise DataError(f"{sample['path'] or 'rendered sample'}: label {sample['text']!r} has {len(ids)} "
                            f"characters, more than max_length={max_length}; raise data.max_length.")
        rows.append([SOS, *ids, EOS] + [PAD] * (max_length - len(ids)))
        lengths.append(len(ids))
    images = torch.stack([sample["image"] for sample in samples])
    return {"images": crop_to_content(images) if bucketing else images,
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
                drop_last: bool = False, bucketing: bool = False, charset: Charset | str | None = None) -> DataLoader:
    """A DataLoader with the batch contract, seeded shuffling and (world_size > 1) a DistributedSampler.

    Shuffled generated data uses a DistributedSampler even in one process: its permutation depends
    only on (seed, epoch), so N processes with batch b see, step for step, the same samples as one
    process with batch N*b — the property that makes a DDP run comparable to a single-process run.
    `bucketing` crops every batch to its widest image and, for image files, batches similar widths
    (`WidthBucketBatchSampler`, which keeps that property for the samples; each rank crops its own
    share). Batches encode their texts with `charset` (default digits).
    """
    collate = functools.partial(collate_batch, max_length=max_length, bucketing=bucketing, charset=as_charset(charset))
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




def split_loaders(datasets: dict[str, Dataset], kind: str, batch_size: int, num_workers: int = 0, seed: int = 0,
                  rank: int = 0, world_size: int = 1, pin_memory: bool = False, max_length: int = 8,
                  bucketing: bool = False, charset: Charset | str | None = None) -> TrainerLoaders:
    """(train_loader, val_loader, {split: loader} of the other splits) over a run's datasets by split name;
    only train is shuffled."""
    for required in ("train", "val"):
        if required not in datasets:
            raise DataError(f"the {kind} dataset has no {required!r} split; its splits are {list(datasets)}.")
    loaders = {name: make_loader(dataset, batch_size, name == "train", num_workers, seed, rank, world_size,
                                 pin_memory, max_length, bucketing=bucketing, charset=charset)
               for name, dataset in datasets.items()}
    train, val = loaders.pop("train"), loaders.pop("val")
    return train, val, loaders


def create_data_loaders(metadata_path: Union[str, Path], batch_size: int = 32, num_workers: int = 0,
                        image_height: int = 32, image_width: int = 128, max_length: int = 8, seed: int = 0,
                        rank: int = 0, world_size: int = 1, pin_memory: bool = False,
                        cache_in_memory: bool = True, bucketing: bool = True, text_crop: bool = True,
                        extra_val: bool = False, run_cache: bool = False, charset: Charset | str | None = None
                        ) -> Union[tuple[DataLoader, DataLoader], TrainerLoaders]:
    """(train_loader, val_loader) over the train and val splits of a generated dataset.

    With `extra_val` every split is opened and the other val_* splits come third, as {split: loader}:
    the trainer's loaders (`build_data_loaders` of a generated dataset). `seed` orders the batches;
    `run_cache` marks the dataset as the run's cache (see `generated_datasets`).
    """
    datasets = generated_datasets(metadata_path, None if extra_val else ("train", "val"), image_height, image_width,
                                  max_length, cache_in_memory, text_crop, run_cache, charset)
    train, val, extras = split_loaders(datasets, "generated", batch_size, num_workers, seed, rank, world_size,
                                       pin_memory, max_length, bucketing, charset)
    return (train, val, extras) if extra_val else (train, val)


def build_data_loaders(data_cfg: Union[DataConfig, DictConfig], seed: int, rank: int = 0, world_size: int = 1,
                       charset: Charset | str | None = None) -> TrainerLoaders:
    """(train_loader, val_loader, extra_val_loaders) for the trainer; extras are the other val_* splits. Labels
    are checked against and encoded with `charset` (the run's cfg.charset; default digits).

    A generated dataset's loaders are `create_data_loaders`'; `seed` (the run's) orders the batches,
    and the data comes from `data_seed` of it.
    """
    cfg = as_data_config(data_cfg)
    loading = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, seed=seed, rank=rank,
                   world_size=world_size, pin_memory=cfg.pin_memory, max_length=cfg.max_length,
                   bucketing=cfg.bucketing, charset=as_charset(charset))
    if cfg.kind == "generated":
        return create_data_loaders(generated_metadata(cfg, data_seed(cfg, seed), rank), image_height=cfg.image_height,
                                   image_width=cfg.image_width, cache_in_memory=cfg.cache_in_memory,
                                   text_crop=cfg.text_crop, extra_val=True, run_cache=not cfg.dir, **loading)
    return split_loaders(build_datasets(cfg, data_seed(cfg, seed), rank, loading["charset"]), cfg.kind, **loading)
