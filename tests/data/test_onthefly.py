"""Samples rendered afresh every epoch (runner/data/onthefly.py)."""

import pytest
import torch

from runner.data.config import augment_preset
from runner.data.fonts import discover_fonts
from runner.data.onthefly import OnTheFlyDataset
from runner.errors import DataError

FONTS = discover_fonts(use_system_fonts=False)


def test_onthefly_samples_are_a_function_of_seed_epoch_and_index():
    def dataset(seed=1):
        return OnTheFlyDataset(FONTS, augment_preset("light"), size=6, seed=seed)

    a, b = dataset(), dataset()
    assert torch.equal(a[(2, 4)]["image"], b[(2, 4)]["image"]) and a[(2, 4)]["text"] == b[(2, 4)]["text"]
    assert not torch.equal(a[(2, 4)]["image"], a[(3, 4)]["image"])
    a.set_epoch(2)
    assert torch.equal(a[4]["image"], b[(2, 4)]["image"])
    assert not torch.equal(dataset(2)[(2, 4)]["image"], a[4]["image"])


def test_a_fixed_split_ignores_the_epoch_and_an_empty_one_is_refused():
    fixed = OnTheFlyDataset(FONTS, augment_preset("light"), size=3, seed=1, split="val", vary_by_epoch=False)
    assert torch.equal(fixed[(0, 1)]["image"], fixed[(5, 1)]["image"]) and fixed[(5, 1)]["path"] == ""
    with pytest.raises(DataError, match="split 'val' has size 0"):
        OnTheFlyDataset(FONTS, augment_preset("light"), size=0, seed=1, split="val")


def test_onthefly_texts_follow_the_formats_mix():
    dataset = OnTheFlyDataset(FONTS, augment_preset("none"), size=8, seed=1, max_length=12,
                              formats={"digits": 0.0, "time": 1.0})
    for index in range(8):
        text = dataset[index]["text"]
        assert len(text) == 5 and text[2] == ":", text
