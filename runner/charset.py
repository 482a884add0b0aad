"""The vocabularies (charsets) a model reads, one `Charset` each: what data, models, losses, metrics,
decoding and checkpoints agree on. A run picks one with the `charset` config group (conf/charset/).

Every charset starts with the same four special tokens, then its characters in a fixed order:

    index  token   used by
    0      <pad>   padding of target sequences (ignored by every loss and metric)
    1      <sos>   start token fed to attention decoders
    2      <eos>   end token predicted by attention decoders
    3      <blank> CTC blank
    4..    chars   digits: ០..៩ (4..13), the ten Khmer digits U+17E0..U+17E9 in numeric order
                   numbers: ០..៩ (4..13), 0..9 (14..23), then ' ,./-:៛$%+' (24..33)

A checkpoint and an export sidecar store `Charset.signature()` (the token list); `charset_from_stored` gives
the preset back by matching those tokens exactly, so indices never drift. Files from before charsets existed
(format v0) load as `digits` (runner/stored.py). Numpy-free and torch-free: the ONNX path imports it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Mapping

from runner.errors import CheckpointError, ConfigError, DataError

PAD, SOS, EOS, BLANK = 0, 1, 2, 3
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<sos>", "<eos>", "<blank>")
FIRST_CHAR: int = len(SPECIAL_TOKENS)  # index of a charset's first character
DIGITS: str = "".join(chr(code) for code in range(0x17E0, 0x17EA))  # ០១២៣៤៥៦៧៨៩
ARABIC_DIGITS = "0123456789"
ARABIC_TO_KHMER = str.maketrans(ARABIC_DIGITS, DIGITS)
KHMER_TO_ARABIC = str.maketrans(DIGITS, ARABIC_DIGITS)


def to_khmer(text: str) -> str:
    """Translate Arabic digits 0-9 to Khmer digits; other characters pass through."""
    return text.translate(ARABIC_TO_KHMER)


def to_arabic(text: str) -> str:
    """Translate Khmer digits to Arabic digits 0-9 (១២៣ -> 123); other characters pass through."""
    return text.translate(KHMER_TO_ARABIC)


class LabelOutsideCharset(DataError):
    """A label holds characters its charset does not have (the message names the source and the characters).
    `problem` is the message without its advice; `fits` names the charsets that have every character."""

    def __init__(self, problem: str, advice: str, fits: list[str]) -> None:
        super().__init__(f"{problem}; {advice}.")
        self.problem, self.fits = problem, fits


def describe_char(char: str) -> str:
    """'a' (U+0061): how an error names a character, visible even when it is a space or a control."""
    return f"{char!r} (U+{ord(char):04X})"


@dataclass(frozen=True)
class Charset:
    """A vocabulary: `name` and `chars` (token ids FIRST_CHAR.. in order) after the four special tokens."""

    name: str
    chars: str
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.chars or len(set(self.chars)) != len(self.chars):
            raise ValueError(f"charset {self.name!r} needs at least one character and no repeats, got {self.chars!r}")

    @property
    def tokens(self) -> tuple[str, ...]:
        return SPECIAL_TOKENS + tuple(self.chars)

    @property
    def vocab_size(self) -> int:
        """Classes of a model's output layer (special tokens included)."""
        return len(SPECIAL_TOKENS) + len(self.chars)

    @functools.cached_property
    def char_to_index(self) -> dict[str, int]:
        return {char: FIRST_CHAR + i for i, char in enumerate(self.chars)}

    @functools.cached_property
    def index_to_char(self) -> dict[int, str]:
        """Token id -> character, for the characters only (the seed's OCRMetrics `idx_to_char`)."""
        return {FIRST_CHAR + i: char for i, char in enumerate(self.chars)}

    def __str__(self) -> str:
        return f"charset {self.name!r} ({self.description or self.chars})"

    def validate_text(self, text: str, source: str = "text", max_length: int | None = None) -> str:
        """Return `text` if it is 1..max_length characters of this charset, else raise DataError naming `source`
        and every offending character."""
        if not isinstance(text, str):
            raise DataError(f"{source}: label must be a string of characters of {self}, got "
                            f"{type(text).__name__} {text!r}.")
        if not text:
            raise DataError(f"{source}: label is empty; every sample needs at least one character of {self}.")
        outside = [char for char in dict.fromkeys(text) if char not in self.char_to_index]
        if outside:
            shown = ", ".join(describe_char(char) for char in outside)
            hint = (f"; the Arabic digits would be Khmer {to_khmer(''.join(outside))!r}"
                    if set(outside) <= set(ARABIC_DIGITS) else "")
            fits = [name for name, other in CHARSETS.items() if name != self.name and all(c in other.chars for c in text)]
            fix = f"use charset={fits[0]}, which has them" if fits else "fix the label or drop the sample"
            raise LabelOutsideCharset(f"{source}: label {text!r} has characters {shown} not in {self}{hint}", fix, fits)
        if max_length is not None and len(text) > max_length:
            raise DataError(f"{source}: label {text!r} has {len(text)} characters, more than max_length={max_length}; "
                            f"raise data.max_length or drop the sample.")
        return text

    def encode(self, text: str, source: str = "text", max_length: int | None = None) -> list[int]:
        """Text -> token ids (no SOS/EOS); DataError for a character outside the charset (see validate_text)."""
        return [self.char_to_index[char] for char in self.validate_text(text, source, max_length)]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text, stopping at EOS and skipping PAD, SOS, BLANK and ids outside the charset."""
        chars = []
        for index in ids:
            index = int(index)
            if index == EOS:
                break
            char = self.index_to_char.get(index)
            if char is not None:
                chars.append(char)
        return "".join(chars)

    @staticmethod
    def value(text: str) -> str:
        """The text with Khmer digits written as ASCII digits, every other character unchanged (១២,៥០០៛ -> 12,500៛)."""
        return to_arabic(text)

    def signature(self) -> dict[str, Any]:
        """What a checkpoint or export sidecar stores; `charset_from_stored` reads it back."""
        return {"tokens": list(self.tokens), "pad": PAD, "sos": SOS, "eos": EOS, "blank": BLANK}


CHARSETS: dict[str, Charset] = {
    "digits": Charset("digits", DIGITS, "the ten Khmer digits ០..៩"),
    "numbers": Charset("numbers", DIGITS + ARABIC_DIGITS + " ,./-:\u17db$%+",
                       "Khmer digits ០..៩, ASCII digits 0-9 and ' ,./-:៛$%+'"),
}
DEFAULT_CHARSET = CHARSETS["digits"]


class CharsetName(StrEnum):
    """charset.name: a preset of CHARSETS."""

    digits = "digits"
    numbers = "numbers"


@dataclass
class CharsetConfig:
    """Schema of conf/charset: the vocabulary labels are written in and a model reads."""

    name: CharsetName = field(default=CharsetName.digits, metadata={"help": (
        "digits: the ten Khmer digits ០..៩ (token ids 4..13); numbers: those, then ASCII 0-9 and ' ,./-:៛$%+' "
        "(ids 14..33), for amounts, dates and phone numbers. Stored in every checkpoint.")})


def register_charset_configs(cs: Any) -> None:
    """Store the schema conf/charset/*.yaml extend."""
    cs.store(group="charset", name="_charset_schema", node=CharsetConfig)


def charset_named(name: str, key: str = "charset.name") -> Charset:
    """The preset called `name`; ConfigError naming `key` and the presets otherwise."""
    try:
        return CHARSETS[str(name)]
    except KeyError:
        raise ConfigError(f"{key} is {name!r}, which is not a charset; the charsets are {', '.join(CHARSETS)} "
                          f"(conf/charset/).") from None


def as_charset(value: Charset | str | Mapping[str, Any] | None) -> Charset:
    """A Charset from itself, its name, a `charset` config node ({name: ...}) or None (the default, digits)."""
    if value is None:
        return DEFAULT_CHARSET
    if isinstance(value, Charset):
        return value
    if isinstance(value, str):
        return charset_named(value)
    return charset_named(value["name"])


def config_charset(cfg: Any) -> Charset:
    """The charset a run config picks (`cfg.charset`); digits for a config from before charsets existed."""
    return as_charset(cfg.get("charset") if hasattr(cfg, "get") else None)


def charset_from_stored(stored: Any, source: str) -> Charset:
    """The preset whose `signature()` a checkpoint or export sidecar stored; CheckpointError naming `source` for
    anything else (a file never defines a vocabulary, it names one of ours by its exact tokens)."""
    tokens = stored.get("tokens") if isinstance(stored, dict) else stored
    tokens = list(tokens) if isinstance(tokens, (list, tuple)) else None  # stored data: anything else is no charset
    for charset in CHARSETS.values():
        if tokens == list(charset.tokens) and (not isinstance(stored, dict) or all(
                stored.get(key, index) == index for key, index in (("pad", PAD), ("sos", SOS), ("eos", EOS),
                                                                   ("blank", BLANK)))):
            return charset
    shown = repr(tokens) if tokens is None or len(repr(tokens)) < 200 else repr(tokens)[:200] + "...]"
    raise CheckpointError(f"{source} was trained with a different charset ({shown}) than any this runner reads "
                          f"({', '.join(f'{name}: {charset.description}' for name, charset in CHARSETS.items())}); "
                          f"use a model written by khmer-digits-ocr, or retrain it with this version.")

