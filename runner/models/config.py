"""Typed schemas for `conf/model/*.yaml`, registered in Hydra's ConfigStore.

Each preset yaml starts with `defaults: [_attention_schema, _self_]` (or `_ctc_schema`), so a
typo in a key or a string where an int belongs fails at compose time with the key's name.
The yaml presets interpolate `${data.max_length}`, `${data.image_height}` and
`${data.image_width}`: the model is built for the images the data pipeline produces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from runner.schema import help_field

# What `${data.*}` resolves to when a preset is built outside Hydra (create_model, tests,
# notebooks). Matches the data pipeline's defaults: 32x128 images, labels of 1..8 characters.
DEFAULT_DATA: dict[str, int] = {"max_length": 8, "image_height": 32, "image_width": 128}
# The longest label any model or dataset may have: ample for numbers (charset=numbers labels run up to 20
# characters), small enough that rendering, CTC widths and decoder steps stay bounded. A ctc_* model needs
# image_width >= 4*(2*max_length+1) (CRNN checks it at validation); attention models have no such bound.
MAX_LABEL_LENGTH = 32


@dataclass
class _SharedModelConfig:
    name: str = help_field("Preset name, stored in checkpoints and run names.", "small")
    max_length: int = help_field("Longest label in characters; the decoder runs max_length+1 steps.", 8)
    image_height: int = help_field("Input image height in pixels (interpolates data.image_height).", 32)
    image_width: int = help_field("Design input width in pixels, a multiple of 4 >= 32 (interpolates "
                                  "data.image_width).", 128)
    channels: list[int] = help_field("Output channels of the 4 CNN stages (strides 2x2, 2x2, 2x1, 2x1: 32x128 -> "
                                     "2x32 features).", factory=lambda: [32, 64, 128, 128])
    blocks: list[int] = help_field("3x3 conv blocks per CNN stage; blocks after the first in a stage are residual.",
                                   factory=lambda: [1, 1, 1, 1])
    hidden_size: int = help_field("Feature size of the column sequence and of the BiLSTM output (even).", 128)
    rnn_layers: int = help_field("BiLSTM layers over the column sequence (>= 1).", 1)
    dropout: float = help_field("Dropout on the column features and before the classifier.", 0.1)

    def problems(self) -> list[str]:
        """What is out of range, one `key must ..., got value` each. The upper bounds are far above any
        preset: they stop a stored file from asking for a model that fills the memory."""
        found = []

        def check(ok: bool, key: str, requirement: str) -> None:
            if not ok:
                found.append(f"{key} must be {requirement}, got {getattr(self, key)!r}")

        check(bool(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.name)), "name",
              "1-64 letters, digits, '_', '.' or '-'")
        check(1 <= self.max_length <= MAX_LABEL_LENGTH, "max_length", f"in 1..{MAX_LABEL_LENGTH}")
        check(16 <= self.image_height <= 256, "image_height", "in 16..256")
        check(32 <= self.image_width <= 4096 and self.image_width % 4 == 0, "image_width",
              "a multiple of 4 in 32..4096")
        check(len(self.channels) == 4 and all(1 <= c <= 1024 for c in self.channels), "channels",
              "4 values in 1..1024")
        check(len(self.blocks) == 4 and all(1 <= b <= 16 for b in self.blocks), "blocks", "4 values in 1..16")
        check(2 <= self.hidden_size <= 4096 and self.hidden_size % 2 == 0, "hidden_size", "an even number in 2..4096")
        check(1 <= self.rnn_layers <= 8, "rnn_layers", "in 1..8")
        check(0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)")
        for key in ("embedding_dim", "decoder_hidden"):
            if hasattr(self, key):
                check(1 <= getattr(self, key) <= 4096, key, "in 1..4096")
        return found


@dataclass
class AttentionModelConfig(_SharedModelConfig):
    _target_: str = help_field("Model class: a training config's is instantiated by Hydra; a stored one is only "
                               "looked up in runner.models.registry.MODEL_CLASSES.",
                               "runner.models.attention.AttentionOCR")
    embedding_dim: int = help_field("Size of the previous-token embedding fed to the decoder.", 32)
    decoder_hidden: int = help_field("LSTM cell size of the attention decoder.", 128)


@dataclass
class CTCModelConfig(_SharedModelConfig):
    _target_: str = help_field("Model class: a training config's is instantiated by Hydra; a stored one is only "
                               "looked up in runner.models.registry.MODEL_CLASSES.", "runner.models.ctc.CRNN")
    name: str = help_field("Preset name, stored in checkpoints and run names.", "ctc_small")


SCHEMAS: dict[str, type] = {"_attention_schema": AttentionModelConfig, "_ctc_schema": CTCModelConfig}


def register_model_configs(cs: ConfigStore) -> None:
    """Store the model schemas as group `model`, names `_attention_schema` and `_ctc_schema`."""
    for name, node in SCHEMAS.items():
        cs.store(group="model", name=name, node=node)
