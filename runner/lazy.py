"""Lazy re-exports (PEP 562): a package names what its submodules define without importing them up front.

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"preprocess": ("load_image",), ...})

so `import runner` or `import runner.data.preprocess` stays free of torch, while
`from runner.data import build_data_loaders` still works (and imports torch then).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, homes: dict[str, tuple[str, ...]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """(`__getattr__`, `__dir__`, `__all__`) of `package`, whose names live in the submodules `homes` lists
    (submodule -> the names it defines); a name is imported on first use and then kept in the package."""
    module_of = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(module_of))

    return __getattr__, __dir__, sorted(module_of)
