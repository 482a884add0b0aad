"""The texts the generator draws: Khmer numbers as documents write them, in a configurable mix of formats.

Each format builds its text with ASCII digits first; `write_digits` then turns them into Khmer digits,
or leaves a configurable share of samples in ASCII "0-9" (Cambodian documents mix both, one script per
number). Every text fits max_length characters: each format picks
only the variants (amount sizes, a two-digit year, ungrouped phone numbers) that fit, and
`check_mix` refuses a format whose shortest text cannot.

With the default mix (digits only, no ASCII) `sample_text` makes exactly the generator's original
random-number calls, so datasets and cache keys of the default config keep their bytes.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Mapping

import numpy as np

from runner.charset import DIGITS
from runner.errors import ConfigError

ASCII_DIGITS = "0123456789"
TO_KHMER = str.maketrans(ASCII_DIGITS, DIGITS)
RIEL = "\u17db"  # ៛
# Bumped when a format's texts change for the same seed: a generated dataset with formats names it in its cache key.
FORMATS_VERSION = 2


class NumberFormat(StrEnum):
    """data.formats keys: the kinds of number the generator writes."""

    digits = "digits"  # a bare digit run, min_length..max_length long: ១២៣៤
    price = "price"  # riel after (១២,៥០០៛, ៥០០៛) or dollars before with cents ($១២.៥០)
    decimal = "decimal"  # ១២.៥, ០.៧៥
    date = "date"  # dd/mm/yyyy or dd-mm-yyyy, a valid date (dd/mm/yy where max_length < 10)
    time = "time"  # hh:mm, 24 h
    phone = "phone"  # a Cambodian mobile number grouped by spaces: ០១២ ៣៤៥ ៦៧៨, +៨៥៥ ៩៧ ៨៦៥ ៤៣២១
    percent = "percent"  # ១២%, ៥.៥%
    id = "id"  # a long digit run (up to 20 characters), sometimes grouped with - or a space


# Every format is a key (0 = never drawn), so `data.formats.price=0.2` overrides an existing key.
DEFAULT_MIX: dict[str, float] = {fmt.value: float(fmt == NumberFormat.digits) for fmt in NumberFormat}
# The characters each format writes besides digits; format_chars adds the digits themselves.
SEPARATORS: dict[NumberFormat, str] = {
    NumberFormat.digits: "", NumberFormat.price: f",.${RIEL}", NumberFormat.decimal: ".",
    NumberFormat.date: "/-", NumberFormat.time: ":", NumberFormat.phone: " +", NumberFormat.percent: ".%",
    NumberFormat.id: "- ",
}
# The shortest text of each format (digits and id: one digit, the shortest data.min_length allows).
SHORTEST: dict[NumberFormat, int] = {
    NumberFormat.digits: 1, NumberFormat.price: 2, NumberFormat.decimal: 3, NumberFormat.date: 8,
    NumberFormat.time: 5, NumberFormat.phone: 9, NumberFormat.percent: 2, NumberFormat.id: 1,
}
MOBILE_PREFIXES = ("010", "011", "012", "014", "015", "016", "017", "018", "031", "038", "060", "061", "066", "067",
                   "068", "069", "070", "071", "076", "077", "078", "081", "085", "086", "087", "088", "089", "090",
                   "092", "093", "095", "096", "097", "098", "099")
ID_LONGEST = 20
ID_SHORTEST = 6
FIRST_DATE, LAST_DATE = datetime.date(1950, 1, 1).toordinal(), datetime.date(2035, 12, 31).toordinal()


def parse_mix(mix: Mapping[str, float], key: str = "data.formats") -> dict[NumberFormat, float]:
    """{format: weight} of the formats with a positive weight, in NumberFormat order; ConfigError naming
    `key` for an unknown format, a negative weight or no positive weight."""
    known = ", ".join(NumberFormat)
    unknown = sorted(str(name) for name in mix if name not in NumberFormat.__members__)
    if unknown:
        raise ConfigError(f"{key} has unknown formats {unknown}; the formats are {known}. Fix the name on the "
                          f"command line ({key}.NAME=WEIGHT) or in its YAML file.")
    negative = {name: weight for name, weight in mix.items() if not weight >= 0}
    if negative:
        raise ConfigError(f"{key} weights must be >= 0, got {negative}. Fix them on the command line or in "
                          f"its YAML file.")
    positive = {fmt: float(mix[fmt.value]) for fmt in NumberFormat if mix.get(fmt.value, 0) > 0}
    if not positive:
        raise ConfigError(f"{key} needs at least one format with a positive weight, got {dict(mix)}; e.g. "
                          f"{key}.digits=1 (the formats are {known}).")
    return positive


def mix_shares(mix: Mapping[str, float]) -> dict[str, float]:
    """{format name: share of texts} of the formats with a positive weight: mixes that draw the same texts
    ({digits: 2} and {digits: 1, price: 0}) compare equal."""
    positive = parse_mix(mix)
    total = sum(positive.values())
    return {fmt.value: weight / total for fmt, weight in positive.items()}


def check_mix(mix: Mapping[str, float], max_length: int, key: str = "data.formats") -> dict[NumberFormat, float]:
    """parse_mix, and a ConfigError for a format whose shortest text is longer than `max_length`."""
    positive = parse_mix(mix, key)
    length_key = f"{key.rpartition('.')[0]}.max_length".lstrip(".")
    too_long = {str(fmt): SHORTEST[fmt] for fmt in positive if SHORTEST[fmt] > max_length}
    if too_long:
        raise ConfigError(f"{key} draws {', '.join(too_long)}, whose shortest texts have "
                          f"{', '.join(f'{n} ({name})' for name, n in too_long.items())} characters, but "
                          f"{length_key} is {max_length}; raise {length_key} to {max(too_long.values())} "
                          f"or set the weight of {', '.join(too_long)} to 0.")
    return positive


def format_chars(mix: Mapping[str, float], ascii_share: float = 0.0) -> set[str]:
    """Every character the formats of `mix` with a positive weight can write (the charset must hold them)."""
    chars = set(DIGITS) | (set(ASCII_DIGITS) if ascii_share > 0 else set())
    for fmt in parse_mix(mix):
        chars |= set(SEPARATORS[fmt])
    return chars


def sample_text(rng: np.random.Generator, mix: Mapping[str, float], min_length: int, max_length: int,
                ascii_share: float = 0.0) -> tuple[str, NumberFormat]:
    """One text of a format drawn by weight from `mix`, at most `max_length` characters, and its format.

    Draws nothing for the format when the mix has one format, nor for the script when `ascii_share`
    is 0: the digits-only mix then reproduces the original generator's draws exactly.
    """
    formats = parse_mix(mix)
    chosen = next(iter(formats))
    if len(formats) > 1:
        weights = np.array(list(formats.values()))
        position = int(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(), side="right"))
        chosen = list(formats)[min(position, len(formats) - 1)]
    text = WRITERS[chosen](rng, min_length, max_length)
    return write_digits(rng, text, ascii_share), chosen


def write_digits(rng: np.random.Generator, text: str, ascii_share: float) -> str:
    """`text` (ASCII digits) in Khmer digits, or for an `ascii_share` of samples left in ASCII. One number is
    written in one script: ASCII 0 and Khmer ០ look alike, and only the script of the other digits tells them
    apart (documents mix the scripts between numbers, not within one)."""
    if ascii_share <= 0 or rng.random() >= ascii_share:
        return text.translate(TO_KHMER)
    return text


# --- one writer per format: (rng, min_length, max_length) -> text with ASCII digits ----------------------

def _digit_run(rng: np.random.Generator, count: int, leading_zero: bool = True) -> str:
    digits = [int(d) for d in rng.integers(0, 10, count)]
    if not leading_zero and digits[0] == 0:
        digits[0] = int(rng.integers(1, 10))
    return "".join(ASCII_DIGITS[d] for d in digits)


def _grouped(digits: str, separator: str = ",", size: int = 3) -> str:
    """`digits` in groups of `size` from the right: 12500 -> 12,500."""
    head = len(digits) % size or size
    return separator.join([digits[:head]] + [digits[i:i + size] for i in range(head, len(digits), size)])


def _grouped_length(count: int) -> int:
    return count + (count - 1) // 3


def _most_digits(room: int, most: int) -> int:
    """The most integer digits, at most `most`, whose thousands-grouped form fits `room` characters."""
    return max((count for count in range(1, most + 1) if _grouped_length(count) <= room), default=0)


def write_bare_digits(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    return _digit_run(rng, int(rng.integers(min_length, max_length + 1)))


def write_price(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    dollars = _most_digits(max_length - 4, 5)  # "$" + digits + ".cc"
    if dollars and rng.random() < 0.35:
        amount = _digit_run(rng, int(rng.integers(1, dollars + 1)), leading_zero=False)
        return f"${_grouped(amount)}.{_digit_run(rng, 2)}"
    # Riel goes right after the amount: a gap before ៛ is typography (as letter spacing is), not a character,
    # so the text of ៥០០ ៛ and ៥០០៛ is the same and a model is never asked to tell the gaps apart.
    count = int(rng.integers(1, _most_digits(max_length - 1, 7) + 1))
    amount = _digit_run(rng, count, leading_zero=False)
    if count >= 3:  # riel amounts are mostly round hundreds
        round_to = int(rng.integers(1, min(count - 1, 3) + 1))
        amount = amount[:-round_to] + "0" * round_to
    written = _grouped(amount) if rng.random() < 0.85 else amount
    return f"{written}{RIEL}"


def write_decimal(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    places = int(rng.integers(1, min(3, max_length - 2) + 1))
    whole = "0" if rng.random() < 0.3 else _digit_run(rng, int(rng.integers(1, min(5, max_length - 1 - places) + 1)),
                                                        leading_zero=False)
    return f"{whole}.{_digit_run(rng, places)}"


def write_date(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    day = datetime.date.fromordinal(int(rng.integers(FIRST_DATE, LAST_DATE + 1)))
    separator = "/" if rng.random() < 0.6 else "-"
    year = f"{day.year:04d}" if max_length >= 10 else f"{day.year % 100:02d}"
    return separator.join((f"{day.day:02d}", f"{day.month:02d}", year))


def write_time(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"


def write_phone(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    prefix = MOBILE_PREFIXES[int(rng.integers(len(MOBILE_PREFIXES)))]
    number = prefix + _digit_run(rng, int(rng.integers(6, 8)))  # 9 or 10 digits
    groups = [number[:3], number[3:6], number[6:]]
    international = rng.random() < 0.2
    if international and len(number) + 6 <= max_length:  # +855 and the operator code without its 0
        return " ".join(["+855", groups[0][1:], *groups[1:]])
    if len(number) + 2 <= max_length:
        return " ".join(groups)
    return number if len(number) <= max_length else number[:max_length]


def write_percent(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    if max_length >= 5 and rng.random() < 0.3:  # 5.5%, 12.5%
        return f"{int(rng.integers(0, 100))}.{_digit_run(rng, 1)}%"
    return f"{int(rng.integers(0, 101 if max_length >= 4 else 10 ** (max_length - 1)))}%"


def write_id(rng: np.random.Generator, min_length: int, max_length: int) -> str:
    longest = min(ID_LONGEST, max_length)
    length = int(rng.integers(min(max(min_length, ID_SHORTEST), longest), longest + 1))
    if rng.random() >= 0.4 or length < 5:
        return _digit_run(rng, length)
    separator = "-" if rng.random() < 0.5 else " "
    size = int(rng.integers(3, 5))
    count = max(n for n in range(1, length + 1) if n + (n - 1) // size <= length)
    digits = _digit_run(rng, count)
    return separator.join(digits[i:i + size] for i in range(0, count, size))  # from the left: 1234-5678-90


WRITERS = {
    NumberFormat.digits: write_bare_digits, NumberFormat.price: write_price, NumberFormat.decimal: write_decimal,
    NumberFormat.date: write_date, NumberFormat.time: write_time, NumberFormat.phone: write_phone,
    NumberFormat.percent: write_percent, NumberFormat.id: write_id,
}
