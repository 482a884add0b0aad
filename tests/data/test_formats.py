"""The texts the generator draws (runner/data/formats.py)."""

import datetime
import re
from collections import Counter

import numpy as np
import pytest
from omegaconf import OmegaConf

from runner.charset import DIGITS
from runner.data.config import DataConfig
from runner.data.formats import (ASCII_DIGITS, DEFAULT_MIX, SHORTEST, NumberFormat, format_chars, mix_shares,
                                 sample_text)
from runner.errors import ConfigError
from runner.schema import CONF_DIR

TO_ASCII = str.maketrans(DIGITS, ASCII_DIGITS)
D = r"\d"
PATTERNS = {  # on the text with every digit written in ASCII
    NumberFormat.digits: rf"{D}+",
    NumberFormat.price: rf"[1-9]{D}{{0,2}}(,{D}{{3}})* ?\u17db|[1-9]{D}* ?\u17db|\$[1-9]{D}{{0,2}}(,{D}{{3}})*\.{D}{D}",
    NumberFormat.decimal: rf"(0|[1-9]{D}*)\.{D}{{1,3}}",
    NumberFormat.date: rf"(?P<d>{D}{D})(?P<sep>[/-])(?P<m>{D}{D})(?P=sep)(?P<y>{D}{D}({D}{D})?)",
    NumberFormat.time: rf"(?P<h>{D}{D}):(?P<min>{D}{D})",
    NumberFormat.phone: rf"0{D}{{2}} {D}{{3}} {D}{{3,4}}|\+855 [1-9]{D} {D}{{3}} {D}{{3,4}}|0{D}{{8,9}}",
    NumberFormat.percent: rf"(0|[1-9]{D}{{0,2}})(\.{D})?%",
    NumberFormat.id: rf"{D}+|{D}{{3,4}}([- ]{D}{{1,4}})+",
}


def old_random_text(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    """render.random_text as it was before formats: the default mix must draw exactly this."""
    length = int(rng.integers(min_length, max_length + 1))
    return "".join(DIGITS[int(i)] for i in rng.integers(0, 10, length))


def draws(mix, max_length, count=400, seed=0, ascii_share=0.0, min_length=1):
    rng = np.random.default_rng(seed)
    return [sample_text(rng, mix, min_length, max_length, ascii_share) for _ in range(count)]


@pytest.mark.parametrize("fmt", list(NumberFormat))
@pytest.mark.parametrize("max_length", [8, 10, 12, 16, 20])
def test_every_format_writes_texts_that_parse_back_and_fit(fmt, max_length):
    if SHORTEST[fmt] > max_length:
        with pytest.raises(ConfigError, match=f"data.max_length is {max_length}; raise data.max_length to"):
            DataConfig(formats={fmt.value: 1.0}, max_length=max_length).validate()
        return
    for text, drawn in draws({fmt.value: 1.0}, max_length):
        assert drawn == fmt and 1 <= len(text) <= max_length, text
        assert set(text) <= format_chars({fmt.value: 1.0}) and not set(text) & set(ASCII_DIGITS), text
        match = re.fullmatch(PATTERNS[fmt], text.translate(TO_ASCII))
        assert match, f"{fmt}: {text!r}"
        if fmt == NumberFormat.date:
            year = match["y"] if len(match["y"]) == 4 else f"20{match['y']}"
            datetime.date(int(year), int(match["m"]), int(match["d"]))  # a valid date
            assert len(match["y"]) == (4 if max_length >= 10 else 2)
        if fmt == NumberFormat.time:
            assert 0 <= int(match["h"]) < 24 and 0 <= int(match["min"]) < 60
        if fmt == NumberFormat.phone:
            digits = re.sub(r"\D", "", text.translate(TO_ASCII))
            national = "0" + digits[3:] if text.startswith("+") else digits
            assert national[0] == "0" and len(national) in (9, 10), text


def test_formats_draw_their_variants():
    texts = {fmt: [text for text, _ in draws({fmt.value: 1.0}, 20, 600)] for fmt in NumberFormat}
    assert not any(" " in t for t in texts[NumberFormat.price])  # a gap before ៛ is typography, not a character
    assert any(re.fullmatch(r"\S+\u17db", t) and "," in t for t in texts[NumberFormat.price])
    assert any(t.startswith("$") for t in texts[NumberFormat.price])
    assert {"/", "-"} <= set("".join(texts[NumberFormat.date]))
    assert any(t.startswith("+៨៥៥ ") for t in texts[NumberFormat.phone])
    assert {len(t) for t in texts[NumberFormat.phone] if not t.startswith("+")} == {11, 12}
    assert any("." in t for t in texts[NumberFormat.percent]) and any("." not in t for t in texts[NumberFormat.percent])
    ids = texts[NumberFormat.id]
    assert max(map(len, ids)) == 20 and min(map(len, ids)) >= 6 and any("-" in t for t in ids) and \
        any(" " in t for t in ids)


def test_mix_weights_are_respected():
    mix = {"digits": 0.5, "price": 0.2, "date": 0.3, "time": 0.0}
    counts = Counter(fmt for _, fmt in draws(mix, 12, count=5000))
    assert set(counts) == {"digits", "price", "date"}
    for fmt in ("digits", "price", "date"):
        assert abs(counts[fmt] / 5000 - mix[fmt]) < 0.03, counts


def test_the_default_mix_draws_exactly_what_the_generator_drew_before_formats():
    for seed in range(20):
        for min_length, max_length in ((1, 8), (3, 3), (2, 20)):
            old, new = np.random.default_rng([seed, 7]), np.random.default_rng([seed, 7])
            for _ in range(5):
                assert sample_text(new, DEFAULT_MIX, min_length, max_length) == \
                    (old_random_text(old, min_length, max_length), NumberFormat.digits)
            assert new.random() == old.random(), "and no extra draws: the font, size and augment draws keep theirs"
    # a zero weight or another scale draws the same texts
    assert draws({"digits": 3.0, "price": 0.0}, 8) == draws(DEFAULT_MIX, 8)
    assert mix_shares({"digits": 3.0, "price": 0.0}) == mix_shares(DEFAULT_MIX) == {"digits": 1.0}


def test_a_share_is_written_in_ascii_digits_one_script_per_number():
    texts = [text for text, _ in draws({"digits": 1.0, "price": 1.0}, 12, count=4000, ascii_share=0.3,
                                       min_length=4)]
    ascii = [text for text in texts if set(text) & set(ASCII_DIGITS)]
    mixed = [text for text in ascii if set(text) & set(DIGITS)]
    assert abs(len(ascii) / len(texts) - 0.3) < 0.03
    assert not mixed  # ASCII 0 and Khmer ០ look alike: only the number's other digits tell them apart
    assert not any(set(text) & set(ASCII_DIGITS) for text, _ in draws(DEFAULT_MIX, 12, ascii_share=0.0))


def test_format_chars_hold_every_character_a_mix_writes():
    everything = {fmt.value: 1.0 for fmt in NumberFormat}
    written = set("".join(text for text, _ in draws(everything, 20, count=3000, ascii_share=0.3)))
    assert written <= format_chars(everything, 0.3)
    assert format_chars(everything, 0.3) == set(DIGITS + ASCII_DIGITS + " ,./-:\u17db$%+")
    assert format_chars(DEFAULT_MIX, 0.0) == set(DIGITS)
    assert format_chars({"time": 1.0, "digits": 0.0}, 0.5) == set(DIGITS + ASCII_DIGITS + ":")


@pytest.mark.parametrize("formats, message", [
    ({"digits": 1.0, "prices": 1.0}, r"data.formats has unknown formats \['prices'\]; the formats are digits, price"),
    ({"digits": -1.0}, "data.formats weights must be >= 0"),
    ({"digits": 0.0, "price": 0.0}, "data.formats needs at least one format with a positive weight"),
    ({"digits": 0.0, "date": 1.0}, "draws date, whose shortest texts have 8 .* raise data.max_length to 8"),
])
def test_bad_mixes_name_the_key(formats, message):
    with pytest.raises(ConfigError, match=message):
        DataConfig(formats=formats, max_length=6).validate()


def test_ascii_share_must_be_a_share():
    with pytest.raises(ConfigError, match=r"data.ascii_digits must be a share in \[0, 1\]"):
        DataConfig(ascii_digits=1.5).validate()


def test_the_numbers_experiment_holds_a_valid_realistic_mix():
    experiment = OmegaConf.load(CONF_DIR / "experiment" / "numbers.yaml")
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), experiment.data))
    cfg.validate()
    assert cfg.max_length == 20 and 0 < cfg.ascii_digits < 0.5
    assert cfg.image_width // 4 >= 2 * cfg.max_length + 1, "room for CTC's blanks (runner/models/ctc.py)"
    shares = mix_shares(cfg.formats)
    assert set(shares) == set(NumberFormat) and abs(sum(shares.values()) - 1) < 1e-9
    assert "- override /charset: numbers" in (CONF_DIR / "experiment" / "numbers.yaml").read_text(encoding="utf-8")
