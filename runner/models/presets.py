"""Model presets: conf/model/<name>.yaml resolved into a model, outside a Hydra run."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.charset import Charset
from runner.errors import ConfigError
from runner.models.config import DEFAULT_DATA, SCHEMAS
from runner.models.encoder import OCRModel
from runner.models.registry import model_from_config
from runner.schema import CONF_DIR

MODEL_CONF_DIR = CONF_DIR / "model"


def available_presets() -> list[str]:
    return sorted(path.stem for path in MODEL_CONF_DIR.glob("*.yaml"))


def preset_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The resolved kwargs (with `_target_`) of conf/model/<name>.yaml plus `overrides`.

    `${data.*}` interpolations resolve against DEFAULT_DATA (32x128 images, max_length 8),
    since outside a Hydra run there is no `data` node.
    """
    path = MODEL_CONF_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown model preset {name!r}: there is no {path}; "
                          f"available presets: {', '.join(available_presets())}.")
    preset = OmegaConf.load(path)
    schema_names = [entry for entry in preset.pop("defaults", []) if isinstance(entry, str) and entry in SCHEMAS]
    if len(schema_names) != 1:
        raise ConfigError(f"{path}: its defaults list must name exactly one schema of {sorted(SCHEMAS)}, "
                          f"e.g. `defaults: [_attention_schema, _self_]`.")
    try:
        model = OmegaConf.merge(OmegaConf.structured(SCHEMAS[schema_names[0]]), preset)
        for key, value in overrides.items():
            if key not in model:
                raise ConfigError(f"create_model({name!r}): unknown option {key!r}; "
                                  f"options are {', '.join(sorted(model.keys()))}.")
            model[key] = value
        root = OmegaConf.merge({"data": DEFAULT_DATA}, {"model": model})
        return OmegaConf.to_container(root.model, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        raise ConfigError(f"model preset {name!r} ({path}) with overrides {overrides}: {error}") from error


def create_model(name: str, charset: Charset | str | None = None, **overrides: Any) -> OCRModel:
    """Build preset `name` (conf/model/<name>.yaml) for `charset` (a Charset or its name; default digits) with
    keyword `overrides` of its options."""
    return model_from_config(preset_config(name, **overrides), f"model preset {name!r}", charset)
