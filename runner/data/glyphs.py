"""Glyph-level variation of the text mask, so a model reads digits drawn in font families it never saw.

A font family fixes every glyph's proportions, stroke and placement; real printers, designers and
typists vary each of them. `sample_glyph_style` draws, per sample, what varies glyph by glyph
(scale, rotation, baseline offset, the gap after it, the face it is drawn with) and what varies the
whole mask (stroke thickness by erosion or dilation, an elastic grid distortion); `place_glyphs`
and `distort_mask` apply them (render.draw_text_mask calls both). Every lever is off in the AugmentConfig defaults, and a lever that is off
draws nothing from the sample's Generator, so datasets made without glyph levers keep their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from runner.data.config import AugmentConfig
from runner.data.fonts import FontSpec, fallback_chars, load_font

MIN_GAP = -0.1  # smallest letter spacing + spacing jitter, as a fraction of the size (as data.augment.letter_spacing)
MIN_ERODED_INK = 0.45  # an erosion that leaves less of the ink than this would make the label unreadable: skipped
ELASTIC_CELL = 0.5  # grid cell of the elastic distortion, in text heights


@dataclass
class GlyphStyle:
    """The glyph-level choices for one sample; empty tuples and zeros mean "not applied"."""

    scales: tuple[float, ...] = ()  # per glyph, times the font size
    rotations: tuple[float, ...] = ()  # per glyph, degrees counter-clockwise
    baseline: tuple[float, ...] = ()  # per glyph, offset downwards as a fraction of the font size
    spacing: tuple[float, ...] = ()  # per glyph, extra gap after it as a fraction of the font size
    mixed_font: Optional[FontSpec] = None  # the second face some glyphs are drawn with
    mixed: tuple[bool, ...] = ()  # per glyph, drawn with mixed_font
    stroke: int = 0  # px: > 0 dilates (bolder), < 0 erodes (thinner)
    elastic: float = 0.0  # largest grid-point displacement as a fraction of the text height
    elastic_seed: int = 0  # the displacement field's seed (its size depends on the mask)

    def per_glyph(self) -> bool:
        return bool(self.scales or self.rotations or self.baseline or self.spacing or any(self.mixed))

    def is_neutral(self) -> bool:
        return not (self.per_glyph() or self.stroke or self.elastic)

    def record(self) -> dict[str, Any]:
        """The applied choices only, rounded, for metadata.yaml."""
        out: dict[str, Any] = {}
        for key in ("scales", "rotations", "baseline", "spacing"):
            if getattr(self, key):
                out[key] = [round(value, 3) for value in getattr(self, key)]
        if self.mixed_font is not None and any(self.mixed):
            out["mixed_font"] = self.mixed_font.family
            out["mixed_font_file"] = self.mixed_font.name
            out["mixed"] = [int(flag) for flag in self.mixed]
        if self.stroke:
            out["stroke"] = self.stroke
        if self.elastic:
            out["elastic"] = round(self.elastic, 4)
        return out


def sample_glyph_style(rng: np.random.Generator, length: int, cfg: AugmentConfig) -> GlyphStyle:
    """Draw the glyph-level choices for a `length`-digit number; levers that are off draw nothing."""
    style = GlyphStyle()
    if cfg.glyph_scale[1] > cfg.glyph_scale[0] or cfg.glyph_scale[0] != 1.0:
        style.scales = tuple(float(v) for v in rng.uniform(cfg.glyph_scale[0], cfg.glyph_scale[1], length))
    if cfg.glyph_rotation:
        style.rotations = tuple(float(v) for v in rng.uniform(-cfg.glyph_rotation, cfg.glyph_rotation, length))
    if cfg.baseline_jitter:
        style.baseline = tuple(float(v) for v in rng.uniform(-cfg.baseline_jitter, cfg.baseline_jitter, length))
    if cfg.glyph_spacing_jitter:
        style.spacing = tuple(float(v) for v in rng.uniform(-cfg.glyph_spacing_jitter, cfg.glyph_spacing_jitter,
                                                            length))
    if cfg.stroke_p and rng.random() < cfg.stroke_p:
        radius = int(rng.integers(1, cfg.stroke_radius + 1))
        style.stroke = radius if rng.random() < 0.5 else -radius
    if cfg.elastic_p and rng.random() < cfg.elastic_p:
        style.elastic = float(rng.uniform(0.5, 1.0)) * cfg.elastic_strength
        style.elastic_seed = int(rng.integers(2 ** 31))
    return style


def face_with_variation(font: FontSpec, size: int, variation: dict[str, float]) -> ImageFont.FreeTypeFont:
    """The cached face of `font`, with every variable axis set (from `variation`, clamped, else the default)."""
    face = load_font(font.path, font.index, size)
    if font.axes:
        # The cached face is shared, so every draw sets all axes.
        face.set_variation_by_axes([min(max(variation.get(axis.tag, axis.default), axis.minimum), axis.maximum)
                                    for axis in font.axes])
    return face


def distort_mask(mask: Image.Image, style: Optional[GlyphStyle]) -> Image.Image:
    """The ink mask thickened or thinned and elastically distorted as `style` says, cropped to the ink
    (unchanged when `style` is None or applies neither)."""
    if style is None or not (style.stroke or style.elastic):
        return mask
    if style.stroke:
        mask = change_stroke(mask, style.stroke)
    if style.elastic:
        mask = elastic_distort(mask, style.elastic, np.random.default_rng(style.elastic_seed))
    return mask.crop(mask.getbbox() or (0, 0, 1, 1))


def place_glyphs(text: str, faces: Sequence[ImageFont.FreeTypeFont], size: int, letter_spacing: float,
                 style: GlyphStyle, variation: Optional[dict[str, float]] = None) -> Image.Image:
    """An L mask (255 = ink) of `text`, glyph i drawn with faces[i] (or style.mixed_font where
    style.mixed says) and scaled, turned, raised or lowered and spaced as `style` says; cropped to the ink."""
    count = len(text)

    def per_glyph(values: tuple[float, ...], neutral: float) -> list[float]:
        return list(values) if values else [neutral] * count

    scales, rotations = per_glyph(style.scales, 1.0), per_glyph(style.rotations, 0.0)
    baseline, spacing = per_glyph(style.baseline, 0.0), per_glyph(style.spacing, 0.0)
    mixed = list(style.mixed) if style.mixed else [False] * count
    if style.mixed_font is not None and any(mixed):
        other = face_with_variation(style.mixed_font, size, variation or {})
        lacking = fallback_chars(style.mixed_font, text)  # what the second family cannot draw stays as it was
        faces = [other if use_other and char not in lacking else face for face, use_other, char in zip(faces, mixed, text)]

    # Each glyph on its own layer with its baseline origin at (pad, pad + ascent): scaled about that
    # origin, turned about its centre, then laid on the line at its origin.
    layers = []
    for char, face, scale, rotation in zip(text, faces, scales, rotations):
        ascent, descent = face.getmetrics()
        advance, pad = face.getlength(char), size
        layer = Image.new("L", (int(advance) + 2 * pad, ascent + descent + 2 * pad))
        ImageDraw.Draw(layer).text((pad, pad + ascent), char, font=face, fill=255, anchor="ls")
        if rotation:
            layer = layer.rotate(rotation, Image.Resampling.BILINEAR,
                                 center=(pad + advance / 2, pad + (ascent - descent) / 2))
        if scale != 1.0:
            layer = layer.resize((max(1, round(layer.width * scale)), max(1, round(layer.height * scale))),
                                 Image.Resampling.BILINEAR)
        layers.append((layer, pad * scale, (pad + ascent) * scale, advance * scale))

    margin = 2 * size
    width = int(sum(layer.width for layer, *_ in layers)) + 2 * margin
    height = max(layer.height for layer, *_ in layers) + 2 * margin
    canvas = np.zeros((height, width), dtype=np.uint8)
    line = margin + max(origin_y for _, _, origin_y, _ in layers)
    x = float(margin)
    for (layer, origin_x, origin_y, advance), offset, gap in zip(layers, baseline, spacing):
        left, top = round(x - origin_x), round(line + offset * size - origin_y)
        pixels = np.asarray(layer)
        region = canvas[top:top + pixels.shape[0], left:left + pixels.shape[1]]
        np.maximum(region, pixels[:region.shape[0], :region.shape[1]], out=region)
        x += advance + max(letter_spacing + gap, MIN_GAP) * size
    mask = Image.fromarray(canvas, "L")
    return mask.crop(mask.getbbox() or (0, 0, 1, 1))


def change_stroke(mask: Image.Image, stroke: int) -> Image.Image:
    """Dilate (stroke > 0) or erode (stroke < 0) the ink by |stroke| px; an erosion that would wipe out
    most of the ink (thin fonts, small sizes) is skipped, so the label stays readable."""
    padded = Image.new("L", (mask.width + 2 * abs(stroke), mask.height + 2 * abs(stroke)))
    padded.paste(mask, (abs(stroke), abs(stroke)))
    if stroke > 0:
        return padded.filter(ImageFilter.MaxFilter(2 * stroke + 1))
    thinner = padded.filter(ImageFilter.MinFilter(2 * -stroke + 1))
    ink = float(np.asarray(mask, dtype=np.float32).sum())
    return thinner if ink and float(np.asarray(thinner, dtype=np.float32).sum()) >= MIN_ERODED_INK * ink else padded


def elastic_distort(mask: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """A smooth random grid distortion: grid points about half a text height apart move by up to
    `strength` text heights, and every cell maps its moved quad back onto a square (Pillow's MESH)."""
    box = mask.getbbox()
    if box is None:
        return mask
    text_height = box[3] - box[1]
    shift = strength * text_height
    pad = int(np.ceil(shift)) + 1
    padded = Image.new("L", (mask.width + 2 * pad, mask.height + 2 * pad))
    padded.paste(mask, (pad, pad))
    cell = max(4.0, ELASTIC_CELL * text_height)
    columns, rows = max(2, round(padded.width / cell)), max(2, round(padded.height / cell))
    xs, ys = np.linspace(0, padded.width, columns + 1), np.linspace(0, padded.height, rows + 1)
    moves = np.clip(rng.normal(0.0, 0.5, (rows + 1, columns + 1, 2)), -1.0, 1.0) * shift
    moves[[0, -1], :, :] = 0.0  # the border stays put, so nothing is pulled in from outside the canvas
    moves[:, [0, -1], :] = 0.0
    source = np.stack(np.meshgrid(xs, ys), axis=-1) + moves
    mesh = []
    for row in range(rows):
        for column in range(columns):
            quad = [source[row, column], source[row + 1, column], source[row + 1, column + 1], source[row, column + 1]]
            target = (round(xs[column]), round(ys[row]), round(xs[column + 1]), round(ys[row + 1]))
            mesh.append((target, tuple(float(v) for point in quad for v in point)))
    return padded.transform(padded.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)
