"""Files a command writes for the user: complete or not at all, and never over data by accident.

Every output goes to a temporary file in its target's folder and is renamed into place only once it
is complete, so a crash, a bad input or a full disk leaves the previous file (if any) untouched. An
existing file is replaced only with `overwrite=true`, and never when it is one of the run's inputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from runner.errors import ConfigError, UserError
from runner.schema import help_field


@dataclass
class PathsConfig:
    """Schema of conf/paths: where a training run writes."""

    output_root: str = help_field("Where run dirs go; KHMER_OCR_OUTPUTS overrides.",
                                  "${oc.env:KHMER_OCR_OUTPUTS,outputs}")


def register_paths_configs(cs: Any) -> None:
    """Store the schema conf/paths/*.yaml extend."""
    cs.store(group="paths", name="_paths_schema", node=PathsConfig)


class DiskFull(UserError):
    """The disk filled up while a file was written; the previous version of the file is intact."""


def check_output(path: Path, key: str, *, overwrite: bool, inputs: Sequence[Path] = (),
                 sources: Sequence[Path] = ()) -> Path:
    """Refuse, before any work starts, an output that is a folder, one of `sources` (never written over),
    one of `inputs` or an existing file (both only with `overwrite`)."""
    if path.is_dir():
        raise ConfigError(f"{key}={path} is a folder; name a file inside it instead ({key}={path}/<file name>).")
    if path.exists() or path.is_symlink():
        for source in sources:
            if _same_file(path, source):
                raise ConfigError(f"{key}={path} is the file this command reads ({source}); it is never written over. "
                                  f"Choose another {key}=... .")
        for read in inputs:
            if _same_file(path, read) and not overwrite:
                raise ConfigError(f"{key}={path} is also one of the inputs of this run; nothing was written. Choose "
                                  f"another {key}=... (or pass overwrite=true to replace that input).")
        if not overwrite:
            raise ConfigError(f"{key}={path} already exists; nothing was written. Choose another {key}=... or pass "
                              f"overwrite=true to replace it.")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds, fsync it and rename it over `path`.

    On any failure the temporary file is removed and `path` is as it was. A full disk becomes DiskFull.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the output gets the usual mode
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"no space left on the device while writing {path}; nothing was replaced (an earlier "
                           f"{path.name}, if any, is intact). Free space in {path.parent} (see `df -h "
                           f"{path.parent}`) and run the command again; a training run continues from its last "
                           f"checkpoint with resume=auto.") from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """`path.write_text(text)`, complete or not at all."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
