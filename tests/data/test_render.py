"""Rendering one sample (runner/data/render.py): number formats and the fallback face."""

from pathlib import Path

import numpy as np
import pytest

from runner.data.config import AugmentConfig, augment_preset
from runner.data.fonts import discover_fonts, fallback_chars, fallback_font
from runner.data.formats import NumberFormat
from runner.data.render import draw_text_mask, render_sample, sample_key

DEBIAN_NOTO = Path("/usr/share/fonts/truetype/noto/NotoSansKhmer-Regular.ttf")
PACKAGE_FONTS = discover_fonts(use_system_fonts=False)


def ink(mask) -> np.ndarray:
    return np.asarray(mask) > 127


@pytest.fixture(scope="module")
def debian_noto():
    if not DEBIAN_NOTO.is_file():
        pytest.skip(f"needs Debian's Noto Sans Khmer ({DEBIAN_NOTO}, apt-get install fonts-noto-core)")
    if fallback_font() is None:
        pytest.skip("needs the fallback font (pip install fontpkg-noto-sans-khmer)")
    return next(font for font in discover_fonts(use_package_font=False) if font.path == str(DEBIAN_NOTO))


def test_what_debian_noto_lacks_is_drawn_with_the_fallback_face_on_the_same_baseline(debian_noto):
    assert fallback_chars(debian_noto, "$១២.៥០") == "$"
    assert fallback_chars(debian_noto, "12%") == "%12"
    assert fallback_chars(debian_noto, "១២,៥០០៛") == ""
    dollar = ink(draw_text_mask("$", debian_noto, 32))
    assert dollar.sum() > 40 and dollar.shape[0] > dollar.shape[1], "a $ glyph, not the empty .notdef box"
    # same baseline: the Khmer digit four sits on the baseline, as the fallback's ASCII 4 must
    mixed = ink(draw_text_mask("៤4", debian_noto, 32, letter_spacing=0.5))
    columns = np.flatnonzero(mixed.any(axis=0))
    gap = np.flatnonzero(np.diff(columns) > 1)[0]
    left, right = mixed[:, :columns[gap] + 1], mixed[:, columns[gap + 1]:]
    assert abs(np.flatnonzero(left.any(axis=1))[-1] - np.flatnonzero(right.any(axis=1))[-1]) <= 3


def test_a_sample_records_its_format_and_the_fallback_face(debian_noto):
    records = []
    for index in range(30):
        _, spec = render_sample(sample_key(1, "train", index), [debian_noto], augment_preset("none"), 1, 8,
                                {"digits": 0.0, "price": 1.0}, ascii_digits=0.5)
        records.append((spec.text, spec.record()))
    assert all(record["format"] == "price" for _, record in records)
    for text, record in records:
        borrowed = "$" in text or any(char in "0123456789" for char in text)
        assert record.get("fallback_font") == (fallback_font().name if borrowed else None), text
    assert any("fallback_font" in record for _, record in records)


def test_default_samples_record_neither_format_nor_fallback():
    _, spec = render_sample(sample_key(1, "train", 0), PACKAGE_FONTS, AugmentConfig(), 1, 8)
    assert spec.format == NumberFormat.digits
    assert "format" not in spec.record() and "fallback_font" not in spec.record()


def test_spaces_are_advance_only():
    font = PACKAGE_FONTS[0]
    spaced, tight = ink(draw_text_mask("១ ២", font, 32)), ink(draw_text_mask("១២", font, 32))
    assert spaced.shape[1] > tight.shape[1] + 4 and spaced.sum() == pytest.approx(tight.sum(), rel=0.1)
