"""The one helper every typed config uses to give its fields help text.

The help lives in the field's metadata, next to the default, so a schema documents itself:
`dataclasses.fields(DataConfig)` lists every key with its meaning (the README tables and error
messages are written from the same text).
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from omegaconf import MISSING


def help_field(text: str, default: Any = MISSING, factory: Any = None) -> Any:
    """A dataclass field with `text` as its help; a list, dict or dataclass default goes in `factory`.

    Without a default the field is required: OmegaConf's `???`, which Hydra reports by key when the
    user leaves it out (and which, unlike a dataclass field without default, may follow defaults).
    """
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})
