"""Checkpoints and images the tests of runner/inference/ build."""

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from runner.data.fonts import package_font_path
from runner.models import create_model
from runner.training.checkpoint import atomic_save, build_checkpoint


def save_checkpoint(path: Path, preset: str = "small", seed: int = 0, config_yaml: str = "", bucketing: bool = False,
                    charset: str = "digits") -> Path:
    torch.manual_seed(seed)
    preprocess = {"height": 32, "width": 128, "bucketing": bucketing}
    payload = build_checkpoint(model=create_model(preset, charset=charset), epoch=1, global_step=1, metrics={}, config_yaml=config_yaml,
                               preprocess=preprocess)
    atomic_save(payload, path)
    return path


def digits_image(text: str = "១២៣៤", size: tuple[int, int] = (173, 57)) -> Image.Image:
    """Black digits on white, mode L."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((7, 3), text, font=ImageFont.truetype(str(package_font_path()), 40), fill=0)
    return image
