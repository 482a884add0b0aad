import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from runner.charset import DIGITS
from runner.data.config import DataConfig
from runner.data.fonts import FontWarning, discover_fonts, families, package_font_path, split_held_out
from runner.data.generate import plan_splits
from runner.data.render import draw_text_mask
from runner.errors import ConfigError, DataError

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def ink(mask) -> np.ndarray:
    return np.asarray(mask) > 127


def missing_char(font) -> str:
    """A character the font has no glyph for, so drawing it shows .notdef."""
    cmap = TTFont(font.path, fontNumber=font.index, lazy=True).getBestCmap()
    return next(chr(code) for code in (0x4E00, 0xAC00, 0x0F40, 0x10D0, 0xE000) if code not in cmap)


def test_package_font_is_found_with_its_variation_axes():
    fonts = discover_fonts(use_system_fonts=False)
    assert [font.source for font in fonts] == ["package"]
    assert fonts[0].family == "Noto Sans Khmer"
    assert {axis.tag for axis in fonts[0].axes} == {"wght", "wdth"}
    light = draw_text_mask(DIGITS, fonts[0], 32, variation={"wght": 200, "wdth": 100})
    bold = draw_text_mask(DIGITS, fonts[0], 32, variation={"wght": 900, "wdth": 100})
    assert ink(bold).sum() > 1.5 * ink(light).sum()


@pytest.mark.parametrize("font", discover_fonts(), ids=lambda font: font.name)
def test_every_discovered_font_draws_every_digit_not_the_notdef_box(font):
    notdef = ink(draw_text_mask(missing_char(font), font, 32))
    for digit in DIGITS:
        glyph = ink(draw_text_mask(digit, font, 32))
        assert glyph.sum() > 20, f"{font.name} draws {digit} without ink"
        assert glyph.shape != notdef.shape or (glyph != notdef).any(), f"{font.name} draws {digit} as .notdef"


def test_no_usable_font_is_an_error_that_says_what_to_install(tmp_path):
    with pytest.raises(DataError, match="pip install fontpkg-noto-sans-khmer.*fonts-khmeros.*data.fonts_dir"):
        discover_fonts(tmp_path, use_package_font=False, use_system_fonts=False)


def test_missing_fonts_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match="data.fonts_dir"):
        discover_fonts(tmp_path / "nope", use_package_font=False, use_system_fonts=False)


@pytest.mark.skipif(not DEJAVU.is_file(), reason="needs a Latin font (DejaVu Sans)")
def test_font_without_khmer_digits_is_skipped_with_a_warning(tmp_path):
    shutil.copy(DEJAVU, tmp_path / DEJAVU.name)
    shutil.copy(package_font_path(), tmp_path / "khmer.ttf")
    with pytest.warns(FontWarning, match="DejaVuSans.ttf.*no glyphs for Khmer digits"):
        fonts = discover_fonts(tmp_path, use_package_font=False, use_system_fonts=False)
    assert [font.name for font in fonts] == ["khmer.ttf"]


def test_system_fonts_without_khmer_are_ignored_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FontWarning)
        fonts = discover_fonts()
    assert fonts and all(font.family for font in fonts)


def test_held_out_families_leave_training_fonts_and_get_their_own_split():
    fonts = discover_fonts()
    families = sorted({font.family for font in fonts})
    if len(families) < 2:
        pytest.skip("needs two font families (apt-get install fonts-khmeros)")
    cfg = DataConfig(held_out_fonts=[families[-1]])
    plans = {plan.name: plan for plan in plan_splits(cfg, fonts)}
    for name in ("val_unseen_fonts", "val_hard_unseen_fonts"):
        assert {font.family for font in plans[name].fonts} == {families[-1]}
    assert plans["val_hard_unseen_fonts"].augment == plans["val_hard"].augment
    for name in ("train", "val", "val_hard"):
        assert families[-1] not in {font.family for font in plans[name].fonts}


def test_holding_out_the_only_font_warns_and_holds_out_a_region_of_its_axes_instead():
    fonts = discover_fonts(use_system_fonts=False)
    with pytest.warns(UserWarning, match="covers every installed font family"):
        plans = plan_splits(DataConfig(held_out_fonts=["Noto Sans Khmer"]), fonts)
    assert [plan.name for plan in plans] == ["train", "val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"]
    assert plans[0].fonts == fonts and plans[3].augment.font_width == [62.5, 70.5]


def test_train_fonts_picks_the_training_families_and_holds_out_others():
    fonts = discover_fonts()
    names = families(fonts)
    if len(names) < 3:
        pytest.skip("needs three font families (apt-get install fonts-khmeros)")
    cfg = DataConfig(train_fonts=[names[0].upper()], held_out_fonts=[names[1]])
    plans = {plan.name: plan for plan in plan_splits(cfg, fonts)}
    for name in ("train", "val", "val_hard"):
        assert {font.family for font in plans[name].fonts} == {names[0]}
    assert {font.family for font in plans["val_unseen_fonts"].fonts} == {names[1]}
    everything = {plan.name: plan for plan in plan_splits(DataConfig(held_out_fonts=[names[1]]), fonts)}
    assert {font.family for font in everything["train"].fonts} == set(names) - {names[1]}


def test_train_fonts_refuses_families_that_are_not_installed_or_held_out():
    fonts = discover_fonts()
    with pytest.raises(ConfigError, match=r"data.train_fonts .*not installed: \['Comic Khmer'\]; installed: .*Noto Sans"):
        split_held_out(fonts, [], ["Noto Sans Khmer", "Comic Khmer"])
    with pytest.raises(ConfigError, match=r"both name \['Noto Sans Khmer'\]"):
        split_held_out(fonts, ["Noto Sans Khmer"], ["Noto Sans Khmer"])
