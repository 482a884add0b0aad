"""Write a rendered dataset to disk (PNG files + metadata.yaml), or reuse a cached one.

Layout of a dataset folder:

    metadata.yaml            dataset_info header + one list of samples per split
    train/000000.png ...     one folder per split: train, val, val_hard, val_unseen_fonts,
                             val_hard_unseen_fonts

Each sample records its image path (relative to metadata.yaml), label, and how it was drawn (font,
size, variation axes, every applied augmentation). Sample i of split s is a function of
(seed, s, i) only, so any number of worker processes writes byte-identical files.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

from runner.data.augment import degradation_kinds
from runner.data.config import AugmentConfig, DataConfig, as_data_config
from runner.data.fonts import FontSpec, discover_fonts, families, split_held_out
from runner.data.formats import DEFAULT_MIX, FORMATS_VERSION, NumberFormat, mix_shares
from runner.data import pixel_store
from runner.data.preprocess import preprocess_image_uint8
from runner.data.render import render_sample, sample_key
from runner.errors import DataError
from runner.progress import progress_bar

log = logging.getLogger(__name__)

# Bump whenever rendering changes what a (seed, settings) pair produces: it invalidates caches.
# 4: data.augment.allograph_p on by default (training draws some ៤ of Noto Sans Khmer in the common form).
GENERATOR_VERSION = 4
METADATA_FILE = "metadata.yaml"
CHUNK_SIZE = 64
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SplitPlan:
    """What one split is rendered from: `augment`, or `hard_augment` for a `hard_fraction` of it."""

    name: str
    size: int
    fonts: list[FontSpec]
    augment: AugmentConfig
    hard_augment: Optional[AugmentConfig] = None
    hard_fraction: float = 0.0

    def is_hard(self, index: int) -> bool:
        """Whether sample `index` is drawn with `hard_augment`: exactly `hard_fraction` of every run of
        samples, evenly interleaved, so any prefix of the split (or batch of it) has the same mix."""
        if self.hard_augment is None:
            return False
        return math.floor((index + 1) * self.hard_fraction + 1e-9) > math.floor(index * self.hard_fraction + 1e-9)

    def augment_for(self, index: int) -> AugmentConfig:
        return self.hard_augment if self.is_hard(index) else self.augment


def data_fonts(cfg: DataConfig) -> list[FontSpec]:
    fonts_dir = resolve_path(cfg.fonts_dir) if cfg.fonts_dir else None
    return discover_fonts(fonts_dir, cfg.use_package_font, cfg.use_system_fonts)


def plan_splits(cfg: DataConfig, fonts: Sequence[FontSpec]) -> list[SplitPlan]:
    """train, val, val_hard, val_unseen_fonts and val_hard_unseen_fonts.

    Held-out font families appear only in the last two; val_hard_unseen_fonts (heavy degradation in
    fonts never trained on) is the closest stand-in for real images from other people's machines.
    Where no family can be held out (one installed), the last two draw the most condensed widths of
    the variable fonts and the others never do: still unseen shapes, but a weak estimate.
    Glyph-level levers (runner/data/glyphs.py) apply to train only.
    """
    # Holding fonts out only makes sense when the split that uses them is written.
    training_fonts, held_out = split_held_out(fonts, cfg.held_out_fonts if cfg.hard_val_size > 0 else [],
                                              cfg.train_fonts)
    if held_out and not training_fonts:
        warnings.warn(f"data.held_out_fonts {cfg.held_out_fonts} covers every installed font family "
                      f"({families(fonts)}); training on all of them. Install more Khmer fonts (make fonts: "
                      f"fonts-khmeros, fonts-noto-core) to measure unseen-font accuracy.", stacklevel=2)
        training_fonts, held_out = list(fonts), []
    axis_region = None
    if cfg.hard_val_size > 0 and not held_out:
        axis_region = held_out_axis_region(fonts)
        instead = (f"val_unseen_fonts holds out the most condensed widths (wdth {axis_region[0]:g}-{axis_region[1]:g}) "
                   f"of the variable fonts instead, never trained on: a weak estimate" if axis_region else
                   "skipping val_unseen_fonts")
        if cfg.held_out_fonts:
            warnings.warn(f"no family of data.held_out_fonts {cfg.held_out_fonts} can be held out (found: "
                          f"{families(fonts)}); {instead}. Install more families (make fonts: fonts-khmeros, "
                          f"fonts-noto-core) or name installed ones in data.held_out_fonts.", stacklevel=2)
    light, hard = without_region(cfg.augment, axis_region), without_region(cfg.hard_augment, axis_region)
    mixed = hard if cfg.train_hard_fraction > 0 else None
    plans = [SplitPlan("train", cfg.train_size, training_fonts, light, mixed, cfg.train_hard_fraction),
             SplitPlan("val", cfg.val_size, training_fonts, light)]
    if cfg.hard_val_size > 0:
        plans.append(SplitPlan("val_hard", cfg.hard_val_size, training_fonts, hard))
        if held_out:
            plans.append(SplitPlan("val_unseen_fonts", cfg.hard_val_size, held_out, cfg.augment))
            plans.append(SplitPlan("val_hard_unseen_fonts", cfg.hard_val_size, held_out, cfg.hard_augment))
        elif axis_region:
            variable = [font for font in training_fonts if any(axis.tag == "wdth" for axis in font.axes)]
            for name, augment in (("val_unseen_fonts", cfg.augment), ("val_hard_unseen_fonts", cfg.hard_augment)):
                plans.append(SplitPlan(name, cfg.hard_val_size, variable,
                                       dataclasses.replace(augment, font_width=list(axis_region))))
    # Glyph levers make up font variation to train on; every val split measures fonts as they really draw.
    return [plan if plan.name == "train" else dataclasses.replace(plan, augment=plan.augment.without_glyphs())
            for plan in plans if plan.size > 0]


AXIS_REGION = 8.0  # wdth units of the most condensed widths held out when no family can be
AXIS_GAP = 3.0  # and the gap between them and the narrowest width training draws


def held_out_axis_region(fonts: Sequence[FontSpec]) -> Optional[tuple[float, float]]:
    """With no held-out family: the most condensed widths of the variable fonts (the unseen splits
    draw only those, training never), or None when no font has a width axis."""
    minima = [axis.minimum for font in fonts for axis in font.axes if axis.tag == "wdth"]
    return (min(minima), min(minima) + AXIS_REGION) if minima else None


def without_region(augment: AugmentConfig, region: Optional[tuple[float, float]]) -> AugmentConfig:
    """`augment` drawing no width inside the held-out region (nor within AXIS_GAP of it)."""
    if region is None:
        return augment
    low, high = augment.font_width
    return dataclasses.replace(augment, font_width=[max(low, region[1] + AXIS_GAP), max(high, region[1] + AXIS_GAP)])


def resolve_path(path: str | Path) -> Path:
    """Relative paths are relative to where the user started the command, also inside a Hydra run dir."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return path
    base = Path.cwd()
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            base = Path(get_original_cwd())
    except ImportError:
        pass
    return base / path


# --- rendering in worker processes ------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(plans: list[SplitPlan], seed: int, out_dir: str, text: tuple[int, int, dict[str, float], float],
                 preprocess: tuple[int, int, bool]) -> None:
    _WORKER.update(plans={plan.name: plan for plan in plans}, seed=seed, out_dir=Path(out_dir), text=text,
                   preprocess=preprocess,
                   pixels={plan.name: pixel_store.open_for_writing(pixel_store.pixels_path(Path(out_dir), plan.name,
                                                                                          *preprocess))
                           for plan in plans})


def image_name(split: str, index: int) -> str:
    """Where sample `index` of `split` lies, relative to metadata.yaml."""
    return f"{split}/{index:06d}.png"


def _render_one(task: tuple[str, int]) -> dict[str, Any]:
    split, index = task
    plan = _WORKER["plans"][split]
    image, spec = render_sample(sample_key(_WORKER["seed"], split, index), plan.fonts, plan.augment_for(index),
                                *_WORKER["text"])
    relative = image_name(split, index)
    # Stored as grayscale: the model sees grayscale anyway (preprocess_image) and noisy RGB PNGs are
    # much larger. Pillow writes no timestamps, so equal pixels give equal bytes.
    gray = image.convert("L")
    gray.save(_WORKER["out_dir"] / relative, format="PNG", compress_level=3)
    # what a dataset would compute from the (lossless) PNG, stored so training never decodes it
    _WORKER["pixels"][split][index] = preprocess_image_uint8(gray, *_WORKER["preprocess"])
    record = {"image": relative, "label": spec.text, **spec.record()}
    if plan.is_hard(index):
        record["hard"] = True
    return record


def record_groups(record: Any) -> dict[str, list[str]]:
    """{"font": [family], "degradation": [kinds, or "none"], "format": [number format]} of one sample record
    of metadata.yaml (data, read as such: a missing or odd field just leaves its group empty). A generated
    record without "format" is a digits one (RenderSpec.record leaves it out)."""
    if not isinstance(record, dict):
        return {"font": [], "degradation": [], "format": []}
    font = record.get("font")
    generated = isinstance(record.get("augment"), dict)
    kinds = degradation_kinds(record.get("augment"))
    if record.get("hard") is True:
        kinds.append("heavy augment")
    text_format = record.get("format", NumberFormat.digits.value if generated else None)
    return {"font": [font] if isinstance(font, str) and font else [],
            "degradation": kinds or (["none"] if generated else []),
            "format": [text_format] if isinstance(text_format, str) and text_format else []}


def groups_by_path(dataset: Any) -> dict[str, dict[str, list[str]]]:
    """record_groups of every image of a generated split, by image path; {} for a dataset without records."""
    records = getattr(dataset, "records", None)
    paths = getattr(dataset, "paths", None)
    if not isinstance(records, list) or paths is None:
        return {}
    return {str(path): record_groups(record) for path, record in zip(paths, records)}


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def generate_dataset(cfg: DataConfig, seed: int, out_dir: str | Path, workers: Optional[int] = None,
                     progress: bool = True, fonts: Optional[Sequence[FontSpec]] = None) -> Path:
    """Render every split of `cfg` into `out_dir` (created) and return the metadata.yaml path."""
    fonts = list(fonts) if fonts is not None else data_fonts(cfg)
    plans = plan_splits(cfg, fonts)
    out_dir = Path(out_dir)
    for plan in plans:
        (out_dir / plan.name).mkdir(parents=True, exist_ok=True)
    workers = workers or cfg.generate_workers or default_workers()
    tasks = [(plan.name, index) for plan in plans for index in range(plan.size)]
    preprocess = (cfg.image_height, cfg.image_width, bool(cfg.text_crop))
    for plan in plans:
        pixel_store.create(pixel_store.pixels_path(out_dir, plan.name, *preprocess),
                           [image_name(plan.name, index) for index in range(plan.size)], *preprocess)
    init_args = (plans, seed, str(out_dir), text_settings(cfg), preprocess)

    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    bar = progress_bar(len(tasks), "rendering", "images", show=None if progress else False)
    if workers == 1:
        _init_worker(*init_args)
        for task in tasks:
            records.append(_render_one(task))
            bar.update()
        for pixels in _WORKER.pop("pixels").values():
            pixels.flush()
    else:
        with get_context("fork" if os.name == "posix" else "spawn").Pool(workers, _init_worker, init_args) as pool:
            for record in pool.imap(_render_one, tasks, chunksize=CHUNK_SIZE):
                records.append(record)
                bar.update()
    bar.close()
    elapsed = time.perf_counter() - started
    log.info("rendered %d images in %.1f s (%.0f images/s, %d workers)", len(tasks), elapsed,
             len(tasks) / max(elapsed, 1e-9), workers)

    splits: dict[str, list[dict[str, Any]]] = {}
    position = 0
    for plan in plans:
        splits[plan.name] = records[position:position + plan.size]
        position += plan.size
    path = out_dir / METADATA_FILE
    write_metadata(path, dataset_info(cfg, seed, plans, fonts), splits)
    return path


METADATA_HEADER = ("# khmer-digits-ocr dataset (runner.generate). Valid YAML; every sample is one JSON-style line\n"
                   "# so 20k samples load in a fraction of a second. Image paths are relative to this file.\n")


def write_metadata(path: Path, info: dict[str, Any], splits: dict[str, list[dict[str, Any]]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(METADATA_HEADER)
        yaml.dump({"dataset_info": info}, handle, Dumper=YAML_DUMPER, allow_unicode=True, sort_keys=False,
                  default_flow_style=None, width=120)
        for name, records in splits.items():
            handle.write(f"{name}:\n")
            for record in records:
                handle.write(f"- {json.dumps(record, ensure_ascii=False)}\n")


def text_settings(cfg: DataConfig) -> tuple[int, int, dict[str, float], float]:
    """(min_length, max_length, formats, ascii_digits): render_sample's text arguments."""
    return cfg.min_length, cfg.max_length, dict(cfg.formats), cfg.ascii_digits


def generator_settings(cfg: DataConfig) -> dict[str, Any]:
    """The settings that decide a generated dataset's contents (and its cache key). The text mix is named only
    when it is not the digits-only default, and train_fonts only when set, so datasets made before either
    existed keep their key."""
    settings = {"train_size": cfg.train_size, "val_size": cfg.val_size, "hard_val_size": cfg.hard_val_size,
                "min_length": cfg.min_length, "max_length": cfg.max_length,
                "held_out_fonts": list(cfg.held_out_fonts), "augment": cfg.augment.settings(),
                "hard_augment": cfg.hard_augment.settings(), "train_hard_fraction": cfg.train_hard_fraction}
    if cfg.train_fonts:
        settings["train_fonts"] = list(cfg.train_fonts)
    formats = mix_shares(cfg.formats)
    if formats != mix_shares(DEFAULT_MIX) or cfg.ascii_digits:
        settings.update(formats=formats, ascii_digits=cfg.ascii_digits, formats_version=FORMATS_VERSION)
    return settings


def dataset_info(cfg: DataConfig, seed: int, plans: Sequence[SplitPlan], fonts: Sequence[FontSpec]) -> dict:
    used_by = {font: [plan.name for plan in plans if font in plan.fonts] for font in fonts}
    return {
        "generator": "runner.generate", "generator_version": GENERATOR_VERSION, "seed": seed,
        "settings": generator_settings(cfg),
        "counts": {plan.name: plan.size for plan in plans},
        "fonts": [{"family": font.family, "file": font.name, "path": font.path, "source": font.source,
                   "variable_axes": [axis.tag for axis in font.axes], "splits": used_by[font]} for font in fonts],
    }


# --- the cache used by training when data.dir is null ------------------------------------------------

def dataset_cache_key(cfg: DataConfig, seed: int, fonts: Sequence[FontSpec]) -> str:
    identity = {"version": GENERATOR_VERSION, "seed": seed, "settings": generator_settings(cfg),
                "fonts": sorted([font.family, *font.fingerprint()] for font in fonts)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def write_dataset(cfg: DataConfig, seed: int, target: Path, workers: Optional[int] = None,
                  progress: bool = True, fonts: Optional[Sequence[FontSpec]] = None, replace: bool = False) -> Path:
    """Generate into a temporary sibling of `target`, then rename: a crash never leaves half a dataset.

    With `replace`, an existing `target` is swapped out only after the new dataset is complete.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_folders(target.parent, f".{target.name}")
    temporary = target.parent / f".{target.name}.tmp-{os.getpid()}"
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        generate_dataset(cfg, seed, temporary, workers, progress, fonts)
        if replace and target.exists():
            os.rename(target, retired)
        os.rename(temporary, target)
    except OSError:
        if not (target / METADATA_FILE).is_file():
            raise
        log.info("another process finished %s first; using it", target)  # rename lost a race
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return target / METADATA_FILE


def remove_abandoned_folders(parent: Path, prefix: str) -> list[Path]:
    """Remove `<prefix>*.tmp-PID` / `.old-PID` folders of generations whose process is gone (killed, power
    loss); a live PID's folder is left alone. PIDs are this machine's: keep a cache on a local disk."""
    removed = []
    for folder in parent.glob(f"{glob.escape(prefix)}*"):
        match = re.fullmatch(r"\..+\.(?:tmp|old)-(\d+)", folder.name)
        if match and folder.is_dir() and not _process_alive(int(match.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed %s, left by a generation that was killed", folder)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def ensure_generated_dataset(cfg: DataConfig, seed: int, rank: int = 0, progress: bool = True,
                             wait_timeout_s: float = 3600.0) -> Path:
    """metadata.yaml of the cached dataset for (settings, seed, fonts), generating it once if needed."""
    cfg = as_data_config(cfg)  # resolves cache_dir's ${oc.env:KHMER_OCR_CACHE,...}
    fonts = data_fonts(cfg)
    target = resolve_path(cfg.cache_dir) / f"khmer-digits-{dataset_cache_key(cfg, seed, fonts)}"
    metadata = target / METADATA_FILE
    if rank == 0 and target.parent.is_dir():
        remove_abandoned_folders(target.parent, ".khmer-digits-")
    if metadata.is_file():
        log.info("reusing cached dataset %s", target)
        return metadata
    if rank != 0:
        # Rank 0 generates; the others wait rather than render the same files concurrently.
        deadline = time.monotonic() + wait_timeout_s
        while not metadata.is_file():
            if time.monotonic() > deadline:
                raise DataError(f"rank {rank} waited {wait_timeout_s:.0f} s for rank 0 to generate {target}; "
                                f"generate it first with `python -m runner.generate` and restart.")
            time.sleep(2.0)
        return metadata
    log.info("generating dataset into cache %s (once; later runs reuse it)", target)
    return write_dataset(cfg, seed, target, progress=progress, fonts=fonts)


def _read_sample_lines(text: str) -> Optional[dict[str, Any]]:
    """Fast path for files written by `write_metadata`; None when the layout is not exactly that."""
    header, body = [], []
    split: Optional[str] = None
    splits: dict[str, list[Any]] = {}
    for line in text.splitlines():
        if line.endswith(":") and line[:-1].isidentifier() and line != "dataset_info:":
            split = line[:-1]
            splits[split] = body = []
        elif split is None:
            header.append(line)
        elif line.startswith("- {"):
            try:
                body.append(json.loads(line[2:]))
            except json.JSONDecodeError:
                return None
        else:
            return None
    metadata = yaml.load("\n".join(header), Loader=YAML_LOADER)
    if not isinstance(metadata, dict):
        return None
    metadata.update(splits)
    return metadata


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Parse metadata.yaml; DataError naming the file when it is missing or malformed."""
    path = Path(path)
    if path.is_dir():
        path = path / METADATA_FILE
    if not path.is_file():
        raise DataError(f"dataset metadata {path} does not exist; generate a dataset with "
                        f"`python -m runner.generate data.dir={path.parent}` or set data.dir=null to use the cache.")
    try:
        text = path.read_text(encoding="utf-8")
        metadata = _read_sample_lines(text) if text.startswith(METADATA_HEADER) else None
        if metadata is None:  # edited by hand or written by another tool: the general (slow) parser
            metadata = yaml.load(text, Loader=YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DataError(f"dataset metadata {path} is not valid YAML ({error}); regenerate it.") from error
    if not isinstance(metadata, dict):
        raise DataError(f"dataset metadata {path} must be a mapping with split lists (train, val, ...); "
                        f"got {type(metadata).__name__}.")
    return metadata
