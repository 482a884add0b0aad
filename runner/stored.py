"""Values read back from files this project stores (checkpoints, sidecars, metadata): plain data only.

A stored value may hold None, booleans, numbers, strings, lists and string-keyed dicts, nothing
else: no Hydra instantiation keys (`_target_`, `_partial_`, `_args_`, ...), which would turn data
into a recipe, and no `${...}` interpolations, which would be resolved against this machine.
"""

from __future__ import annotations

import math
import re
from typing import Any

from runner.errors import CheckpointError

# hydra.utils.instantiate acts on these keys wherever they appear in a config
INSTANTIATION_KEY = re.compile(r"^_(target|partial|args|recursive|convert)_$")
MAX_DEPTH = 32


class NotPlainData(ValueError):
    """A stored value that is not plain data; the message names where (`model.config.channels[2]`)."""


def check_plain_data(value: Any, where: str, depth: int = 0) -> None:
    """Raise NotPlainData naming the first offending place under `where`."""
    if depth > MAX_DEPTH:
        raise NotPlainData(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str) and "${" in value:
            raise NotPlainData(f"{where} holds an interpolation {value[:60]!r}, which a stored file may not")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotPlainData(f"{where} is {value}, not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_plain_data(item, f"{where}[{index}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotPlainData(f"{where} has a key {key!r} that is not a string")
            if INSTANTIATION_KEY.match(key):
                raise NotPlainData(f"{where}.{key} names code to run ({str(item)[:80]!r}); a stored file holds "
                                   f"data, never a recipe")
            check_plain_data(item, f"{where}.{key}", depth + 1)
        return
    raise NotPlainData(f"{where} is a {type(value).__name__}, not plain data")


# --------------------------------------------------------------------------- stored models
# The model classes a stored config may name, by their `_target_`, with their head. runner/models/registry.py maps
# each to its class and typed config; this copy lets a reader that builds no model (an ONNX file) check the name
# without importing torch. tests/models/test_registry.py keeps the two in step.
MODEL_HEADS = {"runner.models.attention.AttentionOCR": "attention", "runner.models.ctc.CRNN": "ctc"}


def plain_model_options(config: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(class name, options) of a stored model config: NotPlainData unless its `_target_` is a name of
    MODEL_HEADS and every other option is plain data. The typed check of the options is the registry's."""
    if not isinstance(config, dict):
        raise NotPlainData(f"{where} must be a mapping of model options, got a {type(config).__name__}")
    options = dict(config)
    name = options.pop("_target_", None)
    if not isinstance(name, str) or name not in MODEL_HEADS:
        raise NotPlainData(f"{where}._target_ is {name!r}, which is not a model class of this project (known: "
                           f"{', '.join(MODEL_HEADS)}); a model is only built from that list")
    check_plain_data(options, where)
    return name, options


def check_stored_layout(stored: dict, source: str) -> None:
    """The entries every reader of a checkpoint or export sidecar uses: `model` {name, head, config} and
    `preprocess` {height, width, bucketing, text_crop}, with the types and ranges a model can have (after
    `upgrade` has brought an older file to the current layout)."""
    model, preprocess = stored.get("model"), stored.get("preprocess")
    problems = []
    if not (isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(model.get("config"), dict)
            and model.get("head") in ("attention", "ctc")):
        problems.append("`model` must hold a name, a head (attention or ctc) and a config mapping")
    if not isinstance(preprocess, dict):
        problems.append("`preprocess` must be a mapping")
    else:
        height, width = preprocess.get("height"), preprocess.get("width")
        if not (type(height) is int and 16 <= height <= 256):
            problems.append(f"preprocess.height must be an integer in 16..256, got {height!r}")
        if not (type(width) is int and 32 <= width <= 4096):
            problems.append(f"preprocess.width must be an integer in 32..4096, got {width!r}")
        for key in ("bucketing", "text_crop"):
            if type(preprocess.get(key)) is not bool:
                problems.append(f"preprocess.{key} must be true or false, got {preprocess.get(key)!r}")
    if problems:
        raise CheckpointError(f"{source}: {'; '.join(problems)}. The file was edited or is damaged; use a model "
                              f"written by khmer-digits-ocr that nobody edited.")


def check_unbuilt_model(stored: dict, source: str) -> None:
    """What guards a stored model nothing is built from (an exported ONNX file, read by ONNX Runtime): after
    `check_stored_layout`, its config names a known class of the stored head and is plain data, and the top-level
    `max_length` (what decoding is told) is the config's. A checkpoint is checked by the registry instead, option by
    option, since a model is built from it."""
    model = stored["model"]
    try:
        name, options = plain_model_options(model["config"], "model.config")
    except NotPlainData as error:
        raise CheckpointError(f"{source}: {error}. Use a model written by khmer-digits-ocr (python -m runner, "
                              f"python -m runner.export) that nobody edited.") from error
    if model["head"] != MODEL_HEADS[name]:
        raise CheckpointError(f"{source}: model.head is {model['head']!r} but model.config names a "
                              f"{MODEL_HEADS[name]!r} model; the file was edited or is damaged. Use another copy.")
    stored_length = options.get("max_length")
    if type(stored_length) is not int or stored_length < 1 or stored.get("max_length") != stored_length \
            or type(stored.get("max_length")) is not int:
        raise CheckpointError(f"{source}: max_length is {stored.get('max_length')!r} but model.config says "
                              f"{stored_length!r}; the file was edited or is damaged. Re-export the model.")


# --------------------------------------------------------------------------- format versions
FORMAT_VERSION = 3  # of checkpoints and export sidecars; a new version adds its step to UPGRADES


def _to_v1(stored: dict[str, Any]) -> None:
    """v0 (unversioned checkpoints): no charset meant the ten Khmer digits; no crop flags meant none."""
    from runner.charset import CHARSETS

    if "charset" not in stored:
        stored["charset"] = CHARSETS["digits"].signature()
    preprocess = stored.get("preprocess")
    if isinstance(preprocess, dict):
        preprocess.setdefault("crop", False)
        preprocess.setdefault("text_crop", False)


def _to_v2(stored: dict[str, Any]) -> None:
    """v1 called width bucketing `preprocess.crop`; v2 calls it `preprocess.bucketing`, as data.bucketing does."""
    preprocess = stored.get("preprocess")
    if isinstance(preprocess, dict) and "crop" in preprocess:
        preprocess["bucketing"] = preprocess.pop("crop")


def _to_v3(stored: dict[str, Any]) -> None:
    """v3 stores the confidence calibration fitted at the end of training; older models have none (raw)."""
    stored.setdefault("calibration", None)


UPGRADES = {0: _to_v1, 1: _to_v2, 2: _to_v3}  # version -> the step that brings a file of that version one up


def upgrade(stored: dict[str, Any], source: str, unversioned: int) -> dict[str, Any]:
    """Bring a checkpoint payload or export sidecar to FORMAT_VERSION, one step per version, in place.

    `unversioned` is the version a file without `format_version` has (checkpoints before versioning: 0;
    sidecars: 1). Every reader calls this once, right after loading, and then reads only the current
    layout. A version that is not a number, or newer than this runner reads, is a CheckpointError.
    """
    version = stored.get("format_version", unversioned)
    if type(version) is not int or version < 0:
        raise CheckpointError(f"{source} has format_version {version!r}, not a number; the file was edited or is "
                              f"damaged. Use another checkpoint of the run.")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{source} has format v{version}, newer than this runner reads (v{FORMAT_VERSION}); "
                              f"upgrade khmer-digits-ocr.")
    for step in range(version, FORMAT_VERSION):
        UPGRADES[step](stored)
    stored["format_version"] = FORMAT_VERSION
    return stored
