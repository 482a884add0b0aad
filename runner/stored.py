"""Values read back from files this project stores (checkpoints, sidecars, metadata): plain data only.

A stored value may hold None, booleans, numbers, strings, lists and string-keyed dicts, nothing
else: no Hydra instantiation keys (`_target_`, `_partial_`, `_args_`, ...), which would turn data
into a recipe, and no `${...}` interpolations, which would be resolved against this machine.
"""

from __future__ import annotations

import math
import re
from typing import Any

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


# --------------------------------------------------------------------------- format versions
FORMAT_VERSION = 3  # of checkpoints and export sidecars; a new version adds its step to UPGRADES


def _to_v1(stored: dict[str, Any]) -> None:
    """v0 (unversioned checkpoints): no charset meant the ten Khmer digits; no crop flags meant none."""
    from runner.charset import charset_signature

    if "charset" not in stored:
        stored["charset"] = charset_signature()
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
    from runner.errors import CheckpointError

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
