"""runner/charset.py: the presets, encode/decode/validate, value(), stored signatures and the config group."""

import pytest
from hydra.errors import ConfigCompositionException

from runner.charset import (BLANK, CHARSETS, DIGITS, EOS, PAD, SOS, SPECIAL_TOKENS, Charset, CharsetName,
                            charset_from_stored, config_charset)
from runner.config import compose_config
from runner.errors import CheckpointError, ConfigError, DataError
from runner.stored import upgrade

DIGITS_CHARSET, NUMBERS = CHARSETS["digits"], CHARSETS["numbers"]


def test_digits_is_the_vocabulary_every_model_before_charsets_had():
    assert DIGITS_CHARSET.tokens == SPECIAL_TOKENS + tuple("០១២៣៤៥៦៧៨៩")
    assert (PAD, SOS, EOS, BLANK) == (0, 1, 2, 3) and DIGITS_CHARSET.vocab_size == 14
    assert DIGITS_CHARSET.index_to_char == {4 + i: char for i, char in enumerate(DIGITS)}


def test_numbers_keeps_the_digit_ids_and_adds_ascii_digits_and_separators_in_a_fixed_order():
    assert NUMBERS.vocab_size == 34
    assert [NUMBERS.char_to_index[char] for char in DIGITS] == list(range(4, 14))
    assert "".join(NUMBERS.index_to_char[i] for i in range(14, 24)) == "0123456789"
    assert "".join(NUMBERS.index_to_char[i] for i in range(24, 34)) == " ,./-:\u17db$%+"


@pytest.mark.parametrize("text", ["១២,៥០០៛", "$12.50", "12/03/2024", "+855 12-345", "៥០%", "0"])
def test_numbers_round_trip(text):
    ids = NUMBERS.encode(text)
    assert len(ids) == len(text) and all(4 <= i < 34 for i in ids)
    assert NUMBERS.decode(ids) == text
    assert NUMBERS.decode([SOS, *ids, EOS, PAD, 7]) == text  # stops at EOS
    assert NUMBERS.decode([BLANK, *ids, PAD]) == text  # skips PAD and BLANK


def test_value_writes_khmer_digits_as_ascii_and_keeps_everything_else():
    assert NUMBERS.value("១២,៥០០៛") == "12,500៛"
    assert DIGITS_CHARSET.value("០០៧") == "007"
    assert NUMBERS.value("$ 1.5%") == "$ 1.5%"


def test_validate_text_names_the_source_every_offending_character_and_a_fix():
    with pytest.raises(DataError, match=r"^labels.tsv line 12: label '12a' has characters '1' \(U\+0031\), '2' "
                                        r"\(U\+0032\), 'a' \(U\+0061\) not in charset 'digits' \(the ten Khmer digits"):
        DIGITS_CHARSET.validate_text("12a", "labels.tsv line 12")
    with pytest.raises(DataError, match=r"Khmer '១២'; use charset=numbers, which has them"):
        DIGITS_CHARSET.validate_text("12", "x")
    with pytest.raises(DataError, match="more than max_length=3"):
        NUMBERS.validate_text("១,០០០", "x", max_length=3)
    with pytest.raises(DataError, match="empty"):
        NUMBERS.validate_text("", "x")


def test_a_stored_signature_gives_the_preset_back():
    for charset in CHARSETS.values():
        assert charset_from_stored(charset.signature(), "model.pt") is charset


@pytest.mark.parametrize("stored", [
    {"tokens": ["<pad>", "a", "b"]},
    {"tokens": list(NUMBERS.tokens[:-1])},  # a prefix of a preset is another vocabulary
    {**DIGITS_CHARSET.signature(), "blank": 0},
    7, None, "digits",
])
def test_an_unknown_stored_charset_is_refused_naming_the_file(stored):
    with pytest.raises(CheckpointError, match=r"^model.pt was trained with a different charset .*digits: .*numbers: "):
        charset_from_stored(stored, "model.pt")


def test_a_checkpoint_from_before_charsets_reads_as_digits():
    old = {"model": {}, "preprocess": {"height": 32, "width": 128}}  # format v0: no charset
    upgrade(old, "old.pt", unversioned=0)
    assert charset_from_stored(old["charset"], "old.pt") is DIGITS_CHARSET


def test_a_charset_needs_distinct_characters():
    with pytest.raises(ValueError, match="no repeats"):
        Charset("twice", "11")


def test_the_charset_group_composes_and_refuses_unknown_names():
    assert config_charset(compose_config("train")) is DIGITS_CHARSET
    cfg = compose_config("train", ["charset=numbers"])
    assert cfg.charset.name == CharsetName.numbers and config_charset(cfg) is NUMBERS
    with pytest.raises(ConfigCompositionException):
        compose_config("train", ["charset=letters"])
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config("train", ["charset.name=letters"])
    assert "digits" in str(refused.value.__cause__) and "numbers" in str(refused.value.__cause__)
    assert config_charset({}) is DIGITS_CHARSET  # a run config from before charsets


def test_an_unknown_charset_name_is_a_config_error():
    with pytest.raises(ConfigError, match="charset.name is 'letters'.*digits, numbers"):
        config_charset({"charset": {"name": "letters"}})
