"""report.html: one self-contained page that shows what a model gets wrong on one evaluation.

Written by `python -m runner.evaluate` (into its run dir) and at the end of training (into the run
dir, for the validation split). One file, nothing fetched: images are inlined as base64 PNG data
URIs, the reject curve is inline SVG, the CSS is inline and there is no script. Every text taken from
data (labels, paths, font names, a metrics.json history) is HTML-escaped.

The page holds, top to bottom: the split table; per length, per number format, per font family and per degradation
kind (where the dataset records them); the confidence section (reject curve, the threshold reaching
99.5% accuracy on the images kept, AUROC, ECE and the reliability bins); the annotated confusion
matrix; the training curves; and a gallery of misreads, most confident first (a confident misread
is the dangerous kind: no threshold catches it), capped at `limit`, each with the original image,
what the model saw after preprocessing, truth, prediction and confidence.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from runner.calibration import compact_curve, reject_curve
from runner.data.preprocess import load_image, preprocess_image_uint8
from runner.errors import DataError
from runner.metrics import ScoredSamples, confusion_matrix_figure
from runner.outputs import write_text_atomic

GALLERY_LIMIT = 200
THUMBNAIL = (240, 60)  # largest original shown, in pixels: the page stays a few MB for 200 misreads
SVG_CURVE_POINTS = 200
_ARABIC = str.maketrans("០១២៣៤៥៦៧៨៩", "0123456789")

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.t{text-align:left}.kh{font-size:18px}.muted{color:#666;font-size:13px}
.gallery img{image-rendering:pixelated;vertical-align:middle}.bad{color:#b00020}
"""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_data_uri(figure: Any, dpi: int = 80) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str, width: Optional[int] = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img src="{uri}" alt="{escape(alt)}"{size}>'


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: int = 1) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in header)
    body = []
    for row in rows:
        cells = "".join(f'<td class="t">{escape(cell)}</td>' if i < text_columns else f"<td>{_number(cell)}</td>"
                        for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _score_rows(table: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [[name, row.get("images"), row.get("seq_accuracy"), row.get("cer")] for name, row in table.items()]


def split_section(splits: Mapping[str, Mapping[str, Any]], report: Mapping[str, Any]) -> str:
    """The split table, then per length, per number format (where there is more than one), per font family and
    per degradation kind of the split read."""
    parts = ["<h2>Splits</h2>", _table(["split", "images", "seq accuracy", "CER"], _score_rows(splits))]
    lengths = report.get("per_length_accuracy") or {}
    histogram = report.get("length_histogram") or {}
    parts += ["<h2>Per length</h2>", _table(["length", "images", "seq accuracy"],
                                            [[length, histogram.get(length), accuracy] for length, accuracy in lengths.items()])]
    for key, title in (("per_format", "Per number format"), ("per_font", "Per font family"),
                       ("per_degradation", "Per degradation kind")):
        if report.get(key) and (key != "per_format" or len(report[key]) > 1):
            note = ('<p class="muted">An image counts under every degradation applied to it; "none" had none; '
                    '"heavy augment" is the share of a split drawn with data.hard_augment.</p>'
                    if key == "per_degradation" else "")
            parts += [f"<h2>{title}</h2>", note, _table([key[4:], "images", "seq accuracy", "CER"],
                                                        _score_rows(report[key]))]
    return "".join(parts)


def reject_curve_svg(curve: Sequence[Mapping[str, float]], threshold: Optional[Mapping[str, float]],
                     target: float, width: int = 420, height: int = 260) -> str:
    """Accuracy of the images kept against the share kept, as inline SVG (no script, no font file)."""
    left, right, top, bottom = 56, 12, 12, 40
    low = min([point["accuracy"] for point in curve] + [target]) if curve else 0.0
    low = max(0.0, math.floor(low * 100) / 100 - 0.01)

    def x(kept: float) -> float:
        return left + kept * (width - left - right)

    def y(accuracy: float) -> float:
        return top + (1.0 - accuracy) / max(1.0 - low, 1e-9) * (height - top - bottom)

    points = " ".join(f"{x(p['kept']):.1f},{y(p['accuracy']):.1f}" for p in curve)
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="reject curve">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             f'fill="none" stroke="#999"/>',
             f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" stroke="#c60" '
             f'stroke-dasharray="4 3"/>',
             f'<text x="{width - right - 4}" y="{y(target) - 4:.1f}" font-size="11" text-anchor="end" fill="#c60">'
             f'{target:.1%} accuracy</text>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{x(tick):.1f}" y="{height - bottom + 14}" font-size="11" text-anchor="middle">'
                     f'{tick:.0%}</text>')
    for tick in np.linspace(low, 1.0, 5):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.1%}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 f'share of images kept (confidence ≥ threshold)</text>')
    if points:
        parts.append(f'<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    if threshold is not None:
        parts.append(f'<circle cx="{x(threshold["kept"]):.1f}" cy="{y(threshold["accuracy"]):.1f}" r="4" fill="#c60"/>')
    parts.append("</svg>")
    return "".join(parts)


def confidence_section(confidence: Optional[Mapping[str, Any]], samples: ScoredSamples) -> str:
    if not confidence:
        return "<h2>Confidence</h2><p>This model reports no confidences.</p>"
    target = float(confidence["target_accuracy"])
    threshold = confidence.get("threshold")
    curve = compact_curve(reject_curve(samples.confidences, samples.correct()), SVG_CURVE_POINTS)
    if threshold is None:
        reached = f"No confidence threshold reaches {target:.1%} accuracy on the images it keeps."
    else:
        reached = (f"Keeping only reads with confidence ≥ <b>{threshold['threshold']:.6f}</b> keeps "
                   f"<b>{threshold['kept']:.1%}</b> of the images at {threshold['accuracy']:.2%} accuracy "
                   f"(target {target:.1%}); the rest go to a person.")
    bins = [[f"{row['lower']:.1f}–{row['upper']:.1f}", row["images"], row["confidence"], row["accuracy"]]
            for row in confidence.get("reliability", [])]
    return "".join([
        "<h2>Confidence: reject curve and calibration</h2>",
        f"<p>{reached}</p>", reject_curve_svg(curve, threshold, target),
        _table(["measure", "value"], [["AUROC of confidence, correct vs misread (0.5 = chance)", confidence.get("auroc")],
                                      ["ECE (10 equal-width bins)", confidence.get("ece")],
                                      ["misreads", confidence.get("misreads")]]),
        f'<p class="muted">{escape(confidence.get("verdict", ""))}.</p>', calibration_paragraph(confidence.get("calibration")),
        "<h3>Reliability</h3>", _table(["confidence bin", "images", "mean confidence", "accuracy"], bins),
    ])


def calibration_paragraph(calibration: Optional[Mapping[str, Any]]) -> str:
    """What the model does to its raw confidence, and what that bought where it was fitted."""
    if not calibration:
        return "<p>Calibration: none stored with this model; these are the raw confidences.</p>"
    text = (f"Calibration stored with the model: Platt scaling of the confidence's logit, a = {_number(calibration.get('a'))}, "
            f"b = {_number(calibration.get('b'))}, fitted on {escape(calibration.get('fitted_on', '?'))} "
            f"({calibration.get('images')} images, {calibration.get('misreads')} misreads). ")
    if calibration.get("ece_before") is not None:
        text += (f"ECE before → after: <b>{_number(calibration['ece_before'])} → {_number(calibration['ece_after'])}</b> "
                 f"(fitted on half of those images, measured on the other half). ")
    return f"<p>{text}{escape(calibration.get('note', ''))}.</p>"


def confusion_section(report: Mapping[str, Any]) -> str:
    matrix = np.asarray(report["confusion_matrix"]["counts"], dtype=np.int64)
    figure = confusion_matrix_figure(matrix, sequences=int(report["metrics"]["count"]),
                                     labels=report["confusion_matrix"].get("labels"))
    return "<h2>Character confusion</h2>" + _img(figure_data_uri(figure), "confusion matrix", 600)


def _numeric(rows: Sequence[Any], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("epoch"), (int, float)) and \
                isinstance(row.get(key), (int, float)) and math.isfinite(row[key]):
            xs.append(float(row["epoch"]))
            ys.append(float(row[key]))
    return xs, ys


def history_figure(history: Sequence[Any]) -> Any:
    """Loss and validation accuracy per epoch, from a metrics.json history (rows without numbers are skipped)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3))
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for key in ("train/loss", "val/loss"):
        loss_axes.plot(*_numeric(history, key), marker="o", label=key)
    for key in ("train/seq_accuracy", "val/seq_accuracy", "val/char_accuracy"):
        accuracy_axes.plot(*_numeric(history, key), marker="o", label=key)
    loss_axes.set_yscale("log")
    for axes, title in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_title(title, fontsize=10)
        axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def curves_section(history: Optional[Sequence[Any]], curves_png: Optional[Path]) -> str:
    if curves_png is not None and curves_png.is_file():
        with Image.open(curves_png) as image:
            image.load()
            return "<h2>Training curves</h2>" + _img(png_data_uri(image), "training curves", 900)
    if history and any(_numeric(history, "val/loss")[0]):
        return "<h2>Training curves</h2>" + _img(figure_data_uri(history_figure(history)), "training curves", 800)
    return "<h2>Training curves</h2><p>No training history found next to this model.</p>"


def _pictures(path: str, preprocess: tuple[int, int, bool]) -> tuple[str, str]:
    """(original thumbnail, what the model saw) as data URIs; empty strings when the file cannot be read."""
    try:
        original = load_image(path)
    except DataError:
        return "", ""
    seen = Image.fromarray(preprocess_image_uint8(original, *preprocess), "L")
    thumbnail = original.convert("L")
    thumbnail.thumbnail(THUMBNAIL)
    return png_data_uri(thumbnail), png_data_uri(seen)


def misreads(samples: ScoredSamples, limit: int = GALLERY_LIMIT) -> list[int]:
    """Indices of the misread images, most confident first (ties: reading order), at most `limit`."""
    wrong = [i for i, right in enumerate(samples.correct()) if not right]
    confidence = samples.confidences or [0.0] * len(samples.predictions)
    return sorted(wrong, key=lambda i: (-confidence[i], i))[:max(limit, 0)]


def gallery_section(samples: ScoredSamples, groups: Mapping[str, Mapping[str, Sequence[str]]],
                    preprocess: tuple[int, int, bool], limit: int) -> str:
    shown = misreads(samples, limit)
    total = len(samples.predictions) - sum(samples.correct())
    rows = []
    for index in shown:
        path = samples.paths[index]
        original, seen = _pictures(path, preprocess) if path else ("", "")
        truth, predicted = samples.targets[index], samples.predictions[index]
        confidence = samples.confidences[index] if samples.confidences else None
        where = groups.get(path, {})
        described = "; ".join(", ".join(where.get(kind, [])) for kind in ("format", "font", "degradation")
                              if where.get(kind))
        rows.append(
            f'<tr><td>{_img(original, "original") if original else "–"}</td>'
            f'<td>{_img(seen, "model input") if seen else "–"}</td>'
            f'<td class="t kh">{escape(truth)}<br><span class="muted">{escape(truth.translate(_ARABIC))}</span></td>'
            f'<td class="t kh bad">{escape(predicted or "∅")}<br><span class="muted">'
            f'{escape(predicted.translate(_ARABIC) or "∅")}</span></td>'
            f"<td>{_number(confidence)}</td>"
            f'<td class="t muted">{escape(Path(path).name if path else "–")}<br>{escape(described)}</td></tr>')
    header = ("<tr><th>original</th><th>model input</th><th>truth</th><th>prediction</th><th>confidence</th>"
              "<th>image</th></tr>")
    intro = (f"<p>{len(shown)} of {total} misreads, most confident first: those are the ones no confidence "
             f"threshold catches. The model input is the preprocessed image (ink white).</p>")
    return f'<h2>Misreads</h2>{intro}<table class="gallery">{header}{"".join(rows)}</table>' if rows else \
        "<h2>Misreads</h2><p>No misreads.</p>"


def build_report(report: Mapping[str, Any], samples: ScoredSamples, *, title: str,
                 splits: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Mapping[str, Sequence[str]]],
                 preprocess: tuple[int, int, bool], history: Optional[Sequence[Any]] = None,
                 curves_png: Optional[Path] = None, limit: int = GALLERY_LIMIT) -> str:
    """The HTML of report.html.

    `report` is what metrics.json holds about `samples` (runner.metrics.metrics_report with
    readings_report); `splits` the split table (name -> images, seq_accuracy, cer); `groups` image
    path -> record_groups; `preprocess` (height, width, text_crop) of the model.
    """
    source = report.get("data", {}).get("source") if isinstance(report.get("data"), dict) else None
    facts = [f"model: {report['checkpoint']}" if report.get("checkpoint") else "",
             f"data: {source}" if source else ""]
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        "".join(f'<p class="muted">{escape(fact)}</p>' for fact in facts if fact),
        split_section(splits, report),
        confidence_section(report.get("confidence"), samples),
        confusion_section(report),
        curves_section(history, curves_png),
        gallery_section(samples, groups, preprocess, limit),
        "</body></html>\n",
    ])


def training_run(model_path: Path) -> tuple[list[Any], Optional[Path]]:
    """(metrics.json history, curves.png or None) of the training run a checkpoint belongs to
    (RUN_DIR/checkpoints/*.pt); ([], None) for a model file elsewhere. The history is data, only plotted."""
    from runner.summarize import read_json

    model_path = Path(model_path)
    if model_path.parent.name != "checkpoints":
        return [], None
    run_dir = model_path.parent.parent
    history = read_json(run_dir / "metrics.json").get("history")
    curves = run_dir / "curves.png"
    return (history if isinstance(history, list) else []), (curves if curves.is_file() else None)


def write_report(path: Path, report: Mapping[str, Any], samples: ScoredSamples, **options: Any) -> Path:
    """Write build_report(...) to `path` atomically; returns `path`."""
    write_text_atomic(Path(path), build_report(report, samples, **options))
    return Path(path)
