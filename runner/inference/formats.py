"""How `runner.predict` writes predictions: tsv or csv (a header row, then a row per image) or jsonl.

Every format carries the same values: the path as reported by runner.inference.files, the text, its value
(Khmer digits as ASCII digits, other characters unchanged: ១២,៥០០៛ -> 12,500៛), the confidence with 4
decimals and one confidence per character of the text (tsv/csv: space-separated, 3 decimals; jsonl: a list
of the numbers rounded to 4). tsv has no quoting, so a tab, carriage return or newline in a path is
written as `\\t`, `\\r` or `\\n` (with a warning); csv quotes such paths (and commas, which a text of the
numbers charset may hold) and jsonl writes them exactly. An unreadable file has an empty text, confidence
0 and no character confidences; jsonl also gives its "error".
"""

from __future__ import annotations

import csv
import json
import logging
from typing import Any, Sequence, TextIO

from runner.inference.config import PredictFormat
from runner.inference.files import Prediction

log = logging.getLogger("runner.inference")

HEADER = ("path", "text", "value", "confidence", "char_confidences")
_TSV_ESCAPES = str.maketrans({"\t": "\\t", "\r": "\\r", "\n": "\\n"})


def format_char_confidences(values: Sequence[float] | None) -> str:
    """Per-character confidences as one tsv/csv field: space-separated, 3 decimals ('' for none)."""
    return " ".join(f"{value:.3f}" for value in values or ())


class PredictionWriter:
    """Writes the header (tsv, csv) on creation, then one row or object per `write`.

    `handle` is a text stream; a file should be opened with `newline=""` so csv's quoted newlines stay as written.
    """

    def __init__(self, handle: TextIO, format: PredictFormat | str) -> None:
        self.handle, self.format = handle, PredictFormat(format)
        self._csv = csv.writer(handle, lineterminator="\n") if self.format == PredictFormat.csv else None
        if self.format != PredictFormat.jsonl:
            self._row(HEADER)

    def write(self, prediction: Prediction) -> None:
        if self.format == PredictFormat.jsonl:
            record: dict[str, Any] = {"path": prediction.name, "text": prediction.text, "value": prediction.value,
                                      "confidence": round(prediction.confidence, 4),
                                      "char_confidences": [round(value, 4) for value in prediction.char_confidences]}
            if prediction.error:
                record["error"] = prediction.error
            self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        self._row((prediction.name, prediction.text, prediction.value, f"{prediction.confidence:.4f}",
                   format_char_confidences(prediction.char_confidences)))

    def _row(self, values: tuple[str, ...]) -> None:
        if self._csv is not None:
            self._csv.writerow(values)
        else:
            path = values[0].translate(_TSV_ESCAPES)
            if path != values[0]:
                log.warning("the path %r holds a tab or line break; tsv shows it escaped as %s (format=csv or "
                            "format=jsonl keep it exactly)", values[0], path)
            self.handle.write("\t".join((path, *values[1:])) + "\n")
