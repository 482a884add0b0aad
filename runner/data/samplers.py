"""Samplers: epochs carried to on-the-fly renders, and batches of images of similar width."""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np
from torch.utils.data import Sampler

from runner.data.onthefly import OnTheFlyDataset


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
        self._planned: tuple[int, list[np.ndarray]] | None = None  # (epoch, its batches): planned once an epoch

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

