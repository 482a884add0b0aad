"""What every typed config shares: where conf/ and the shipped model are, and field help text.

Choice fields are typed with a `StrEnum` whose member names are its values (as fairseq's
ChoiceEnum): OmegaConf refuses any other value when the config is composed, listing the allowed
ones, and the members compare equal to their strings.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any

from omegaconf import MISSING

_PACKAGE_DIR = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The conf/ folder the entry points compose from: a checkout's top-level conf/ beside runner/, else the
    copy an installed wheel carries inside the package (runner/conf/)."""
    checkout = _PACKAGE_DIR.parent / "conf"
    return checkout if (checkout / "train.yaml").is_file() else _PACKAGE_DIR / "conf"


CONF_DIR = conf_dir()
SHIPPED_MODEL = _PACKAGE_DIR / "shipped" / "default.onnx"  # made by `make release-model` (runner/release.py)


def help_field(text: str, default: Any = MISSING, factory: Any = None) -> Any:
    """A dataclass field with `text` as its help; a list, dict or dataclass default goes in `factory`.

    The help lives in the field's metadata, next to the default, so a schema documents itself:
    `dataclasses.fields(DataConfig)` lists every key with its meaning. Without a default the field
    is required: OmegaConf's `???`, which Hydra reports by key when the user leaves it out.
    """
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})

