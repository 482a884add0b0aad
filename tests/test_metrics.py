import math

import pytest
import torch

from runner.charset import CHARSETS, EOS, PAD, SOS
from runner.metrics import (
    OCRMetrics,
    calculate_character_accuracy,
    calculate_sequence_accuracy,
    normalized_edit_distance,
)

DIGITS_CHARSET = CHARSETS["digits"]

# Khmer digits by value, so cases read like numbers: K("123") == "១២៣".
K = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")


def k(text: str) -> str:
    return text.translate(K)


def test_shifted_sequence_is_one_deletion_and_one_insertion_not_all_wrong():
    # "1234" read as "2345": position-wise 0/4 correct, but the alignment matches 3 characters.
    metrics = OCRMetrics()
    result = metrics.update([k("2345")], [k("1234")])
    assert result["char_accuracy"] == pytest.approx(3 / 4)
    assert result["cer"] == pytest.approx(2 / 4)
    assert result["seq_accuracy"] == 0.0
    assert result["norm_edit_distance"] == pytest.approx(2 / 4)
    analysis = metrics.error_analysis()
    assert (analysis["substitutions"], analysis["insertions"], analysis["deletions"]) == (0, 1, 1)


def test_insertions_can_push_cer_above_one_but_not_norm_edit_distance():
    metrics = OCRMetrics()
    result = metrics.update([k("777")], [k("7")])
    assert result["char_accuracy"] == 1.0  # the one reference digit is read
    assert result["cer"] == pytest.approx(2.0)
    assert result["norm_edit_distance"] == pytest.approx(2 / 3)
    assert metrics.confusion_matrix()[10, 7] == 2  # ∅ -> ៧ twice


def test_empty_prediction_is_all_deletions():
    metrics = OCRMetrics()
    result = metrics.update(["", k("12")], [k("90"), k("12")])
    assert result == {"char_accuracy": 0.5, "seq_accuracy": 0.5, "cer": 0.5, "norm_edit_distance": 0.5,
                      "count": 2.0}
    matrix = metrics.confusion_matrix()
    assert matrix[9, 10] == 1 and matrix[0, 10] == 1 and matrix[1, 1] == 1 and matrix[2, 2] == 1


def test_substitution_fills_the_off_diagonal_and_per_class_accuracy():
    metrics = OCRMetrics()
    metrics.update([k("183"), k("8")], [k("123"), k("2")])
    assert metrics.confusion_matrix()[2, 8] == 2
    assert metrics.most_confused(1) == [{"truth": k("2"), "prediction": k("8"), "count": 2}]
    per_class = metrics.per_class_accuracy()
    assert per_class[k("2")] == 0.0 and per_class[k("1")] == 1.0 and math.isnan(per_class[k("5")])


def test_empty_accumulation_reports_zero_count():
    metrics = OCRMetrics()
    assert metrics.compute() == {"char_accuracy": 0.0, "seq_accuracy": 0.0, "cer": 0.0,
                                 "norm_edit_distance": 0.0, "count": 0.0}
    assert metrics.update([], []) == metrics.compute()
    assert calculate_sequence_accuracy([], []) == 0.0


def test_accumulates_over_batches_and_reset_clears():
    metrics = OCRMetrics()
    metrics.update([k("12")], [k("12")])
    metrics.update([k("3")], [k("4")])
    assert metrics.compute()["seq_accuracy"] == 0.5
    assert metrics.compute()["char_accuracy"] == pytest.approx(2 / 3)
    assert metrics.statistics()["length_histogram"] == {1: 1, 2: 1}
    assert metrics.statistics()["per_length_accuracy"] == {1: 0.0, 2: 1.0}
    metrics.reset()
    assert metrics.compute()["count"] == 0.0


def test_merged_per_rank_states_equal_one_pass_over_everything():
    predictions = [k("12"), k("3"), k("456"), "", k("99")]
    truths = [k("12"), k("4"), k("465"), k("7"), k("9")]
    paths = [f"img{i}.png" for i in range(5)]
    whole = OCRMetrics(worst_k=2)
    whole.update(predictions, truths, paths, confidences=[0.9, 0.2, 0.4, 0.1, 0.6])
    rank0, rank1 = OCRMetrics(worst_k=2), OCRMetrics(worst_k=2)
    rank1.update(predictions[2:], truths[2:], paths[2:], confidences=[0.4, 0.1, 0.6])
    rank0.update(predictions[:2], truths[:2], paths[:2], confidences=[0.9, 0.2])
    merged = OCRMetrics.merged([rank1.state_dict(), rank0.state_dict()], worst_k=2)
    assert merged.state_dict() == whole.state_dict()
    assert [e["path"] for e in merged.error_analysis()["worst_examples"]] == ["img3.png", "img1.png"]
    restored = OCRMetrics()
    restored.load_state_dict(whole.state_dict())
    assert restored.compute() == whole.compute()


def test_seed_functions_accept_strings_and_token_tensors():
    truth = torch.tensor([[SOS, *DIGITS_CHARSET.encode(k("12")), EOS, PAD], [SOS, *DIGITS_CHARSET.encode(k("305")), EOS]])
    predicted = torch.tensor([[*DIGITS_CHARSET.encode(k("12")), EOS, PAD, PAD], [*DIGITS_CHARSET.encode(k("35")), EOS, PAD, PAD]])
    assert calculate_sequence_accuracy(predicted, truth) == 0.5
    assert calculate_character_accuracy(predicted, truth) == pytest.approx(4 / 5)
    assert calculate_character_accuracy([k("12"), k("35")], [k("12"), k("305")]) == pytest.approx(4 / 5)
    with pytest.raises(TypeError, match="decode_logits"):
        calculate_sequence_accuracy(torch.randn(2, 3, 14), truth)
    assert normalized_edit_distance("", "") == 0.0


def test_mismatched_batch_sizes_are_rejected():
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        OCRMetrics().update([k("1"), k("2")], [k("1")])


def test_plot_confusion_matrix_writes_png(tmp_path):
    metrics = OCRMetrics()
    metrics.update([k("1283"), k("45")], [k("1234"), k("456")])
    path = metrics.plot_confusion_matrix(tmp_path / "plots" / "confusion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_over_the_numbers_charset_have_a_class_per_character():
    numbers = CHARSETS["numbers"]
    metrics = OCRMetrics(numbers)
    assert metrics.class_labels == tuple(numbers.chars) + ("∅",) and metrics.confusion.shape == (31, 31)
    metrics.update(["១,៥០០", "$5"], ["១.៥០០", "$5"])
    matrix = metrics.confusion_matrix()
    comma, dot = numbers.chars.index(","), numbers.chars.index(".")
    assert matrix[dot, comma] == 1 and metrics.per_class_accuracy()["$"] == 1.0
    assert metrics.most_confused(1) == [{"truth": ".", "prediction": ",", "count": 1}]
    ids = torch.tensor([[SOS, *numbers.encode("១,៥"), EOS, PAD]])
    assert OCRMetrics("numbers").update(ids, ids)["seq_accuracy"] == 1.0  # token ids decoded with the charset


def test_the_seeds_idx_to_char_mapping_is_accepted():
    metrics = OCRMetrics({4 + i: char for i, char in enumerate("០១២៣៤៥៦៧៨៩")})
    assert metrics.class_labels == OCRMetrics().class_labels
    metrics.update([DIGITS_CHARSET.encode("១២") + [EOS]], [DIGITS_CHARSET.encode("១២")])
    assert metrics.compute()["seq_accuracy"] == 1.0
