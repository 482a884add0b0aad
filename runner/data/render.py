"""Render one labelled sample: random Khmer digit string, font, size and augmentation.

Every sample is a pure function of its key, e.g. (seed, split, index) for a dataset on disk or
(seed, split, index, epoch) on the fly, via numpy's SeedSequence; so the number of worker
processes, their order and the machine's core count never change a pixel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from runner.charset import DIGITS
from runner.data.augment import Augmentation, compose, degrade, sample_augmentation, warp_text
from runner.data.config import AugmentConfig
from runner.data.fonts import FontSpec, load_font
from runner.data.glyphs import GlyphStyle, distort_mask, place_glyphs, sample_glyph_style

SPLIT_CODES = {"train": 0, "val": 1, "val_hard": 2, "val_unseen_fonts": 3, "val_hard_unseen_fonts": 4}


def sample_key(seed: int, split: str, index: int, epoch: int | None = None) -> list[int]:
    """SeedSequence entropy for one sample; unknown split names hash to a stable code."""
    code = SPLIT_CODES.get(split, zlib.crc32(split.encode()))
    key = [int(seed), code, int(index)]
    return key if epoch is None else key + [int(epoch)]


@dataclass
class RenderSpec:
    """Everything that decides how a sample looks."""

    text: str
    font: FontSpec
    variation: dict[str, float]
    font_size: int
    letter_spacing: float
    augmentation: Augmentation
    glyphs: GlyphStyle = field(default_factory=GlyphStyle)

    def record(self) -> dict[str, Any]:
        """What metadata.yaml stores about how the sample was made."""
        out: dict[str, Any] = {"font": self.font.family, "font_file": self.font.name,
                               "font_size": self.font_size, "letter_spacing": round(self.letter_spacing, 3)}
        if self.variation:
            out["variation"] = {tag: round(value, 1) for tag, value in self.variation.items()}
        out["augment"] = self.augmentation.record()
        if not self.glyphs.is_neutral():
            out["glyphs"] = self.glyphs.record()
        return out


def random_text(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    length = int(rng.integers(min_length, max_length + 1))
    return "".join(DIGITS[int(i)] for i in rng.integers(0, 10, length))


def choose_font(rng: np.random.Generator, fonts: Sequence[FontSpec]) -> FontSpec:
    """Uniform over families, then over that family's faces: five Khmer OS files must not drown
    out the one Noto Serif."""
    by_family: dict[str, list[FontSpec]] = {}
    for font in fonts:
        by_family.setdefault(font.family, []).append(font)
    family = sorted(by_family)[int(rng.integers(len(by_family)))]
    faces = by_family[family]
    return faces[int(rng.integers(len(faces)))]


def sample_spec(rng: np.random.Generator, text: str, fonts: Sequence[FontSpec], cfg: AugmentConfig) -> RenderSpec:
    font = choose_font(rng, fonts)
    wanted = {"wght": cfg.font_weight, "wdth": cfg.font_width}
    variation = {}
    for axis in font.axes:
        low, high = wanted.get(axis.tag, (axis.default, axis.default))
        low, high = max(low, axis.minimum), min(high, axis.maximum)
        variation[axis.tag] = float(rng.uniform(low, high)) if high > low else float(min(max(low, axis.minimum),
                                                                                          axis.maximum))
    font_size = int(round(rng.uniform(cfg.font_size[0], cfg.font_size[1])))
    letter_spacing = float(rng.uniform(cfg.letter_spacing[0], cfg.letter_spacing[1]))
    spec = RenderSpec(text, font, variation, font_size, letter_spacing, sample_augmentation(rng, cfg))
    # Glyph levers draw after everything above (and nothing when off), so they never shift those draws.
    spec.glyphs = sample_glyph_style(rng, len(text), cfg)
    others = [other for other in fonts if other.family != font.family] if cfg.mix_fonts_p else []
    if others:  # one second face per number, fair over families like the first
        spec.glyphs.mixed_font = choose_font(rng, others)
        spec.glyphs.mixed = tuple(bool(flag) for flag in rng.random(len(text)) < cfg.mix_fonts_p)
    return spec


def draw_text_mask(text: str, font: FontSpec, size: int, letter_spacing: float = 0.0,
                   variation: dict[str, float] | None = None, glyphs: Optional[GlyphStyle] = None) -> Image.Image:
    """An L mask (255 = ink) of `text` drawn digit by digit, cropped to the ink; `glyphs` varies it
    glyph by glyph (runner/data/glyphs.py)."""
    face = load_font(font.path, font.index, size)
    if font.axes:
        # The cached face is shared, so every draw sets all axes (defaults where not chosen).
        values = variation or {}
        face.set_variation_by_axes([values.get(axis.tag, axis.default) for axis in font.axes])
    if glyphs is not None and glyphs.per_glyph():
        return distort_mask(place_glyphs(text, [face] * len(text), size, letter_spacing, glyphs, variation), glyphs)
    ascent, descent = face.getmetrics()
    spacing = letter_spacing * size
    advances = [face.getlength(char) for char in text]
    margin = size
    width = int(sum(advances) + max(spacing, 0) * len(text)) + 2 * margin
    mask = Image.new("L", (width, ascent + descent + 2 * margin), 0)
    draw = ImageDraw.Draw(mask)
    x = float(margin)
    for char, advance in zip(text, advances):
        draw.text((x, margin), char, font=face, fill=255)
        x += advance + spacing
    return distort_mask(mask.crop(mask.getbbox() or (0, 0, 1, 1)), glyphs)


def render_spec(spec: RenderSpec, rng: np.random.Generator) -> Image.Image:
    mask = draw_text_mask(spec.text, spec.font, spec.font_size, spec.letter_spacing, spec.variation, spec.glyphs)
    mask = warp_text(mask, spec.augmentation)
    image = compose(mask, spec.augmentation, rng)
    return degrade(image, spec.augmentation, rng, text_height=mask.height)


def render_sample(key: Sequence[int], fonts: Sequence[FontSpec], cfg: AugmentConfig, min_length: int,
                  max_length: int) -> tuple[Image.Image, RenderSpec]:
    """The RGB image and its RenderSpec for one sample key (see `sample_key`)."""
    rng = np.random.default_rng(list(key))
    text = random_text(rng, min_length, max_length)
    spec = sample_spec(rng, text, fonts, cfg)
    return render_spec(spec, rng), spec
