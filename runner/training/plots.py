"""Figures and reports a person reads: validation examples, training curves and the error report (worst errors).

The confusion matrix figure is runner.metrics.confusion_matrix_figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from runner.charset import Charset
from runner.outputs import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES_FILE = "curves.png"  # in the run dir


def arabic(text: str) -> str:
    """The text's value (Khmer digits as Arabic ones, ៛ as KHR), for fonts (like matplotlib's default) that lack
    Khmer glyphs."""
    return Charset.value(text).replace("\u17db", "KHR") or "∅"


@dataclass
class ShownExample:
    """A validation image shown with what the model read and how sure it was."""

    image: torch.Tensor  # [1, H, W], on the CPU
    truth: str
    prediction: str
    confidence: float

    @property
    def correct(self) -> bool:
        return self.prediction == self.truth

    def caption(self) -> str:
        if self.correct:
            return f"correct: {arabic(self.truth)} ({self.confidence:.2f})"
        return f"truth {arabic(self.truth)}, read {arabic(self.prediction)} ({self.confidence:.2f})"


def examples_figure(examples: Sequence[ShownExample]) -> "Figure":
    """A grid of model inputs captioned truth, prediction and confidence (red: misread, green: correct)."""
    from matplotlib.figure import Figure

    columns = 4
    rows = (len(examples) + columns - 1) // columns
    figure = Figure(figsize=(columns * 2.6, rows * 1.0 + 0.4))
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, example in zip(axes.flat, examples):
        ax.imshow(example.image.squeeze(0).numpy(), cmap="gray")
        ax.set_title(example.caption(), fontsize=8, color="green" if example.correct else "red")
    misreads = sum(not example.correct for example in examples)
    shown = f"{misreads} misreads, most confident first" if misreads else "no misreads"
    figure.suptitle(f"{shown}; {len(examples) - misreads} correct, across widths (0-9 = Khmer digits)", fontsize=9)
    figure.tight_layout()
    return figure


_CURVE_PANELS = (("loss", "/loss", "loss"), ("sequence accuracy", "/seq_accuracy", "seq accuracy"),
                 ("learning rate (epoch end)", "lr", "lr"), ("training throughput", "train/samples_per_s", "images/s"))


def write_curves(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """curves.png from a run's per-epoch history (metrics.json): loss and sequence accuracy per split,
    the learning rate and the training throughput, against the epoch; written atomically."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 7))
    for ax, (title, key, ylabel) in zip(figure.subplots(2, 2).flat, _CURVE_PANELS):
        keys = sorted({k for row in history for k in row if k == key or (key.startswith("/") and k.endswith(key))})
        for name in keys:
            points = [(epoch, row[name]) for epoch, row in zip(epochs, history) if name in row]
            ax.plot(*zip(*points), marker="o", markersize=3, label=name.split("/")[0] if "/" in name else None,
                    linestyle="--" if name.startswith("train/") and key.startswith("/") else "-")
        if len(keys) > 1:
            ax.legend(fontsize=8)
        if not keys:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        if key == "lr" and keys and all(row["lr"] > 0 for row in history if "lr" in row):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    figure.suptitle(f"{len(history)} epochs", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    return path


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

