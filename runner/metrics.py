"""OCR metrics on decoded strings, so CTC and attention models are scored the same way.

Every score comes from one Levenshtein alignment per sample (rapidfuzz opcodes, reference ->
prediction), over characters only: PAD/SOS/EOS/BLANK never reach a string (token tensors are
decoded with the metrics' charset first). `OCRMetrics(idx_to_char)` takes the run's Charset (or its name,
or a plain {token id: character} mapping, as the seed's API); the confusion matrix has a row and a column
per character of it, plus ∅.

    char_accuracy       matched (equal) aligned characters / reference characters, in [0, 1]
    cer                 edit distance / reference characters (insertions can push it above 1)
    seq_accuracy        exact matches / samples
    norm_edit_distance  mean over samples of distance / max(len(truth), len(prediction)), in [0, 1]

With no samples (or no reference characters) every rate is 0.0 and count is 0. OCRMetrics keeps only sums and counts (plus
the k worst examples), so per-rank instances merge exactly: gather `state_dict()` from every
rank and `merge` them.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from rapidfuzz.distance import Levenshtein

from runner.charset import DIGITS, EOS, Charset, as_charset, to_arabic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# What the trainer logs per epoch and trainer.monitor may name (checked before any data is prepared).
MONITORABLE_METRICS = ("val/seq_accuracy", "val/char_accuracy", "val/cer", "val/norm_edit_distance", "val/loss",
                       "train/seq_accuracy", "train/loss")

EMPTY = "∅"  # the confusion matrix's last row/column: "no character" (insertion/deletion)
CONFUSION_TITLE = "Character confusion (rows: truth, columns: prediction)"
IdxToChar = Charset | str | Mapping[int, str] | None
_COUNTERS = ("count", "exact", "reference_chars", "predicted_chars", "matched", "substitutions", "insertions",
             "deletions", "confidence_count")
_SUMS = ("norm_edit_sum", "confidence_sum", "correct_confidence_sum")

Texts = Sequence[str] | torch.Tensor | Sequence[Sequence[int]]


def index_to_char(idx_to_char: IdxToChar = None) -> dict[int, str]:
    """{token id: character} of a Charset, a charset's name, a `charset` config node or a plain mapping;
    None is the default charset (digits)."""
    if isinstance(idx_to_char, Mapping) and "name" not in idx_to_char:
        return {int(index): str(char) for index, char in idx_to_char.items()}
    return dict(as_charset(idx_to_char).index_to_char)


def _decode_ids(ids: Sequence[int], idx_to_char: Mapping[int, str]) -> str:
    """Token ids -> text: stop at EOS, skip ids without a character (PAD, SOS, BLANK)."""
    chars = []
    for index in ids:
        index = int(index)
        if index == EOS and index not in idx_to_char:
            break
        if index in idx_to_char:
            chars.append(idx_to_char[index])
    return "".join(chars)


def as_texts(values: Texts, idx_to_char: IdxToChar = None) -> list[str]:
    """Strings pass through; token-id tensors/lists [B, S] are decoded (stop at EOS, skip PAD/SOS/BLANK)."""
    if isinstance(values, torch.Tensor):
        if values.is_floating_point():
            raise TypeError("got a float tensor (logits?); decode it first with model.decode_logits(logits).")
        values = values.tolist() if values.dim() == 2 else [values.tolist()]
    mapping = idx_to_char if isinstance(idx_to_char, dict) else index_to_char(idx_to_char)
    return [value if isinstance(value, str) else _decode_ids(value, mapping) for value in values]


def _pairs(predictions: Texts, targets: Texts, idx_to_char: Mapping[int, str]) -> list[tuple[str, str]]:
    predicted, truth = as_texts(predictions, dict(idx_to_char)), as_texts(targets, dict(idx_to_char))
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions but {len(truth)} targets; they must pair up one to one.")
    return list(zip(predicted, truth))


def normalized_edit_distance(prediction: str, target: str) -> float:
    """Levenshtein distance / max(len(prediction), len(target)); 0.0 for two empty strings."""
    longest = max(len(prediction), len(target))
    return Levenshtein.distance(target, prediction) / longest if longest else 0.0


def calculate_character_accuracy(predictions: Texts, targets: Texts) -> float:
    """Matched aligned characters / reference characters: OCRMetrics' char_accuracy (see module docstring)."""
    return _scores(predictions, targets)["char_accuracy"]


def calculate_sequence_accuracy(predictions: Texts, targets: Texts) -> float:
    """Exact matches / samples: OCRMetrics' seq_accuracy; 0.0 for no samples."""
    return _scores(predictions, targets)["seq_accuracy"]


def _scores(predictions: Texts, targets: Texts) -> dict[str, float]:
    metrics = OCRMetrics(worst_k=0)
    metrics.update(predictions, targets)
    return metrics.compute()


@dataclass
class ScoredSamples:
    """Decoded predictions with their truth, image paths and confidences (and, where the reader gave them,
    per-character confidences), one entry per image, in reading order."""

    predictions: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    char_confidences: list[list[float]] = field(default_factory=list)

    def extend(self, predictions: Sequence[str], targets: Sequence[str], paths: Sequence[str],
               confidences: Sequence[float], char_confidences: Optional[Sequence[Sequence[float]]] = None) -> None:
        self.predictions.extend(predictions)
        self.targets.extend(targets)
        self.paths.extend(paths)
        self.confidences.extend(confidences)
        if char_confidences is not None:
            self.char_confidences.extend([list(row) for row in char_confidences])

    @classmethod
    def joined(cls, parts: Sequence["ScoredSamples"]) -> "ScoredSamples":
        """Every rank's samples, in rank order."""
        whole = cls()
        for part in parts:
            whole.extend(part.predictions, part.targets, part.paths, part.confidences, part.char_confidences)
        return whole

    def correct(self) -> list[bool]:
        """Whether each image was read exactly."""
        return [predicted == truth for predicted, truth in zip(self.predictions, self.targets)]

    def scored(self, worst_k: int = 20, idx_to_char: IdxToChar = None) -> "OCRMetrics":
        """An OCRMetrics (over `idx_to_char`'s characters, default digits) holding exactly these samples."""
        metrics = OCRMetrics(idx_to_char, worst_k=worst_k)
        per_char = self.char_confidences if len(self.char_confidences) == len(self.predictions) else None
        metrics.update(self.predictions, self.targets, paths=self.paths, confidences=self.confidences or None,
                       char_confidences=per_char)
        return metrics


def grouped_scores(samples: ScoredSamples, groups: Sequence[Iterable[str]]) -> dict[str, dict[str, float]]:
    """{group: {images, seq_accuracy, cer}} where `groups[i]` names the groups image i belongs to (any number).

    Groups are sorted by name; an image in no group counts in none.
    """
    members: dict[str, list[int]] = {}
    for index, names in enumerate(groups):
        for name in names:
            members.setdefault(str(name), []).append(index)
    table = {}
    for name in sorted(members):
        metrics = OCRMetrics(worst_k=0)
        metrics.update([samples.predictions[i] for i in members[name]], [samples.targets[i] for i in members[name]])
        scores = metrics.compute()
        table[name] = {"images": int(scores["count"]), "seq_accuracy": scores["seq_accuracy"], "cer": scores["cer"]}
    return table


def readings_report(samples: ScoredSamples, groups: Mapping[str, Mapping[str, Sequence[str]]],
                    calibration: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """per_font, per_degradation, per_format (where `groups`, image path -> record_groups, records them) and confidence
    (runner.calibration.confidence_report, with the model's `calibration` record) of one pass over a split."""
    from runner.calibration import confidence_report

    report: dict[str, Any] = {}
    for kind, key in (("font", "per_font"), ("degradation", "per_degradation"), ("format", "per_format")):
        members = [list(groups.get(path, {}).get(kind, [])) for path in samples.paths]
        if any(members):
            report[key] = grouped_scores(samples, members)
    if samples.confidences:
        report["confidence"] = confidence_report(samples.confidences, samples.correct(), calibration=calibration)
    return report


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def metrics_report(metrics: OCRMetrics, readings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything metrics.json holds about the predictions (JSON-safe: NaN becomes null), with `readings`
    (readings_report: per font, degradation and format, confidence) where given."""
    statistics = metrics.statistics()
    return {
        "metrics": metrics.compute(),
        "per_length_accuracy": {str(k): v for k, v in statistics.pop("per_length_accuracy").items()},
        "length_histogram": {str(k): v for k, v in statistics.pop("length_histogram").items()},
        "per_class_accuracy": {k: _finite(v) for k, v in metrics.per_class_accuracy().items()},
        "statistics": statistics,
        "error_analysis": metrics.error_analysis(),
        "confusion_matrix": {"labels": list(metrics.class_labels), "counts": metrics.confusion_matrix().tolist()},
        **(readings or {}),
    }


def _worst_key(example: Mapping[str, Any]) -> tuple:
    # Total order, so merging per-rank lists keeps the same k examples whatever the rank order.
    return (example["norm_edit_distance"], example["distance"], example["path"] or "", example["truth"],
            example["prediction"])


class OCRMetrics:
    """Accumulates OCR metrics over batches of decoded strings.

    `idx_to_char` (a Charset, its name, or {token id: character}; default the digits charset) decodes token
    ids and gives the confusion matrix its classes: the characters in id order, then ∅. `update` returns
    the batch's own metrics; `compute` the accumulated ones. `worst_k` bounds how many worst examples
    (largest normalized edit distance) are kept for error analysis.
    """

    def __init__(self, idx_to_char: IdxToChar = None, worst_k: int = 20) -> None:
        self.idx_to_char = index_to_char(idx_to_char)
        self.chars = "".join(self.idx_to_char[index] for index in sorted(self.idx_to_char))
        self.class_labels: tuple[str, ...] = tuple(self.chars) + (EMPTY,)
        self.none = len(self.chars)  # row/column of "no character" (insertion/deletion)
        self._char_index = {char: index for index, char in enumerate(self.chars)}
        self.worst_k = int(worst_k)
        self.reset()

    def reset(self) -> None:
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.sums = dict.fromkeys(_SUMS, 0.0)
        self.confusion = np.zeros((self.none + 1, self.none + 1), dtype=np.int64)
        self.length_count: dict[int, int] = {}
        self.length_exact: dict[int, int] = {}
        self.worst: list[dict[str, Any]] = []

    def update(self, predictions: Texts, targets: Texts, paths: Sequence[str] | None = None,
               confidences: Sequence[float] | torch.Tensor | None = None,
               char_confidences: Sequence[Sequence[float]] | None = None) -> dict[str, float]:
        """Add a batch; returns that batch's compute() dict. `char_confidences` (one list per prediction) only
        travel with the worst examples."""
        pairs = _pairs(predictions, targets, self.idx_to_char)
        paths = list(paths) if paths is not None else [None] * len(pairs)
        if confidences is not None:
            confidences = confidences.tolist() if isinstance(confidences, torch.Tensor) else list(confidences)
        if len(paths) != len(pairs) or (confidences is not None and len(confidences) != len(pairs)):
            raise ValueError(f"update() got {len(pairs)} predictions but {len(paths)} paths and "
                             f"{'no' if confidences is None else len(confidences)} confidences; pass one per sample.")
        batch = OCRMetrics(self.idx_to_char, self.worst_k)
        if char_confidences is not None and len(char_confidences) != len(pairs):
            raise ValueError(f"update() got {len(pairs)} predictions but {len(char_confidences)} char_confidences.")
        for index, (predicted, truth) in enumerate(pairs):
            batch._add(predicted, truth, paths[index], None if confidences is None else float(confidences[index]),
                       None if char_confidences is None else [float(c) for c in char_confidences[index]])
        self.merge(batch)
        return batch.compute()

    def _add(self, predicted: str, truth: str, path: str | None, confidence: float | None,
             char_confidences: list[float] | None = None) -> None:
        c = self.counters
        exact = predicted == truth
        c["count"] += 1
        c["exact"] += exact
        c["reference_chars"] += len(truth)
        c["predicted_chars"] += len(predicted)
        for op in Levenshtein.opcodes(truth, predicted):
            truth_chars = truth[op.src_start:op.src_end]
            predicted_chars = predicted[op.dest_start:op.dest_end]
            if op.tag == "equal":
                c["matched"] += len(truth_chars)
                pairs = zip(truth_chars, predicted_chars)
            elif op.tag == "replace":  # Levenshtein replace blocks pair characters one to one
                c["substitutions"] += len(truth_chars)
                pairs = zip(truth_chars, predicted_chars)
            elif op.tag == "delete":
                c["deletions"] += len(truth_chars)
                pairs = ((char, None) for char in truth_chars)
            else:
                c["insertions"] += len(predicted_chars)
                pairs = ((None, char) for char in predicted_chars)
            for truth_char, predicted_char in pairs:
                row = self._char_index.get(truth_char, self.none)
                col = self._char_index.get(predicted_char, self.none)
                if (row, col) != (self.none, self.none):  # characters outside the charset stay out of the matrix
                    self.confusion[row, col] += 1
        norm = normalized_edit_distance(predicted, truth)
        self.sums["norm_edit_sum"] += norm
        length = len(truth)
        self.length_count[length] = self.length_count.get(length, 0) + 1
        self.length_exact[length] = self.length_exact.get(length, 0) + exact
        if confidence is not None:
            c["confidence_count"] += 1
            self.sums["confidence_sum"] += confidence
            self.sums["correct_confidence_sum"] += confidence if exact else 0.0
        if not exact and self.worst_k > 0:
            example = {"path": path, "truth": truth, "prediction": predicted, "value": Charset.value(predicted),
                       "confidence": confidence, "char_confidences": char_confidences,
                       "distance": Levenshtein.distance(truth, predicted), "norm_edit_distance": norm}
            self.worst = heapq.nlargest(self.worst_k, self.worst + [example], key=_worst_key)

    def compute(self) -> dict[str, float]:
        c = self.counters
        reference = max(c["reference_chars"], 1)
        count = max(c["count"], 1)
        distance = c["substitutions"] + c["insertions"] + c["deletions"]
        return {
            "char_accuracy": c["matched"] / reference,
            "seq_accuracy": c["exact"] / count,
            "cer": distance / reference,
            "norm_edit_distance": self.sums["norm_edit_sum"] / count,
            "count": float(c["count"]),
        }

    def confusion_matrix(self) -> np.ndarray:
        """Counts, one row and column per character (digits: 11x11): rows = truth ០..៩ then ∅ (insertion),
        columns = prediction ០..៩ then ∅ (deletion)."""
        return self.confusion.copy()

    def per_class_accuracy(self) -> dict[str, float]:
        """For each character: aligned occurrences read correctly / occurrences in the truth (NaN if unseen)."""
        rows = self.confusion[:self.none].sum(axis=1)
        return {char: float(self.confusion[i, i] / rows[i]) if rows[i] else float("nan")
                for i, char in enumerate(self.chars)}

    def most_confused(self, top: int = 10) -> list[dict[str, Any]]:
        """Off-diagonal cells by count; "∅" as truth is an insertion, as prediction a deletion."""
        size = self.none + 1
        cells = [(int(self.confusion[row, col]), row, col) for row in range(size) for col in range(size)
                 if row != col and self.confusion[row, col]]
        cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
        return [{"truth": self.class_labels[row], "prediction": self.class_labels[col], "count": count}
                for count, row, col in cells[:top]]

    def error_analysis(self, top: int = 10) -> dict[str, Any]:
        c = self.counters
        return {
            "substitutions": c["substitutions"], "insertions": c["insertions"], "deletions": c["deletions"],
            "wrong_sequences": c["count"] - c["exact"],
            "most_confused": self.most_confused(top),
            "worst_examples": [dict(example) for example in self.worst],
        }

    def statistics(self) -> dict[str, Any]:
        c = self.counters
        confident = c["confidence_count"]
        return {
            "count": c["count"], "correct": c["exact"], "reference_chars": c["reference_chars"],
            "predicted_chars": c["predicted_chars"],
            "length_histogram": dict(sorted(self.length_count.items())),
            "per_length_accuracy": {length: self.length_exact[length] / n for length, n in sorted(self.length_count.items())},
            "mean_confidence": self.sums["confidence_sum"] / confident if confident else None,
            "mean_confidence_correct": (self.sums["correct_confidence_sum"] / c["exact"]) if confident and c["exact"] else None,
        }

    def state_dict(self) -> dict[str, Any]:
        """Plain-Python sums and counts (picklable, torch.load(weights_only=True)-safe)."""
        return {
            "worst_k": self.worst_k, "counters": dict(self.counters), "sums": dict(self.sums),
            "confusion": self.confusion.tolist(), "length_count": dict(self.length_count),
            "length_exact": dict(self.length_exact), "worst": [dict(example) for example in self.worst],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self.worst_k = int(state["worst_k"])
        self.merge(state)

    def merge(self, other: "OCRMetrics | Mapping[str, Any]") -> "OCRMetrics":
        """Add another instance's (or state_dict's) counts to this one, e.g. from another rank."""
        state = other.state_dict() if isinstance(other, OCRMetrics) else other
        for key in _COUNTERS:
            self.counters[key] += int(state["counters"][key])
        for key in _SUMS:
            self.sums[key] += float(state["sums"][key])
        self.confusion += np.asarray(state["confusion"], dtype=np.int64)
        for mine, theirs in ((self.length_count, state["length_count"]), (self.length_exact, state["length_exact"])):
            for length, n in theirs.items():
                mine[int(length)] = mine.get(int(length), 0) + int(n)
        self.worst = heapq.nlargest(self.worst_k, self.worst + [dict(e) for e in state["worst"]], key=_worst_key)
        return self

    @classmethod
    def merged(cls, states: Iterable["OCRMetrics | Mapping[str, Any]"], worst_k: int = 20,
               idx_to_char: IdxToChar = None) -> "OCRMetrics":
        """One instance holding the sum of `states` (e.g. the output of all_gather_object)."""
        total = cls(idx_to_char, worst_k)
        for state in states:
            total.merge(state)
        return total

    def plot_confusion_matrix(self, path: str | Path, title: str = CONFUSION_TITLE) -> Path:
        """Write this instance's confusion matrix as a PNG (`plot_confusion_matrix`)."""
        return plot_confusion_matrix(self.confusion, path, sequences=self.counters["count"], title=title,
                                     labels=self.class_labels)


def tick_labels(labels: Sequence[str]) -> list[str]:
    """Confusion-matrix ticks matplotlib's default font (DejaVu Sans, no Khmer glyphs) can draw: a Khmer digit
    as its Arabic digit (k0..k9 when the charset has Arabic digits too), ៛ as KHR, a space as ␣."""
    both = any(label in "0123456789" for label in labels)
    shown = []
    for label in labels:
        if label in DIGITS:
            label = ("k" if both else "") + to_arabic(label)
        shown.append({" ": "␣", "\u17db": "KHR"}.get(label, label))
    return shown


def confusion_matrix_figure(matrix: np.ndarray, *, sequences: int, title: str = CONFUSION_TITLE,
                            labels: Sequence[str] | None = None) -> "Figure":
    """A confusion matrix of `sequences` samples: colour = share of the truth row, text = count.
    `labels`: its classes (OCRMetrics.class_labels; default the digits charset's ០..៩ and ∅).

    Ticks use Arabic digits: matplotlib's default font (DejaVu Sans) has no Khmer glyphs.
    """
    # A bare Figure renders with Agg and leaves pyplot's global backend state alone.
    from matplotlib.figure import Figure

    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    labels = tick_labels(OCRMetrics().class_labels if labels is None else labels)
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"{len(labels)} labels for a {matrix.shape[0]}x{matrix.shape[1]} confusion matrix")
    side = max(7.5, 0.35 * len(labels) + 3)
    figure = Figure(figsize=(side, side - 1))
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(matrix.shape[0]):
        for col in range(matrix.shape[1]):
            if matrix[row, col]:
                axes.text(col, row, str(matrix[row, col]), ha="center", va="center", fontsize=8,
                          color="white" if share[row, col] > 0.5 else "black")
    axes.set_xticks(range(len(labels)), labels)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("prediction (∅ = character deleted)")
    axes.set_ylabel("truth (∅ = character inserted)")
    khmer = "k0-k9" if any(label.startswith("k") for label in labels) else "0-9"
    axes.set_title(f"{title}\nn={sequences} sequences, {khmer} = Khmer digits U+17E0..U+17E9", fontsize=10)
    figure.colorbar(image, ax=axes, label="share of truth row")
    figure.tight_layout()
    return figure


def plot_confusion_matrix(matrix: np.ndarray, path: str | Path, *, sequences: int, title: str = CONFUSION_TITLE,
                          labels: Sequence[str] | None = None) -> Path:
    """Write `confusion_matrix_figure` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    confusion_matrix_figure(matrix, sequences=sequences, title=title, labels=labels).savefig(path, dpi=120)
    return path
