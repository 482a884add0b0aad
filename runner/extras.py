"""Which pip extra each part of the runner needs, and the one message a base install gets without it.

`pip install khmer-digits-ocr` installs what reading with an ONNX model needs (numpy, Pillow, onnxruntime:
`from runner import Reader`); the command-line jobs (train, evaluate, predict, export, generate, samples,
release, summarize) compose their configs with Hydra and run PyTorch, which the `train` extra brings.
pyproject.toml lists the same split; tests/test_packaging.py keeps the two in step.
"""

from __future__ import annotations

import importlib.util
import sys

from runner.errors import format_user_error

# import name -> the distribution pyproject.toml's `train` extra names for it
TRAIN_MODULES: dict[str, str] = {
    "torch": "torch", "hydra": "hydra-core", "omegaconf": "omegaconf", "yaml": "pyyaml", "fontTools": "fonttools",
    "fontpkg_noto_sans_khmer": "fontpkg-noto-sans-khmer", "rapidfuzz": "rapidfuzz", "tqdm": "tqdm",
    "tensorboard": "tensorboard", "matplotlib": "matplotlib",
}


def missing_modules(modules: dict[str, str]) -> list[str]:
    """The distributions of `modules` that are not importable (found without importing them)."""
    return [distribution for module, distribution in modules.items() if importlib.util.find_spec(module) is None]


def require_train_extra(command: str) -> None:
    """Exit with one paragraph (status 2) if `command` cannot run because the `train` extra is missing."""
    missing = missing_modules(TRAIN_MODULES)
    if missing:
        message = (f"{command} needs the `train` extra, and {', '.join(missing)} "
                   f"{'is' if len(missing) == 1 else 'are'} not installed. Install it with "
                   f"`pip install torch==2.13.0` (the CPU wheel; on a GPU the CUDA build of the same release) and then "
                   f"`pip install 'khmer-digits-ocr[train]'` (from a checkout: `pip install '.[train]'`). Reading "
                   f"images needs only the base install: `from runner import Reader`.")
        print(format_user_error(message, "missing dependency"), file=sys.stderr)
        raise SystemExit(2)
