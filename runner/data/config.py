"""Typed schemas of conf/data and conf/data/augment: what to render, how to vary it, how to load it.

`AugmentConfig` defaults are the `light` preset; `conf/data/augment/{none,heavy}.yaml` hold only
what they change on top of it, so the YAML files and these defaults cannot drift apart.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Dict, List, Optional, Union

from omegaconf import DictConfig, OmegaConf

from runner.data.formats import DEFAULT_MIX, check_mix
from runner.errors import ConfigError, require
from runner.models.config import MAX_LABEL_LENGTH
from runner.schema import CONF_DIR, help_field

BACKGROUND_KINDS = ("solid", "gradient", "noise", "paper")
GLYPH_KNOBS = ("glyph_scale", "glyph_width", "glyph_rotation", "baseline_jitter", "glyph_spacing_jitter", "stroke_p",
               "stroke_radius", "elastic_p", "elastic_strength", "mix_fonts_p", "allograph_p", "nib_p", "nib_width")
# Each glyph lever's switch in its "off" position: what validation splits draw (AugmentConfig.without_glyphs).
# stroke_radius, elastic_strength and nib_width are sizes, not switches.
GLYPHS_OFF: dict[str, Any] = {"glyph_scale": [1.0, 1.0], "glyph_width": [1.0, 1.0], "glyph_rotation": 0.0,
                              "baseline_jitter": 0.0, "glyph_spacing_jitter": 0.0, "stroke_p": 0.0, "elastic_p": 0.0,
                              "mix_fonts_p": 0.0, "allograph_p": 0.0, "nib_p": 0.0}
MAX_SPLIT_SIZE = 10_000_000


class DataKind(StrEnum):
    """data.kind: where samples come from."""

    generated = "generated"
    onthefly = "onthefly"
    folder = "folder"


@dataclass
class AugmentConfig:
    """How rendered samples vary. Each `*_p` is a probability; each list is a [min, max] range."""

    font_size: List[float] = help_field("Font em size in px, [min, max]. Images are cropped to the ink, so "
                                   "this sets the rendering resolution (keep it near the 32 px model input).",
                                   factory=lambda: [24.0, 40.0])
    font_weight: List[float] = help_field("Weight axis (wght) range for variable fonts, clamped to each font's axis.",
                                     factory=lambda: [300.0, 800.0])
    font_width: List[float] = help_field("Width axis (wdth) range for variable fonts, clamped to each font's axis.",
                                    factory=lambda: [75.0, 100.0])
    letter_spacing: List[float] = help_field("Extra space between digits as a fraction of the font size "
                                        "(negative = tighter; below -0.05 digits start to touch).",
                                        factory=lambda: [-0.02, 0.15])
    padding: List[float] = help_field("Margin on each side as a fraction of the text height, drawn per side "
                                 "(0 = ink touches the border, 1 = loose crop).", factory=lambda: [0.05, 0.5])
    aspect_ratio: List[float] = help_field("Horizontal stretch of the text (1 = the font's own shape).",
                                      factory=lambda: [0.85, 1.2])
    background: Dict[str, float] = help_field(
        f"Relative weights of background kinds {list(BACKGROUND_KINDS)}.",
        factory=lambda: {"solid": 0.55, "gradient": 0.2, "noise": 0.1, "paper": 0.15})
    background_level: List[float] = help_field("Background brightness 0..255 (before any inversion).",
                                          factory=lambda: [200.0, 255.0])
    ink_level: List[float] = help_field("Ink brightness 0..255 (0 = black).", factory=lambda: [0.0, 70.0])
    ink_color_p: float = help_field("Probability of coloured ink (blue or red pen, stamp) instead of grey.", 0.15)
    min_contrast: float = help_field("Smallest background-minus-ink brightness; darker ink is forced "
                                "below that so every label stays human-readable.", 90.0)
    invert_p: float = help_field("Probability of light-on-dark text (the image is inverted at the end).", 0.1)
    rotation_p: float = help_field("Probability of rotating the text.", 0.5)
    rotation: float = help_field("Largest rotation in degrees (either direction).", 3.0)
    shear_p: float = help_field("Probability of a horizontal shear (italic-like slant).", 0.3)
    shear: float = help_field("Largest shear factor (either direction).", 0.15)
    perspective_p: float = help_field("Probability of a perspective warp (photo taken at an angle).", 0.2)
    perspective: float = help_field("Largest corner displacement as a fraction of the text height.", 0.06)
    blur_p: float = help_field("Probability of a Gaussian blur (out of focus).", 0.3)
    blur_radius: List[float] = help_field("Gaussian blur radius range in px, for text 24 px high (scaled with the "
                                          "text).", factory=lambda: [0.3, 0.9])
    noise_p: float = help_field("Probability of additive Gaussian pixel noise (sensor noise).", 0.3)
    noise_sigma: List[float] = help_field("Pixel noise standard deviation range (0..255 scale).",
                                          factory=lambda: [2.0, 10.0])
    jpeg_p: float = help_field("Probability of a JPEG round trip.", 0.3)
    jpeg_quality: List[float] = help_field("JPEG quality range (1..95).", factory=lambda: [40.0, 90.0])
    lowres_p: float = help_field("Probability of a low-resolution capture (downscale, then upscale back).", 0.2)
    lowres_scale: List[float] = help_field("Downscale factor range for low-resolution capture.",
                                           factory=lambda: [0.5, 0.85])
    underline_p: float = help_field("Probability of an underline below the digits (never through them).", 0.05)
    table_rules_p: float = help_field("Probability of table rules (lines in the margins around the cell).", 0.1)
    # Glyph-level levers (runner/data/glyphs.py): all but allograph_p off by default; conf/data/augment/glyph.yaml
    # turns them on.
    glyph_scale: List[float] = help_field("Size of each glyph relative to the font size, drawn per glyph ([1, 1] = "
                                          "off).", factory=lambda: [1.0, 1.0])
    glyph_width: List[float] = help_field("Horizontal stretch of each glyph on its own, drawn per glyph: the wide "
                                          "and narrow digits of cursive faces, one number mixing both ([1, 1] = "
                                          "off; aspect_ratio stretches the whole text).", factory=lambda: [1.0, 1.0])
    glyph_rotation: float = help_field("Largest rotation of each glyph on its own, in degrees either way (0 = off).",
                                       0.0)
    baseline_jitter: float = help_field("Largest shift of each glyph up or down off the line, as a fraction of the "
                                        "font size (0 = off).", 0.0)
    glyph_spacing_jitter: float = help_field("Largest change of the gap after each glyph, as a fraction of the font "
                                             "size either way, on top of letter_spacing (0 = off).", 0.0)
    stroke_p: float = help_field("Probability of a thicker or thinner stroke (dilate or erode the ink mask; an "
                                 "erosion that would wipe out most of the ink is skipped).", 0.0)
    stroke_radius: int = help_field("Largest dilation or erosion radius in px of the drawn mask (drawn 1..this).", 1)
    elastic_p: float = help_field("Probability of an elastic grid distortion of the ink mask.", 0.0)
    elastic_strength: float = help_field("Largest grid-point displacement of the elastic distortion, as a fraction "
                                         "of the text height.", 0.05)
    mix_fonts_p: float = help_field("Probability that a glyph is drawn with a second font family's face (one "
                                    "second face per number; 0 = off).", 0.0)
    allograph_p: float = help_field("Probability that each ៤ is drawn as the font's ៥ without its knot: the ៤ of "
                                    "most print families, which Noto Sans Khmer (its ៤ is another, open design) "
                                    "never shows a model; other families draw nothing (0 = off). On by default for "
                                    "the model a pip-only machine trains (docs/results.md 'Unseen fonts').", 0.5)
    nib_p: float = help_field("Probability of redrawing the text with a flat pen: the ink swept along a nib at a "
                              "random angle (a variable font drawn at its thinnest weight first), for the thick and "
                              "thin strokes of calligraphic and display faces (0 = off).", 0.0)
    nib_width: float = help_field("Largest nib length as a fraction of the text height (drawn 0.5..1 of it).", 0.12)

    def settings(self) -> dict[str, Any]:
        """Every knob, for a dataset's metadata and cache key; the glyph-level knobs only when one differs
        from its default, so datasets made without them keep the cache key they had before they existed."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}
        defaults = AugmentConfig()
        if all(values[name] == getattr(defaults, name) for name in GLYPH_KNOBS):
            for name in GLYPH_KNOBS:
                del values[name]
        return values

    def without_glyphs(self) -> "AugmentConfig":
        """This config with every glyph-level lever off: what validation splits draw (see plan_splits)."""
        changed = {name: copy.deepcopy(off) for name, off in GLYPHS_OFF.items() if getattr(self, name) != off}
        return dataclasses.replace(self, **changed) if changed else self

    def validate(self, prefix: str = "data.augment") -> None:
        for f in fields(self):
            key, value = f"{prefix}.{f.name}", getattr(self, f.name)
            if f.name.endswith("_p"):
                require(0.0 <= value <= 1.0, key, "must be a probability in [0, 1]", value)
            elif isinstance(value, (list, tuple)):
                require(len(value) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value),
                       key, "must be a [min, max] pair of numbers", value)
                require(value[0] <= value[1], key, "must have min <= max", value)
        require(self.font_size[0] >= 6, f"{prefix}.font_size", "must be >= 6 px to stay legible", self.font_size)
        require(self.letter_spacing[0] >= -0.1, f"{prefix}.letter_spacing",
               "must be >= -0.1 (digits would overlap)", self.letter_spacing)
        require(self.padding[0] >= 0, f"{prefix}.padding", "must be >= 0", self.padding)
        require(self.aspect_ratio[0] > 0, f"{prefix}.aspect_ratio", "must be > 0", self.aspect_ratio)
        for key in ("background_level", "ink_level"):
            value = getattr(self, key)
            require(0 <= value[0] and value[1] <= 255, f"{prefix}.{key}", "must lie in 0..255", value)
        require(0 <= self.min_contrast <= 200, f"{prefix}.min_contrast", "must lie in 0..200", self.min_contrast)
        require(0 <= self.rotation <= 45, f"{prefix}.rotation", "must lie in 0..45 degrees", self.rotation)
        require(0 <= self.shear <= 1, f"{prefix}.shear", "must lie in 0..1", self.shear)
        require(0 <= self.perspective <= 0.3, f"{prefix}.perspective", "must lie in 0..0.3", self.perspective)
        require(self.blur_radius[0] >= 0, f"{prefix}.blur_radius", "must be >= 0", self.blur_radius)
        require(self.noise_sigma[0] >= 0, f"{prefix}.noise_sigma", "must be >= 0", self.noise_sigma)
        require(1 <= self.jpeg_quality[0] and self.jpeg_quality[1] <= 95, f"{prefix}.jpeg_quality",
               "must lie in 1..95", self.jpeg_quality)
        require(0 < self.lowres_scale[0] and self.lowres_scale[1] <= 1, f"{prefix}.lowres_scale",
               "must lie in (0, 1]", self.lowres_scale)
        require(0.5 <= self.glyph_scale[0] and self.glyph_scale[1] <= 1.5, f"{prefix}.glyph_scale",
                "must lie in 0.5..1.5", self.glyph_scale)
        require(0.5 <= self.glyph_width[0] and self.glyph_width[1] <= 2.0, f"{prefix}.glyph_width",
                "must lie in 0.5..2", self.glyph_width)
        for key, most in (("glyph_rotation", 30.0), ("baseline_jitter", 0.3), ("glyph_spacing_jitter", 0.3),
                          ("elastic_strength", 0.2), ("nib_width", 0.3)):
            value = getattr(self, key)
            require(0 <= value <= most, f"{prefix}.{key}", f"must lie in 0..{most:g}", value)
        require(1 <= self.stroke_radius <= 4, f"{prefix}.stroke_radius", "must lie in 1..4 px", self.stroke_radius)
        unknown = sorted(set(self.background) - set(BACKGROUND_KINDS))
        require(not unknown, f"{prefix}.background", f"has unknown kinds {unknown}; use {list(BACKGROUND_KINDS)}",
               dict(self.background))
        weights = list(self.background.values())
        require(all(w >= 0 for w in weights) and sum(weights) > 0, f"{prefix}.background",
               "needs non-negative weights with a positive sum", dict(self.background))


@dataclass
class DataConfig:
    """Where samples come from (generated on disk, rendered on the fly, or a labelled folder)."""

    kind: DataKind = help_field("Data source: generated (rendered once into cache_dir), onthefly (fresh renders "
                                "every epoch) or folder (your labelled images).", DataKind.generated)
    dir: Optional[str] = help_field("generated: a dataset written by `python -m runner.generate` (null = generate "
                               "one into cache_dir); folder: a folder of images with labels.tsv.", None)
    cache_dir: str = help_field("Where generated datasets are cached, keyed by their settings; relative paths are "
                           "resolved against the directory the run was started from.",
                           "${oc.env:KHMER_OCR_CACHE,data_cache}")
    seed: Optional[int] = help_field("Seed for generating/rendering data; null = the run's seed. Fix it to share "
                                "one dataset across a seed sweep.", None)
    train_size: int = help_field("Training samples (on the fly: samples per epoch).", 120000)
    val_size: int = help_field("Validation samples, rendered like training.", 2000)
    hard_val_size: int = help_field("Size of each extra split val_hard, val_unseen_fonts and val_hard_unseen_fonts "
                               "(0 disables them).", 1000)
    min_length: int = help_field("Fewest digits in a rendered label.", 1)
    max_length: int = help_field("Most characters in a label (up to MAX_LABEL_LENGTH=32; charset=numbers needs ~20); "
                                 "targets are padded to max_length + 2.", 8)
    formats: Dict[str, float] = help_field(
        "Which kinds of number the generator writes, {format: weight}: digits (bare digit runs of "
        "min_length..max_length), price (១២,៥០០៛, $១២.៥០), decimal, date (dd/mm/yyyy), time (hh:mm), phone "
        "(០១២ ៣៤៥ ៦៧៨), percent and id (runner/data/formats.py). Set weights one by one "
        "(data.formats.price=0.2) or together (data.formats={digits:0,price:1} draws prices only); a weight "
        "left out keeps its value. Formats other than digits need the charset that "
        "holds their signs (charset=numbers).", factory=lambda: dict(DEFAULT_MIX))
    ascii_digits: float = help_field("Share of generated texts written with ASCII digits 0-9 instead of Khmer ones "
                                     "(one script per number), as Cambodian documents mix them.", 0.0)
    image_height: int = help_field("Model input height in px.", 32)
    image_width: int = help_field("Model input width in px (text is padded, or shrunk to fit); with bucketing the "
                                  "widest batch, most batches are narrower.", 128)
    text_crop: bool = help_field("Cut every image to its text's bounding box (plus a margin) before resizing, so small "
                                 "text in a loose crop fills the model's rows (runner/data/preprocess.py). The model "
                                 "remembers it, so evaluation, prediction and exports preprocess the same way.", True)
    bucketing: bool = help_field("Batch images of similar width and crop every batch to its widest image: "
                                 "padding columns cost CNN and BiLSTM time (docs/benchmarks.md). The model "
                                 "remembers it, so evaluation, prediction and exports crop the same way.", True)
    batch_size: int = help_field("Samples per batch (per process under DDP).", 64)
    num_workers: int = help_field("DataLoader worker processes (0 = load in the training process).", 0)
    pin_memory: bool = help_field("Pin batches in page-locked memory (helps only with a GPU).", False)
    fonts_dir: Optional[str] = help_field("Extra folder searched (recursively) for .ttf/.otf/.ttc Khmer fonts.", None)
    use_package_font: bool = help_field("Use the Noto Sans Khmer variable font from fontpkg-noto-sans-khmer.", True)
    use_system_fonts: bool = help_field("Use every Khmer font in the system font folders.", True)
    held_out_fonts: List[str] = help_field(
        "Font families kept out of train/val/val_hard and used only for val_unseen_fonts and "
        "val_hard_unseen_fonts.",
        factory=lambda: ["Khmer OS Siemreap", "Noto Serif Khmer"])
    train_fonts: List[str] = help_field(
        "Font families drawn in train, val and val_hard (empty = every installed family not held out). With "
        "data.held_out_fonts this picks a k-fold split, e.g. train_fonts=[Noto Sans Khmer] held_out_fonts=[Khmer OS, "
        "Khmer OS Battambang].", factory=list)
    labels_file: str = help_field("folder: name of the labels file inside data.dir and data.val_dir.", "labels.tsv")
    val_dir: Optional[str] = help_field("folder: a separate validation folder with its own labels file.", None)
    val_fraction: float = help_field("folder without val_dir: fraction of files held out for validation (seeded).",
                                0.1)
    cache_in_memory: bool = help_field("Keep preprocessed uint8 images in memory after the first epoch.", True)
    generate_workers: Optional[int] = help_field("Processes used to generate a dataset (null = all usable cores).",
                                            None)
    augment: AugmentConfig = help_field("Variation of training and val samples (choose a preset with "
                                   "data/augment=none|light|heavy).", factory=AugmentConfig)
    hard_augment: AugmentConfig = help_field("Variation of the val_hard split and of the hard share of training "
                                        "(default: the heavy preset).", factory=lambda: augment_preset("heavy"))
    train_hard_fraction: float = help_field("Share of training samples drawn with data.hard_augment instead of "
                                       "data.augment, spread evenly over the split (0 = train on data.augment "
                                       "only). val keeps data.augment, so it still measures clean images.", 0.85)

    def validate(self, prefix: str = "data") -> None:
        require(self.kind in tuple(DataKind), f"{prefix}.kind", f"must be one of {', '.join(DataKind)}", self.kind)
        for key in ("train_size", "batch_size", "min_length", "max_length"):
            require(getattr(self, key) > 0, f"{prefix}.{key}", "must be > 0", getattr(self, key))
        for key in ("val_size", "hard_val_size", "num_workers"):
            require(getattr(self, key) >= 0, f"{prefix}.{key}", "must be >= 0", getattr(self, key))
        require(self.min_length <= self.max_length, f"{prefix}.min_length",
               f"must be <= data.max_length ({self.max_length})", self.min_length)
        # upper bounds: far above any sensible run, low enough that a typo fails now instead of hanging later
        require(self.max_length <= MAX_LABEL_LENGTH, f"{prefix}.max_length",
                f"must be <= {MAX_LABEL_LENGTH} characters", self.max_length)
        for key in ("train_size", "val_size", "hard_val_size"):
            require(getattr(self, key) <= MAX_SPLIT_SIZE, f"{prefix}.{key}", f"must be <= {MAX_SPLIT_SIZE:,}",
                    getattr(self, key))
        require(self.batch_size <= 65536, f"{prefix}.batch_size", "must be <= 65536", self.batch_size)
        require(self.num_workers <= 256, f"{prefix}.num_workers", "must be <= 256", self.num_workers)
        require(8 <= self.image_height <= 256, f"{prefix}.image_height", "must lie in 8..256", self.image_height)
        require(self.image_height <= self.image_width <= 4096, f"{prefix}.image_width",
               f"must lie in data.image_height ({self.image_height})..4096", self.image_width)
        require(0.0 <= self.train_hard_fraction <= 1.0, f"{prefix}.train_hard_fraction",
                "must be a share in [0, 1]", self.train_hard_fraction)
        check_mix(self.formats, self.max_length, f"{prefix}.formats")
        require(0.0 <= self.ascii_digits <= 1.0, f"{prefix}.ascii_digits", "must be a share in [0, 1]",
                self.ascii_digits)
        require(0.0 <= self.val_fraction < 1.0, f"{prefix}.val_fraction", "must lie in [0, 1)", self.val_fraction)
        require(self.generate_workers is None or self.generate_workers > 0, f"{prefix}.generate_workers",
               "must be > 0 or null", self.generate_workers)
        if self.kind == "folder":
            require(bool(self.dir), f"{prefix}.dir",
                   "is required for data.kind=folder: point it at a folder of images with labels.tsv", self.dir)
        self.augment.validate(f"{prefix}.augment")
        self.hard_augment.validate(f"{prefix}.hard_augment")


@dataclass
class GenerateConfig:
    """Root config of `python -m runner.generate`."""

    seed: int = help_field("Seed of the dataset (data.seed overrides it when set).", 1234)
    overwrite: bool = help_field("Replace an existing dataset in data.dir.", False)
    data: DataConfig = help_field("Data settings, shared with training.", factory=DataConfig)


def augment_preset(name: str) -> AugmentConfig:
    """The AugmentConfig of `conf/data/augment/<name>.yaml` (the file holds changes to the light defaults,
    or to the preset it names first in its defaults list)."""
    path = CONF_DIR / "data" / "augment" / f"{name}.yaml"
    if not path.is_file():
        presets = sorted(p.stem for p in path.parent.glob("*.yaml") if not p.stem.startswith("_"))
        raise ConfigError(f"augment preset {name!r} not found at {path}; available: {presets}.")
    values = OmegaConf.load(path)
    # A preset may extend another of its group, as glyph.yaml does heavy.yaml: its first defaults entry.
    parents = [entry for entry in values.pop("defaults", []) if isinstance(entry, str) and not entry.startswith("_")]
    base = augment_preset(parents[0]) if parents else AugmentConfig()
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(base), values))


def as_data_config(cfg: Union[DataConfig, DictConfig, dict]) -> DataConfig:
    """Accept a DataConfig, or the `data` node of a Hydra config, and return a validated DataConfig.

    Always goes through OmegaConf so interpolations such as cache_dir's `${oc.env:...}` are resolved,
    also in a DataConfig built in Python.
    """
    try:
        node = OmegaConf.structured(cfg) if isinstance(cfg, DataConfig) else \
            OmegaConf.merge(OmegaConf.structured(DataConfig), cfg)
        cfg = OmegaConf.to_object(node)
    except Exception as error:  # omegaconf's ValidationError etc. name the key already
        raise ConfigError(f"invalid data config: {error}") from error
    cfg.validate()
    return cfg


def data_seed(data: Any, run_seed: int) -> int:
    """The seed data is generated and rendered from: `data.seed` when set (one dataset shared by a seed
    sweep), else the run's seed. `data` is a DataConfig or the `data` node of a Hydra config."""
    return data.seed if data.seed is not None else run_seed


def register_data_configs(cs: Any) -> None:
    """Store the schemas the YAML files extend: data/_data_schema, data/augment/_augment_schema, _generate_schema."""
    cs.store(group="data", name="_data_schema", node=DataConfig)
    cs.store(group="data/augment", name="_augment_schema", node=AugmentConfig)
    cs.store(name="_generate_schema", node=GenerateConfig)
