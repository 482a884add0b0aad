"""Accuracy of a trained model next to Tesseract 5 on the same images of every validation split.

    python benchmarks/bench_accuracy.py outputs/default/2026-11-25/13-00-00-abc123     # a run dir or .pt
    python benchmarks/bench_accuracy.py best.pt --images 500

The splits are those of the generated dataset the checkpoint was trained on (found again in the
data cache from the data settings and seed stored in the checkpoint, as `runner.evaluate` does):
val (clean), val_hard (heavy degradation), val_unseen_fonts (held-out families) and
val_hard_unseen_fonts (both). Both readers get the first `--images` images of each split: the model
through `runner.evaluate`'s path, Tesseract (`-l khm --psm 7`) on the image files themselves.
`compare_with_tesseract()` returns the rows for `make bench`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: the sibling bench_* modules

from runner.data.config import DataConfig  # noqa: E402
from runner.data.splits import build_datasets  # noqa: E402
from runner.inference.evaluation import evaluate_dataset, evaluation_data_config, evaluation_seed  # noqa: E402
from runner.inference.predictors import load_predictor  # noqa: E402
from runner.tesseract import tesseract_command, tesseract_read  # noqa: E402

SPLITS = {"val": "clean, training fonts", "val_hard": "heavy degradation, training fonts",
          "val_unseen_fonts": "clean, held-out font families", "val_hard_unseen_fonts": "heavy degradation, held-out "
                                                                                         "font families"}


def compare_with_tesseract(checkpoint: str | Path, images: int = 300, tesseract: bool = True) -> list[dict[str, Any]]:
    """One row per split present: model and Tesseract sequence accuracy on the same `images` images."""
    predictor = load_predictor(checkpoint, "cpu")
    data, _ = evaluation_data_config(OmegaConf.structured(DataConfig), predictor, [])
    datasets = build_datasets(data, evaluation_seed(predictor, data), charset=predictor.charset)
    command = tesseract_command() if tesseract else None
    rows = []
    for split, what in SPLITS.items():
        if split not in datasets:
            continue
        dataset = datasets[split]
        count = min(images, len(dataset))
        scores = evaluate_dataset(predictor, Subset(dataset, range(count)), max_length=data.max_length).compute()
        row: dict[str, Any] = {"split": split, "what": what, "images": count, "model": predictor.name,
                               "model_seq_accuracy": scores["seq_accuracy"], "model_cer": scores["cer"],
                               "tesseract_seq_accuracy": None}
        if command is not None:
            read = tesseract_read(command, dataset.paths[:count], predictor.charset)
            row["tesseract_seq_accuracy"] = sum(text == truth for text, truth in zip(read, dataset.texts)) / count
        rows.append(row)
    return rows


def accuracy_markdown(rows: Sequence[dict[str, Any]]) -> str:
    model = rows[0]["model"] if rows else "model"
    lines = [f"| split | images | `{model}` seq accuracy | `{model}` CER | Tesseract 5 `khm` seq accuracy |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        tesseract = row["tesseract_seq_accuracy"]
        lines.append(f"| {row['split']} ({row['what']}) | {row['images']} | {row['model_seq_accuracy']:.4f} | "
                     f"{row['model_cer']:.4f} | {'not installed' if tesseract is None else f'{tesseract:.4f}'} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a checkpoint .pt or a run dir (uses checkpoints/best.pt)")
    parser.add_argument("--images", type=int, default=300, help="images per split (the first N)")
    parser.add_argument("--no-tesseract", action="store_true")
    args = parser.parse_args(argv)
    rows = compare_with_tesseract(args.checkpoint, args.images, not args.no_tesseract)
    print(accuracy_markdown(rows))


if __name__ == "__main__":
    sys.exit(main())
