"""Whether a model's confidence means something: reject curve, error ranking (AUROC) and calibration error (ECE).

Every function takes one (confidence, correct) pair per image, where correct means the whole
number was read exactly.

    reject curve   raise a threshold t and keep only the images with confidence >= t: the share
                   kept falls and (when confidence ranks errors well) the accuracy of the kept
                   images rises; one point per distinct confidence value
    threshold      the lowest t whose kept images reach `target` accuracy (so the most images are
                   kept); None when no threshold reaches it
    AUROC          probability that a random correct read has a higher confidence than a random
                   misread (ties count half): 0.5 ranks errors no better than chance, 1.0 perfectly
    ECE            expected calibration error over equal-width bins of confidence: the mean
                   |accuracy - confidence| of the bins, weighted by their share of images

Calibration (e.g. temperature scaling) moves confidences but keeps their order within a length,
so it cannot make the reject curve or AUROC better; it only matters where someone reads the
confidence as a probability, which ECE measures.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

TARGET_ACCURACY = 0.995  # the accuracy the reported threshold reaches on the images it keeps
CURVE_POINTS = 21  # points of the compact reject curve in metrics.json
ECE_BINS = 10
# ECE above this, on a split with enough misreads to measure it, says raw confidence should not be read as a probability
ECE_WORTH_CALIBRATING = 0.05


def _pairs(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if scores.shape != right.shape or scores.ndim != 1:
        raise ValueError(f"{scores.size} confidences but {right.size} correct flags; pass one of each per image.")
    return scores, right


def reject_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[dict[str, float]]:
    """[{threshold, kept, accuracy}] for every distinct confidence, highest threshold (fewest kept) first.

    kept is the share of images with confidence >= threshold, accuracy the share of those read exactly.
    """
    scores, right = _pairs(confidences, correct)
    if not scores.size:
        return []
    order = np.argsort(-scores, kind="stable")
    scores, right = scores[order], right[order]
    kept_count = np.arange(1, scores.size + 1)
    correct_count = np.cumsum(right)
    # the last image of each run of equal confidences: a threshold keeps all of a run or none of it
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    return [{"threshold": float(scores[end]), "kept": float(kept_count[end] / scores.size),
             "accuracy": float(correct_count[end] / kept_count[end])} for end in ends]


def threshold_for(curve: Sequence[dict[str, float]], target: float = TARGET_ACCURACY) -> Optional[dict[str, float]]:
    """The point of `curve` that keeps the most images at accuracy >= target; None if no point does."""
    reaching = [point for point in curve if point["accuracy"] >= target]
    return max(reaching, key=lambda point: point["kept"]) if reaching else None


def compact_curve(curve: Sequence[dict[str, float]], points: int = CURVE_POINTS) -> list[dict[str, float]]:
    """At most `points` points of `curve`, evenly spaced along it, its first and last point included, rounded."""
    if not curve:
        return []
    picks = sorted(set(np.linspace(0, len(curve) - 1, min(points, len(curve))).round().astype(int).tolist()))
    return [{"threshold": round(curve[i]["threshold"], 6), "kept": round(curve[i]["kept"], 4),
             "accuracy": round(curve[i]["accuracy"], 4)} for i in picks]


def auroc(confidences: Sequence[float], correct: Sequence[bool]) -> Optional[float]:
    """P(confidence of a correct read > that of a misread), ties half; None without both kinds of reads."""
    scores, right = _pairs(confidences, correct)
    positives, negatives = int(right.sum()), int((~right).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # average rank (1-based) of each distinct value, so tied scores share their rank
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(average_rank[inverse][right].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> dict[str, Any]:
    """{"ece": float | None, "bins": [{lower, upper, images, confidence, accuracy}]}, empty bins left out."""
    scores, right = _pairs(confidences, correct)
    if not scores.size:
        return {"ece": None, "bins": []}
    which = np.minimum((scores * bins).astype(int), bins - 1)
    table, ece = [], 0.0
    for index in range(bins):
        members = which == index
        count = int(members.sum())
        if not count:
            continue
        confidence, accuracy = float(scores[members].mean()), float(right[members].mean())
        ece += count / scores.size * abs(accuracy - confidence)
        table.append({"lower": index / bins, "upper": (index + 1) / bins, "images": count,
                      "confidence": round(confidence, 4), "accuracy": round(accuracy, 4)})
    return {"ece": ece, "bins": table}


def confidence_report(confidences: Sequence[float], correct: Sequence[bool],
                      target: float = TARGET_ACCURACY) -> dict[str, Any]:
    """What metrics.json and report.html say about confidence: the compact reject curve, the threshold
    reaching `target`, AUROC, ECE with its reliability bins, and whether calibration is worth fitting."""
    curve = reject_curve(confidences, correct)
    reached = threshold_for(curve, target)
    quality = reliability(confidences, correct)
    ranking = auroc(confidences, correct)
    misreads = int(len(curve) and (~np.asarray(correct, dtype=bool)).sum())
    if quality["ece"] is None:
        verdict = "no images"
    elif quality["ece"] > ECE_WORTH_CALIBRATING and misreads >= ECE_BINS:
        mean_confidence = float(np.mean(confidences))
        accuracy = 1.0 - misreads / len(correct)
        direction = "under" if mean_confidence < accuracy else "over"
        verdict = (f"ECE {quality['ece']:.3f} > {ECE_WORTH_CALIBRATING}: raw confidence is {direction}-confident "
                   f"(mean {mean_confidence:.3f}, accuracy {accuracy:.3f}) and is not a probability; temperature "
                   f"scaling would fix the values (not the ranking) but is not fitted here, so decide with the "
                   f"measured threshold, not the confidence value itself")
    else:
        verdict = (f"ECE {quality['ece']:.3f} <= {ECE_WORTH_CALIBRATING} (or under {ECE_BINS} misreads to measure "
                   f"it): not worth calibrating")
    return {
        "images": len(correct), "misreads": misreads, "auroc": ranking, "ece": quality["ece"],
        "reliability": quality["bins"], "target_accuracy": target,
        "threshold": None if reached is None else {"threshold": round(reached["threshold"], 6),
                                                   "kept": round(reached["kept"], 4),
                                                   "accuracy": round(reached["accuracy"], 4)},
        "reject_curve": compact_curve(curve), "calibration": verdict,
    }
