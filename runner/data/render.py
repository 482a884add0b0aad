"""Render one labelled sample: a number text (runner/data/formats.py), font, size and augmentation.

Every sample is a pure function of its key, e.g. (seed, split, index) for a dataset on disk or
(seed, split, index, epoch) on the fly, via numpy's SeedSequence; so the number of worker
processes, their order and the machine's core count never change a pixel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from runner.data.augment import Augmentation, compose, degrade, sample_augmentation, warp_text
from runner.data.config import AugmentConfig
from runner.data.fonts import FontSpec, face_coverage, fallback_chars, fallback_font, load_font
from runner.data.formats import DEFAULT_MIX, NumberFormat, sample_text
from runner.data.glyphs import (GlyphStyle, distort_mask, pen_variation, place_glyphs, sample_allographs,
                               sample_glyph_style)

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
    format: NumberFormat = NumberFormat.digits
    glyphs: GlyphStyle = field(default_factory=GlyphStyle)

    def record(self) -> dict[str, Any]:
        """What metadata.yaml stores about how the sample was made. `format` is left out for digits (all the
        generator drew before formats), so the default dataset keeps its bytes; record_groups reads it so."""
        out: dict[str, Any] = {"font": self.font.family, "font_file": self.font.name,
                               "font_size": self.font_size, "letter_spacing": round(self.letter_spacing, 3)}
        if self.format != NumberFormat.digits:
            out["format"] = str(self.format)
        if fallback_chars(self.font, self.text):
            out["fallback_font"] = fallback_font().name
        if self.variation:
            out["variation"] = {tag: round(value, 1) for tag, value in self.variation.items()}
        out["augment"] = self.augmentation.record()
        if not self.glyphs.is_neutral():
            out["glyphs"] = self.glyphs.record()
        return out


def choose_font(rng: np.random.Generator, fonts: Sequence[FontSpec]) -> FontSpec:
    """Uniform over families, then over that family's faces: five Khmer OS files must not drown
    out the one Noto Serif."""
    by_family: dict[str, list[FontSpec]] = {}
    for font in fonts:
        by_family.setdefault(font.family, []).append(font)
    family = sorted(by_family)[int(rng.integers(len(by_family)))]
    faces = by_family[family]
    return faces[int(rng.integers(len(faces)))]


def sample_spec(rng: np.random.Generator, text: str, fonts: Sequence[FontSpec], cfg: AugmentConfig,
                text_format: NumberFormat = NumberFormat.digits) -> RenderSpec:
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
    spec = RenderSpec(text, font, variation, font_size, letter_spacing, sample_augmentation(rng, cfg), text_format)
    # Glyph levers draw after everything above (and nothing when off), so they never shift those draws.
    spec.glyphs = sample_glyph_style(rng, len(text), cfg)
    others = [other for other in fonts if other.family != font.family] if cfg.mix_fonts_p else []
    if others:  # one second face per number, fair over families like the first
        spec.glyphs.mixed_font = choose_font(rng, others)
        spec.glyphs.mixed = tuple(bool(flag) for flag in rng.random(len(text)) < cfg.mix_fonts_p)
    spec.glyphs.allographs = sample_allographs(rng, text, font, cfg)
    return spec


def char_faces(text: str, font: FontSpec, face: ImageFont.FreeTypeFont) -> list[ImageFont.FreeTypeFont]:
    """The face each character is drawn with: `face`, or for what `font` lacks the fallback font's face at
    the same size (for a variable fallback, at the weight of `font`, so bold stays bold)."""
    borrowed = fallback_chars(font, text)
    if not borrowed:
        return [face] * len(text)
    fallback = fallback_font()
    other = load_font(fallback.path, fallback.index, int(face.size))
    if fallback.axes:  # the cached face is shared: set every axis
        wanted = {"wght": float(face_coverage(font.path, font.index)[1])}
        other.set_variation_by_axes([min(max(wanted.get(axis.tag, axis.default), axis.minimum), axis.maximum)
                                     for axis in fallback.axes])
    return [other if char in borrowed else face for char in text]


def draw_text_mask(text: str, font: FontSpec, size: int, letter_spacing: float = 0.0,
                   variation: dict[str, float] | None = None, glyphs: Optional[GlyphStyle] = None) -> Image.Image:
    """An L mask (255 = ink) of `text` drawn character by character, cropped to the ink. A character the
    font lacks is drawn with the fallback font on the same baseline; spaces are advance only. `glyphs` varies
    it glyph by glyph (runner/data/glyphs.py)."""
    face = load_font(font.path, font.index, size)
    variation = pen_variation(font, variation, glyphs)
    if font.axes:
        # The cached face is shared, so every draw sets all axes (defaults where not chosen).
        face.set_variation_by_axes([variation.get(axis.tag, axis.default) for axis in font.axes])
    faces = char_faces(text, font, face)
    if glyphs is not None and glyphs.per_glyph():
        return distort_mask(place_glyphs(text, faces, size, letter_spacing, glyphs, variation), glyphs)
    ascent, descent = face.getmetrics()
    spacing = letter_spacing * size
    advances = [char_face.getlength(char) for char_face, char in zip(faces, text)]
    margin = size
    width = int(sum(advances) + max(spacing, 0) * len(text)) + 2 * margin
    mask = Image.new("L", (width, ascent + descent + 2 * margin), 0)
    draw = ImageDraw.Draw(mask)
    x = float(margin)
    for char, advance, char_face in zip(text, advances, faces):
        if not char.isspace():  # a space is advance only
            # the fallback face has other metrics: it goes by the font's baseline, not its ascender line
            y, anchor = (margin, "la") if char_face is face else (margin + ascent, "ls")
            draw.text((x, y), char, font=char_face, fill=255, anchor=anchor)
        x += advance + spacing
    return distort_mask(mask.crop(mask.getbbox() or (0, 0, 1, 1)), glyphs)


def render_spec(spec: RenderSpec, rng: np.random.Generator) -> Image.Image:
    mask = draw_text_mask(spec.text, spec.font, spec.font_size, spec.letter_spacing, spec.variation, spec.glyphs)
    mask = warp_text(mask, spec.augmentation)
    image = compose(mask, spec.augmentation, rng)
    return degrade(image, spec.augmentation, rng, text_height=mask.height)


def render_sample(key: Sequence[int], fonts: Sequence[FontSpec], cfg: AugmentConfig, min_length: int,
                  max_length: int, formats: Optional[Mapping[str, float]] = None,
                  ascii_digits: float = 0.0) -> tuple[Image.Image, RenderSpec]:
    """The RGB image and its RenderSpec for one sample key (see `sample_key`); the text is drawn from the
    `formats` mix (default: digits only) with an `ascii_digits` share in ASCII digits."""
    rng = np.random.default_rng(list(key))
    text, text_format = sample_text(rng, DEFAULT_MIX if formats is None else formats, min_length, max_length,
                                    ascii_digits)
    spec = sample_spec(rng, text, fonts, cfg, text_format)
    return render_spec(spec, rng), spec
