"""Datasets of labelled image files (runner/data/datasets.py): generated splits, labelled folders, the memory cache."""

import shutil

import numpy as np
import pytest
import torch
import yaml

from runner.data import datasets as datasets_module
from runner.data.datasets import KhmerDigitsDataset, LabeledFolderDataset
from data.helpers import GOOD, make_folder
from runner.errors import DataError


def test_in_memory_cache_decodes_each_image_once(tiny_dataset, monkeypatch):
    dataset = KhmerDigitsDataset(tiny_dataset, "val")
    first = dataset[0]["image"]
    monkeypatch.setattr(datasets_module, "load_image", lambda path: pytest.fail("decoded twice"))
    assert torch.equal(dataset[0]["image"], first)


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


@pytest.mark.parametrize("label, message", [("១២x", r"characters 'x' \(U\+0078\) not in charset 'digits'"),
                                            ("០១២៣៤៥៦៧៨", "max_length=8")])
def test_bad_metadata_labels_are_named(tiny_dataset, tmp_path, label, message):
    path = broken_copy(tiny_dataset, tmp_path, lambda meta, root: meta["val"][1].update(label=label))
    with pytest.raises(DataError, match=rf"\[val\]\[1\].*{message}"):
        KhmerDigitsDataset(path, "val")


def test_labeled_folder_loads_and_skips_header_comments_and_blank_lines(tmp_path):
    dataset = LabeledFolderDataset(make_folder(tmp_path / "imgs", GOOD))
    assert dataset.texts == ["១២", "៣", "៤៥៦", "៧", "៨៩"]
    assert dataset[0]["image"].shape == (1, 32, 128) and dataset[0]["path"].endswith("a.png")


@pytest.mark.parametrize("line, message", [
    ("b.png\t12", r"labels.tsv:3: label '12' has characters '1' \(U\+0031\), '2' \(U\+0032\) not in charset 'digits'.*"
                  r"Khmer '១២'; use charset=numbers"),
    ("b.png\t១a", r"labels.tsv:3: label '១a' has characters 'a' \(U\+0061\) not in charset 'digits'"),
    ("b.png\t០១២៣៤៥៦៧៨", r"labels.tsv:3: .*max_length=8"),
    ("b.png", r"labels.tsv:3: expected `file<TAB>text`"),
    ("missing.png\t១", r"labels.tsv:3: image file .*missing.png does not exist"),
])
def test_bad_labels_tsv_lines_are_named_with_their_line(tmp_path, line, message):
    root = make_folder(tmp_path / "imgs", ["file\ttext", "a.png\t១", line])
    with pytest.raises(DataError, match=message):
        LabeledFolderDataset(root)


def test_a_folder_of_numbers_is_read_with_the_numbers_charset_and_refused_with_digits(tmp_path):
    root = make_folder(tmp_path / "imgs", ["a.png\t១២,៥០០៛", "b.png\t$ 12.5%"])
    assert LabeledFolderDataset(root, max_length=20, charset="numbers").texts == ["១២,៥០០៛", "$ 12.5%"]
    with pytest.raises(DataError, match=r"labels.tsv:1: label '១២,៥០០៛' has characters ',' \(U\+002C\), "
                                        r"'៛' \(U\+17DB\) not in charset 'digits'.*use charset=numbers"):
        LabeledFolderDataset(root, max_length=20)


def test_a_label_outside_the_numbers_charset_names_file_line_and_characters(tmp_path):
    root = make_folder(tmp_path / "imgs", ["a.png\t១២", "b.png\t12a€"])
    with pytest.raises(DataError, match=r"labels.tsv:2: label '12a€' has characters 'a' \(U\+0061\), '€' "
                                        r"\(U\+20AC\) not in charset 'numbers'.*fix the label or drop the sample"):
        LabeledFolderDataset(root, charset="numbers")


def test_empty_or_missing_labels_are_errors(tmp_path):
    with pytest.raises(DataError, match="lists no images"):
        LabeledFolderDataset(make_folder(tmp_path / "empty", ["file\ttext"]))
    with pytest.raises(DataError, match="other.tsv does not exist"):
        LabeledFolderDataset(tmp_path / "empty", labels_file="other.tsv")
    with pytest.raises(DataError, match="data folder .* does not exist"):
        LabeledFolderDataset(tmp_path / "nowhere")


def last_ink_column(image: torch.Tensor) -> int:
    """1 + the last column of a [1, H, W] image holding ink (0 for a blank image)."""
    columns = (image.amax(dim=(0, 1)) > 0).nonzero()
    return int(columns[-1]) + 1 if len(columns) else 0


def test_widths_are_the_ink_of_the_cached_pixels_or_the_header_estimate(tiny_dataset):
    cached = KhmerDigitsDataset(tiny_dataset, "train")
    ink = [last_ink_column(cached[index]["image"]) for index in range(len(cached))]
    assert cached.widths().tolist() == [max(1, width) for width in ink]  # measured: exactly the last ink column
    assert cached.widths().dtype == np.int64 and min(ink) < 128  # some images are narrower than the model input
    header = KhmerDigitsDataset(tiny_dataset, "train", cache_in_memory=False).widths()
    assert all(width <= estimate <= 128 for width, estimate in zip(ink, header))  # the text lies inside the estimate


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
