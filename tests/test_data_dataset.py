import shutil

import pytest
import torch
import yaml
from PIL import Image

from runner.charset import EOS, PAD, SOS, encode
from runner.data import dataset as dataset_module
from runner.data.config import DataConfig, augment_preset
from runner.data.dataset import (KhmerDigitsDataset, LabeledFolderDataset, OnTheFlyDataset, build_data_loaders,
                                 collate_batch, create_data_loaders, make_loader, set_loader_epoch)
from runner.data.fonts import discover_fonts
from runner.errors import DataError

FONTS = discover_fonts(use_system_fonts=False)


def test_batch_contract_for_attention_and_ctc_targets(tiny_dataset):
    train, val = create_data_loaders(tiny_dataset, batch_size=5, num_workers=0, seed=1)
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
    assert len(train.dataset) == 8 and list(extra) == ["val_hard"]
    first, second = next(iter(val)), next(iter(val))
    assert first["texts"] == second["texts"]


def test_build_data_loaders_generates_and_reuses_the_cache(tmp_path):
    cfg = DataConfig(cache_dir=str(tmp_path), use_system_fonts=False, train_size=8, val_size=4, hard_val_size=2,
                     generate_workers=1, batch_size=4, held_out_fonts=[])
    train, val, extra = build_data_loaders(cfg, seed=2)
    assert (len(train.dataset), len(val.dataset), list(extra)) == (8, 4, ["val_hard"])
    assert next(iter(extra["val_hard"]))["images"].shape == (2, 1, 32, 128)
    (cache,) = tmp_path.iterdir()
    mtime = (cache / "metadata.yaml").stat().st_mtime_ns
    build_data_loaders(cfg, seed=2)
    assert (cache / "metadata.yaml").stat().st_mtime_ns == mtime


def test_generated_kind_with_a_missing_dir_says_how_to_generate(tmp_path):
    with pytest.raises(DataError, match="runner.generate data.dir="):
        build_data_loaders(DataConfig(dir=str(tmp_path / "nothing")), seed=1)
