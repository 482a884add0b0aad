"""Tesseract 5 with its Khmer model, the incumbent reader: the baseline benchmarks and the model card compare with."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from runner.charset import DEFAULT_CHARSET, Charset, to_khmer


def tesseract_command(executable: str = "tesseract") -> Optional[str]:
    """Path of a Tesseract with Khmer language data, or None (with the reason on stderr)."""
    path = shutil.which(executable)
    if path is None:
        return None
    languages = subprocess.run([path, "--list-langs"], capture_output=True, text=True).stdout.split()
    if "khm" not in languages:
        print("tesseract has no 'khm' language data (apt-get install tesseract-ocr-khm); skipping it",
              file=sys.stderr)
        return None
    return path


def tesseract_read(path: str, files: Sequence[Path], charset: Charset = DEFAULT_CHARSET) -> list[str]:
    """The characters of `charset` Tesseract 5 (`-l khm --psm 7`, one text line) reads in each file, in one process.

    Where the charset has no Arabic digits (digits), they count as the same Khmer digit; everything else
    outside the charset is dropped.
    """
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "images.txt"
        listing.write_text("\n".join(str(f) for f in files) + "\n")
        output = subprocess.run([path, str(listing), "stdout", "-l", "khm", "--psm", "7"], capture_output=True,
                                text=True, check=True).stdout
    pages = output.split("\f")[:len(files)]  # one page per image, separated by form feeds
    pages += [""] * (len(files) - len(pages))
    convert = to_khmer if "0" not in charset.char_to_index else str
    return ["".join(c for c in convert(page) if c in charset.char_to_index) for page in pages]
