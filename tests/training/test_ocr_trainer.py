"""OCRTrainer (runner/training/ocr_trainer.py): the seed API is what validation and the reports run on."""

import json

import numpy as np
import pytest
import torch

from runner.charset import BLANK, CHARSETS
from runner.metrics import OCRMetrics
from runner.training.ocr_trainer import ExamplePicker
from training.helpers import make_trainer, synthetic_batches

DIGITS_CHARSET = CHARSETS["digits"]

K = str.maketrans("0123456789", "០១២៣៤៥៦៧៨៩")


def k(text: str) -> str:
    return text.translate(K)


def ctc_logits(*paths: list) -> torch.Tensor:
    """Logits [B, T, V] whose best path per row is `path` (characters, or BLANK)."""
    logits = torch.full((len(paths), max(map(len, paths)), DIGITS_CHARSET.vocab_size), -10.0)
    for row, path in enumerate(paths):
        for step in range(logits.shape[1]):
            token = path[step] if step < len(path) else BLANK
            logits[row, step, DIGITS_CHARSET.char_to_index.get(token, BLANK)] = 10.0
    return logits


@pytest.fixture
def trainer(tmp_path):
    return make_trainer(tmp_path)


def test_decode_predictions_reads_the_best_path_with_or_without_confidences(trainer):
    logits = ctc_logits([k("1"), BLANK, k("1"), k("2")], [k("7"), k("7"), BLANK, BLANK])
    assert trainer._decode_predictions(logits) == [k("112"), k("7")]
    texts, confidences = trainer._decode_predictions(logits, with_confidences=True)
    assert texts == [k("112"), k("7")]
    assert len(confidences) == 2 and all(0.99 < c <= 1.0 for c in confidences)


def test_metrics_errors_and_confusion_come_from_the_pairs_given(trainer):
    predictions, targets = [k("183"), k("8"), k("45")], [k("123"), k("2"), k("45")]
    expected = OCRMetrics()
    expected.update(predictions, targets)
    assert trainer._calculate_metrics(predictions, targets) == expected.compute()
    assert trainer._calculate_metrics(predictions, targets)["seq_accuracy"] == pytest.approx(1 / 3)
    analysis = trainer._analyze_errors(predictions, targets, paths=["a.png", "b.png", "c.png"], confidences=[0.5, 0.9, 1.0])
    assert (analysis["substitutions"], analysis["wrong_sequences"]) == (2, 2)
    assert {e["path"] for e in analysis["worst_examples"]} == {"a.png", "b.png"}
    matrix = trainer._generate_confusion_matrix(predictions, targets)
    assert isinstance(matrix, np.ndarray) and matrix[2, 8] == 2 and matrix[4, 4] == 1


def test_validation_decodes_and_scores_through_the_seed_api(trainer, monkeypatch):
    calls = []
    real_decode = trainer._decode_predictions

    def decode(logits, **options):
        calls.append(("decode", options))
        texts, confidences = real_decode(logits, **options)
        return [k("0")] * len(texts), confidences  # every sample read as ០

    def calculate(predictions, targets):
        calls.append(("calculate", list(predictions), list(targets)))
        return {"char_accuracy": 0.25, "seq_accuracy": 0.5, "cer": 0.75, "norm_edit_distance": 0.125, "count": 4.0}

    monkeypatch.setattr(trainer, "_decode_predictions", decode)
    monkeypatch.setattr(trainer, "_calculate_metrics", calculate)
    batch = synthetic_batches(1, seed=1)[0]
    results = trainer._validate_epoch([batch], "val")
    assert calls[0] == ("decode", {"with_confidences": True})
    assert calls[1] == ("calculate", [k("0")] * 4, list(batch["texts"]))
    assert results == {"val/loss": pytest.approx(results["val/loss"]), "val/char_accuracy": 0.25,
                       "val/seq_accuracy": 0.5, "val/cer": 0.75, "val/norm_edit_distance": 0.125, "val/images": 4.0}


def test_final_reports_are_built_from_the_final_validation_pass(trainer, tmp_path, monkeypatch):
    seen = {}
    for name in ("_analyze_errors", "_generate_confusion_matrix"):
        real = getattr(trainer, name)

        def spy(predictions, targets, *rest, _real=real, _name=name):
            seen.setdefault(_name, []).append(list(targets))
            return _real(predictions, targets, *rest)

        monkeypatch.setattr(trainer, name, spy)
    trainer.train()
    val_texts = list(synthetic_batches(1, seed=1)[0]["texts"])
    assert seen["_analyze_errors"] == [val_texts]  # the reports only
    # a TensorBoard figure after each of the 2 epochs and after the final pass, then the report's PNG
    assert seen["_generate_confusion_matrix"] == [val_texts] * 4
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "errors.md").read_text(encoding="utf-8")
    assert "sample_0_" in report  # the worst examples name their images
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")  # report.html of the final validation pass
    assert metrics["paths"]["report"] == str(tmp_path / "report.html") and "Training curves" in page
    assert metrics["confidence"]["images"] == len(val_texts) and "reject curve" in page


def picker_fed(limit: int, batches: int, wrong: dict) -> list:
    """ExamplePicker over `batches` batches of 2 images (image b*2+i filled with that number); `wrong` maps
    (batch, image) to a misread's confidence, every other image is read right with confidence 0.5."""
    picker = ExamplePicker(limit, batches)
    for b in range(batches):
        images = torch.stack([torch.full((1, 4, 8), float(b * 2 + i)) for i in range(2)])
        texts = ["៩" if (b, i) in wrong else "១" for i in range(2)]
        picker.add(b, images, texts, ["១", "១"], [wrong.get((b, i), 0.5) for i in range(2)])
    return [(int(e.image[0, 0, 0]), e.correct) for e in picker.picked()]


def test_example_picker_keeps_the_most_confident_misreads_and_fills_with_correct_ones_across_the_pass():
    assert picker_fed(3, 6, {(4, 1): 0.7, (1, 0): 0.9, (2, 1): 0.2, (5, 0): 0.8}) == [(2, False), (10, False),
                                                                                      (9, False)]
    # no misreads: the first correct image of batches spread over the pass (width-sorted: narrow to wide)
    assert picker_fed(4, 8, {}) == [(0, True), (4, True), (10, True), (14, True)]
    assert picker_fed(4, 8, {(3, 1): 0.6}) == [(7, False), (0, True), (10, True), (14, True)]
    assert picker_fed(0, 8, {(3, 1): 0.6}) == []
