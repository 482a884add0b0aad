import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from runner.charset import EOS, PAD, SOS, encode
from runner.data import datasets as dataset_module
from runner.data.config import DataConfig, augment_preset
from runner.data.datasets import (KhmerDigitsDataset, LabeledFolderDataset, OnTheFlyDataset, WidthBucketBatchSampler,
                                 build_data_loaders, collate_batch, create_data_loaders, make_loader, set_loader_epoch)
from runner.data.preprocess import crop_to_content
from runner.data.fonts import discover_fonts
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
        assert batch["targets"][row, 1:1 + length].tolist() == encode(text)  # the CTC labels
        assert (batch["targets"][row, 2 + length:] == PAD).all()
    assert len(val.dataset) == 8


def test_collate_rejects_labels_longer_than_max_length():
    sample = {"image": torch.zeros(1, 32, 128), "text": "០១២", "path": "a.png"}
    with pytest.raises(DataError, match="a.png.*max_length=2"):
        collate_batch([sample], max_length=2)


def test_train_shuffling_is_seeded(tiny_dataset):
    def order(seed):
        return [text for batch in create_data_loaders(tiny_dataset, 4, 0, seed=seed)[0] for text in batch["paths"]]

    assert order(1) == order(1) and order(1) != order(2)


def test_in_memory_cache_decodes_each_image_once(tiny_dataset, monkeypatch):
    dataset = KhmerDigitsDataset(tiny_dataset, "val")
    first = dataset[0]["image"]
    monkeypatch.setattr(dataset_module, "load_image", lambda path: pytest.fail("decoded twice"))
    assert torch.equal(dataset[0]["image"], first)


def test_distributed_loaders_split_the_samples(tiny_dataset):
    seen = []
    for rank in range(2):
        train, _ = create_data_loaders(tiny_dataset, 4, 0, seed=3, rank=rank, world_size=2)
        set_loader_epoch(train, 1)
        seen.append({path for batch in train for path in batch["paths"]})
    assert not seen[0] & seen[1] and len(seen[0] | seen[1]) == 24


def broken_copy(tiny_dataset, tmp_path, edit):
    target = tmp_path / "copy"
    shutil.copytree(tiny_dataset.parent, target)
    metadata = yaml.safe_load((target / "metadata.yaml").read_text(encoding="utf-8"))
    edit(metadata, target)
    (target / "metadata.yaml").write_text(yaml.safe_dump(metadata, allow_unicode=True), encoding="utf-8")
    return target / "metadata.yaml"


def test_missing_metadata_is_named(tmp_path):
    with pytest.raises(DataError, match=r"metadata.yaml does not exist.*runner.generate"):
        KhmerDigitsDataset(tmp_path / "metadata.yaml", "train")


def test_unknown_and_empty_splits_are_named(tiny_dataset, tmp_path):
    with pytest.raises(DataError, match="no split 'test'; it has"):
        KhmerDigitsDataset(tiny_dataset, "test")
    path = broken_copy(tiny_dataset, tmp_path, lambda meta, root: meta.update(val=[]))
    with pytest.raises(DataError, match="split 'val' is empty"):
        KhmerDigitsDataset(path, "val")


def test_missing_image_file_is_named_eagerly(tiny_dataset, tmp_path):
    path = broken_copy(tiny_dataset, tmp_path, lambda meta, root: (root / meta["train"][3]["image"]).unlink())
    with pytest.raises(DataError, match=r"\[train\]\[3\].*000003.png does not exist"):
        KhmerDigitsDataset(path, "train")


def test_corrupt_image_is_named_when_read(tiny_dataset, tmp_path):
    path = broken_copy(tiny_dataset, tmp_path,
                       lambda meta, root: (root / meta["train"][2]["image"]).write_bytes(b"\x89PNG broken"))
    dataset = KhmerDigitsDataset(path, "train")
    with pytest.raises(DataError, match="000002.png cannot be decoded"):
        dataset[2]


@pytest.mark.parametrize("label, message", [("១២x", "character 'x'"), ("០១២៣៤៥៦៧៨", "max_length=8")])
def test_bad_metadata_labels_are_named(tiny_dataset, tmp_path, label, message):
    path = broken_copy(tiny_dataset, tmp_path, lambda meta, root: meta["val"][1].update(label=label))
    with pytest.raises(DataError, match=rf"\[val\]\[1\].*{message}"):
        KhmerDigitsDataset(path, "val")


def make_folder(root, lines, images=("a.png", "b.png", "c.png", "d.png", "e.png")):
    root.mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.new("L", (60, 20), 255).save(root / name)
    (root / "labels.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return root


GOOD = ["file\ttext", "a.png\t១២", "# a comment", "", "b.png\t៣", "c.png\t៤៥៦", "d.png\t៧", "e.png\t៨៩"]


def test_labeled_folder_loads_and_skips_header_comments_and_blank_lines(tmp_path):
    dataset = LabeledFolderDataset(make_folder(tmp_path / "imgs", GOOD))
    assert dataset.texts == ["១២", "៣", "៤៥៦", "៧", "៨៩"]
    assert dataset[0]["image"].shape == (1, 32, 128) and dataset[0]["path"].endswith("a.png")


@pytest.mark.parametrize("line, message", [
    ("b.png\t12", r"labels.tsv:3: .*Arabic digit '1' should be written as Khmer '១'"),
    ("b.png\t១a", r"labels.tsv:3: .*character 'a'"),
    ("b.png\t០១២៣៤៥៦៧៨", r"labels.tsv:3: .*max_length=8"),
    ("b.png", r"labels.tsv:3: expected `file<TAB>text`"),
    ("missing.png\t១", r"labels.tsv:3: image file .*missing.png does not exist"),
])
def test_bad_labels_tsv_lines_are_named_with_their_line(tmp_path, line, message):
    root = make_folder(tmp_path / "imgs", ["file\ttext", "a.png\t១", line])
    with pytest.raises(DataError, match=message):
        LabeledFolderDataset(root)


def test_empty_or_missing_labels_are_errors(tmp_path):
    with pytest.raises(DataError, match="lists no images"):
        LabeledFolderDataset(make_folder(tmp_path / "empty", ["file\ttext"]))
    with pytest.raises(DataError, match="other.tsv does not exist"):
        LabeledFolderDataset(tmp_path / "empty", labels_file="other.tsv")
    with pytest.raises(DataError, match="data folder .* does not exist"):
        LabeledFolderDataset(tmp_path / "nowhere")


def test_folder_kind_splits_val_by_seeded_fraction_or_val_dir(tmp_path):
    root = make_folder(tmp_path / "imgs", GOOD)
    cfg = DataConfig(kind="folder", dir=str(root), val_fraction=0.4, batch_size=2)
    train, val, extra = build_data_loaders(cfg, seed=1)
    train_texts, val_texts = train.dataset.texts, val.dataset.texts
    assert len(val_texts) == 2 and sorted(train_texts + val_texts) == sorted(LabeledFolderDataset(root).texts)
    assert build_data_loaders(cfg, seed=1)[1].dataset.texts == val_texts and extra == {}
    val_root = make_folder(tmp_path / "val", ["a.png\t០"], images=("a.png",))
    _, val, _ = build_data_loaders(DataConfig(kind="folder", dir=str(root), val_dir=str(val_root)), seed=1)
    assert val.dataset.texts == ["០"]


def test_onthefly_samples_are_a_function_of_seed_epoch_and_index():
    def dataset(seed=1):
        return OnTheFlyDataset(FONTS, augment_preset("light"), size=6, seed=seed)

    a, b = dataset(), dataset()
    assert torch.equal(a[(2, 4)]["image"], b[(2, 4)]["image"]) and a[(2, 4)]["text"] == b[(2, 4)]["text"]
    assert not torch.equal(a[(2, 4)]["image"], a[(3, 4)]["image"])
    a.set_epoch(2)
    assert torch.equal(a[4]["image"], b[(2, 4)]["image"])
    assert not torch.equal(dataset(2)[(2, 4)]["image"], a[4]["image"])


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


def test_build_data_loaders_onthefly_has_fixed_validation_splits():
    cfg = DataConfig(kind="onthefly", use_system_fonts=False, train_size=8, val_size=4, hard_val_size=2,
                     batch_size=4)
    with pytest.warns(UserWarning, match="val_unseen_fonts"):
        train, val, extra = build_data_loaders(cfg, seed=1)
    assert len(train.dataset) == 8 and list(extra) == ["val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"]
    first, second = next(iter(val)), next(iter(val))
    assert first["texts"] == second["texts"]


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


def test_generated_kind_with_a_missing_dir_says_how_to_generate(tmp_path):
    with pytest.raises(DataError, match="runner.generate data.dir="):
        build_data_loaders(DataConfig(dir=str(tmp_path / "nothing")), seed=1)


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


def test_crop_to_content_cuts_to_the_widest_ink_rounded_up_to_four():
    def batch(*ink_columns):
        images = torch.zeros(len(ink_columns), 1, 32, 128)
        for row, columns in enumerate(ink_columns):
            images[row, ..., :columns] = 0.5
        return images

    assert crop_to_content(batch(10, 45)).shape[-1] == 48
    assert crop_to_content(batch(5)).shape[-1] == 32  # never below the encoder's minimum
    assert crop_to_content(batch(0)).shape[-1] == 32  # a blank image
    assert crop_to_content(batch(128)).shape[-1] == 128
    images = batch(10, 45)
    assert torch.equal(crop_to_content(images), images[..., :48])


def test_bucketed_loader_crops_batches_and_header_widths_match_the_pixels(tiny_dataset):
    dataset = KhmerDigitsDataset(tiny_dataset, "train")
    widths = dataset.widths()
    for index in range(len(dataset)):
        ink = dataset[index]["image"].amax(dim=(0, 1)) > 0
        assert int(ink.nonzero()[-1]) + 1 <= widths[index]  # the text lies inside the header width
    loader = make_loader(dataset, batch_size=4, shuffle=False, bucketing=True)
    shapes = [batch["images"].shape[-1] for batch in loader]
    assert shapes == sorted(shapes) and shapes[0] < 128  # sorted by width, the narrow ones cropped
    texts = [text for batch in loader for text in batch["texts"]]
    assert sorted(texts) == sorted(dataset.texts)


def test_fill_cache_in_worker_processes_matches_one_process(tiny_dataset):
    one, two = KhmerDigitsDataset(tiny_dataset, "train"), KhmerDigitsDataset(tiny_dataset, "train")
    one.fill_cache(workers=1)
    two.fill_cache(workers=2, chunk=5)
    assert one.cached.all() and two.cached.all() and np.array_equal(one.cache, two.cache)


def test_fill_cache_names_a_corrupt_image_from_a_worker(tiny_dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dataset.parent, copy)
    (copy / "train" / "000007.png").write_bytes(b"not a png")
    dataset = KhmerDigitsDataset(copy, "train")
    with pytest.raises(DataError, match="000007.png cannot be decoded"):
        dataset.fill_cache(workers=2, chunk=4)
