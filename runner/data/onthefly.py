"""Samples rendered afresh every epoch (data.kind=onthefly), the same as a generated dataset's before PNG encoding."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

from torch.utils.data import Dataset

from runner.data.config import AugmentConfig
from runner.data.datasets import Sample
from runner.data.fonts import FontSpec
from runner.data.formats import DEFAULT_MIX
from runner.data.generate import SplitPlan
from runner.data.preprocess import preprocess_image_uint8, uint8_to_tensor
from runner.data.render import render_sample, sample_key
from runner.errors import DataError


class OnTheFlyDataset(Dataset):
    """Freshly rendered samples: sample i of epoch e is a function of (seed, split, i, e).

    Texts are drawn from the `formats` mix (default: digits only), an `ascii_digits` share in ASCII digits.
    With `vary_by_epoch=False` the samples are fixed (a validation set) and identical to those a
    generated dataset with the same seed would contain, before PNG encoding.
    Index with an int (uses `self.epoch`) or with an (epoch, index) pair, which is what
    `EpochSampler` yields so persistent DataLoader workers follow `set_epoch` too.
    """

    def __init__(self, fonts: Sequence[FontSpec], augment: AugmentConfig, size: int, seed: int,
                 split: str = "train", min_length: int = 1, max_length: int = 8, image_height: int = 32,
                 image_width: int = 128, vary_by_epoch: bool = True, hard_augment: Optional[AugmentConfig] = None,
                 hard_fraction: float = 0.0, text_crop: bool = False,
                 formats: Optional[Mapping[str, float]] = None, ascii_digits: float = 0.0):
        if size <= 0:
            raise DataError(f"on-the-fly split {split!r} has size {size}; set its size > 0.")
        self.fonts, self.augment, self.size, self.seed, self.split = list(fonts), augment, size, seed, split
        self.plan = SplitPlan(split, size, self.fonts, augment, hard_augment, hard_fraction)
        self.min_length, self.max_length = min_length, max_length
        self.formats, self.ascii_digits = dict(formats or DEFAULT_MIX), ascii_digits
        self.image_height, self.image_width, self.text_crop = image_height, image_width, text_crop
        self.vary_by_epoch = vary_by_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def render(self, index: Union[int, tuple[int, int]]):
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        key = sample_key(self.seed, self.split, index, epoch if self.vary_by_epoch else None)
        return render_sample(key, self.fonts, self.plan.augment_for(index), self.min_length, self.max_length,
                             self.formats, self.ascii_digits)

    def __getitem__(self, index: Union[int, tuple[int, int]]) -> Sample:
        image, spec = self.render(index)
        pixels = preprocess_image_uint8(image, self.image_height, self.image_width, self.text_crop)
        return {"image": uint8_to_tensor(pixels), "text": spec.text, "path": ""}
