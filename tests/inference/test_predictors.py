"""runner/inference/predictors.py: every model file loads into one Predictor that reads images as trained."""

import pytest
import torch

from runner.data.preprocess import crop_to_content
from runner.errors import CheckpointError
from runner.inference.export import rendered_images
from runner.inference.predictors import OnnxPredictor, TorchPredictor, load_predictor, predictor_files

from .helpers import save_checkpoint


def test_cropping_model_takes_cropped_batches_and_a_plain_model_refuses_them(cropping_predictor, predictor):
    images, _ = rendered_images(4, 32, 128, 8, seed=1)
    narrow = crop_to_content(images)
    padded = torch.nn.functional.pad(narrow, (0, 128 - narrow.shape[-1]))
    assert torch.equal(cropping_predictor.logits(narrow), cropping_predictor.logits(padded))
    assert cropping_predictor.logits(images[:, :, :, :40]).shape[1] == 10  # 40 columns = 10 CTC steps
    with pytest.raises(ValueError, match=r"\[B, 1, 32, 128\]"):
        predictor.logits(images[:, :, :, :40])  # trained on full-width images only


def test_a_run_dir_means_its_best_checkpoint_else_its_last(tmp_path):
    run_dir = tmp_path / "run"
    save_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert load_predictor(run_dir).source == run_dir / "checkpoints" / "last.pt"
    save_checkpoint(run_dir / "checkpoints" / "best.pt")
    predictor = load_predictor(run_dir)
    assert isinstance(predictor, TorchPredictor) and predictor.source == run_dir / "checkpoints" / "best.pt"
    assert predictor_files(predictor) == [predictor.source, run_dir / "checkpoints" / "best.pt.json"]
    with pytest.raises(CheckpointError, match="without checkpoints/best.pt"):
        load_predictor(tmp_path)


def test_an_onnx_file_loads_with_its_embedded_metadata(predictor, onnx_model):
    onnx_predictor = load_predictor(onnx_model)  # no sidecar: metadata embedded in the file
    assert isinstance(onnx_predictor, OnnxPredictor) and onnx_predictor.kind == "onnxruntime"
    assert (onnx_predictor.name, onnx_predictor.head, onnx_predictor.height, onnx_predictor.width) == \
        (predictor.name, predictor.head, predictor.height, predictor.width)
    assert onnx_predictor.metadata == predictor.metadata


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_predictor(tmp_path / "notes.pt")
    (tmp_path / "fake.onnx").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="fake.onnx"):
        load_predictor(tmp_path / "fake.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_predictor(tmp_path / "missing.onnx")


@pytest.mark.parametrize("preset", ["ctc_small", "small"])
def test_a_model_reads_with_its_own_stored_charset(tmp_path, preset):
    from runner.charset import CHARSETS
    from runner.inference.metadata import checkpoint_metadata
    from runner.training.checkpoint import load_checkpoint

    path = save_checkpoint(tmp_path / "numbers.pt", preset, charset="numbers")
    numbers = load_predictor(path)
    assert numbers.charset is CHARSETS["numbers"] and numbers.model.charset is CHARSETS["numbers"]
    assert numbers.model.config_dict() == load_checkpoint(path)["model"]["config"]  # no charset inside the config
    assert checkpoint_metadata(load_checkpoint(path), path)["charset"] == CHARSETS["numbers"].signature()  # sidecar
    images, _ = rendered_images(3, 32, 128, 8, seed=3)
    logits = numbers.logits(images)
    assert logits.shape[-1] == CHARSETS["numbers"].vocab_size
    texts, confidences, char_confidences = numbers.predict(images)
    assert len(texts) == len(confidences) == len(char_confidences) == 3
    assert all(set(text) <= set(CHARSETS["numbers"].chars) for text in texts)


def test_char_confidences_are_one_probability_per_character_read(predictor, cropping_predictor):
    images, _ = rendered_images(6, 32, 128, 8, seed=4)
    for reader in (predictor, cropping_predictor):
        texts, confidences, char_confidences = reader.predict(images)
        assert [len(row) for row in char_confidences] == [len(text) for text in texts]
        assert all(0.0 < c <= 1.0 for row in char_confidences for c in row)
        for confidence, row in zip(confidences, char_confidences):  # the sequence is never surer than a character
            assert all(confidence <= c + 1e-9 for c in row) or not reader.calibration.identity
