"""The one image-to-tensor function used by training, evaluation and prediction.

Choices (in order), so a user's photo and a rendered sample look alike to the model:

1. Colour: any PIL mode becomes 8-bit grayscale. Transparent images (RGBA, LA, P with
   transparency) are composited on white, the way a viewer shows them; 16- and 32-bit images are
   scaled to 0..255; CMYK and other colour spaces go through RGB. `load_image` also applies the
   EXIF orientation, so phone photos are upright.
2. Polarity and contrast: an Otsu split gives two grey classes; the background is the class that
   covers most of the image and of its borders (text is the minority). If the ink is lighter than
   the background (light-on-dark), the image is flipped. Then each pixel becomes its distance from
   the background level relative to the 1st/99th percentile, so faint, grey or low-contrast scans
   and inverted images give the same input as black-on-white ones. (With `text_crop`, large
   photos are first reduced to TEXT_DRAFT_ROWS times the model height.)
3. Text box (`text_crop`, the default for models trained since it existed): the image is cut to
   the box holding the middle 98% of its strong ink pixels (at least half strength), plus a
   margin of TEXT_MARGIN text heights on every side, so a small number in a large, loose crop
   fills the model's rows like a tight one,
   and empty margins do not take columns from long numbers. Stray specks do not move the box; a
   table rule or underline stays inside it, as it would in a tight crop.
4. Size: resized to `height` rows keeping the aspect ratio; if that is wider than `width`, it is
   shrunk to exactly `width` columns instead (still keeping the aspect ratio) and centred
   vertically. The text sits at the left; the rest is padding. Bilinear resampling with
   `reducing_gap` keeps large photos fast and alias-free.
5. Values: float32 in [0, 1] where 0 is background (and padding) and 1 is full ink, shape
   [1, height, width]. Zero padding therefore equals background.
6. Batch width (models trained with `data.bucketing`, the default): `crop_to_content` cuts a
   batch on the right after the last column any of its images has ink in, so the model reads
   short numbers without paying for (or being trained on) columns of padding. Training, validation,
   evaluation, prediction and exported models all crop the same way.

`preprocess_image_uint8` returns the same image as uint8 [height, width] (ink = 255) for
in-memory caches; `uint8_to_array` (numpy) or `uint8_to_tensor` (torch) finishes the job, for one
image or a stack of them. Everything but the tensor functions runs on numpy and Pillow alone, so the
ONNX inference path (runner.inference.onnx) imports this module without torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from runner.errors import DataError

if TYPE_CHECKING:
    import torch

Images = TypeVar("Images", np.ndarray, "torch.Tensor")  # a numpy array in, a numpy array out; a tensor, a tensor

WHITE = 255
# Below this background-to-ink distance an image is treated as nearly blank: stretching it fully
# would turn paper grain into fake strokes.
MIN_INK_CONTRAST = 32.0


def load_image(path: str | Path) -> Image.Image:
    """Open and decode an image file; DataError naming the file if it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} does not exist; check the path (relative paths in a labels file "
                        f"or metadata.yaml are relative to that file's folder).")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:
        raise DataError(f"image file {path} is refused: {error} Scale it down (no text line needs that many "
                        f"pixels) or remove it from the inputs or labels.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"image file {path} cannot be decoded ({error}); it is corrupt, truncated or not an "
                        f"image. Replace it or remove it from the labels.") from error


def to_grayscale(image: Image.Image) -> Image.Image:
    """8-bit grayscale; transparency is composited on white."""
    mode = image.mode
    if mode == "L":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if mode.startswith("I") or mode == "F":
        pixels = np.asarray(image, dtype=np.float32)
        top = 65535.0 if mode.startswith("I;16") else float(pixels.max()) or 1.0
        low = 0.0 if mode.startswith("I;16") else min(float(pixels.min()), 0.0)
        scaled = (pixels - low) * (255.0 / max(top - low, 1e-6))
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8), "L")
    if mode in ("RGB", "1"):
        return image.convert("L")
    return image.convert("RGB").convert("L")


def fitted_size(width: int, height: int, target_height: int, target_width: int) -> tuple[int, int]:
    """(width, height) after resizing to target_height, or shrinking to target_width if wider."""
    new_width = max(1, round(width * target_height / height))
    if new_width <= target_width:
        return new_width, target_height
    return target_width, max(1, min(target_height, round(height * target_width / width)))


def otsu_threshold(pixels: np.ndarray) -> int:
    """The grey level that best splits `pixels` into two classes (Otsu, 1979)."""
    histogram = np.bincount(pixels.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(histogram * levels) / np.maximum(weight_low, 1)
    mean_high = ((histogram * levels).sum() - np.cumsum(histogram * levels)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return int(np.argmax(between)) + 1


def normalize_ink(pixels: np.ndarray) -> np.ndarray:
    """uint8 grayscale → uint8 ink strength (0 = background, 255 = ink), whatever the polarity."""
    return normalize_ink_and_mask(pixels)[0]


def normalize_ink_and_mask(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(`normalize_ink` of `pixels`, bool mask of the ink class of the Otsu split).

    The background is the class (of a two-level Otsu split) that holds most of the image and of
    its four borders, each border side weighing the same: a table rule along the top and bottom
    edges must not outvote the whole image.
    """
    dark = pixels < otsu_threshold(pixels)
    sides = (dark[0].mean(), dark[-1].mean(), dark[:, 0].mean(), dark[:, -1].mean())
    dark_background = 0.5 * dark.mean() + 0.125 * sum(sides) > 0.5
    background_pixels = pixels[dark] if dark_background else pixels[~dark]
    background = float(np.median(background_pixels)) if background_pixels.size else float(np.median(pixels))
    low, high = np.percentile(pixels, (1, 99))
    values = pixels.astype(np.float32)
    if dark_background:
        ink, span = values - background, high - background
    else:
        ink, span = background - values, background - low
    scale = 255.0 / max(float(span), MIN_INK_CONTRAST)
    return np.clip(ink * scale + 0.5, 0, 255).astype(np.uint8), ~dark if dark_background else dark


# Margin around the text box, in text heights.
TEXT_MARGIN = 0.15


def text_box(ink: np.ndarray, ink_class: np.ndarray, margin: float = TEXT_MARGIN, mass: float = 0.01
             ) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the text in an ink map (0 = background): the rows and columns
    holding the middle 1 - 2*`mass` of the ink pixels, widened by `margin` text heights on every
    side and clipped to the image. Ink pixels are those of the Otsu ink class at half strength or
    more, so background noise (even stretched hard when the text is a small part of the image) and
    paper texture do not spread the box. The whole image when it holds no ink."""
    strong = ink_class & (ink >= 128)
    rows, columns = strong.sum(axis=1, dtype=np.float64), strong.sum(axis=0, dtype=np.float64)
    total = rows.sum()
    if total <= 0:
        return 0, ink.shape[0], 0, ink.shape[1]

    def span(profile: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(profile)
        first = int(np.searchsorted(cumulative, mass * total, side="left"))
        last = int(np.searchsorted(cumulative, (1.0 - mass) * total, side="left"))
        return first, last + 1

    top, bottom = span(rows)
    left, right = span(columns)
    pad = int(np.ceil(margin * (bottom - top)))
    return (max(0, top - pad), min(ink.shape[0], bottom + pad), max(0, left - pad), min(ink.shape[1], right + pad))


# Large photos are reduced to this many times the model height before the ink map and text box.
TEXT_DRAFT_ROWS = 4


def preprocess_image_uint8(image: Image.Image, height: int = 32, width: int = 128, text_crop: bool = False
                           ) -> np.ndarray:
    """uint8 [height, width], ink = 255; see the module docstring for every step."""
    gray = to_grayscale(image)
    if text_crop:
        if gray.height > TEXT_DRAFT_ROWS * height:
            draft = fitted_size(gray.width, gray.height, TEXT_DRAFT_ROWS * height, 1 << 30)
            gray = gray.resize(draft, Image.Resampling.BILINEAR, reducing_gap=3.0)
        ink_map, ink_class = normalize_ink_and_mask(np.asarray(gray))
        top, bottom, left, right = text_box(ink_map, ink_class)
        text = Image.fromarray(np.ascontiguousarray(ink_map[top:bottom, left:right]), "L")
        size = fitted_size(text.width, text.height, height, width)
        if size != text.size:
            text = text.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        ink = np.asarray(text)
    else:  # the pipeline of models trained before text_crop: resize the whole image, then normalise
        size = fitted_size(gray.width, gray.height, height, width)
        if size != gray.size:
            gray = gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
        ink = normalize_ink(np.asarray(gray))
    out = np.zeros((height, width), dtype=np.uint8)
    top = (height - size[1]) // 2
    out[top:top + size[1], :size[0]] = ink
    return out


def uint8_to_array(pixels: np.ndarray) -> np.ndarray:
    """uint8 [H, W] from `preprocess_image_uint8` → float32 [1, H, W] in [0, 1]; a stack [B, H, W]
    → [B, 1, H, W] in one conversion."""
    return np.expand_dims(pixels.astype(np.float32) / np.float32(255.0), axis=-3)


def uint8_to_tensor(pixels: np.ndarray) -> "torch.Tensor":
    """`uint8_to_array` as a torch tensor."""
    import torch

    return torch.from_numpy(uint8_to_array(pixels))


# Width granularity of a cropped batch: the encoder's width stride (four columns per time step).
CROP_MULTIPLE = 4
# Narrowest cropped batch: 8 time steps, the encoder's smallest supported input.
MIN_CROP_WIDTH = 32


def content_widths(images: Images, multiple: int = CROP_MULTIPLE, min_width: int = MIN_CROP_WIDTH) -> Images:
    """For each image of `images` [N, ..., W] (numpy or torch): its columns up to the last one holding ink,
    rounded up to `multiple`, at least `min_width` and at most W (int64 [N], of the kind of `images`)."""
    pixels = images if isinstance(images, np.ndarray) else images.detach().cpu().numpy()
    count, width = pixels.shape[0], pixels.shape[-1]
    ink = pixels.reshape(count, math.prod(pixels.shape[1:-1]), width).max(axis=1, initial=0) > 0  # [N, W]
    used = np.where(ink.any(axis=1), width - ink[:, ::-1].argmax(axis=1), 0).astype(np.int64)
    widths = np.minimum(np.maximum(-(-used // multiple) * multiple, min_width), width)
    if isinstance(images, np.ndarray):
        return widths
    import torch

    return torch.from_numpy(widths)


def content_width(images: Images, multiple: int = CROP_MULTIPLE, min_width: int = MIN_CROP_WIDTH) -> int:
    """Columns of `images` [..., W] up to the last one holding ink in any image, rounded up to
    `multiple`, at least `min_width` and at most W (`content_widths` of them as one image)."""
    return int(content_widths(images.reshape(1, -1, images.shape[-1]), multiple, min_width)[0])


def crop_to_content(images: Images, multiple: int = CROP_MULTIPLE, min_width: int = MIN_CROP_WIDTH) -> Images:
    """A batch [B, C, H, W] (numpy or torch) without the padding columns no image needs (see `content_width`)."""
    width = content_width(images, multiple, min_width)
    if width == images.shape[-1]:
        return images
    cropped = images[..., :width]
    return np.ascontiguousarray(cropped) if isinstance(images, np.ndarray) else cropped.contiguous()


def preprocess_image(image: Image.Image, height: int = 32, width: int = 128, text_crop: bool = False
                     ) -> "torch.Tensor":
    """Any PIL image → float32 [1, height, width] model input (0 = background, 1 = ink)."""
    return uint8_to_tensor(preprocess_image_uint8(image, height, width, text_crop))
