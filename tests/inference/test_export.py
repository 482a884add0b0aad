"""runner/inference/export.py: ONNX and TorchScript exports read rendered images exactly like their checkpoint."""

from pathlib import Path

import pytest
import torch

from runner.data.preprocess import content_width, crop_to_content
from runner.inference.export import ExportError, check_parity, export_onnx, export_torchscript, parity_batches, \
    rendered_images
from runner.inference.predictors import OnnxPredictor, TorchPredictor, TorchScriptPredictor, load_predictor
from runner.models import create_model


def test_parity_batches_add_width_sorted_groups_only_for_a_cropping_model():
    images, _ = rendered_images(20, 32, 128, 8, seed=5)
    assert len(parity_batches(images, bucketing=False)) == 1
    whole, *groups = parity_batches(images, bucketing=True, group=8)
    assert torch.equal(whole, images) and [len(group) for group in groups] == [8, 8, 4]
    widths = [content_width(image, multiple=1, min_width=1) for group in groups for image in group]
    assert widths == sorted(widths)


def test_cropping_model_exports_to_onnx_with_a_dynamic_width(cropping_predictor, tmp_path):
    path = export_onnx(cropping_predictor, tmp_path / "ctc.onnx")
    exported = load_predictor(path)
    assert exported.bucketing
    images, _ = rendered_images(24, 32, 128, 8, seed=5)
    report = check_parity(cropping_predictor, exported, images)  # the whole batch, then width-sorted groups of 8
    assert report.mismatches == [] and report.max_abs_diff < 1e-4 and report.images == 24
    widths = {crop_to_content(images[i:i + 1]).shape[-1] for i in range(24)}
    assert len(widths) > 2  # the groups really ran at several widths
    for width in (32, 76):
        assert torch.allclose(exported.logits(images[..., :width]), cropping_predictor.logits(images[..., :width]),
                              atol=1e-4)


def test_onnx_export_matches_pytorch_on_rendered_images(predictor, onnx_model):
    images, _ = rendered_images(12, 32, 128, predictor.max_length, seed=3)
    onnx_predictor = OnnxPredictor(onnx_model, predictor.metadata)
    report = check_parity(predictor, onnx_predictor, images)
    assert report.mismatches == [] and report.max_abs_diff < 1e-4
    assert onnx_predictor.predict(images)[0] == predictor.predict(images)[0]
    assert onnx_predictor.predict(images[:1])[0] == predictor.predict(images[:1])[0]  # dynamic batch axis


def test_torchscript_export_parity_and_mismatch_detection(predictor, tmp_path):
    path = export_torchscript(predictor, tmp_path / "model.torchscript.pt")
    images, _ = rendered_images(6, 32, 128, predictor.max_length, seed=4)
    exported = TorchScriptPredictor(path, predictor.metadata)
    assert check_parity(predictor, exported, images).max_abs_diff < 1e-5
    other = TorchPredictor(create_model("small").eval(), predictor.metadata, Path("other.pt"))
    with pytest.raises(ExportError, match="disagrees"):
        check_parity(other, exported, images)
