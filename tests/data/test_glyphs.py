import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from runner.charset import DIGITS
from runner.data.config import CONF_DIR, GLYPH_KNOBS, AugmentConfig, DataConfig, augment_preset, register_data_configs
from runner.data.fonts import discover_fonts, fallback_font, families
from runner.data.generate import generator_settings, plan_splits, read_metadata, write_dataset
from runner.data.glyphs import (OPEN_FOUR_FAMILIES, GlyphStyle, change_stroke, draw_glyph, face_with_variation,
                                 nib_sweep, pen_variation, sample_allographs, sample_glyph_style)
from runner.data.render import draw_text_mask, render_sample, sample_spec
from runner.errors import ConfigError

LEVERS = {"glyph_scale": dict(glyph_scale=[0.8, 1.2]), "glyph_width": dict(glyph_width=[1.3, 1.6]),
          "glyph_rotation": dict(glyph_rotation=10.0),
          "baseline_jitter": dict(baseline_jitter=0.1), "glyph_spacing_jitter": dict(glyph_spacing_jitter=0.1),
          "stroke": dict(stroke_p=1.0, stroke_radius=2), "elastic": dict(elastic_p=1.0, elastic_strength=0.1),
          "mix_fonts": dict(mix_fonts_p=1.0), "nib": dict(nib_p=1.0, nib_width=0.2)}
ALL_ON = {key: value for lever in LEVERS.values() for key, value in lever.items()}


@pytest.fixture(scope="module")
def fonts():
    return discover_fonts()


def mask_of(spec, glyphs=None) -> np.ndarray:
    return np.asarray(draw_text_mask(spec.text, spec.font, spec.font_size, spec.letter_spacing, spec.variation,
                                     glyphs))


def spec_for(seed: int, fonts, cfg: AugmentConfig, text: str = "១២៣៤៥"):
    return sample_spec(np.random.default_rng(seed), text, fonts, cfg)


@pytest.mark.parametrize("lever", sorted(LEVERS))
def test_each_lever_changes_the_mask_when_on(fonts, lever):
    if lever == "mix_fonts" and len(families(fonts)) < 2:
        pytest.skip("needs two font families (apt-get install fonts-khmeros)")
    cfg = AugmentConfig(**LEVERS[lever])
    cfg.validate()
    spec = spec_for(1, fonts, cfg)
    assert not spec.glyphs.is_neutral()
    on, off = mask_of(spec, spec.glyphs), mask_of(spec)
    assert on.shape != off.shape or (on != off).any()
    assert (on > 127).sum() > 20  # still ink to read


def test_levers_off_draw_nothing_and_change_nothing(fonts):
    off = AugmentConfig().without_glyphs()
    assert off.allograph_p == 0 < AugmentConfig().allograph_p  # the one lever on by default
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    assert sample_glyph_style(rng, 5, off).is_neutral()
    assert sample_allographs(rng, "១៤២៤", fallback_font(), off) == ()
    assert rng.bit_generator.state == state  # so samples made before the levers existed keep every draw
    spec = spec_for(2, fonts, off)
    assert spec.glyphs.is_neutral() and "glyphs" not in spec.record()
    assert (mask_of(spec, spec.glyphs) == mask_of(spec)).all()
    assert (mask_of(spec, GlyphStyle()) == mask_of(spec)).all()


def test_levers_draw_after_everything_else_so_the_rest_of_the_sample_stays(fonts):
    plain, varied = spec_for(4, fonts, AugmentConfig()), spec_for(4, fonts, AugmentConfig(**ALL_ON))
    assert (plain.font, plain.font_size, plain.variation, plain.augmentation) == \
        (varied.font, varied.font_size, varied.variation, varied.augmentation)


def test_records_carry_the_sampled_values(fonts):
    spec = spec_for(5, fonts, AugmentConfig(**ALL_ON))
    record = spec.record()["glyphs"]
    for key in ("scales", "widths", "rotations", "baseline", "spacing"):
        assert record[key] == [round(value, 3) for value in getattr(spec.glyphs, key)]
        assert len(record[key]) == len(spec.text)
    assert abs(record["stroke"]) in (1, 2) and 0.05 <= record["elastic"] <= 0.1
    if len(families(fonts)) > 1:
        assert record["mixed_font"] != spec.font.family and any(record["mixed"])


def test_same_key_gives_the_same_bytes(fonts):
    cfg = AugmentConfig(**ALL_ON)
    first, spec = render_sample([7, 0, 3], fonts, cfg, 4, 8)
    again, _ = render_sample([7, 0, 3], fonts, cfg, 4, 8)
    other, _ = render_sample([7, 0, 4], fonts, cfg, 4, 8)
    assert first.tobytes() == again.tobytes() and first.tobytes() != other.tobytes()
    assert not spec.glyphs.is_neutral()


def test_mixed_glyphs_come_from_another_family_of_the_split(fonts):
    if len(families(fonts)) < 2:
        pytest.skip("needs two font families (apt-get install fonts-khmeros)")
    split = [font for font in fonts if font.family in families(fonts)[:2]]
    for seed in range(10):
        spec = spec_for(seed, split, AugmentConfig(mix_fonts_p=0.5))
        if spec.glyphs.mixed_font is not None:
            assert spec.glyphs.mixed_font in split and spec.glyphs.mixed_font.family != spec.font.family


def test_glyph_width_stretches_each_glyph_on_its_own(fonts):
    spec = spec_for(6, fonts, AugmentConfig(), text="៣៣")
    plain = np.asarray(draw_text_mask(spec.text, spec.font, 40, 0.3, spec.variation, GlyphStyle(scales=(1.0, 1.0))))
    wide = np.asarray(draw_text_mask(spec.text, spec.font, 40, 0.3, spec.variation, GlyphStyle(widths=(2.0, 1.0))))
    assert wide.shape[0] == plain.shape[0]  # the height stays
    # the first glyph is twice as wide and pushes the second one along: the number grows by one glyph's width
    assert 1.3 * plain.shape[1] < wide.shape[1] < 1.7 * plain.shape[1]
    columns = (wide > 127).any(axis=0)
    gap = np.flatnonzero(~columns[np.argmax(columns):])[0]  # the first glyph's inked width
    single = (np.asarray(draw_text_mask(spec.text[0], spec.font, 40, 0.0, spec.variation)) > 127).any(axis=0).sum()
    assert gap == pytest.approx(2 * single, rel=0.1)


def test_erosion_that_would_wipe_out_the_ink_is_skipped(fonts):
    thin = draw_text_mask(DIGITS[1], fonts[0], 8)
    eroded = np.asarray(change_stroke(thin, -4))
    assert (eroded > 127).sum() > 0.45 * (np.asarray(thin) > 127).sum()
    bold = np.asarray(change_stroke(thin, 1))
    assert (bold > 127).sum() > (np.asarray(thin) > 127).sum()


def test_default_settings_and_cache_key_hold_no_glyph_knob():
    # The default dataset keeps the bytes and cache key it had before the glyph levers existed.
    settings = generator_settings(DataConfig())
    old_knobs = {name: value for name, value in dataclasses.asdict(AugmentConfig()).items() if name not in GLYPH_KNOBS}
    assert settings["augment"] == old_knobs and "train_fonts" not in settings
    assert set(GLYPH_KNOBS) <= set(generator_settings(DataConfig(augment=AugmentConfig(elastic_p=0.5)))["augment"])


def test_validation_bytes_do_not_depend_on_the_glyph_levers(tmp_path):
    # A lever switched on for the validation splits only (they drop it) leaves those splits' bytes alone.
    small = dict(train_size=4, val_size=4, hard_val_size=3, held_out_fonts=[])
    plain = write_dataset(DataConfig(**small), 9, tmp_path / "plain", workers=1, progress=False)
    varied = write_dataset(DataConfig(**small, augment=AugmentConfig(glyph_rotation=10.0)), 9, tmp_path / "varied",
                           workers=1, progress=False)
    for split in ("val", "val_hard"):
        for index in range(3):
            name = f"{split}/{index:06d}.png"
            assert (plain.parent / name).read_bytes() == (varied.parent / name).read_bytes()
    metadata = read_metadata(varied)
    assert "rotations" in metadata["train"][0]["glyphs"] and not metadata["train"][0].get("hard")
    assert not any("glyphs" in record for split in ("val", "val_hard") for record in metadata[split])


def test_validation_splits_draw_fonts_as_they_are():
    fonts = discover_fonts()
    cfg = DataConfig(augment=AugmentConfig(**ALL_ON), hard_augment=dataclasses.replace(augment_preset("heavy"),
                                                                                       **ALL_ON))
    plans = {plan.name: plan for plan in plan_splits(cfg, fonts)}
    assert plans["train"].augment.glyph_rotation == plans["train"].hard_augment.glyph_rotation == 10.0
    for name, plan in plans.items():
        if name != "train":
            assert plan.augment == plan.augment.without_glyphs() and plan.augment.allograph_p == 0
    default = {plan.name: plan for plan in plan_splits(DataConfig(), fonts)}
    assert default["train"].augment.allograph_p == default["train"].hard_augment.allograph_p == 0.5
    assert default["val"].augment.allograph_p == default["val_unseen_fonts"].augment.allograph_p == 0


@pytest.mark.parametrize("key, value, message", [("glyph_scale", [0.2, 1.0], "0.5..1.5"),
                                                 ("glyph_width", [1.0, 3.0], "0.5..2"),
                                                 ("glyph_rotation", 90.0, "0..30"), ("baseline_jitter", 0.5, "0..0.3"),
                                                 ("stroke_radius", 9, "1..4"), ("elastic_strength", 1.0, "0..0.2"),
                                                 ("mix_fonts_p", 1.5, "probability"),
                                                 ("allograph_p", -0.1, "probability"),
                                                 ("nib_width", 0.5, "0..0.3")])
def test_bad_glyph_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=f"data.augment.{key} must .*{message}"):
        AugmentConfig(**{key: value}).validate()


def test_glyph_preset_is_heavy_plus_the_levers():
    register_data_configs(ConfigStore.instance())
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("generate", overrides=["+data/augment@data.hard_augment=glyph"])
    finally:
        GlobalHydra.instance().clear()
    glyph, heavy = augment_preset("glyph"), augment_preset("heavy")
    assert OmegaConf.to_object(cfg.data.hard_augment) == glyph
    assert glyph.without_glyphs() == heavy.without_glyphs() and glyph != heavy
    assert heavy.allograph_p == glyph.allograph_p > 0  # on by default, heavy included
    assert all(getattr(glyph, name) != getattr(AugmentConfig(), name) for name in GLYPH_KNOBS
               if name not in ("stroke_radius", "elastic_strength", "nib_width", "allograph_p"))


@pytest.fixture(scope="module")
def pip_font():
    return fallback_font()  # the pip Noto Sans Khmer: variable, with the open ៤


@pytest.mark.parametrize("variation", [{"wght": 100.0, "wdth": 62.5}, {"wght": 400.0, "wdth": 100.0},
                                       {"wght": 900.0, "wdth": 100.0}, {"wght": 900.0, "wdth": 62.5}])
def test_allograph_is_the_five_without_its_knot(pip_font, variation):
    face = face_with_variation(pip_font, 96, variation)
    four, _, _, _ = draw_glyph(DIGITS[4], face, 96)
    five, _, _, _ = draw_glyph(DIGITS[5], face, 96)
    common, _, _, _ = draw_glyph(DIGITS[4], face, 96, other_form=True)
    four, five, common = (np.asarray(layer) > 127 for layer in (four, five, common))
    assert common.shape == five.shape
    rows, columns = np.flatnonzero(five.any(axis=1)), np.flatnonzero(five.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1], columns[0], columns[-1]
    height, width = bottom - top + 1, right - left + 1
    knot = (slice(top, top + height // 5), slice(left + width // 3, left + width // 2))
    assert five[knot].sum() > 0 and common[knot].sum() == 0  # the knot is gone
    lower = slice(top + height * 2 // 3, bottom + 1)
    assert (common[lower] == five[lower]).all()  # the bowl and the inner bracket are the ៥'s
    stroke = (slice(top, top + height // 5), slice(right - width // 8, right + 1))
    assert common[stroke].sum() == five[stroke].sum() > 0  # and so is the tall stroke on the right
    shared = min(common.shape[1], four.shape[1])  # both drawn from the same origin
    assert (common[:, :shared] != four[:, :shared]).sum() > 0.2 * four.sum()  # not the font's own ៤


def test_allograph_draws_only_for_open_four_families(fonts, pip_font):
    cfg = AugmentConfig(allograph_p=1.0)
    cfg.validate()
    assert sample_allographs(np.random.default_rng(0), "១៤២៤", pip_font, cfg) == (False, True, False, True)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sample_allographs(rng, "១២៣", pip_font, cfg) == ()  # no ៤: nothing drawn from the rng
    assert sample_allographs(rng, "១៤២៤", pip_font, AugmentConfig(allograph_p=0.0)) == ()
    assert rng.bit_generator.state == state
    for font in fonts:
        if font.family not in OPEN_FOUR_FAMILIES:  # their ៥ is their own looped ៤ plus a hook
            assert sample_allographs(np.random.default_rng(0), "៤", font, cfg) == ()
    spec = sample_spec(np.random.default_rng(4), "៤៥៤", [pip_font], cfg)
    assert spec.glyphs.allographs == (True, False, True) and spec.record()["glyphs"] == {"allographs": [1, 0, 1]}
    on, off = mask_of(spec, spec.glyphs), mask_of(spec)
    assert on.shape != off.shape or (on != off).any()


def test_nib_draws_the_thinnest_weight_swept_along_the_pen(pip_font):
    assert pen_variation(pip_font, {"wght": 700.0, "wdth": 80.0}, GlyphStyle(nib=0.1)) == {"wght": 100.0, "wdth": 80.0}
    assert pen_variation(pip_font, {"wght": 700.0}, GlyphStyle()) == {"wght": 700.0}
    cross = Image.new("L", (60, 60))
    ImageDraw.Draw(cross).line([(10, 30), (50, 30)], fill=255, width=1)  # hairlines 41 px long
    ImageDraw.Draw(cross).line([(30, 10), (30, 50)], fill=255, width=1)
    flat, upright = (np.asarray(nib_sweep(cross, 0.25, angle)) > 127 for angle in (0.0, 90.0))
    column = np.flatnonzero(upright.any(axis=0))[-1] - 2  # through the horizontal hairline only (same padding)
    assert flat[:, column].sum() == 1  # a pen held along a stroke leaves it a hairline
    assert upright[:, column].sum() >= 9  # across it, the stroke gets as thick as the pen is long (10 px)
    cfg = AugmentConfig(nib_p=1.0, nib_width=0.2)
    spec = spec_for(5, [pip_font], cfg)
    assert 0.1 <= spec.glyphs.nib <= 0.2 and spec.record()["glyphs"]["nib"][0] == round(spec.glyphs.nib, 4)
