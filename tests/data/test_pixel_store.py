"""Pixels preprocessed by the render workers (runner/data/pixel_store.py) equal what decoding gives."""

import json
import shutil

import numpy as np
import pytest

from runner.data import pixel_store
from runner.data.datasets import KhmerDigitsDataset

SPLITS = ["train", "val", "val_hard"]


def decoded(dataset: KhmerDigitsDataset) -> np.ndarray:
    return np.stack([dataset._preprocess(index) for index in range(len(dataset))])


@pytest.mark.parametrize("split", SPLITS)
def test_stored_pixels_are_what_decoding_the_png_gives(tiny_dataset, split, caplog):
    dataset = KhmerDigitsDataset(tiny_dataset, split, text_crop=True)
    caplog.set_level("INFO", logger="runner.data")
    dataset.fill_cache()
    assert "loaded" in caplog.text and "preprocessed images" in caplog.text
    np.testing.assert_array_equal(dataset.cache, decoded(dataset))


def copy_of(tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset.parent, root)
    return root / tiny_dataset.name


def test_other_preprocessing_or_an_edited_image_list_decodes_instead(tiny_dataset, tmp_path, caplog):
    # the tiny dataset was generated with the default preprocessing; another width has no stored array
    assert KhmerDigitsDataset(tiny_dataset, "val", image_width=96, text_crop=True)._stored_pixels() is None
    metadata = copy_of(tiny_dataset, tmp_path)
    lines = metadata.read_text(encoding="utf-8").splitlines()
    first, second = [i for i, line in enumerate(lines) if line.startswith('- {"image": "val/')][:2]
    lines[first], lines[second] = lines[second], lines[first]  # two samples swapped: the order no longer matches
    metadata.write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = KhmerDigitsDataset(metadata, "val", text_crop=True)
    dataset.fill_cache()
    assert "made for other images or settings" in caplog.text
    np.testing.assert_array_equal(dataset.cache, decoded(dataset))


def test_a_damaged_or_foreign_array_is_ignored_never_trusted(tiny_dataset, tmp_path, caplog):
    metadata = copy_of(tiny_dataset, tmp_path)
    dataset = KhmerDigitsDataset(metadata, "val", text_crop=True)
    path = pixel_store.pixels_path(metadata.parent, "val", 32, 128, True)
    np.save(path, np.zeros((3, 32, 128), dtype=np.float32))  # wrong dtype and count, note unchanged
    assert dataset._stored_pixels() is None
    path.write_bytes(b"\x93NUMPY not really")
    assert dataset._stored_pixels() is None
    assert "ignoring the stored pixels" in caplog.text
    np.save(path, np.array([{"_target_": "os.system"}], dtype=object), allow_pickle=True)
    assert dataset._stored_pixels() is None  # an object array is refused (allow_pickle=False), nothing runs
    note = json.loads(path.with_suffix(".json").read_text())
    assert note["count"] == len(dataset)
