"""runner/inference/metadata.py: what travels with an exported model, written beside it and read back."""

import json
import logging

import pytest

from runner.errors import CheckpointError
from runner.inference.metadata import (EXPORT_FORMAT, checkpoint_metadata, read_export_metadata, sidecar_path,
                                       write_sidecar)
from runner.training.checkpoint import load_checkpoint

from .helpers import save_checkpoint


def test_checkpoint_metadata_keeps_the_training_seed_and_data_and_ignores_an_unusable_config(tmp_path, caplog):
    path = save_checkpoint(tmp_path / "trained.pt", config_yaml="seed: 7\ndata:\n  train_size: 99\nother: 1\n")
    metadata = checkpoint_metadata(load_checkpoint(path), path)
    assert metadata["format"] == EXPORT_FORMAT and metadata["source_checkpoint"] == str(path)
    assert metadata["training"] == {"seed": 7, "data": {"train_size": 99}}  # nothing else of the config travels
    assert metadata["preprocess"] == {"height": 32, "width": 128, "bucketing": False, "text_crop": False}
    assert metadata["max_length"] == metadata["model"]["config"]["max_length"] == 8
    path = save_checkpoint(tmp_path / "edited.pt", config_yaml="seed: seven\ndata: {}\n")
    with caplog.at_level(logging.WARNING, logger="runner.inference"):
        assert checkpoint_metadata(load_checkpoint(path), path)["training"] == {}
    assert "stored training config cannot be used" in caplog.text


def test_sidecar_is_read_back_before_the_embedded_copy(predictor, onnx_model):
    sidecar = sidecar_path(onnx_model)
    assert sidecar == onnx_model.with_name("model.onnx.json")
    write_sidecar(sidecar, onnx_model.name, {**predictor.metadata, "checkpoint_epoch": 42}, "onnx")
    try:
        read = read_export_metadata(onnx_model)
        assert read["checkpoint_epoch"] == 42 and read["export"]["format"] == "onnx"
        assert read["export"]["file"] == "model.onnx"
    finally:
        sidecar.unlink()
    assert read_export_metadata(onnx_model)["checkpoint_epoch"] == predictor.metadata["checkpoint_epoch"] == 1


def test_onnx_sidecar_with_another_charset_is_refused(predictor, onnx_model):
    sidecar = sidecar_path(onnx_model)
    sidecar.write_text(json.dumps({**predictor.metadata, "charset": {"tokens": ["<pad>", "0", "1"]}}))
    try:
        with pytest.raises(CheckpointError, match="different charset"):
            read_export_metadata(onnx_model)
    finally:
        sidecar.unlink()


def test_sidecar_whose_max_length_disagrees_with_its_model_is_refused(predictor, tmp_path):
    model_file = tmp_path / "model.onnx"
    write_sidecar(sidecar_path(model_file), model_file.name, {**predictor.metadata, "max_length": 9}, "onnx")
    with pytest.raises(CheckpointError, match="max_length is 9 but model.config says 8"):
        read_export_metadata(model_file)
