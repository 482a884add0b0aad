"""The datasets of a run's splits for each data.kind (runner/data/splits.py)."""

import pytest

from runner.data.config import DataConfig
from runner.data.datasets import LabeledFolderDataset
from runner.data.splits import build_datasets, generated_datasets
from runner.errors import DataError
from data.helpers import GOOD, make_folder


def test_folder_kind_splits_val_by_seeded_fraction_or_val_dir(tmp_path):
    root = make_folder(tmp_path / "imgs", GOOD)
    cfg = DataConfig(kind="folder", dir=str(root), val_fraction=0.4, batch_size=2)
    datasets = build_datasets(cfg, seed=1)
    assert list(datasets) == ["train", "val"]
    train_texts, val_texts = datasets["train"].texts, datasets["val"].texts
    assert len(val_texts) == 2 and sorted(train_texts + val_texts) == sorted(LabeledFolderDataset(root).texts)
    assert build_datasets(cfg, seed=1)["val"].texts == val_texts
    val_root = make_folder(tmp_path / "val", ["a.png\t០"], images=("a.png",))
    assert build_datasets(DataConfig(kind="folder", dir=str(root), val_dir=str(val_root)), seed=1)["val"].texts == ["០"]


def test_folder_kind_refuses_a_fraction_that_leaves_a_split_empty(tmp_path):
    root = make_folder(tmp_path / "imgs", ["a.png\t១"], images=("a.png",))
    with pytest.raises(DataError, match="leaves 0 for training and 1 for validation"):
        build_datasets(DataConfig(kind="folder", dir=str(root)), seed=1)


def test_generated_kind_opens_every_split_or_the_ones_asked_for(tiny_dataset):
    everything = build_datasets(DataConfig(dir=str(tiny_dataset.parent)), seed=1)
    assert list(everything) == ["train", "val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"]
    assert list(generated_datasets(tiny_dataset, ("train", "val"))) == ["train", "val"]
    assert len(everything["train"]) == 24


def test_generated_kind_with_a_missing_dir_says_how_to_generate(tmp_path):
    with pytest.raises(DataError, match="runner.generate data.dir=") as error:
        build_datasets(DataConfig(dir=str(tmp_path / "nothing")), seed=1)
    assert "dataset cache" not in str(error.value)  # the user's own folder is not a cache to delete
    with pytest.raises(DataError, match="is this run's dataset cache: delete that folder"):
        generated_datasets(tmp_path / "nothing" / "metadata.yaml", run_cache=True)
