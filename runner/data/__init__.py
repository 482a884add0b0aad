"""Data: fonts, rendering, augmentation, preprocessing, datasets and loaders.

The trainer needs only `build_data_loaders`; evaluation and prediction use `preprocess_image`
and `load_image` so every caller feeds the model the same way.
"""

from runner.data.config import AugmentConfig, DataConfig, as_data_config, augment_preset, register_data_configs
from runner.data.datasets import KhmerDigitsDataset, LabeledFolderDataset, read_labels_tsv
from runner.data.fonts import FontSpec, discover_fonts
from runner.data.generate import ensure_generated_dataset, generate_dataset
from runner.data.loaders import build_data_loaders, collate_batch, create_data_loaders, make_loader, set_loader_epoch
from runner.data.onthefly import OnTheFlyDataset
from runner.data.preprocess import load_image, preprocess_image, preprocess_image_uint8, uint8_to_tensor

__all__ = [
    "AugmentConfig", "DataConfig", "FontSpec", "KhmerDigitsDataset", "LabeledFolderDataset", "OnTheFlyDataset",
    "as_data_config", "augment_preset", "build_data_loaders", "collate_batch", "create_data_loaders",
    "discover_fonts", "ensure_generated_dataset", "generate_dataset", "load_image", "make_loader",
    "preprocess_image", "preprocess_image_uint8", "read_labels_tsv", "register_data_configs",
    "set_loader_epoch", "uint8_to_tensor",
]
