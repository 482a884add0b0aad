"""Ablation of the glyph-level levers (issue 16): which ones help a model read font families it never saw?

    nice -n 19 python benchmarks/ablate_glyphs.py                        # every lever, the settings below
    python benchmarks/ablate_glyphs.py --levers baseline stroke --train-size 4000 --epochs 2

Every run is a short `python -m runner` (a subprocess, so its threads and memory end with it) that
trains on --train-fonts with the default training mix (data.augment light, data.hard_augment heavy)
and one lever switched on in both, at its value in conf/data/augment/glyph.yaml, every other lever off
(the default allograph_p too); `baseline` switches none, `all` every one, and --base names levers on in
every row. val_unseen_fonts and val_hard_unseen_fonts draw only --held-out families,
never trained on, and no glyph lever (runner.data.generate.plan_splits), so every row is scored on
the same images; their sequence accuracies come from the run's metrics.json. Images/s of rendering
(render + preprocess, one process, heavy plus the lever, training fonts) is measured here beforehand.
One seed per lever: two runs of one config differed by 3 points (docs/benchmarks.md), so smaller
differences are noise at these sizes.
Writes the table to outputs/bench/ablate_glyphs.md (and stdout); runs go to outputs/bench/ablate_glyphs/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling bench_* modules

import bench_data  # noqa: E402
from bench import machine_markdown  # noqa: E402

from runner.data.config import GLYPH_KNOBS, GLYPHS_OFF, DataConfig, augment_preset  # noqa: E402
from runner.data.generate import data_fonts  # noqa: E402
from runner.data.fonts import split_held_out  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO / "outputs" / "bench"
# Each lever's knobs; their values come from conf/data/augment/glyph.yaml.
LEVERS: dict[str, tuple[str, ...]] = {
    "baseline": (), "glyph_scale": ("glyph_scale",), "glyph_width": ("glyph_width",),
    "glyph_rotation": ("glyph_rotation",),
    "baseline_jitter": ("baseline_jitter",), "glyph_spacing_jitter": ("glyph_spacing_jitter",),
    "stroke": ("stroke_p", "stroke_radius"), "elastic": ("elastic_p", "elastic_strength"),
    "mix_fonts": ("mix_fonts_p",), "allograph": ("allograph_p",), "nib": ("nib_p", "nib_width"),
    "all": GLYPH_KNOBS}
TRAIN_FONTS = ("Noto Sans Khmer", "Khmer OS", "Khmer OS Battambang", "Khmer OS Content")
HELD_OUT = ("Khmer OS Siemreap", "Khmer OS System", "Khmer OS Bokor", "Noto Serif Khmer")


def lever_values(lever: str, base: Sequence[str] = ()) -> dict[str, Any]:
    """Every glyph lever's switch, off (GLYPHS_OFF: the defaults switch allograph_p on) except the knobs of
    `lever` and of every lever in `base`, at their glyph.yaml values."""
    glyph = augment_preset("glyph")
    values: dict[str, Any] = dict(GLYPHS_OFF)
    for one in (*base, lever):
        values.update({name: getattr(glyph, name) for name in LEVERS[one]})
    return values


def levers_on(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if GLYPHS_OFF.get(name) != value}


def hydra_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return f"'{value}'" if isinstance(value, str) else str(value)


def run_overrides(lever: str, args: argparse.Namespace, run_dir: Path) -> list[str]:
    overrides = [f"data.train_fonts={hydra_value(list(args.train_fonts))}",
                 f"data.held_out_fonts={hydra_value(list(args.held_out))}",
                 f"data.train_size={args.train_size}", f"data.val_size={args.val_size}",
                 f"data.hard_val_size={args.hard_val_size}", "data.generate_workers=1",
                 f"trainer.max_epochs={args.epochs}", f"trainer.max_time_minutes={args.max_minutes}",
                 "trainer.progress_bar=false", "device=cpu", f"device.num_threads={args.threads}",
                 f"seed={args.seed}", "experiment_name=ablate_glyphs", f"hydra.run.dir={run_dir}"]
    for name, value in lever_values(lever, args.base).items():
        overrides += [f"data.augment.{name}={hydra_value(value)}", f"data.hard_augment.{name}={hydra_value(value)}"]
    return overrides


def render_images_per_s(lever: str, args: argparse.Namespace, images: int) -> float:
    data = DataConfig(train_fonts=list(args.train_fonts), held_out_fonts=list(args.held_out))
    fonts, _ = split_held_out(data_fonts(data), data.held_out_fonts, data.train_fonts)
    cfg = dataclasses.replace(augment_preset("heavy"), **lever_values(lever, args.base))
    return bench_data.render_rate(images, cfg, fonts=fonts)


def train_one(lever: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    run_dir = root / lever
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(REPO))
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "runner", *run_overrides(lever, args, run_dir)], cwd=REPO,
                               env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"run {lever} failed ({run_dir}):\n{completed.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    extra = metrics["extra_val_metrics"]
    return {"lever": lever, "values": lever_values(lever, args.base), "wall_s": wall_s,
            "epochs": metrics["epochs_completed"], "stop_reason": metrics["stop_reason"],
            "val": metrics["final_metrics"]["val/seq_accuracy"],
            "unseen_clean": extra["val_unseen_fonts"]["val_unseen_fonts/seq_accuracy"],
            "unseen_hard": extra["val_hard_unseen_fonts"]["val_hard_unseen_fonts/seq_accuracy"],
            "run_dir": str(run_dir)}


def ablation_markdown(rows: Sequence[dict[str, Any]], args: argparse.Namespace, machine: str) -> str:
    lines = ["# Glyph-level augmentation ablation (issue 16)", "", machine, "",
             f"- train fonts: {', '.join(args.train_fonts)}; held out (scored): {', '.join(args.held_out)}",
             f"- on in every row: {', '.join(args.base) or 'no lever'}",
             f"- {args.train_size:,} training images, {args.epochs} epochs (cap {args.max_minutes:g} min), "
             f"{args.threads} thread(s), seed {args.seed}; unseen splits {args.hard_val_size:,} images each",
             f"- command: `python benchmarks/ablate_glyphs.py {' '.join(sys.argv[1:])}`", "",
             "| lever | values | val (training fonts) | unseen clean | unseen hard | render images/s | run min |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        values = ", ".join(f"{k}={v}" for k, v in levers_on(row["values"]).items()) or "no glyph lever"
        lines.append(f"| {row['lever']} | {values} | {row['val']:.4f} | {row['unseen_clean']:.4f} | "
                     f"{row['unseen_hard']:.4f} | {row['render_images_per_s']:.0f} | {row['wall_s'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The short-run settings train_one reads (also benchmarks/kfold_fonts.py's)."""
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--val-size", type=int, default=500)
    parser.add_argument("--hard-val-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-minutes", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--base", nargs="*", default=[], choices=list(LEVERS),
                        help="levers switched on in every run, the baseline too")


def write_report(name: str, report: str) -> None:
    """outputs/bench/NAME.md and stdout."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / f"{name}.md").write_text(report, encoding="utf-8")
    print(report)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--train-fonts", nargs="+", default=list(TRAIN_FONTS))
    parser.add_argument("--held-out", nargs="+", default=list(HELD_OUT))
    add_run_arguments(parser)
    parser.add_argument("--render-images", type=int, default=200)
    args = parser.parse_args(argv)
    machine = machine_markdown()
    root = OUTPUT_DIR / "ablate_glyphs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    rows = []
    for lever in args.levers:
        rate = render_images_per_s(lever, args, args.render_images)
        row = {**train_one(lever, args, root), "render_images_per_s": rate}
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_report("ablate_glyphs", ablation_markdown(rows, args, machine))


if __name__ == "__main__":
    main()
