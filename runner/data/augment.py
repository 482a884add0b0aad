"""The variation a real user's photos and scans have, applied to a rendered ink mask.

A sample is drawn in three steps, each deterministic given the sample's numpy Generator:
`sample_augmentation` picks every parameter up front (so the metadata can record them),
`warp_text` bends the ink mask (stretch, shear, rotation, perspective; the canvas grows so no
digit is ever cut off), `compose` puts margins, stray lines and a background around it, and
`degrade` adds what a camera or scanner does (blur, low resolution, noise, JPEG).
Stray lines live only in the margins, outside the ink's bounding box, so they never touch a digit.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields
from typing import Any, Optional

import numpy as np
from PIL import Image, ImageFilter

from runner.data.config import BACKGROUND_KINDS, AugmentConfig

Colour = tuple[int, int, int]
# Dark pen and stamp colours; luminance stays well below paper so min_contrast is easy to meet.
MIN_CAPTURE_HEIGHT = 12
BLUR_REFERENCE_HEIGHT = 24  # blur radii are px at this text height (the text of a 32 px model input)
INK_COLOURS: tuple[Colour, ...] = ((25, 45, 150), (150, 25, 35), (20, 90, 60), (60, 35, 110))


@dataclass
class Augmentation:
    """Every random choice for one sample; neutral values mean "not applied"."""

    padding: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.1)  # left, top, right, bottom
    aspect_ratio: float = 1.0
    shear: float = 0.0
    rotation: float = 0.0
    perspective: Optional[tuple[float, ...]] = None  # 8 corner offsets as fractions of width/height
    background: str = "solid"
    background_colour: Colour = (255, 255, 255)
    background_colour2: Colour = (255, 255, 255)  # far end of a gradient
    gradient_angle: float = 0.0
    texture_strength: float = 0.0
    ink_colour: Colour = (0, 0, 0)
    inverted: bool = False
    underline: bool = False
    table_rules: tuple[bool, bool, bool, bool] = (False, False, False, False)  # top, bottom, left, right
    blur_radius: float = 0.0
    lowres_scale: float = 1.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0

    def record(self) -> dict[str, Any]:
        """The applied choices only, rounded, for metadata.yaml."""
        neutral = Augmentation()
        out: dict[str, Any] = {}
        for key in (f.name for f in fields(self)):  # not asdict(): it deep-copies every field of every render
            value = getattr(self, key)
            if value == getattr(neutral, key) and key not in ("padding", "background"):
                continue
            out[key] = _rounded(value)
        return out


# Fields of an Augmentation.record() that degrade the image, under the name a report shows; the
# others (padding, colours, aspect ratio, a plain background) vary it without making it harder to read.
DEGRADATIONS = {"blur_radius": "blur", "noise_sigma": "noise", "jpeg_quality": "jpeg", "lowres_scale": "low resolution",
                "perspective": "perspective", "rotation": "rotation", "shear": "shear", "inverted": "inverted",
                "underline": "underline", "table_rules": "table rules"}


def degradation_kinds(record: Any) -> list[str]:
    """The degradations an Augmentation.record() (read back from metadata.yaml: data) says were applied.

    A background other than solid counts as '<kind> background'; an unrecognised record gives [].
    """
    if not isinstance(record, dict):
        return []
    kinds = [name for key, name in DEGRADATIONS.items() if key in record]
    background = record.get("background")
    if isinstance(background, str) and background != "solid":
        kinds.append(f"{background} background")
    return kinds


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, (tuple, list)):
        return [_rounded(v) for v in value]
    return value


def _uniform(rng: np.random.Generator, bounds: Any) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def _luminance(colour: Colour) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def sample_augmentation(rng: np.random.Generator, cfg: AugmentConfig) -> Augmentation:
    """Draw every augmentation parameter for one sample from `cfg`."""
    aug = Augmentation()
    aug.padding = tuple(_uniform(rng, cfg.padding) for _ in range(4))
    aug.aspect_ratio = _uniform(rng, cfg.aspect_ratio)
    if rng.random() < cfg.shear_p:
        aug.shear = _uniform(rng, (-cfg.shear, cfg.shear))
    if rng.random() < cfg.rotation_p:
        aug.rotation = _uniform(rng, (-cfg.rotation, cfg.rotation))
    if rng.random() < cfg.perspective_p:
        aug.perspective = tuple(float(v) for v in rng.uniform(-cfg.perspective, cfg.perspective, 8))

    kinds = [kind for kind in BACKGROUND_KINDS if cfg.background.get(kind, 0) > 0]
    weights = np.array([cfg.background[kind] for kind in kinds], dtype=float)
    aug.background = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    aug.background_colour = _paper_colour(rng, _uniform(rng, cfg.background_level))
    if aug.background == "gradient":
        # A shadow or uneven light, not a second paper colour: the far end stays within 60 levels.
        far_level = _uniform(rng, cfg.background_level)
        near_level = _luminance(aug.background_colour)
        aug.background_colour2 = _paper_colour(rng, float(np.clip(far_level, near_level - 60, near_level + 60)))
        aug.gradient_angle = _uniform(rng, (0.0, 360.0))
    else:
        aug.background_colour2 = aug.background_colour
    if aug.background in ("noise", "paper"):
        aug.texture_strength = _uniform(rng, (6.0, 18.0))

    level = _uniform(rng, cfg.ink_level)
    if rng.random() < cfg.ink_color_p:
        base = INK_COLOURS[int(rng.integers(len(INK_COLOURS)))]
        aug.ink_colour = tuple(int(min(255, c + level * 0.5)) for c in base)
    else:
        aug.ink_colour = (int(level),) * 3
    aug.ink_colour = _with_contrast(aug.ink_colour, min(map(_luminance, (aug.background_colour,
                                                                          aug.background_colour2))),
                                    cfg.min_contrast + aug.texture_strength)
    aug.inverted = bool(rng.random() < cfg.invert_p)

    aug.underline = bool(rng.random() < cfg.underline_p)
    if rng.random() < cfg.table_rules_p:
        sides = rng.random(4) < 0.5
        sides[int(rng.integers(4))] = True  # at least one rule
        aug.table_rules = tuple(bool(s) for s in sides)

    if rng.random() < cfg.blur_p:
        aug.blur_radius = _uniform(rng, cfg.blur_radius)
    if rng.random() < cfg.lowres_p:
        aug.lowres_scale = _uniform(rng, cfg.lowres_scale)
    if rng.random() < cfg.noise_p:
        aug.noise_sigma = _uniform(rng, cfg.noise_sigma)
    if rng.random() < cfg.jpeg_p:
        aug.jpeg_quality = int(round(_uniform(rng, cfg.jpeg_quality)))
    return aug


def _paper_colour(rng: np.random.Generator, level: float) -> Colour:
    # Paper is rarely neutral grey: a small warm or cool tint per channel.
    tint = rng.uniform(-8, 4, 3) * np.array([0.3, 0.6, 1.0])
    return tuple(int(np.clip(level + t, 0, 255)) for t in tint)


def _with_contrast(ink: Colour, background_luminance: float, min_contrast: float) -> Colour:
    target = background_luminance - min_contrast
    luminance = _luminance(ink)
    if luminance <= target:
        return ink
    scale = max(target, 0.0) / luminance if luminance > 0 else 0.0
    return tuple(int(c * scale) for c in ink)


# --- geometry -----------------------------------------------------------------------------------

def warp_text(mask: Image.Image, aug: Augmentation) -> Image.Image:
    """Stretch, shear, rotate and warp an L ink mask; the result is cropped to the ink again."""
    if aug.aspect_ratio != 1.0:
        mask = mask.resize((max(1, round(mask.width * aug.aspect_ratio)), mask.height), Image.Resampling.BILINEAR)
    if aug.shear:
        width, height = mask.size
        offset = aug.shear * height if aug.shear > 0 else 0.0
        mask = mask.transform((width + math.ceil(abs(aug.shear) * height), height), Image.Transform.AFFINE,
                              (1, aug.shear, -offset, 0, 1, 0), Image.Resampling.BILINEAR)
    if aug.rotation:
        mask = mask.rotate(aug.rotation, Image.Resampling.BILINEAR, expand=True)
    if aug.perspective is not None:
        mask = _perspective(mask, aug.perspective)
    return mask.crop(mask.getbbox() or (0, 0, mask.width, mask.height))


def _perspective(mask: Image.Image, offsets: tuple[float, ...]) -> Image.Image:
    width, height = mask.size
    source = np.array([(0, 0), (width, 0), (width, height), (0, height)], dtype=float)
    # Offsets scale with the height in both directions: a fraction of a long line's width would
    # squash its end digits far more than a camera angle does.
    target = source + np.array(offsets).reshape(4, 2) * height
    target -= target.min(axis=0)
    size = tuple(int(math.ceil(v)) + 1 for v in target.max(axis=0))
    # Pillow wants the coefficients mapping output (target) points back to input (source) points.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    coefficients = np.linalg.solve(np.array(rows), np.array(rhs))
    return mask.transform(size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BILINEAR)


# --- composition ----------------------------------------------------------------------------------

def compose(mask: Image.Image, aug: Augmentation, rng: np.random.Generator) -> Image.Image:
    """Margins, stray lines and background around a cropped ink mask; returns RGB."""
    text_height = mask.height
    left, top, right, bottom = (round(p * text_height) for p in aug.padding)
    gap = max(1, round(0.12 * text_height))
    thickness = max(1, round(0.06 * text_height))
    rule_room = gap + thickness + 1
    rule_top, rule_bottom, rule_left, rule_right = aug.table_rules
    # Make room in the margins for any line, so a line never crosses the ink.
    top = max(top, rule_room) if rule_top else top
    bottom = max(bottom, rule_room + (rule_room if aug.underline else 0)) if (rule_bottom or aug.underline) \
        else bottom
    left = max(left, rule_room) if rule_left else left
    right = max(right, rule_room) if rule_right else right

    width, height = mask.width + left + right, mask.height + top + bottom
    alpha = np.zeros((height, width), dtype=np.float32)
    alpha[top:top + mask.height, left:left + mask.width] = np.asarray(mask, dtype=np.float32) / 255.0

    def line(y0: int, y1: int, x0: int, x1: int, strength: float) -> None:
        alpha[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = np.maximum(
            alpha[max(0, y0):max(0, y1), max(0, x0):max(0, x1)], strength)

    text_bottom = top + mask.height
    if aug.underline:
        y = text_bottom + gap
        line(y, y + thickness, left - gap, left + mask.width + gap, 1.0)
    rule_strength = float(rng.uniform(0.5, 1.0))
    if rule_top:
        y = int(rng.integers(0, top - rule_room + 1))
        line(y, y + thickness, 0, width, rule_strength)
    if rule_bottom:
        y = int(rng.integers(text_bottom + rule_room - thickness, height - thickness + 1))
        line(y, y + thickness, 0, width, rule_strength)
    if rule_left:
        x = int(rng.integers(0, left - rule_room + 1))
        line(0, height, x, x + thickness, rule_strength)
    if rule_right:
        x = int(rng.integers(left + mask.width + rule_room - thickness, width - thickness + 1))
        line(0, height, x, x + thickness, rule_strength)

    background = make_background(height, width, aug, rng)
    ink = np.array(aug.ink_colour, dtype=np.float32)
    image = background + (ink - background) * alpha[..., None]
    if aug.inverted:
        image = 255.0 - image
    return Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8), "RGB")


def make_background(height: int, width: int, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """float32 [height, width, 3] background of kind solid, gradient, noise or paper."""
    colour = np.array(aug.background_colour, dtype=np.float32)
    if aug.background == "gradient":
        angle = math.radians(aug.gradient_angle)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = xs * math.cos(angle) + ys * math.sin(angle)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
        far = np.array(aug.background_colour2, dtype=np.float32)
        return colour + (far - colour) * ramp[..., None]
    background = np.broadcast_to(colour, (height, width, 3)).astype(np.float32)
    if aug.background == "noise":
        grain = rng.normal(0.0, aug.texture_strength, (height, width)).astype(np.float32)
        return background + grain[..., None]
    if aug.background == "paper":
        # Blotchy low-frequency shading plus fine grain: a cheap stand-in for fibres and stains.
        coarse = rng.normal(0.0, 1.0, (max(2, height // 8 + 2), max(2, width // 8 + 2))).astype(np.float32)
        blotches = np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.Resampling.BICUBIC))
        grain = rng.normal(0.0, 0.25, (height, width)).astype(np.float32)
        texture = (blotches + grain) * (aug.texture_strength * 0.6)
        return background - np.abs(texture)[..., None]
    return background


# --- capture --------------------------------------------------------------------------------------

def degrade(image: Image.Image, aug: Augmentation, rng: np.random.Generator, text_height: int) -> Image.Image:
    """Camera and scanner artefacts, in capture order: optics, sensor resolution, sensor noise, codec.

    Blur and resolution are relative to `text_height` (the ink's height in px), so their effect on
    legibility does not depend on the font size the sample was drawn at.
    """
    if aug.blur_radius:
        image = image.filter(ImageFilter.GaussianBlur(aug.blur_radius * text_height / BLUR_REFERENCE_HEIGHT))
    if aug.lowres_scale < 1.0:
        # Text is never captured below MIN_CAPTURE_HEIGHT rows: under that, a person cannot read it.
        scale = max(aug.lowres_scale, min(1.0, MIN_CAPTURE_HEIGHT / text_height))
        small = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(small, Image.Resampling.BOX).resize(image.size, Image.Resampling.BILINEAR)
    if aug.noise_sigma:
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0.0, aug.noise_sigma, pixels.shape[:2]).astype(np.float32)[..., None]
        image = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8), "RGB")
    if aug.jpeg_quality:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=aug.jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image
