"""The batch contract built by hand, so the model tests do not depend on runner.data."""

from pathlib import Path

import fontpkg_noto_sans_khmer
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from runner.charset import CHARSETS, EOS, PAD, SOS
from runner.losses import OCRLoss

PRESETS = ["small", "medium", "large", "ctc_small", "ctc_medium"]
FONT = Path(fontpkg_noto_sans_khmer.__file__).parent / "files" / "NotoSansKhmer[wdth,wght].ttf"


def make_batch(texts: list[str], max_length: int, width: int) -> dict:
    """The data contract, built here so these tests do not depend on runner.data."""
    font = ImageFont.truetype(str(FONT), 22)
    images = []
    for text in texts:
        image = Image.new("L", (width, 32), 255)
        ImageDraw.Draw(image).text((3, 0), text, font=font, fill=0)
        images.append(np.asarray(image, dtype=np.float32) / 127.5 - 1.0)
    targets = torch.full((len(texts), max_length + 2), PAD)
    for row, text in enumerate(texts):
        ids = [SOS, *CHARSETS["digits"].encode(text), EOS]
        targets[row, : len(ids)] = torch.tensor(ids)
    return {"images": torch.from_numpy(np.stack(images))[:, None], "targets": targets,
            "target_lengths": torch.tensor([len(text) for text in texts]), "texts": texts,
            "paths": [f"{i}.png" for i in range(len(texts))]}


def loss_for(model) -> OCRLoss:
    return OCRLoss("ctc" if model.head == "ctc" else "crossentropy").bind(model)
