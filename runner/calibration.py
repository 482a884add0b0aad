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

    calibration    Platt scaling of the confidence's logit, fitted at the end of training on the
                   validation splits and stored with the model: it keeps the order (so the reject
                   curve and AUROC stay), and makes the value a probability (ECE before/after)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

TARGET_ACCURACY = 0.995  # the accuracy the reported threshold reaches on the images it keeps
CONFIDENT = 0.9  # a misread above this confidence is reported on its own (misreads_above_0.9)
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


def confidence_report(confidences: Sequence[float], correct: Sequence[bool], target: float = TARGET_ACCURACY,
                      calibration: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """What metrics.json and report.html say about confidence: the compact reject curve, the threshold
    reaching `target`, AUROC, ECE with its reliability bins, whether the values read as probabilities,
    and the calibration the model applies (fit_calibration's record, None for raw confidences)."""
    curve = reject_curve(confidences, correct)
    reached = threshold_for(curve, target)
    quality = reliability(confidences, correct)
    ranking = auroc(confidences, correct)
    misreads = int(len(curve) and (~np.asarray(correct, dtype=bool)).sum())
    # a confident misread is the costly kind: nothing flags it for a second look
    confident = int(len(curve) and ((~np.asarray(correct, dtype=bool))
                                    & (np.asarray(confidences, dtype=float) > CONFIDENT)).sum())
    if quality["ece"] is None:
        verdict = "no images"
    elif quality["ece"] > ECE_WORTH_CALIBRATING and misreads >= ECE_BINS:
        mean_confidence = float(np.mean(confidences))
        accuracy = 1.0 - misreads / len(correct)
        direction = "under" if mean_confidence < accuracy else "over"
        verdict = (f"ECE {quality['ece']:.3f} > {ECE_WORTH_CALIBRATING}: these confidences are {direction}-confident "
                   f"(mean {mean_confidence:.3f}, accuracy {accuracy:.3f}), so read them through the measured "
                   f"threshold, not as probabilities")
    else:
        verdict = (f"ECE {quality['ece']:.3f} <= {ECE_WORTH_CALIBRATING} (or under {ECE_BINS} misreads to measure "
                   f"it): these confidences read as probabilities")
    return {
        "images": len(correct), "misreads": misreads, f"misreads_above_{CONFIDENT}": confident, "auroc": ranking,
        "ece": quality["ece"],
        "reliability": quality["bins"], "target_accuracy": target,
        "threshold": None if reached is None else {"threshold": round(reached["threshold"], 6),
                                                   "kept": round(reached["kept"], 4),
                                                   "accuracy": round(reached["accuracy"], 4)},
        "reject_curve": compact_curve(curve), "verdict": verdict, "calibration": calibration,
    }


# --------------------------------------------------------------------------- calibration stored with a model
MIN_MISREADS_TO_FIT = 10  # fewer misreads than this cannot say how confidence maps to accuracy
_EDGE = 1e-6  # confidences are clipped to [_EDGE, 1 - _EDGE] before their logit


def _logit(confidences: Sequence[float]) -> np.ndarray:
    scores = np.clip(np.asarray(confidences, dtype=np.float64), _EDGE, 1.0 - _EDGE)
    return np.log(scores) - np.log1p(-scores)


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of a read's confidence: calibrated = sigmoid(a * logit(raw) + b).

    With a > 0 the order of confidences is kept, so the reject curve and AUROC are unchanged; what
    changes is that a calibrated 0.9 is right about 90% of the time. (1, 0) is the identity.
    """

    a: float = 1.0
    b: float = 0.0

    @property
    def identity(self) -> bool:
        return self.a == 1.0 and self.b == 0.0

    def apply(self, confidences: Sequence[float]) -> list[float]:
        if self.identity:
            return [float(value) for value in confidences]
        return (1.0 / (1.0 + np.exp(-(self.a * _logit(confidences) + self.b)))).tolist()

    @classmethod
    def from_stored(cls, stored: Any, source: str) -> "Calibration":
        """The calibration a checkpoint or sidecar stores (None: identity); CheckpointError if malformed."""
        from runner.errors import CheckpointError

        if stored is None:
            return cls()
        a, b = (stored.get("a"), stored.get("b")) if isinstance(stored, dict) else (None, None)
        if not all(type(value) in (int, float) and np.isfinite(value) for value in (a, b)) or a <= 0:
            raise CheckpointError(f"{source}: calibration must hold finite numbers a > 0 and b, got {stored!r}; the "
                                  f"file was edited or is damaged. Use a model written by khmer-digits-ocr.")
        return cls(float(a), float(b))


def _fit_platt(confidences: Sequence[float], correct: Sequence[bool], steps: int = 50) -> Calibration:
    """Logistic regression of correct on logit(confidence) by Newton's method (two parameters, convex)."""
    x, y = _logit(confidences), np.asarray(correct, dtype=np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    params = np.array([1.0, 0.0])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ params)))
        gradient = design.T @ (p - y) + 1e-3 * (params - [1.0, 0.0])  # a weak pull to the identity keeps it finite
        hessian = (design * (p * (1 - p))[:, None]).T @ design + 1e-3 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        params = params - step
        if np.abs(step).max() < 1e-9:
            break
    a, b = float(params[0]), float(params[1])
    return Calibration(a, b) if a > 0 and np.isfinite([a, b]).all() else Calibration()


def fit_calibration(confidences: Sequence[float], correct: Sequence[bool], fitted_on: str) -> dict[str, Any]:
    """Fit a Calibration and measure it honestly: fitted on one half of the images, ECE before and after
    measured on the other half; then refitted on all of them. The dict is what a checkpoint stores
    (`a`, `b` and how they were measured), or, with too few misreads to fit, a = 1, b = 0 and why."""
    scores, right = _pairs(confidences, correct)
    misreads = int((~right).sum())
    record: dict[str, Any] = {"method": "platt", "fitted_on": fitted_on, "images": int(scores.size),
                              "misreads": misreads}
    if misreads < MIN_MISREADS_TO_FIT or misreads == scores.size:
        return {**record, "a": 1.0, "b": 0.0,
                "note": f"not fitted: {misreads} misreads of {scores.size} (needs {MIN_MISREADS_TO_FIT} to "
                        f"{scores.size - 1}); confidences are the raw ones"}
    order = np.random.default_rng(0).permutation(scores.size)
    fit_half, check_half = order[::2], order[1::2]
    half = _fit_platt(scores[fit_half], right[fit_half])
    full = _fit_platt(scores, right)
    return {**record, "a": round(full.a, 6), "b": round(full.b, 6),
            "ece_before": reliability(scores[check_half], right[check_half])["ece"],
            "ece_after": reliability(half.apply(scores[check_half]), right[check_half])["ece"],
            "note": "ece_before/ece_after: fitted on half of the images, measured on the other half"}
