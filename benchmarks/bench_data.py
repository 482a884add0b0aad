"""Data speed: generating a dataset, rendering on the fly, decoding cached PNGs, batching from memory.

    python benchmarks/bench_data.py                   # 512 images per measurement
    python benchmarks/bench_data.py --images 2048

What is timed (images/s):
  generate        `generate_dataset` (render + PNG write + metadata.yaml) with every usable core, what
                  `python -m runner.generate` and the first `make train` do
  render          one process: `render_sample` + `preprocess_image_uint8`, what one on-the-fly
                  (data=onthefly) loader worker does per image; light and heavy augmentation
  decode PNG      one process: a generated PNG -> model input, the first epoch over a generated dataset
  cached batches  the default training DataLoader (num_workers=0) once every image is cached in memory,
                  the steady state of every later epoch

How long training waits for data is measured by the trainer itself (`train/data_wait_fraction`,
reported by bench_training and in metrics.json); `data_markdown` puts the numbers side by side.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from runner.data.config import AugmentConfig, DataConfig, augment_preset
from runner.data.datasets import KhmerDigitsDataset
from runner.data.fonts import FontSpec
from runner.data.loaders import make_loader
from runner.data.generate import data_fonts, default_workers, generate_dataset
from runner.data.preprocess import preprocess_image_uint8
from runner.data.render import render_sample, sample_key


def generation_rate(images: int = 512, workers: Optional[int] = None, seed: int = 0) -> dict[str, Any]:
    """Images/s of `generate_dataset` writing `images` training images (light augmentation) to a temp dir."""
    cfg = DataConfig(train_size=images, val_size=0, hard_val_size=0)
    workers = workers or default_workers()
    fonts = data_fonts(cfg)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as folder:
        started = time.perf_counter()
        metadata = generate_dataset(cfg, seed, folder, workers=workers, progress=False, fonts=fonts)
        elapsed = time.perf_counter() - started
        decode = decode_rate(metadata, min(images, 256))
        batches = cached_batch_rate(metadata)
    return {"images": images, "workers": workers, "generate_images_per_s": images / elapsed,
            "decode_images_per_s": decode, "cached_batch_images_per_s": batches, "fonts": len(fonts)}


def render_rate(images: int = 256, augment: str | AugmentConfig = "light", seed: int = 0,
                fonts: Optional[Sequence[FontSpec]] = None) -> float:
    """Images/s of rendering + preprocessing in this process (one on-the-fly worker); `augment` is a
    preset name or a config, `fonts` default to every installed one."""
    fonts = fonts or data_fonts(DataConfig())
    cfg = augment_preset(augment) if isinstance(augment, str) else augment
    started = time.perf_counter()
    for index in range(images):
        image, _ = render_sample(sample_key(seed, "bench", index), fonts, cfg, 1, 8)
        preprocess_image_uint8(image, 32, 128, text_crop=True)
    return images / (time.perf_counter() - started)


def decode_rate(metadata: Path, images: int) -> float:
    """Images/s of loading generated PNGs into model inputs (the first epoch, before the memory cache fills)."""
    dataset = KhmerDigitsDataset(metadata, "train", cache_in_memory=False)
    started = time.perf_counter()
    for index in range(min(images, len(dataset))):
        dataset[index]
    return min(images, len(dataset)) / (time.perf_counter() - started)


def cached_batch_rate(metadata: Path, batch_size: int = 64, passes: int = 3) -> float:
    """Images/s of the default loader (shuffled, num_workers=0) once every image is in the memory cache."""
    dataset = KhmerDigitsDataset(metadata, "train", cache_in_memory=True)
    loader = make_loader(dataset, batch_size, shuffle=True)
    for _ in loader:  # fills the cache
        pass
    started = time.perf_counter()
    count = sum(batch["images"].shape[0] for batch in itertools.chain.from_iterable(loader for _ in range(passes)))
    return count / (time.perf_counter() - started)


def measure_data(images: int = 512, render_images: int = 128, generated: Optional[dict[str, Any]] = None
                 ) -> dict[str, Any]:
    """Every rate of the module docstring; `generated` reuses a `generation_rate` result measured earlier."""
    result = dict(generated) if generated else generation_rate(images)
    result["render_light_images_per_s"] = render_rate(render_images, "light")
    result["render_heavy_images_per_s"] = render_rate(render_images, "heavy")
    return result


def data_markdown(result: dict[str, Any], wait_fractions: Sequence[tuple[str, float]] = (),
                  train_images_per_s: Optional[float] = None) -> str:
    lines = ["| data path | images/s | note |", "|---|---:|---|",
             f"| generate dataset (`runner.generate`) | {result['generate_images_per_s']:.0f} | "
             f"{result['images']} images, {result['workers']} worker processes, {result['fonts']} fonts, PNG + metadata |",
             f"| render on the fly, light augmentation | {result['render_light_images_per_s']:.0f} | one process "
             f"(one data=onthefly worker): render + preprocess |",
             f"| render on the fly, heavy augmentation | {result['render_heavy_images_per_s']:.0f} | one process |",
             f"| decode generated PNG | {result['decode_images_per_s']:.0f} | one process; first epoch only |",
             f"| batches from the memory cache | {result['cached_batch_images_per_s']:.0f} | default loader, "
             f"num_workers=0, batch 64; every later epoch |"]
    if train_images_per_s:
        lines += ["", f"Training consumes ≈ {train_images_per_s:.0f} images/s here (section 1), so the cached path "
                  f"costs ≈ {train_images_per_s / result['cached_batch_images_per_s']:.1%} of step time and one "
                  f"on-the-fly worker can keep up while it renders faster than that."]
    if wait_fractions:
        lines += ["", "Share of training step time spent waiting for data (`train/data_wait_fraction`, "
                  "target < 5%):", "", "| where | data wait |", "|---|---:|"]
        lines += [f"| {where} | {fraction:.1%} |" for where, fraction in wait_fractions]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=512, help="images generated for the generation rate")
    parser.add_argument("--render-images", type=int, default=128, help="images rendered per on-the-fly rate")
    args = parser.parse_args(argv)
    print(f"load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(data_markdown(measure_data(args.images, args.render_images)))


if __name__ == "__main__":
    main()
