"""Find the Khmer fonts that can draw all ten digits, and load them for rendering.

A usable font needs the ten Khmer digits only: a character it lacks (Debian's Noto Sans/Serif Khmer
have no "$%+" nor ASCII digits) is drawn with `fallback_font`, the pip Noto Sans Khmer, which has
every character the number formats write (runner/data/formats.py).

Sources, in order: the Noto Sans Khmer variable font shipped by the `fontpkg-noto-sans-khmer` wheel
(so a bare `pip install` can render), every font in the system font folders that covers Khmer,
and an optional user folder. A font is usable when its cmap maps U+17E0..U+17E9; a Khmer font
without them is skipped with a FontWarning. System fonts with no Khmer at all are ignored
silently (there are hundreds); in the user's folder every skipped file is reported.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageFont

from runner.charset import DIGITS
from runner.errors import ConfigError, DataError

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
KHMER_CONSONANTS = range(0x1780, 0x17A3)
DIGIT_CODEPOINTS = tuple(ord(char) for char in DIGITS)
INSTALL_HINT = ("install one with `pip install fontpkg-noto-sans-khmer` or "
                "`apt-get install fonts-khmeros fonts-noto-core`, or set data.fonts_dir to a folder of Khmer fonts")


class FontWarning(UserWarning):
    """A font file that was found but cannot be used."""


def system_font_dirs() -> tuple[Path, ...]:
    home = Path.home()
    return (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), home / ".fonts",
            home / ".local/share/fonts")


@dataclass(frozen=True)
class FontAxis:
    tag: str
    minimum: float
    default: float
    maximum: float


@dataclass(frozen=True)
class FontSpec:
    """One usable font face. `axes` is non-empty for variable fonts (in the font's fvar order)."""

    path: str
    family: str
    index: int = 0
    axes: tuple[FontAxis, ...] = ()
    source: str = "system"

    @property
    def name(self) -> str:
        suffix = f"#{self.index}" if self.index else ""
        return Path(self.path).name + suffix

    def fingerprint(self) -> tuple[str, int, int]:
        """What identifies this font's bytes cheaply (dataset cache keys depend on it)."""
        stat = os.stat(self.path)
        return (self.name, stat.st_size, int(stat.st_mtime))


def package_font_path() -> Optional[Path]:
    """The variable Noto Sans Khmer shipped by fontpkg-noto-sans-khmer, or None if not installed."""
    try:
        import fontpkg_noto_sans_khmer
    except ImportError:
        return None
    files = sorted(Path(fontpkg_noto_sans_khmer.ROOT, "files").glob("NotoSansKhmer*.ttf"))
    return files[0] if files else None


@functools.lru_cache(maxsize=1)
def fallback_font() -> Optional[FontSpec]:
    """The face that draws what a font lacks: the pip Noto Sans Khmer, or None if it is not installed."""
    path = package_font_path()
    faces = inspect_font(path, "package", True) if path is not None else []
    return faces[0] if faces else None


@functools.lru_cache(maxsize=256)
def face_coverage(path: str, index: int) -> tuple[frozenset[int], int]:
    """(the code points the face has glyphs for, its OS/2 weight class: 400 regular, 700 bold)."""
    face = TTFont(path, fontNumber=index, lazy=True)
    with face:
        weight = face["OS/2"].usWeightClass if "OS/2" in face else 400
        return frozenset(face.getBestCmap() or {}), int(weight)


def fallback_chars(font: FontSpec, text: str) -> str:
    """The characters of `text` drawn with `fallback_font` because `font` lacks them (and it has them)."""
    fallback = fallback_font()
    if fallback is None or fallback == font:
        return ""
    own, _ = face_coverage(font.path, font.index)
    missing = {char for char in text if ord(char) not in own}
    if not missing:
        return ""
    theirs, _ = face_coverage(fallback.path, fallback.index)
    return "".join(sorted(char for char in missing if ord(char) in theirs))


def _font_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())


def _faces(path: Path) -> list[tuple[int, TTFont]]:
    if path.suffix.lower() == ".ttc":
        return list(enumerate(TTCollection(str(path), lazy=True).fonts))
    return [(0, TTFont(str(path), lazy=True))]


def inspect_font(path: Path, source: str, report_non_khmer: bool) -> list[FontSpec]:
    """The usable faces of one font file; warns about faces that lack some Khmer digits."""
    try:
        faces = _faces(path)
    except Exception as error:  # fontTools raises many types for damaged files
        warnings.warn(f"skipping font {path}: cannot be read ({error}).", FontWarning, stacklevel=2)
        return []
    specs = []
    for index, face in faces:
        with face:
            spec = _usable_face(path, index, face, source, report_non_khmer)
        if spec is not None:
            specs.append(spec)
    return specs


def _covers_khmer_letters(cmap: dict) -> bool:
    # Some non-Khmer fonts map a stray Khmer code point or two; a Khmer font maps the consonants.
    return sum(code in cmap for code in KHMER_CONSONANTS) >= len(KHMER_CONSONANTS) // 2


def _usable_face(path: Path, index: int, face: TTFont, source: str, report_non_khmer: bool) -> Optional[FontSpec]:
    cmap = face.getBestCmap() or {}
    missing = [chr(code) for code in DIGIT_CODEPOINTS if code not in cmap]
    family = (face["name"].getBestFamilyName() if "name" in face else None) or path.stem
    if missing:
        if report_non_khmer or _covers_khmer_letters(cmap):
            warnings.warn(f"skipping font {path} ({family}): no glyphs for Khmer digits {''.join(missing)}.",
                          FontWarning, stacklevel=3)
        return None
    axes = ()
    if "fvar" in face:
        axes = tuple(FontAxis(a.axisTag, a.minValue, a.defaultValue, a.maxValue) for a in face["fvar"].axes)
    return FontSpec(str(path), family, index, axes, source)


def discover_fonts(fonts_dir: Optional[str | Path] = None, use_package_font: bool = True,
                   use_system_fonts: bool = True, system_dirs: Optional[Sequence[Path]] = None) -> list[FontSpec]:
    """Every usable Khmer font from the enabled sources; raises DataError when there is none."""
    return list(_discover(None if fonts_dir is None else str(Path(fonts_dir).expanduser()), use_package_font,
                          use_system_fonts, tuple(system_dirs) if system_dirs is not None else None))


@functools.lru_cache(maxsize=8)
def _discover(fonts_dir: Optional[str], use_package_font: bool, use_system_fonts: bool,
              system_dirs: Optional[tuple[Path, ...]]) -> tuple[FontSpec, ...]:
    searched: list[str] = []
    candidates: list[tuple[Path, str, bool]] = []
    if use_package_font:
        searched.append("the fontpkg-noto-sans-khmer package")
        path = package_font_path()
        if path is not None:
            candidates.append((path, "package", True))
    if use_system_fonts:
        for folder in system_dirs if system_dirs is not None else system_font_dirs():
            searched.append(str(folder))
            candidates.extend((path, "system", False) for path in _font_files(folder))
    if fonts_dir is not None:
        folder = Path(fonts_dir)
        if not folder.is_dir():
            raise DataError(f"data.fonts_dir={fonts_dir!r} is not a folder; point it at a folder of Khmer "
                            f".ttf/.otf fonts or set it to null.")
        searched.append(str(folder))
        candidates.extend((path, "user", True) for path in _font_files(folder))

    seen: set[Path] = set()
    fonts: list[FontSpec] = []
    for path, source, report in candidates:
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        fonts.extend(inspect_font(path, source, report))
    if not fonts:
        raise DataError(f"no usable Khmer font (one with glyphs for all ten digits {DIGITS}) found in "
                        f"{', '.join(searched) or 'any source (all font sources are disabled)'}; {INSTALL_HINT}.")
    return tuple(fonts)


def families(fonts: Iterable[FontSpec]) -> list[str]:
    return sorted({font.family for font in fonts})


def split_held_out(fonts: Sequence[FontSpec], held_out: Sequence[str],
                   train_fonts: Sequence[str] = ()) -> tuple[list[FontSpec], list[FontSpec]]:
    """(training fonts, held-out fonts); family names compare case-insensitively.

    `train_fonts` (data.train_fonts), when given, limits the training fonts to those families; each must
    be installed and none may be held out too, else ConfigError (a typo would silently train on nothing).
    """
    wanted = {name.casefold() for name in held_out}
    kept = [font for font in fonts if font.family.casefold() not in wanted]
    if train_fonts:
        installed = {family.casefold() for family in families(fonts)}
        unknown = [name for name in train_fonts if name.casefold() not in installed]
        if unknown:
            raise ConfigError(f"data.train_fonts names families that are not installed: {unknown}; installed: "
                              f"{families(fonts)} (or {INSTALL_HINT}).")
        both = [name for name in train_fonts if name.casefold() in wanted]
        if both:
            raise ConfigError(f"data.train_fonts and data.held_out_fonts both name {both}: a family is either "
                              f"trained on or held out; remove it from one of them.")
        chosen = {name.casefold() for name in train_fonts}
        kept = [font for font in kept if font.family.casefold() in chosen]
    return kept, [font for font in fonts if font.family.casefold() in wanted]


@functools.lru_cache(maxsize=512)
def load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    """A cached Pillow font. The BASIC layout needs no libraqm, so CI and laptops draw the same pixels
    (digits need no shaping)."""
    return ImageFont.truetype(path, size=size, index=index, layout_engine=ImageFont.Layout.BASIC)
