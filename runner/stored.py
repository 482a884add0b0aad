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
