"""The one vocabulary shared by data, models, losses, metrics and checkpoints.

Indices are fixed and stored in every checkpoint; changing them breaks old checkpoints.

    index  token   used by
    0      <pad>   padding of target sequences (ignored by every loss and metric)
    1      <sos>   start token fed to attention decoders
    2      <eos>   end token predicted by attention decoders
    3      <blank> CTC blank
    4..13  ០..៩    the ten Khmer digits U+17E0..U+17E9, in numeric order
"""

from __future__ import annotations

from typing import Iterable, Sequence

from runner.errors import CheckpointError, DataError

PAD, SOS, EOS, BLANK = 0, 1, 2, 3
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<sos>", "<eos>", "<blank>")
DIGITS: str = "".join(chr(code) for code in range(0x17E0, 0x17EA))  # ០១២៣៤៥៦៧៨៩
TOKENS: tuple[str, ...] = SPECIAL_TOKENS + tuple(DIGITS)
VOCAB_SIZE: int = len(TOKENS)
FIRST_DIGIT: int = len(SPECIAL_TOKENS)

CHAR_TO_INDEX: dict[str, int] = {char: FIRST_DIGIT + i for i, char in enumerate(DIGITS)}
INDEX_TO_CHAR: dict[int, str] = {index: char for char, index in CHAR_TO_INDEX.items()}
ARABIC_TO_KHMER = str.maketrans("0123456789", DIGITS)
KHMER_TO_ARABIC = str.maketrans(DIGITS, "0123456789")


def validate_text(text: str, source: str = "text", max_length: int | None = None) -> str:
    """Return `text` if it is 1..max_length Khmer digits, else raise DataError naming `source`."""
    if not isinstance(text, str):
        raise DataError(f"{source}: label must be a string of Khmer digits, got {type(text).__name__} {text!r}.")
    if not text:
        raise DataError(f"{source}: label is empty; every sample needs at least one Khmer digit ({DIGITS}).")
    for position, char in enumerate(text):
        if char not in CHAR_TO_INDEX:
            hint = ""
            if char in "0123456789":
                hint = f" Arabic digit {char!r} should be written as Khmer {char.translate(ARABIC_TO_KHMER)!r}."
            raise DataError(
                f"{source}: label {text!r} has character {char!r} (U+{ord(char):04X}) at position {position}, "
                f"which is not a Khmer digit; only {DIGITS} (U+17E0..U+17E9) are allowed.{hint}"
            )
    if max_length is not None and len(text) > max_length:
        raise DataError(
            f"{source}: label {text!r} has {len(text)} digits, more than max_length={max_length}; "
            f"raise data.max_length or drop the sample."
        )
    return text


def encode(text: str, source: str = "text") -> list[int]:
    """Map a Khmer digit string to token indices (no SOS/EOS). Rejects any other character."""
    return [CHAR_TO_INDEX[char] for char in validate_text(text, source)]


def decode(ids: Iterable[int]) -> str:
    """Map token indices back to text, stopping at EOS and skipping PAD, SOS and BLANK."""
    chars = []
    for index in ids:
        index = int(index)
        if index == EOS:
            break
        char = INDEX_TO_CHAR.get(index)
        if char is not None:
            chars.append(char)
    return "".join(chars)


def to_khmer(text: str) -> str:
    """Translate Arabic digits 0-9 to Khmer digits; other characters pass through."""
    return text.translate(ARABIC_TO_KHMER)


def to_arabic(text: str) -> str:
    """Translate Khmer digits to Arabic digits 0-9 (១២៣ -> 123); other characters pass through."""
    return text.translate(KHMER_TO_ARABIC)


def charset_signature() -> dict[str, object]:
    """What a checkpoint stores so a loader can refuse a model trained on another vocabulary."""
    return {"tokens": list(TOKENS), "pad": PAD, "sos": SOS, "eos": EOS, "blank": BLANK}


def check_charset(stored: Sequence[str] | dict, source: str) -> None:
    tokens = stored.get("tokens") if isinstance(stored, dict) else stored
    tokens = list(tokens) if isinstance(tokens, (list, tuple)) else []  # stored data: anything else is no charset
    if tokens != list(TOKENS):
        raise CheckpointError(
            f"{source} was trained with a different charset ({tokens!r}); this runner reads "
            f"{list(TOKENS)!r}. Retrain the model with this version of khmer-digits-ocr."
        )
