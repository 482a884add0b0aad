"""runner/calibration.py: the reject curve, its threshold, AUROC and ECE on hand-made (confidence, correct) pairs."""

import numpy as np
import pytest

from runner.calibration import (Calibration, auroc, compact_curve, confidence_report, fit_calibration, reject_curve,
                                reliability, threshold_for)
from runner.errors import CheckpointError

# six reads: the misreads sit at 0.7 and 0.4; two correct reads share 0.9
CONFIDENCES = [0.99, 0.9, 0.9, 0.7, 0.5, 0.4]
CORRECT = [True, True, True, False, True, False]


def test_the_reject_curve_has_one_point_per_distinct_confidence_highest_first():
    assert reject_curve(CONFIDENCES, CORRECT) == [
        {"threshold": 0.99, "kept": pytest.approx(1 / 6), "accuracy": 1.0},
        {"threshold": 0.9, "kept": pytest.approx(3 / 6), "accuracy": 1.0},  # both 0.9s are kept together
        {"threshold": 0.7, "kept": pytest.approx(4 / 6), "accuracy": 0.75},
        {"threshold": 0.5, "kept": pytest.approx(5 / 6), "accuracy": 0.8},
        {"threshold": 0.4, "kept": 1.0, "accuracy": pytest.approx(4 / 6)},
    ]
    assert reject_curve([], []) == []
    with pytest.raises(ValueError, match="one of each per image"):
        reject_curve([0.5], [True, False])


def test_the_threshold_keeps_the_most_images_that_reach_the_target():
    curve = reject_curve(CONFIDENCES, CORRECT)
    assert threshold_for(curve, 0.995) == {"threshold": 0.9, "kept": pytest.approx(0.5), "accuracy": 1.0}
    assert threshold_for(curve, 0.8)["threshold"] == 0.5  # 0.8 accuracy is reached again lower down, keeping more
    assert threshold_for(reject_curve([0.9, 0.8], [False, True]), 0.995) is None  # the most confident read is wrong


def test_auroc_counts_pairs_ranked_right_and_ties_half():
    # correct {0.99, 0.9, 0.9, 0.5} vs wrong {0.7, 0.4}: 7 of 8 pairs ranked right (0.5 < 0.7)
    assert auroc(CONFIDENCES, CORRECT) == pytest.approx(7 / 8)
    assert auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert auroc([0.2, 0.9], [True, False]) == 0.0
    assert auroc([0.9, 0.8], [True, True]) is None  # no misread to rank against


def test_ece_weights_each_bins_gap_by_its_share():
    # bin 0.9-1.0: confidences 0.99, 0.9, 0.9 (mean 0.93) all right -> gap 0.07; bin 0.7: 0.7 wrong -> 0.7;
    # bin 0.5: 0.5 right -> 0.5; bin 0.4: 0.4 wrong -> 0.4
    measured = reliability(CONFIDENCES, CORRECT)
    assert measured["ece"] == pytest.approx((3 * 0.07 + 0.7 + 0.5 + 0.4) / 6)
    assert [row["images"] for row in measured["bins"]] == [1, 1, 1, 3]
    assert reliability([1.0], [True]) == {"ece": 0.0, "bins": [
        {"lower": 0.9, "upper": 1.0, "images": 1, "confidence": 1.0, "accuracy": 1.0}]}  # 1.0 falls in the top bin


def test_the_compact_curve_keeps_both_ends_and_at_most_the_points_asked():
    curve = reject_curve([i / 100 for i in range(100)], [True] * 100)
    compact = compact_curve(curve, 5)
    assert len(compact) == 5 and compact[0]["threshold"] == 0.99 and compact[-1]["kept"] == 1.0
    assert compact_curve(curve[:3], 21) == compact_curve(curve[:3], 3)


def test_the_report_says_whether_calibration_is_worth_it():
    # twenty reads at 0.99 confidence, half of them wrong: badly over-confident
    report = confidence_report([0.99] * 20, [True, False] * 10)
    assert report["ece"] == pytest.approx(0.49) and report["threshold"] is None
    assert "over-confident" in report["verdict"] and "not as probabilities" in report["verdict"]
    honest = confidence_report([0.95] * 20 + [0.3] * 20, [True] * 20 + [False] * 20)
    assert honest["auroc"] == 1.0 and honest["threshold"] == {"threshold": 0.95, "kept": 0.5, "accuracy": 1.0}
    assert honest["misreads"] == 20 and honest["reject_curve"][-1] == {"threshold": 0.3, "kept": 1.0, "accuracy": 0.5}
    # confident misreads are counted on their own: ten wrong at 0.99, none of the honest report's wrong ones
    assert report["misreads_above_0.9"] == 10 and honest["misreads_above_0.9"] == 0


def under_confident_reads(count: int = 2000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Reads right with probability p, reported with a confidence squashed towards 0.5 (under-confident)."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.5, 0.999, count)
    correct = rng.random(count) < truth
    raw = 1.0 / (1.0 + np.exp(-(0.3 * np.log(truth / (1.0 - truth)) - 0.5)))
    return raw, correct


def test_fitted_calibration_lowers_ece_on_held_out_reads_and_keeps_the_order():
    raw, correct = under_confident_reads()
    record = fit_calibration(raw, correct, fitted_on="synthetic")
    assert record["a"] > 1 and record["ece_before"] > 0.2 and record["ece_after"] < 0.05
    calibration = Calibration.from_stored(record, "test")
    calibrated = np.asarray(calibration.apply(raw))
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(calibrated, kind="stable"))
    assert auroc(calibrated, correct) == pytest.approx(auroc(raw, correct))
    fresh_raw, fresh_correct = under_confident_reads(seed=2)  # reads the fit never saw
    assert reliability(calibration.apply(fresh_raw), fresh_correct)["ece"] < 0.05


def test_too_few_misreads_store_the_identity_and_say_why():
    record = fit_calibration([0.9] * 50 + [0.4] * 3, [True] * 50 + [False] * 3, fitted_on="val")
    assert (record["a"], record["b"]) == (1.0, 0.0) and "not fitted: 3 misreads" in record["note"]
    assert Calibration.from_stored(record, "test").apply([0.25, 0.75]) == [0.25, 0.75]


@pytest.mark.parametrize("stored", [{"a": -1.0, "b": 0.0}, {"a": "2", "b": 0.0}, {"a": float("inf"), "b": 0}, [1, 0]])
def test_a_malformed_stored_calibration_is_refused(stored):
    with pytest.raises(CheckpointError, match="calibration must hold finite numbers a > 0 and b"):
        Calibration.from_stored(stored, "model.onnx.json")
