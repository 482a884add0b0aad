"""What every typed config shares: where conf/ and the shipped models are, and field help text.

Choice fields are typed with a `StrEnum` whose member names are its values (as fairseq's
ChoiceEnum): OmegaConf refuses any other value when the config is composed, listing the allowed
ones, and the members compare equal to their strings.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any, Optional

MISSING: Any = "???"  # OmegaConf's marker of a required value (omegaconf.MISSING), spelled here so that the
# torch-free reading path (runner.reader) can import this module without OmegaConf
_PACKAGE_DIR = Path(__file__).resolve().parent


def conf_dir() -> Path:
    """The conf/ folder the entry points compose from: a checkout's top-level conf/ beside runner/, else the
    copy an installed wheel carries inside the package (runner/conf/)."""
    checkout = _PACKAGE_DIR.parent / "conf"
    return checkout if (checkout / "train.yaml").is_file() else _PACKAGE_DIR / "conf"


CONF_DIR = conf_dir()
# One shipped model per charset, made by `make release-model` (runner/release.py); digits is the default.
SHIPPED_MODELS = {"digits": _PACKAGE_DIR / "shipped" / "default.onnx",
                  "numbers": _PACKAGE_DIR / "shipped" / "numbers.onnx"}
SHIPPED_MODEL = SHIPPED_MODELS["digits"]


def model_path(model: Optional[str | Path]) -> Path:
    """What a `checkpoint=`/`Reader(model)` argument names: None is the shipped digits model, a shipped model's
    charset name (`numbers`) that is not also a file here is that shipped model, anything else a path."""
    if model is None or model == "":
        return SHIPPED_MODEL
    if str(model) in SHIPPED_MODELS and not Path(model).exists():
        return SHIPPED_MODELS[str(model)]
    return Path(model).expanduser()


def help_field(text: str, default: Any = MISSING, factory: Any = None) -> Any:
    """A dataclass field with `text` as its help; a list, dict or dataclass default goes in `factory`.

    The help lives in the field's metadata, next to the default, so a schema documents itself:
    `dataclasses.fields(DataConfig)` lists every key with its meaning. Without a default the field
    is required: OmegaConf's `???`, which Hydra reports by key when the user leaves it out.
    """
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})

