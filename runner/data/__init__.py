"""Data: fonts, rendering, augmentation, preprocessing, datasets and loaders.

The trainer needs only `build_data_loaders`; evaluation and prediction use `preprocess_image`
and `load_image` so every caller feeds the model the same way. The names below are imported on
first use (runner.lazy), so `import runner.data.preprocess` (numpy and Pillow) does not import torch.
"""

from runner.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ("AugmentConfig", "DataConfig", "as_data_config", "augment_preset", "register_data_configs"),
    "datasets": ("KhmerDigitsDataset", "LabeledFolderDataset", "read_labels_tsv"),
    "fonts": ("FontSpec", "discover_fonts"),
    "generate": ("ensure_generated_dataset", "generate_dataset"),
    "loaders": ("build_data_loaders", "collate_batch", "create_data_loaders", "make_loader", "set_loader_epoch"),
    "onthefly": ("OnTheFlyDataset",),
    "preprocess": ("load_image", "preprocess_image", "preprocess_image_uint8", "uint8_to_tensor"),
})
