"""Glyph-level variation of the text mask, so a model reads digits drawn in font families it never saw.

A font family fixes every glyph's proportions, stroke and placement; real printers, designers and
typists vary each of them. `sample_glyph_style` draws, per sample, what varies glyph by glyph
(scale, rotation, baseline offset, the gap after it, the face it is drawn with, which of a digit's
print forms) and what varies the whole mask (stroke thickness by erosion or dilation, an elastic grid
distortion, a flat pen); `place_glyphs` and `distort_mask` apply them (render.draw_text_mask calls
both). Every lever but the print forms (`allograph_p`) is off in the AugmentConfig defaults, and a
lever that is off draws nothing from the sample's Generator, so datasets made without it keep their
bytes.
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
# Digits with two common print forms, drawn from a sibling glyph. Most print families (Khmer OS, Noto Serif
# Khmer, ...) draw ៥ as their ៤ with a knot on its upper left: a bowl, a tall stroke on the right, a curl
# inside. Noto Sans Khmer draws ៥ so too, but its ៤ is another, open design with no tall stroke; a model
# trained on it alone reads every common ៤ as ៥ or ៨. The font's ៥ without its knot is the common ៤.
ALLOGRAPHS = {"\u17e4": "\u17e5"}
# The families whose ៤ is the open form: for the others the lever draws nothing, their own ៤ is the common one.
OPEN_FOUR_FAMILIES = frozenset({"Noto Sans Khmer"})
TALL_STROKE_END = 0.75  # the tall stroke must end (a blank row under it) within this much of the glyph's height


@dataclass
class GlyphStyle:
    """The glyph-level choices for one sample; empty tuples and zeros mean "not applied"."""

    scales: tuple[float, ...] = ()  # per glyph, times the font size
    widths: tuple[float, ...] = ()  # per glyph, horizontal stretch on top of its scale (1 = the font's own)
    rotations: tuple[float, ...] = ()  # per glyph, degrees counter-clockwise
    baseline: tuple[float, ...] = ()  # per glyph, offset downwards as a fraction of the font size
    spacing: tuple[float, ...] = ()  # per glyph, extra gap after it as a fraction of the font size
    mixed_font: Optional[FontSpec] = None  # the second face some glyphs are drawn with
    mixed: tuple[bool, ...] = ()  # per glyph, drawn with mixed_font
    allographs: tuple[bool, ...] = ()  # per glyph, drawn in its other print form (ALLOGRAPHS)
    stroke: int = 0  # px: > 0 dilates (bolder), < 0 erodes (thinner)
    elastic: float = 0.0  # largest grid-point displacement as a fraction of the text height
    elastic_seed: int = 0  # the displacement field's seed (its size depends on the mask)
    nib: float = 0.0  # flat-pen length as a fraction of the text height (0 = not redrawn with a pen)
    nib_angle: float = 0.0  # the pen's angle, degrees counter-clockwise from horizontal

    def per_glyph(self) -> bool:
        return bool(self.scales or self.widths or self.rotations or self.baseline or self.spacing
                    or any(self.mixed) or any(self.allographs))

    def is_neutral(self) -> bool:
        return not (self.per_glyph() or self.stroke or self.elastic or self.nib)

    def record(self) -> dict[str, Any]:
        """The applied choices only, rounded, for metadata.yaml."""
        out: dict[str, Any] = {}
        for key in ("scales", "widths", "rotations", "baseline", "spacing"):
            if getattr(self, key):
                out[key] = [round(value, 3) for value in getattr(self, key)]
        if self.mixed_font is not None and any(self.mixed):
            out["mixed_font"] = self.mixed_font.family
            out["mixed_font_file"] = self.mixed_font.name
            out["mixed"] = [int(flag) for flag in self.mixed]
        if any(self.allographs):
            out["allographs"] = [int(flag) for flag in self.allographs]
        if self.stroke:
            out["stroke"] = self.stroke
        if self.elastic:
            out["elastic"] = round(self.elastic, 4)
        if self.nib:
            out["nib"] = [round(self.nib, 4), round(self.nib_angle, 1)]
        return out


def sample_glyph_style(rng: np.random.Generator, length: int, cfg: AugmentConfig) -> GlyphStyle:
    """Draw the glyph-level choices for a `length`-digit number; levers that are off draw nothing."""
    def factors(bounds: Sequence[float]) -> tuple[float, ...]:  # per glyph; none drawn when bounds are [1, 1]
        if bounds[1] > bounds[0] or bounds[0] != 1.0:
            return tuple(float(v) for v in rng.uniform(bounds[0], bounds[1], length))
        return ()

    style = GlyphStyle(scales=factors(cfg.glyph_scale), widths=factors(cfg.glyph_width))
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
    if cfg.nib_p and rng.random() < cfg.nib_p:
        style.nib = float(rng.uniform(0.5, 1.0)) * cfg.nib_width
        style.nib_angle = float(rng.uniform(0.0, 180.0))
    return style


def sample_allographs(rng: np.random.Generator, text: str, font: FontSpec, cfg: AugmentConfig) -> tuple[bool, ...]:
    """Which glyphs of `text` are drawn in their other print form; draws nothing when the lever is off, the
    font's family is not one of OPEN_FOUR_FAMILIES or `text` has no such digit."""
    if (not cfg.allograph_p or font.family not in OPEN_FOUR_FAMILIES
            or not any(char in ALLOGRAPHS for char in text)):
        return ()
    flags = rng.random(len(text)) < cfg.allograph_p
    return tuple(bool(flag) and char in ALLOGRAPHS for char, flag in zip(text, flags))


def without_knot(layer: Image.Image) -> Optional[Image.Image]:
    """`layer` (a ៥ drawn alone, 255 = ink) with its knot erased: the ink left of the tall stroke on the right
    (the last run of ink in the glyph's top row), from the top down to the first blank row under that stroke:
    the knot and most of what joins it to the stroke (a thin weight keeps a stub of the join). None where the
    glyph has no such stroke (its top row's last run is not on the right half, or it never ends): the caller
    then draws the font's own glyph."""
    pixels = np.asarray(layer)
    ink = pixels > 127
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom, left, right = rows[0], rows[-1], columns[0], columns[-1]
    top_ink = np.flatnonzero(ink[top])
    gaps = np.flatnonzero(np.diff(top_ink) > 1)
    start = int(top_ink[gaps[-1] + 1] if gaps.size else top_ink[0])  # the top row's last run of ink
    if start - left < (right - left) / 2:
        return None
    band = ink[top:, start:right + 1].any(axis=1)  # the rows with ink under the tall stroke's top
    blank = np.flatnonzero(~band)
    if blank.size == 0 or blank[0] > TALL_STROKE_END * (bottom - top + 1):
        return None
    cut = pixels.copy()
    cut[:top + int(blank[0]), :max(start - 1, 0)] = 0  # one column short of the stroke: its anti-aliased edge
    return Image.fromarray(cut, "L")


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
    if style is None or not (style.stroke or style.elastic or style.nib):
        return mask
    if style.nib:
        mask = nib_sweep(mask, style.nib, style.nib_angle)
    if style.stroke:
        mask = change_stroke(mask, style.stroke)
    if style.elastic:
        mask = elastic_distort(mask, style.elastic, np.random.default_rng(style.elastic_seed))
    return mask.crop(mask.getbbox() or (0, 0, 1, 1))


def place_glyphs(text: str, faces: Sequence[ImageFont.FreeTypeFont], size: int, letter_spacing: float,
                 style: GlyphStyle, variation: Optional[dict[str, float]] = None) -> Image.Image:
    """An L mask (255 = ink) of `text`, glyph i drawn with faces[i] (or style.mixed_font where
    style.mixed says), in its other print form where style.allographs says, and scaled, stretched, turned,
    raised or lowered and spaced as `style` says; cropped to the ink."""
    count = len(text)

    def per_glyph(values: tuple[float, ...], neutral: float) -> list[float]:
        return list(values) if values else [neutral] * count

    scales, widths = per_glyph(style.scales, 1.0), per_glyph(style.widths, 1.0)
    rotations = per_glyph(style.rotations, 0.0)
    baseline, spacing = per_glyph(style.baseline, 0.0), per_glyph(style.spacing, 0.0)
    mixed = list(style.mixed) if style.mixed else [False] * count
    if style.mixed_font is not None and any(mixed):
        other = face_with_variation(style.mixed_font, size, variation or {})
        lacking = fallback_chars(style.mixed_font, text)  # what the second family cannot draw stays as it was
        faces = [other if use_other and char not in lacking else face
                 for face, use_other, char in zip(faces, mixed, text)]

    # Each glyph on its own layer with its baseline origin at (pad, pad + ascent): scaled about that
    # origin, turned about its centre, then laid on the line at its origin.
    layers = []
    # a glyph drawn with the second family is drawn as that family has it
    allographs = [flag and not use_other for flag, use_other in zip(style.allographs or [False] * count, mixed)]
    for char, face, scale, width, rotation, other_form in zip(text, faces, scales, widths, rotations, allographs):
        layer, advance, ascent, descent = draw_glyph(char, face, size, other_form)
        pad = size
        if rotation:
            layer = layer.rotate(rotation, Image.Resampling.BILINEAR,
                                 center=(pad + advance / 2, pad + (ascent - descent) / 2))
        if scale != 1.0 or width != 1.0:
            layer = layer.resize((max(1, round(layer.width * scale * width)), max(1, round(layer.height * scale))),
                                 Image.Resampling.BILINEAR)
        layers.append((layer, pad * scale * width, (pad + ascent) * scale, advance * scale * width))

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


def draw_glyph(char: str, face: ImageFont.FreeTypeFont, size: int,
               other_form: bool = False) -> tuple[Image.Image, float, int, int]:
    """`char` alone on a layer padded by `size`, its baseline origin at (size, size + ascent); in its other
    print form (ALLOGRAPHS) when asked and the face's sibling glyph allows it. Returns the layer, the advance,
    ascent and descent."""
    ascent, descent = face.getmetrics()

    def layer_of(glyph: str) -> tuple[Image.Image, float]:
        advance = face.getlength(glyph)
        layer = Image.new("L", (int(advance) + 2 * size, ascent + descent + 2 * size))
        ImageDraw.Draw(layer).text((size, size + ascent), glyph, font=face, fill=255, anchor="ls")
        return layer, advance

    if other_form and char in ALLOGRAPHS:
        sibling, advance = layer_of(ALLOGRAPHS[char])
        cut = without_knot(sibling)
        if cut is not None:
            return cut, advance, ascent, descent
    layer, advance = layer_of(char)
    return layer, advance, ascent, descent


def pen_variation(font: FontSpec, variation: Optional[dict[str, float]],
                  style: Optional[GlyphStyle]) -> dict[str, float]:
    """The axes to draw with: `variation`, at the font's thinnest weight when `style` redraws with a pen."""
    values = dict(variation or {})
    if style is not None and style.nib:
        for axis in font.axes:
            if axis.tag == "wght":
                values["wght"] = axis.minimum
    return values


def nib_sweep(mask: Image.Image, length: float, angle: float) -> Image.Image:
    """The ink swept along a flat pen `length` text heights long at `angle` degrees: strokes across the pen
    come out thick, strokes along it stay thin."""
    box = mask.getbbox()
    if box is None:
        return mask
    steps = max(2, round(length * (box[3] - box[1])))
    dx, dy = np.cos(np.radians(angle)), -np.sin(np.radians(angle))
    pad = steps + 1
    pixels = np.zeros((mask.height + 2 * pad, mask.width + 2 * pad), dtype=np.uint8)
    source = np.asarray(mask)
    for step in range(steps):
        offset = step - steps // 2  # whole steps: consecutive shifts differ by at most a pixel, no gaps
        x, y = pad + round(offset * dx), pad + round(offset * dy)
        region = pixels[y:y + mask.height, x:x + mask.width]
        np.maximum(region, source, out=region)
    return Image.fromarray(pixels, "L")


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
