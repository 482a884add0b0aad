"""`python -m runner.data.samples`: a grid of rendered samples to eyeball (outputs/samples.png).

Each cell shows the rendered image, below it the model input `preprocess_image` makes of it
(drawn dark-on-light, 2x), and the label in Khmer and Arabic digits with its format and font family.
Overrides compose the training config as `python -m runner` would, so the grid shows what a run draws:

    python -m runner.data.samples --preset heavy --count 48 --seed 3 --out outputs/heavy.png
    python -m runner.data.samples experiment=numbers
    python -m runner.data.samples data.formats={digits:0,price:1,date:1} data.max_length=12
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.data.samples")  # before hydra and torch: a base install gets the pip command, not a traceback

import argparse
import dataclasses
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from runner.charset import DIGITS
from runner.config import compose_config
from runner.data.config import DataConfig, as_data_config, augment_preset
from runner.data.fonts import FontSpec, load_font, package_font_path
from runner.data.generate import data_fonts, plan_splits, text_settings
from runner.data.preprocess import preprocess_image_uint8
from runner.data.render import render_sample, sample_key
from runner.cli import entry_point

CELL_WIDTH, IMAGE_BOX, LABEL_HEIGHT, GAP = 280, 72, 22, 8


def label_font(fonts: Sequence[FontSpec]) -> ImageFont.ImageFont:
    path = package_font_path()
    if path is not None:
        return load_font(str(path), 0, 15)
    return load_font(fonts[0].path, fonts[0].index, 15) if fonts else ImageFont.load_default()


def sample_grid(cfg: DataConfig, seed: int, count: int = 40, columns: int = 4, split: str = "train") -> Image.Image:
    """Render `count` samples of `split` (as the dataset would) into one annotated grid image."""
    plan = next(p for p in plan_splits(cfg, data_fonts(cfg)) if p.name == split)
    height, width = cfg.image_height, cfg.image_width
    cell_height = IMAGE_BOX + GAP + 2 * height + LABEL_HEIGHT + GAP
    rows = (count + columns - 1) // columns
    grid = Image.new("RGB", (columns * CELL_WIDTH, rows * cell_height), (128, 128, 128))
    draw = ImageDraw.Draw(grid)
    font = label_font(plan.fonts)
    for index in range(count):
        image, spec = render_sample(sample_key(seed, split, index), plan.fonts, plan.augment_for(index),
                                    *text_settings(cfg))
        x, y = (index % columns) * CELL_WIDTH, (index // columns) * cell_height
        draw.rectangle((x + 2, y + 2, x + CELL_WIDTH - 3, y + cell_height - 3), fill=(250, 250, 250))
        shown = image.copy()
        shown.thumbnail((CELL_WIDTH - 12, IMAGE_BOX), Image.Resampling.LANCZOS)
        grid.paste(shown, (x + 6, y + 6))
        model_input = Image.fromarray(255 - preprocess_image_uint8(image, height, width, cfg.text_crop), "L")
        model_input = model_input.resize((2 * width, 2 * height), Image.Resampling.NEAREST)
        grid.paste(model_input.convert("RGB"), (x + 6, y + IMAGE_BOX + GAP))
        arabic = spec.text.translate(str.maketrans(DIGITS, "0123456789"))
        draw.text((x + 6, y + IMAGE_BOX + GAP + 2 * height + 2), f"{spec.text}  ({arabic})  {spec.font.family}",
                  font=font, fill=(20, 20, 120))
    return grid


@entry_point
def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=None,
                        help="draw every sample with this augment preset (none, light or heavy); default: the "
                             "training mix, data.train_hard_fraction of heavy among light")
    parser.add_argument("--split", default="train", help="train, val, val_hard, val_unseen_fonts or val_hard_unseen_fonts")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", default="outputs/samples.png")
    parser.add_argument("overrides", nargs="*", help="overrides of the training config, as for `python -m runner` "
                                                     "(experiment=numbers, data.formats={digits:0,price:1})")
    args = parser.parse_args(argv)
    cfg = as_data_config(compose_config("train", args.overrides).data)
    if args.preset is not None:
        cfg = dataclasses.replace(cfg, augment=augment_preset(args.preset), train_hard_fraction=0.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sample_grid(cfg, args.seed, args.count, split=args.split).save(out)
    print(out)
    return out


if __name__ == "__main__":
    main()
