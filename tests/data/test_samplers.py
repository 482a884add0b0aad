"""Samplers (runner/data/samplers.py): the epoch carried to on-the-fly renders, batches of similar width."""

import numpy as np
from torch.utils.data import SequentialSampler

from runner.data.config import augment_preset
from runner.data.fonts import discover_fonts
from runner.data.onthefly import OnTheFlyDataset
from runner.data.samplers import EpochSampler, WidthBucketBatchSampler


def test_epoch_sampler_pairs_each_index_with_the_epoch_it_sets():
    dataset = OnTheFlyDataset(discover_fonts(use_system_fonts=False), augment_preset("none"), size=3, seed=1)
    sampler = EpochSampler(SequentialSampler(dataset), dataset)
    assert list(sampler) == [(0, 0), (0, 1), (0, 2)] and len(sampler) == 3
    sampler.set_epoch(4)
    assert dataset.epoch == 4 and list(sampler) == [(4, 0), (4, 1), (4, 2)]


def test_bucket_sampler_yields_every_sample_once_in_batches_of_similar_width():
    widths = np.random.default_rng(0).integers(20, 129, size=1000)
    sampler = WidthBucketBatchSampler(widths, batch_size=16, shuffle=True, seed=3, chunk_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(len(batch) for batch in batches)[1:] == [16] * 62  # one short batch: 1000 = 62 * 16 + 8
    assert sorted(index for batch in batches for index in batch) == list(range(1000))
    spread = np.mean([widths[b].max() - widths[b].min() for b in batches])
    assert spread < 0.25 * (widths.max() - widths.min())  # random batches span nearly the whole range
    assert list(sampler) == batches  # a function of (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != batches
    assert len(list(WidthBucketBatchSampler(widths, 16, True, drop_last=True))) == 62


def test_bucket_sampler_for_evaluation_is_sorted_by_width():
    widths = np.array([90, 30, 60, 30, 128])
    batches = list(WidthBucketBatchSampler(widths, batch_size=2, shuffle=False))
    assert batches == [[1, 3], [2, 0], [4]]


def test_bucket_sampler_ranks_split_each_global_batch_like_one_process():
    widths = np.random.default_rng(1).integers(20, 129, size=100)
    single = list(WidthBucketBatchSampler(widths, batch_size=8, shuffle=True, seed=5))
    ranks = [list(WidthBucketBatchSampler(widths, batch_size=4, shuffle=True, seed=5, rank=r, world_size=2))
             for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 13  # lock step
    for a, b, whole in zip(*ranks, single):
        assert a + b == whole  # rank r holds the r-th half of the same global batch


def test_bucket_sampler_pads_an_uneven_split_so_ranks_stay_in_lock_step():
    widths = np.random.default_rng(1).integers(20, 129, size=101)
    ranks = [list(WidthBucketBatchSampler(widths, batch_size=4, shuffle=True, seed=5, rank=r, world_size=2))
             for r in range(2)]
    assert [len(batch) for batch in ranks[0]] == [len(batch) for batch in ranks[1]]
    seen = [index for rank in ranks for batch in rank for index in batch]
    assert set(seen) == set(range(101)) and len(seen) == 102  # one sample repeated, as DistributedSampler does


def test_bucket_sampler_state_names_what_decides_the_batches():
    widths = np.array([90, 30, 60, 30, 128])
    state = WidthBucketBatchSampler(widths, batch_size=2, shuffle=True, seed=1).state_dict()
    assert state == WidthBucketBatchSampler(widths.copy(), batch_size=2, shuffle=True, seed=1).state_dict()
    assert state != WidthBucketBatchSampler(widths[::-1], batch_size=2, shuffle=True, seed=1).state_dict()
    assert state != WidthBucketBatchSampler(widths, batch_size=2, shuffle=True, seed=2).state_dict()
