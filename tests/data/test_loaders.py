"""Batches and loaders (runner/data/loaders.py): the batch contract, seeded DDP-aware loaders, the trainer's loaders."""

import pytest
import torch

from runner.charset import CHARSETS, EOS, PAD, SOS
from runner.data.config import DataConfig, augment_preset
from runner.data.datasets import KhmerDigitsDataset
from runner.data.fonts import discover_fonts
from runner.data.loaders import build_data_loaders, collate_batch, create_data_loaders, make_loader, set_loader_epoch
from runner.data.onthefly import OnTheFlyDataset
from runner.errors import DataError

FONTS = discover_fonts(use_system_fonts=False)


def test_batch_contract_for_attention_and_ctc_targets(tiny_dataset):
    train, val = create_data_loaders(tiny_dataset, batch_size=5, num_workers=0, seed=1, bucketing=False)
    batch = next(iter(train))
    assert batch["images"].shape == (5, 1, 32, 128) and batch["images"].dtype == torch.float32
    assert batch["targets"].shape == (5, 10) and batch["targets"].dtype == torch.int64
    assert batch["target_lengths"].dtype == torch.int64 and len(batch["texts"]) == len(batch["paths"]) == 5
    for row, text in enumerate(batch["texts"]):
        length = int(batch["target_lengths"][row])
        assert length == len(text)
        assert batch["targets"][row, 0] == SOS and batch["targets"][row, 1 + length] == EOS
        assert batch["targets"][row, 1:1 + length].tolist() == CHARSETS["digits"].encode(text)  # the CTC labels
        assert (batch["targets"][row, 2 + length:] == PAD).all()
    assert len(val.dataset) == 8


def test_collate_rejects_labels_longer_than_max_length():
    sample = {"image": torch.zeros(1, 32, 128), "text": "០១២", "path": "a.png"}
    with pytest.raises(DataError, match="a.png.*max_length=2"):
        collate_batch([sample], max_length=2)


def test_train_shuffling_is_seeded(tiny_dataset):
    def order(seed):
        train, _ = create_data_loaders(tiny_dataset, 4, 0, seed=seed)
        return [path for batch in train for path in batch["paths"]]

    assert order(1) == order(1) and order(1) != order(2)


def test_distributed_loaders_split_the_samples(tiny_dataset):
    seen = []
    for rank in range(2):
        train, _ = create_data_loaders(tiny_dataset, 4, 0, seed=3, rank=rank, world_size=2)
        set_loader_epoch(train, 1)
        seen.append({path for batch in train for path in batch["paths"]})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 24


def test_bucketed_loader_sorts_and_crops_batches_and_keeps_every_sample(tiny_dataset):
    dataset = KhmerDigitsDataset(tiny_dataset, "train")
    loader = make_loader(dataset, batch_size=4, shuffle=False, bucketing=True)
    shapes = [batch["images"].shape[-1] for batch in loader]
    assert shapes == sorted(shapes) and shapes[0] < 128  # sorted by width, the narrow ones cropped
    texts = [text for batch in loader for text in batch["texts"]]
    assert sorted(texts) == sorted(dataset.texts)


def test_onthefly_loader_renders_new_samples_each_epoch_also_in_workers():
    dataset = OnTheFlyDataset(FONTS, augment_preset("light"), size=4, seed=1)
    loader = make_loader(dataset, batch_size=4, shuffle=True, num_workers=1, seed=0)
    epochs = []
    for epoch in (0, 1, 0):
        set_loader_epoch(loader, epoch)
        epochs.append(next(iter(loader)))
    assert epochs[0]["texts"] == epochs[2]["texts"] and torch.equal(epochs[0]["images"], epochs[2]["images"])
    assert not torch.equal(epochs[0]["images"], epochs[1]["images"])
    assert epochs[0]["paths"] == [""] * 4


def test_the_trainers_loaders_of_a_generated_dataset_are_create_data_loaders(tiny_dataset):
    cfg = DataConfig(dir=str(tiny_dataset.parent), batch_size=4, text_crop=False)
    train, val, extra = build_data_loaders(cfg, seed=3)
    spec_train, spec_val, spec_extra = create_data_loaders(tiny_dataset, 4, seed=3, text_crop=False, extra_val=True)
    assert [batch["paths"] for batch in train] == [batch["paths"] for batch in spec_train]
    assert [batch["paths"] for batch in val] == [batch["paths"] for batch in spec_val]
    assert list(extra) == list(spec_extra) == ["val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"]
    assert len(create_data_loaders(tiny_dataset, 4)) == 2  # (train, val) without extra_val


def test_build_data_loaders_onthefly_has_fixed_validation_splits():
    cfg = DataConfig(kind="onthefly", use_system_fonts=False, train_size=8, val_size=4, hard_val_size=2,
                     batch_size=4)
    with pytest.warns(UserWarning, match="val_unseen_fonts"):
        train, val, extra = build_data_loaders(cfg, seed=1)
    assert len(train.dataset) == 8 and list(extra) == ["val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"]
    first, second = next(iter(val)), next(iter(val))
    assert first["texts"] == second["texts"]


def test_data_seed_fixes_the_data_across_run_seeds():
    def val_texts(data_seed, run_seed):
        cfg = DataConfig(kind="onthefly", use_system_fonts=False, train_size=4, val_size=8, hard_val_size=0,
                         batch_size=8, seed=data_seed)
        return next(iter(build_data_loaders(cfg, seed=run_seed)[1]))["texts"]

    assert val_texts(7, run_seed=1) == val_texts(7, run_seed=2) == val_texts(None, run_seed=7)
    assert val_texts(None, run_seed=1) != val_texts(None, run_seed=2)


def test_build_data_loaders_generates_and_reuses_the_cache(tmp_path):
    cfg = DataConfig(cache_dir=str(tmp_path), use_system_fonts=False, train_size=8, val_size=4, hard_val_size=2,
                     generate_workers=1, batch_size=4, held_out_fonts=[])
    train, val, extra = build_data_loaders(cfg, seed=2)
    assert (len(train.dataset), len(val.dataset), list(extra)) == (8, 4, ["val_hard", "val_unseen_fonts",
                                                                          "val_hard_unseen_fonts"])
    images = next(iter(extra["val_hard"]))["images"]  # data.bucketing: cropped to the widest image
    assert images.shape[:3] == (2, 1, 32) and images.shape[-1] <= 128 and images.shape[-1] % 4 == 0
    (cache,) = tmp_path.iterdir()
    mtime = (cache / "metadata.yaml").stat().st_mtime_ns
    build_data_loaders(cfg, seed=2)
    assert (cache / "metadata.yaml").stat().st_mtime_ns == mtime


def test_a_broken_cache_says_to_delete_it_and_a_missing_dir_how_to_generate(tmp_path):
    cfg = DataConfig(cache_dir=str(tmp_path), use_system_fonts=False, train_size=4, val_size=2, hard_val_size=0,
                     generate_workers=1, batch_size=2)
    build_data_loaders(cfg, seed=2)
    (cache,) = tmp_path.iterdir()
    next((cache / "train").iterdir()).unlink()
    with pytest.raises(DataError, match="is this run's dataset cache: delete that folder"):
        build_data_loaders(cfg, seed=2)
    with pytest.raises(DataError, match="runner.generate data.dir="):
        build_data_loaders(DataConfig(dir=str(tmp_path / "nothing")), seed=1)
