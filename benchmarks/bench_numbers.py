"""The numbers charset measured: formatted numbers per split and per format next to Tesseract 5, and plain digit
strings next to the digits model.

    python benchmarks/bench_numbers.py NUMBERS_RUN DIGITS_RUN [--images 300]   # run dirs, .pt or .onnx files

1. Formatted numbers: the numbers model on every validation split of the dataset it was trained on (found again
   in the data cache, as `runner.evaluate` finds it), and Tesseract 5 (`-l khm --psm 7`, what it reads kept to the
   charset) on `--images` images of each split spread over the reading order, beside the model on the same images.
   "exact" compares the texts; "value" compares them with Khmer digits written as ASCII and runs of spaces as one
   (១២,៥០០៛ = 12,500៛), which forgives Tesseract for reading a Khmer digit as its ASCII twin.
2. Per format: both readers on the heavy-degradation split in held-out font families.
3. Plain digit strings: the digits model and the numbers model on the splits of the digits model's dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import OmegaConf

from runner.data.config import DataConfig
from runner.data.generate import groups_by_path
from runner.inference.evaluation import evaluation_data_config, evaluation_dataset, evaluation_seed, read_dataset
from runner.inference.predictors import load_predictor
from runner.tesseract import tesseract_command, tesseract_read

SPLITS = ("val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts")
HARD_UNSEEN = "val_hard_unseen_fonts"


def split_samples(predictor: Any, data_of: Any) -> dict[str, tuple[Any, Any]]:
    """{split: (dataset, ScoredSamples)} of `predictor` on the validation splits of `data_of`'s training data."""
    data, _ = evaluation_data_config(OmegaConf.structured(DataConfig), data_of, [])
    data.image_height, data.image_width = predictor.height, predictor.width
    seed = evaluation_seed(data_of, data)
    out = {}
    for split in SPLITS:
        dataset, _ = evaluation_dataset(data, split, seed, charset=predictor.charset, model=str(predictor.source))
        out[split] = (dataset, read_dataset(predictor, dataset, 64, 0, data.max_length))
    return out


def spread(count: int, total: int) -> list[int]:
    """`count` indices spread evenly over `total` (the reading order is width-sorted: this covers every width)."""
    return sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(min(count, total))})


def accuracy(pairs: Sequence[tuple[str, str]]) -> Optional[float]:
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def formatted(numbers: Any, images: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Rows per split (model on all images and on the Tesseract subset, Tesseract), and per format on HARD_UNSEEN."""
    command = tesseract_command()
    charset = numbers.charset

    def value(text: str) -> str:
        return " ".join(charset.value(text).split())

    rows, per_format = [], {}
    for split, (dataset, samples) in split_samples(numbers, numbers).items():
        picks = spread(images, len(samples.targets))
        truths = [samples.targets[i] for i in picks]
        read = tesseract_read(command, [Path(samples.paths[i]) for i in picks], charset) if command else None
        everything = list(zip(samples.predictions, samples.targets))
        subset = [(samples.predictions[i], samples.targets[i]) for i in picks]
        row = {"split": split, "images": len(everything), "model_exact": accuracy(everything),
               "model_value": accuracy([(value(a), value(b)) for a, b in everything]),
               "subset": len(picks), "model_subset_exact": accuracy(subset),
               "tesseract_exact": accuracy(list(zip(read, truths))) if read is not None else None,
               "tesseract_value": accuracy([(value(a), value(b)) for a, b in zip(read, truths)]) if read else None}
        rows.append(row)
        if split != HARD_UNSEEN:
            continue
        groups = groups_by_path(dataset)
        tesseract_of = dict(zip(picks, read)) if read is not None else {}
        for index, (predicted, truth) in enumerate(everything):
            for name in groups.get(samples.paths[index], {}).get("format", ["digits"]):
                entry = per_format.setdefault(name, {"model": [], "tesseract": [], "tesseract_value": []})
                entry["model"].append((predicted, truth))
                if index in tesseract_of:
                    entry["tesseract"].append((tesseract_of[index], truth))
                    entry["tesseract_value"].append((value(tesseract_of[index]), value(truth)))
    table = {name: {"images": len(entry["model"]), "model": accuracy(entry["model"]),
                    "tesseract_images": len(entry["tesseract"]), "tesseract": accuracy(entry["tesseract"]),
                    "tesseract_value": accuracy(entry["tesseract_value"])}
             for name, entry in sorted(per_format.items())}
    return rows, table


def plain_digits(numbers: Any, digits: Any) -> list[dict[str, Any]]:
    """Both models on the digits model's own validation splits (plain Khmer digit strings)."""
    by_digits = split_samples(digits, digits)
    by_numbers = split_samples(numbers, digits)
    rows = []
    for split in SPLITS:
        a, b = by_digits[split][1], by_numbers[split][1]
        rows.append({"split": split, "images": len(a.targets),
                     "digits_model": accuracy(list(zip(a.predictions, a.targets))),
                     "numbers_model": accuracy(list(zip(b.predictions, b.targets)))})
    return rows


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def markdown(rows: list[dict[str, Any]], table: dict[str, dict[str, Any]], plain: list[dict[str, Any]]) -> str:
    lines = ["| split | images | numbers model exact | value | Tesseract images | model on them | Tesseract exact | "
             "Tesseract value |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['split']} | {r['images']} | {_pct(r['model_exact'])} | {_pct(r['model_value'])} | {r['subset']} | "
              f"{_pct(r['model_subset_exact'])} | {_pct(r['tesseract_exact'])} | {_pct(r['tesseract_value'])} |"
              for r in rows]
    lines += ["", f"Per format, {HARD_UNSEEN}:", "",
              "| format | images | numbers model | Tesseract images | Tesseract exact | Tesseract value |",
              "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {t['images']} | {_pct(t['model'])} | {t['tesseract_images']} | {_pct(t['tesseract'])} | "
              f"{_pct(t['tesseract_value'])} |" for name, t in table.items()]
    lines += ["", "Plain Khmer digit strings (the digits model's dataset):", "",
              "| split | images | digits model | numbers model | difference (points) |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['split']} | {r['images']} | {_pct(r['digits_model'])} | {_pct(r['numbers_model'])} | "
              f"{100 * (r['numbers_model'] - r['digits_model']):+.1f} |" for r in plain]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("numbers", help="the numbers-charset model: a run dir, .pt or .onnx with its sidecar")
    parser.add_argument("digits", help="the digits-charset model to compare on plain digit strings")
    parser.add_argument("--images", type=int, default=300, help="images per split for Tesseract (spread evenly)")
    args = parser.parse_args(argv)
    numbers, digits = load_predictor(args.numbers, "cpu"), load_predictor(args.digits, "cpu")
    rows, table = formatted(numbers, args.images)
    print(markdown(rows, table, plain_digits(numbers, digits)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
