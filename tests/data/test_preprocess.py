import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from runner.data.config import AugmentConfig, augment_preset
from runner.data.fonts import discover_fonts
from runner.data.preprocess import (content_width, content_widths, crop_to_content, load_image, preprocess_image,
                                    preprocess_image_uint8, uint8_to_array, uint8_to_tensor)
from runner.data.render import render_sample, sample_key
from runner.errors import DataError

FONTS = discover_fonts(use_system_fonts=False)


def rendered(index: int = 0, cfg: AugmentConfig | None = None) -> Image.Image:
    return render_sample(sample_key(3, "test", index), FONTS, cfg or augment_preset("none"), 3, 6)[0]


def as_jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue()))


def transparent(image: Image.Image) -> Image.Image:
    """Ink as opaque black pixels on a fully transparent background (like a logo PNG)."""
    alpha = ImageOps.invert(image.convert("L"))
    rgba = Image.new("RGBA", image.size, (0, 0, 0, 0))
    rgba.putalpha(alpha)
    return rgba


CONVERSIONS = {
    "L": lambda im: im.convert("L"),
    "RGB": lambda im: im.convert("RGB"),
    "RGBA": lambda im: im.convert("RGBA"),
    "RGBA-transparent": transparent,
    "LA": lambda im: im.convert("LA"),
    "P": lambda im: im.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE),
    "I;16": lambda im: Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257),
    "CMYK": lambda im: im.convert("CMYK"),
    "JPEG": as_jpeg,
    "inverted": lambda im: ImageOps.invert(im.convert("RGB")),
}


@pytest.mark.parametrize("mode", sorted(CONVERSIONS))
@pytest.mark.parametrize("size", [(37, 11), (301, 47), (90, 90)])
def test_any_mode_and_size_gives_the_same_model_input(mode, size):
    image = rendered().resize(size)
    reference = preprocess_image(image)
    tensor = preprocess_image(CONVERSIONS[mode](image))
    assert tensor.shape == (1, 32, 128) and tensor.dtype == torch.float32
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    assert tensor.max() > 0.9, "ink must reach full strength"
    assert (tensor - reference).abs().mean() < 0.03


@pytest.mark.parametrize("index", range(6))
def test_light_on_dark_reads_like_dark_on_light_under_heavy_augmentation(index):
    image = rendered(index, augment_preset("heavy"))
    normal, inverted = preprocess_image(image), preprocess_image(ImageOps.invert(image))
    assert (normal - inverted).abs().mean() < 0.05
    assert normal.mean() < 0.5, "background must map to 0 and ink to 1"


def test_background_is_zero_and_text_is_left_aligned():
    pixels = preprocess_image_uint8(rendered(), 32, 128)
    assert pixels.dtype == np.uint8
    columns_with_ink = np.flatnonzero(pixels.max(axis=0) > 128)
    assert columns_with_ink[0] < 16 and pixels[:, columns_with_ink[-1] + 2:].max() == 0


def test_too_wide_image_is_shrunk_to_the_width_and_centred_vertically():
    wide = Image.new("L", (1000, 40), 255)
    wide.paste(0, (100, 10, 900, 30))
    pixels = preprocess_image_uint8(wide, 32, 128)
    rows = np.flatnonzero(pixels.max(axis=1) > 0)
    assert pixels.shape == (32, 128)
    assert abs((rows[0] + rows[-1]) / 2 - 15.5) <= 1.5 and len(rows) <= 6


def test_blank_image_stays_blank():
    assert preprocess_image(Image.new("RGB", (50, 20), (240, 240, 240))).max() == 0


def test_load_image_names_missing_corrupt_and_non_image_files(tmp_path):
    with pytest.raises(DataError, match="missing.png does not exist"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png cannot be decoded"):
        load_image(tmp_path / "notes.png")
    buffer = io.BytesIO()
    rendered().save(buffer, format="PNG")
    (tmp_path / "truncated.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="truncated.png cannot be decoded"):
        load_image(tmp_path / "truncated.png")


def test_load_image_applies_exif_orientation(tmp_path):
    image = rendered().convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90 degrees clockwise
    image.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "photo.jpg")
    assert loaded.size == image.size


def loose(image: Image.Image, scale: int = 4) -> Image.Image:
    """The same text pasted at the left of a white canvas `scale` times as tall (a loose crop)."""
    gray = image.convert("L")
    canvas = Image.new("L", (gray.width * 2, gray.height * scale), 255)
    canvas.paste(gray, (4, gray.height * scale // 2 - gray.height // 2))
    return canvas


def ink_rows(pixels: np.ndarray) -> int:
    rows = np.nonzero((pixels >= 128).any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if len(rows) else 0


def test_text_crop_makes_small_text_in_a_loose_crop_fill_the_rows():
    image = rendered(1)
    tight = preprocess_image_uint8(image, text_crop=True)
    small = preprocess_image_uint8(loose(image), text_crop=True)
    assert ink_rows(preprocess_image_uint8(loose(image))) < 0.45 * ink_rows(tight)  # without: a quarter of the rows
    assert abs(ink_rows(small) - ink_rows(tight)) <= 3
    assert abs(int((small >= 128).any(axis=0).sum()) - int((tight >= 128).any(axis=0).sum())) <= 6  # same columns


def test_text_crop_ignores_background_noise_and_stray_specks():
    image = np.asarray(loose(rendered(2)), dtype=np.float32)
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    noisy[2:4, -4:-2] = 0  # a speck of dirt in the far corner
    clean = preprocess_image_uint8(loose(rendered(2)), text_crop=True)
    assert abs(ink_rows(preprocess_image_uint8(Image.fromarray(noisy), text_crop=True)) - ink_rows(clean)) <= 3


def test_text_crop_of_a_blank_image_is_blank():
    assert not preprocess_image_uint8(Image.new("L", (200, 60), 255), text_crop=True).any()


def ink_batch(*ink_columns: int) -> torch.Tensor:
    """A batch [B, 1, 32, 128] whose image b has ink in its first ink_columns[b] columns."""
    images = torch.zeros(len(ink_columns), 1, 32, 128)
    for row, columns in enumerate(ink_columns):
        images[row, ..., :columns] = 0.5
    return images


def test_crop_to_content_cuts_to_the_widest_ink_rounded_up_to_four():
    assert crop_to_content(ink_batch(10, 45)).shape[-1] == 48
    assert crop_to_content(ink_batch(5)).shape[-1] == 32  # never below the encoder's minimum
    assert crop_to_content(ink_batch(0)).shape[-1] == 32  # a blank image
    assert crop_to_content(ink_batch(128)).shape[-1] == 128
    images = ink_batch(10, 45)
    assert torch.equal(crop_to_content(images), images[..., :48])


def test_content_widths_measure_each_image_by_the_rule_of_the_batch_width():
    images = ink_batch(10, 45, 0, 128, 3)
    images[1, 0, 7, 60] = 0.01  # a single faint pixel further right still counts as ink
    assert content_widths(images, multiple=1, min_width=1).tolist() == [10, 61, 1, 128, 3]
    assert content_widths(images).tolist() == [32, 64, 32, 128, 32]
    assert content_width(images) == 128 and content_width(images[:3]) == 64 == content_widths(images[1:2])[0]
    pixels = (images[:, 0] * 255).to(torch.uint8)  # the uint8 [N, H, W] of a dataset's memory cache
    assert torch.equal(content_widths(pixels, multiple=1, min_width=1), content_widths(images, multiple=1, min_width=1))


def test_the_width_rule_and_the_model_input_are_the_same_on_numpy_arrays():
    images = ink_batch(10, 45, 0, 128, 3)
    array = images.numpy()
    assert isinstance(content_widths(array), np.ndarray)
    assert content_widths(array).tolist() == content_widths(images).tolist() == [32, 48, 32, 128, 32]
    assert np.array_equal(crop_to_content(array[:2]), crop_to_content(images[:2]).numpy())
    pixels = (array[:, 0] * 255).astype(np.uint8)
    assert torch.equal(uint8_to_tensor(pixels), torch.from_numpy(uint8_to_array(pixels)))
    assert torch.equal(uint8_to_tensor(pixels[0]), torch.from_numpy(pixels[0]).float().div(255).unsqueeze(0))
