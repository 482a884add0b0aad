"""Models and image files shared by the tests of runner/inference/ (checkpoint, predictor and onnx_model are in
tests/conftest.py: runner/reader.py's tests use them too)."""

from pathlib import Path

import pytest
from PIL import Image, ImageOps

from runner.inference.predictors import TorchPredictor, load_predictor

from .helpers import digits_image, save_checkpoint


@pytest.fixture(scope="package")
def cropping_predictor(tmp_path_factory) -> TorchPredictor:
    """A CTC model trained with width bucketing: it reads every batch cropped to its widest image."""
    return load_predictor(save_checkpoint(tmp_path_factory.mktemp("crop") / "best.pt", "ctc_small", seed=2, bucketing=True))


@pytest.fixture(scope="package")
def image_folder(tmp_path_factory) -> Path:
    """One line of digits saved in every mode/format predict must read, at odd sizes, plus a broken file."""
    folder = tmp_path_factory.mktemp("images")
    base = digits_image()
    base.save(folder / "gray.png")
    base.convert("RGB").resize((301, 99)).save(folder / "photo.jpg", quality=95)
    rgba = Image.new("RGBA", base.size, (0, 0, 0, 0))
    rgba.putalpha(ImageOps.invert(base))  # ink = opaque black, background transparent
    rgba.save(folder / "transparent.png")
    base.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    ImageOps.invert(base).save(folder / "inverted.png")  # light on dark
    (folder / "sub").mkdir()
    digits_image("៥", (23, 41)).save(folder / "sub" / "tiny.png")
    (folder / "broken.png").write_text("this is not an image")
    (folder / "labels.tsv").write_text("gray.png\t១២៣៤\n")
    return folder
