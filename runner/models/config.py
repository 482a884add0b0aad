"""Typed schemas for `conf/model/*.yaml`, registered in Hydra's ConfigStore.

Each preset yaml starts with `defaults: [_attention_schema, _self_]` (or `_ctc_schema`), so a
typo in a key or a string where an int belongs fails at compose time with the key's name.
The yaml presets interpolate `${data.max_length}`, `${data.image_height}` and
`${data.image_width}`: the model is built for the images the data pipeline produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

# What `${data.*}` resolves to when a preset is built outside Hydra (create_model, tests,
# notebooks). Matches the data pipeline's defaults: 32x128 images, labels of 1..8 digits.
DEFAULT_DATA: dict[str, int] = {"max_length": 8, "image_height": 32, "image_width": 128}


def _help(text: str, **kwargs) -> dict:
    return {"metadata": {"help": text}, **kwargs}


@dataclass
class _SharedModelConfig:
    name: str = field(default="small", **_help("Preset name, stored in checkpoints and run names."))
    max_length: int = field(default=8, **_help("Longest label in digits; the decoder runs max_length+1 steps."))
    image_height: int = field(default=32, **_help("Input image height in pixels (interpolates data.image_height)."))
    image_width: int = field(
        default=128, **_help("Design input width in pixels, a multiple of 4 >= 32 (interpolates data.image_width).")
    )
    channels: list[int] = field(
        default_factory=lambda: [32, 64, 128, 128],
        **_help("Output channels of the 4 CNN stages (strides 2x2, 2x2, 2x1, 2x1: 32x128 -> 2x32 features)."),
    )
    blocks: list[int] = field(
        default_factory=lambda: [1, 1, 1, 1],
        **_help("3x3 conv blocks per CNN stage; blocks after the first in a stage are residual."),
    )
    hidden_size: int = field(
        default=128, **_help("Feature size of the column sequence and of the BiLSTM output (even).")
    )
    rnn_layers: int = field(default=1, **_help("BiLSTM layers over the column sequence (>= 1)."))
    dropout: float = field(default=0.1, **_help("Dropout on the column features and before the classifier."))


@dataclass
class AttentionModelConfig(_SharedModelConfig):
    _target_: str = field(
        default="runner.models.attention.AttentionOCR", **_help("Class instantiated by hydra.utils.instantiate.")
    )
    embedding_dim: int = field(default=32, **_help("Size of the previous-token embedding fed to the decoder."))
    decoder_hidden: int = field(default=128, **_help("LSTM cell size of the attention decoder."))


@dataclass
class CTCModelConfig(_SharedModelConfig):
    _target_: str = field(
        default="runner.models.ctc.CRNN", **_help("Class instantiated by hydra.utils.instantiate.")
    )
    name: str = field(default="ctc_small", **_help("Preset name, stored in checkpoints and run names."))
    rnn_layers: int = field(default=2, **_help("BiLSTM layers over the column sequence (>= 1)."))


SCHEMAS: dict[str, type] = {"_attention_schema": AttentionModelConfig, "_ctc_schema": CTCModelConfig}


def register_model_configs(cs: ConfigStore) -> None:
    """Store the model schemas as group `model`, names `_attention_schema` and `_ctc_schema`."""
    for name, node in SCHEMAS.items():
        cs.store(group="model", name=name, node=node)
