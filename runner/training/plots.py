"""Figures and reports a person reads: validation examples and the error report (worst errors).

The confusion matrix figure is runner.metrics.confusion_matrix_figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from runner.charset import DIGITS  # noqa: E402

_ARABIC = {khmer: str(i) for i, khmer in enumerate(DIGITS)}


def arabic(text: str) -> str:
    """Khmer digits as Arabic ones, for fonts (like matplotlib's default) that lack Khmer glyphs."""
    return "".join(_ARABIC.get(char, char) for char in text) or "∅"


def examples_figure(images: Sequence[torch.Tensor], pred: Sequence[str], true: Sequence[str]) -> plt.Figure:
    """A grid of model inputs titled 'prediction | truth' (green when right, red when wrong)."""
    columns = 4
    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 2.6, rows * 1.0), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, p, t in zip(axes.flat, images, pred, true):
        ax.imshow(image.squeeze(0).numpy(), cmap="gray")
        ax.set_title(f"{arabic(p)} | {arabic(t)}", fontsize=8, color="green" if p == t else "red")
    figure.tight_layout()
    return figure


def write_error_report(path: Path, metrics: dict[str, float], analysis: dict[str, Any], limit: int) -> None:
    """errors.md: headline metrics, most confused pairs and the worst validation examples."""
    lines = ["# Validation error report", ""]
    lines += [f"- {key}: {value:.4f}" if isinstance(value, float) else f"- {key}: {value}" for key, value in metrics.items()]
    lines += ["", "## Error counts", ""]
    for key in ("substitutions", "insertions", "deletions"):
        if key in analysis:
            lines.append(f"- {key}: {analysis[key]}")
    pairs = analysis.get("most_confused") or []
    if pairs:
        lines += ["", "## Most confused pairs (true → predicted)", "", "| true | predicted | count |", "|---|---|---|"]
        for pair in pairs[:10]:
            true, predicted, count = pair["truth"], pair["prediction"], pair["count"]
            lines.append(f"| {true} ({arabic(true)}) | {predicted} ({arabic(predicted)}) | {count} |")
    worst = analysis.get("worst_examples") or []
    lines += ["", f"## Worst examples ({min(limit, len(worst))} of {len(worst)} shown)", ""]
    if worst:
        lines += ["| image | truth | prediction | confidence | edit distance |", "|---|---|---|---|---|"]
        for example in worst[:limit]:
            confidence = "-" if example["confidence"] is None else f"{example['confidence']:.3f}"
            lines.append(f"| {example['path'] or '-'} | {example['truth']} ({arabic(example['truth'])}) | "
                         f"{example['prediction'] or '∅'} ({arabic(example['prediction'])}) | {confidence} | "
                         f"{example['distance']} |")
    else:
        lines.append("No errors on the validation split.")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

