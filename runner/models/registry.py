"""The model classes a config may name, and the one way to build a model from stored options.

A checkpoint, an export sidecar or a preset names its class by the `_target_` string that
`OCRModel.config_dict` writes; that string is looked up in MODEL_CLASSES, never imported, and
every option is checked against the class's typed config (types, unknown keys, ranges) before
anything is built. A stored config is data, never a recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.charset import Charset
from runner.errors import ConfigError
from runner.models.attention import AttentionOCR
from runner.models.config import AttentionModelConfig, CTCModelConfig
from runner.models.ctc import CRNN
from runner.models.encoder import OCRModel
from runner.stored import NotPlainData, plain_model_options

# keyed like runner.stored.MODEL_HEADS, which checks a stored name without importing torch
MODEL_CLASSES: dict[str, tuple[type[OCRModel], type]] = {
    "runner.models.attention.AttentionOCR": (AttentionOCR, AttentionModelConfig),
    "runner.models.ctc.CRNN": (CRNN, CTCModelConfig),
}


def checked_model_options(config: dict[str, Any] | DictConfig, where: str = "model"
                          ) -> tuple[type[OCRModel], dict[str, Any]]:
    """(model class, constructor options) of `config`; ConfigError naming `where` unless every check passes."""
    if isinstance(config, DictConfig):  # a composed run config: resolve its ${data.*} first
        config = OmegaConf.to_container(config, resolve=True)
    try:
        name, options = plain_model_options(config, where)
    except NotPlainData as error:
        raise ConfigError(f"{error}.") from error
    model_class, schema = MODEL_CLASSES[name]
    try:
        typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), options))
    except OmegaConfBaseException as error:
        detail = str(error).splitlines()[0]
        raise ConfigError(f"{where} does not fit {schema.__name__} ({detail}).") from error
    problems = typed.problems()
    if problems:
        raise ConfigError(f"{where} is out of range: {'; '.join(problems)}.")
    values = {field.name: getattr(typed, field.name) for field in dataclasses.fields(typed) if field.name != "_target_"}
    return model_class, values


def model_from_config(config: dict[str, Any] | DictConfig, where: str = "model",
                      charset: Charset | str | None = None) -> OCRModel:
    """Build the model `config` describes (`cfg.model`, a preset or a stored `config_dict()`) after checking it,
    with an output layer for `charset` (default digits; a checkpoint's is stored beside its config)."""
    model_class, options = checked_model_options(config, where)
    return model_class(**options, charset=charset)
