"""K-fold over font families (issue 16): how well a model reads families it never saw, as a mean and a spread.

    nice -n 19 python benchmarks/kfold_fonts.py                  # the folds below, short runs
    python benchmarks/kfold_fonts.py --train-size 4000 --epochs 2 --folds 0 1

Each fold holds out a few installed families and trains a short `python -m runner` on every other one
(the default training mix: light and heavy augmentation), then scores val_unseen_fonts (clean) and
val_hard_unseen_fonts (heavy degradation), which draw only that fold's families; the runs are those of
benchmarks/ablate_glyphs.py with no lever. Noto Sans Khmer (the pip font) and Khmer OS stay in every
training set. Writes outputs/bench/kfold_fonts.md (and stdout); runs go to outputs/bench/kfold_fonts/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling bench_* modules

from ablate_glyphs import OUTPUT_DIR, add_run_arguments, train_one, write_report  # noqa: E402
from bench import machine_markdown  # noqa: E402

FOLDS: tuple[tuple[str, ...], ...] = (
    ("Khmer OS Siemreap", "Noto Serif Khmer", "Khmer OS Bokor"),
    ("Khmer OS Battambang", "Khmer OS Muol Light", "Khmer OS Freehand"),
    ("Khmer OS Content", "Khmer OS Metal Chrieng", "Khmer OS Muol Pali"),
    ("Khmer OS System", "Khmer OS Fasthand", "Khmer OS Muol"),
)


def spread(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {deviation:.4f} (min {min(values):.4f}, max {max(values):.4f})"


def kfold_markdown(rows: Sequence[dict[str, Any]], args: argparse.Namespace, machine: str) -> str:
    lines = ["# K-fold over font families (issue 16)", "", machine, "",
             f"- each fold trains on every installed family but its held-out ones: {args.train_size:,} images, "
             f"{args.epochs} epochs (cap {args.max_minutes:g} min), {args.threads} thread(s), seed {args.seed}; "
             f"unseen splits {args.hard_val_size:,} images each",
             f"- command: `python benchmarks/kfold_fonts.py {' '.join(sys.argv[1:])}`", "",
             "| fold | held out | val (training fonts) | unseen clean | unseen hard |", "|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['fold']} | {', '.join(row['held_out'])} | {row['val']:.4f} | {row['unseen_clean']:.4f} "
                     f"| {row['unseen_hard']:.4f} |")
    lines += ["", f"- unseen clean: {spread([row['unseen_clean'] for row in rows])}",
              f"- unseen hard: {spread([row['unseen_hard'] for row in rows])}"]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", nargs="+", type=int, default=list(range(len(FOLDS))))
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    machine = machine_markdown()
    root = OUTPUT_DIR / "kfold_fonts" / time.strftime("%Y-%m-%d_%H-%M-%S")
    rows = []
    for fold in args.folds:
        fold_args = argparse.Namespace(**vars(args), train_fonts=[], held_out=list(FOLDS[fold]))
        row = {"fold": fold, "held_out": FOLDS[fold], **train_one("baseline", fold_args, root / f"fold{fold}")}
        print(json.dumps(row, default=list), flush=True)
        rows.append(row)
    write_report("kfold_fonts", kfold_markdown(rows, args, machine))


if __name__ == "__main__":
    main()
