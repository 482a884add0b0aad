"""Inference: loading any model file into one Predictor, reading files, evaluation, export parity, and the
three entry points (runner.predict / evaluate / export) end to end in a few subprocesses."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from runner.data.datasets import KhmerDigitsDataset
from runner.data.fonts import package_font_path
from runner.data.preprocess import crop_to_content, load_image, preprocess_image
from runner.errors import CheckpointError, DataError
from runner.inference import (ExportError, OnnxPredictor, Prediction, TorchPredictor, TorchScriptPredictor,
                              check_parity, discover_images, evaluation_data_config, export_onnx, export_torchscript,
                              load_predictor, predict_files, read_export_metadata, rendered_images, sidecar_path)
from runner.metrics import OCRMetrics
from runner.models import create_model
from runner.training.checkpoint import atomic_save, build_checkpoint

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(?P<path>[^\t]+)\t(?P<text>[០-៩]*)\t(?P<confidence>[01]\.\d{4})$")


def save_checkpoint(path: Path, preset: str = "small", seed: int = 0, config_yaml: str = "", crop: bool = False
                    ) -> Path:
    torch.manual_seed(seed)
    preprocess = {"height": 32, "width": 128, **({"crop": True} if crop else {})}  # no key: a model from before
    payload = build_checkpoint(model=create_model(preset), epoch=1, global_step=1, metrics={}, config_yaml=config_yaml,
                               preprocess=preprocess)
    atomic_save(payload, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoints" / "best.pt")


@pytest.fixture(scope="module")
def predictor(checkpoint) -> TorchPredictor:
    return load_predictor(checkpoint)


@pytest.fixture(scope="module")
def cropping_predictor(tmp_path_factory) -> TorchPredictor:
    """A CTC model trained with width bucketing: it reads every batch cropped to its widest image."""
    return load_predictor(save_checkpoint(tmp_path_factory.mktemp("crop") / "best.pt", "ctc_small", seed=2, crop=True))


def digits_image(text: str = "១២៣៤", size: tuple[int, int] = (173, 57)) -> Image.Image:
    """Black digits on white, mode L."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((7, 3), text, font=ImageFont.truetype(str(package_font_path()), 40), fill=0)
    return image


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """One line of digits saved in every mode/format predict must read, at odd sizes, plus a broken file."""
    folder = tmp_path_factory.mktemp("images")
    base = digits_image()
    base.save(folder / "gray.png")
    base.convert("RGB").resize((301, 99)).save(folder / "photo.jpg", quality=95)
    rgba = Image.new("RGBA", base.size, (0, 0, 0, 0))
    rgba.putalpha(ImageOps.invert(base))  # ink = opaque black, background transparent
    rgba.save(folder / "transparent.png")
    base.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    ImageOps.invert(base).save(folder / "inverted.png")  # light on dark
    (folder / "sub").mkdir()
    digits_image("៥", (23, 41)).save(folder / "sub" / "tiny.png")
    (folder / "broken.png").write_text("this is not an image")
    (folder / "labels.tsv").write_text("gray.png\t១២៣៤\n")
    return folder


# --------------------------------------------------------------------------- discovery and prediction
def test_discover_images_from_folder_glob_and_file(image_folder, monkeypatch):
    names = [item.name for item in discover_images(image_folder)]
    assert names == ["broken.png", "gray.png", "inverted.png", "palette.png", "photo.jpg", "sub/tiny.png",
                     "transparent.png"]  # recursive, sorted, relative to the folder; labels.tsv skipped
    monkeypatch.chdir(image_folder)
    assert [item.name for item in discover_images("*.png")][:2] == ["broken.png", "gray.png"]  # as given
    assert [item.name for item in discover_images("sub/tiny.png")] == ["sub/tiny.png"]
    with pytest.raises(DataError, match="no such file or folder"):
        discover_images("missing.png")
    with pytest.raises(DataError, match="matches no files"):
        discover_images("*.gif")


def test_predict_files_reads_every_mode_and_reports_broken_files(predictor, image_folder):
    images = discover_images(image_folder)
    predictions = list(predict_files(predictor, images, batch_size=3))  # batches split across the broken file
    assert [p.name for p in predictions] == [item.name for item in images]
    by_name = {p.name: p for p in predictions}
    assert by_name["broken.png"].error and "broken.png" in by_name["broken.png"].error
    assert by_name["broken.png"].line() == "broken.png\t\t0.0000"
    for prediction, item in zip(predictions, images):
        assert LINE.match(prediction.line()), prediction.line()
        if prediction.error:
            continue
        # batching changes nothing: each file alone gives the same text and confidence
        single_text, single_confidence = predictor.model.predict_with_confidence(
            preprocess_image(load_image(item.path)).unsqueeze(0))
        assert (prediction.text, prediction.confidence) == (single_text[0], pytest.approx(single_confidence[0]))
    # transparency and light-on-dark reach the model as the same input as black-on-white
    for variant in ("transparent.png", "inverted.png"):
        assert torch.equal(preprocess_image(load_image(image_folder / variant)),
                           preprocess_image(load_image(image_folder / "gray.png")))
        assert by_name[variant].text == by_name["gray.png"].text


def test_cropping_model_reads_files_in_input_order_without_their_padding(cropping_predictor, image_folder):
    images = discover_images(image_folder)
    sorted_chunks = list(predict_files(cropping_predictor, images, batch_size=2))  # chunks sorted by width
    assert [p.name for p in sorted_chunks] == [item.name for item in images]
    one_by_one = list(predict_files(cropping_predictor, images, batch_size=1))
    for prediction, item in zip(one_by_one, images):
        if prediction.error:
            continue
        alone = crop_to_content(preprocess_image(load_image(item.path)).unsqueeze(0))
        assert alone.shape[-1] < 128 or item.name == "photo.jpg"  # the padding columns are not read
        text, confidence = cropping_predictor.model.predict_with_confidence(alone)
        assert (prediction.text, prediction.confidence) == (text[0], pytest.approx(confidence[0]))


def test_cropping_model_takes_cropped_batches_and_a_plain_model_refuses_them(cropping_predictor, predictor):
    images, _ = rendered_images(4, 32, 128, 8, seed=1)
    narrow = crop_to_content(images)
    padded = torch.nn.functional.pad(narrow, (0, 128 - narrow.shape[-1]))
    assert torch.equal(cropping_predictor.logits(narrow), cropping_predictor.logits(padded))
    assert cropping_predictor.logits(images[:, :, :, :40]).shape[1] == 10  # 40 columns = 10 CTC steps
    if narrow.shape[-1] < 128:
        with pytest.raises(ValueError, match=r"\[B, 1, 32, 128\]"):
            predictor.logits(narrow)


def test_cropping_model_exports_to_onnx_with_a_dynamic_width(cropping_predictor, tmp_path):
    path = export_onnx(cropping_predictor, tmp_path / "ctc.onnx")
    exported = load_predictor(path)
    assert exported.crop
    images, _ = rendered_images(24, 32, 128, 8, seed=5)
    report = check_parity(cropping_predictor, exported, images)  # the whole batch, then width-sorted groups of 8
    assert report.mismatches == [] and report.max_abs_diff < 1e-4 and report.images == 24
    widths = {crop_to_content(images[i:i + 1]).shape[-1] for i in range(24)}
    assert len(widths) > 2  # the groups really ran at several widths
    for width in (32, 76):
        assert torch.allclose(exported.logits(images[..., :width]), cropping_predictor.logits(images[..., :width]),
                              atol=1e-4)


def test_prediction_line_has_four_decimals():
    assert Prediction("a/b.png", "១២", 0.98765).line() == "a/b.png\t១២\t0.9877"


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_predictor(tmp_path / "notes.pt")
    (tmp_path / "fake.onnx").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="fake.onnx"):
        load_predictor(tmp_path / "fake.onnx")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_predictor(tmp_path / "missing.onnx")


# --------------------------------------------------------------------------- export
@pytest.fixture(scope="module")
def onnx_model(predictor, tmp_path_factory) -> Path:
    # the default (dynamo) exporter on the attention model: its greedy loop is the hard case
    return export_onnx(predictor, tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_onnx_export_matches_pytorch_on_rendered_images(predictor, onnx_model):
    images, _ = rendered_images(12, 32, 128, predictor.max_length, seed=3)
    onnx_predictor = load_predictor(onnx_model)  # no sidecar: metadata embedded in the file
    assert isinstance(onnx_predictor, OnnxPredictor) and onnx_predictor.name == "small"
    report = check_parity(predictor, onnx_predictor, images)
    assert report.mismatches == [] and report.max_abs_diff < 1e-4
    assert onnx_predictor.predict(images)[0] == predictor.predict(images)[0]
    assert onnx_predictor.predict(images[:1])[0] == predictor.predict(images[:1])[0]  # dynamic batch axis


def test_onnx_sidecar_with_another_charset_is_refused(predictor, onnx_model):
    sidecar = sidecar_path(onnx_model)
    sidecar.write_text(json.dumps({**predictor.metadata, "charset": {"tokens": ["<pad>", "0", "1"]}}))
    try:
        with pytest.raises(CheckpointError, match="different charset"):
            read_export_metadata(onnx_model)
    finally:
        sidecar.unlink()


def test_torchscript_export_parity_and_mismatch_detection(predictor, tmp_path):
    path = export_torchscript(predictor, tmp_path / "model.torchscript.pt")
    images, _ = rendered_images(6, 32, 128, predictor.max_length, seed=4)
    exported = TorchScriptPredictor(path, predictor.metadata)
    assert check_parity(predictor, exported, images).max_abs_diff < 1e-5
    other = TorchPredictor(create_model("small").eval(), predictor.metadata, Path("other.pt"))
    with pytest.raises(ExportError, match="disagrees"):
        check_parity(other, exported, images)


# --------------------------------------------------------------------------- evaluation
def test_evaluate_numbers_equal_ocrmetrics(checkpoint, predictor, tiny_dataset, tmp_path):
    from runner.config import compose_config
    from runner.evaluate import evaluate

    overrides = [f"checkpoint={checkpoint}", f"metadata={tiny_dataset}", "split=val_hard", "batch_size=4"]
    report = evaluate(compose_config("evaluate", overrides), tmp_path, overrides)

    expected = OCRMetrics()
    for sample in KhmerDigitsDataset(tiny_dataset, "val_hard"):
        texts, confidences = predictor.model.predict_with_confidence(sample["image"].unsqueeze(0))
        expected.update(texts, [sample["text"]], paths=[sample["path"]], confidences=confidences)
    assert report["metrics"] == pytest.approx(expected.compute())
    assert report["metrics"]["count"] == 6
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert written["metrics"] == pytest.approx(expected.compute())
    assert written["per_length_accuracy"] == {str(k): pytest.approx(v) for k, v in
                                              expected.statistics()["per_length_accuracy"].items()}
    assert written["confusion_matrix"]["counts"] == expected.confusion_matrix().tolist()
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    rows = (tmp_path / "worst_errors.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("path\ttruth\tprediction")
    assert len(rows) - 1 == len(expected.error_analysis()["worst_examples"])


def test_evaluation_data_defaults_to_the_training_settings(predictor):
    from runner.config import compose_config
    from runner.data.config import DataConfig
    from runner.inference import register_inference_configs

    register_inference_configs()  # what importing runner.evaluate does
    trained = type(predictor)(predictor.model, {**predictor.metadata, "training": {
        "seed": 7, "data": {"train_size": 99, "val_size": 11, "image_height": 48, "cache_dir": "/their/disk"}}},
        predictor.source)
    cfg = compose_config("evaluate", ["checkpoint=x", "data.cache_dir=/my/cache"])
    data, from_training = evaluation_data_config(cfg.data, trained, [])
    assert from_training and (data.train_size, data.val_size) == (99, 11)
    assert data.cache_dir == "/my/cache"  # datasets are generated where this machine keeps them, not where a file says
    assert (data.image_height, data.image_width) == (32, 128)  # the model's size, not the data config's
    cfg = compose_config("evaluate", ["checkpoint=x", "data.val_size=5"])
    data, _ = evaluation_data_config(cfg.data, trained, ["data.val_size=5"])
    assert (data.train_size, data.val_size) == (99, 5)  # command-line data.* still applies on top
    cfg = compose_config("evaluate", ["checkpoint=x", "data=folder", "data.dir=/some/where"])
    data, from_training = evaluation_data_config(cfg.data, trained, ["data=folder", "data.dir=/some/where"])
    assert not from_training and data.kind == "folder" and data.train_size == DataConfig().train_size


# --------------------------------------------------------------------------- entry points (subprocesses)
def run_cli(module: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *overrides, f"hydra.run.dir={cwd / 'run'}"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_predict_cli_prints_only_predictions_and_exits_1_on_a_broken_file(checkpoint, image_folder, tmp_path):
    result = run_cli("runner.predict", f"checkpoint={checkpoint.parent.parent}", f"inputs={image_folder}",
                     "batch_size=2", cwd=tmp_path)  # a run dir resolves to its checkpoints/best.pt
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and all(LINE.match(line) for line in lines), result.stdout
    assert "broken.png\t\t0.0000" in lines
    assert "skipping broken.png" in result.stderr and "1 of 7 input files could not be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_cli_refuses_a_file_that_is_not_a_checkpoint(image_folder, tmp_path):
    (tmp_path / "model.pt").write_bytes(os.urandom(256))
    result = run_cli("runner.predict", f"checkpoint={tmp_path / 'model.pt'}", f"inputs={image_folder}",
                     cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert "error (CheckpointError):" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_cli_writes_report_into_its_run_dir(checkpoint, tiny_dataset, tmp_path):
    result = run_cli("runner.evaluate", f"checkpoint={checkpoint}", f"data.dir={tiny_dataset.parent}",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"seq_accuracy\s+\d\.\d{4}", result.stdout) and "digit" in result.stdout
    report = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert report["data"]["split"] == "val" and report["metrics"]["count"] == 8
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"confusion_matrix.png", "worst_errors.tsv",
                                                                "evaluate.log"}


def test_export_cli_writes_model_and_sidecar(checkpoint, tmp_path):
    output = tmp_path / "model.torchscript.pt"
    result = run_cli("runner.export", f"checkpoint={checkpoint}", "format=torchscript", f"output={output}",
                     "parity_images=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "identical texts" in result.stdout and "max abs logit difference" in result.stdout
    sidecar = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
    assert sidecar["model"]["name"] == "small" and sidecar["model"]["head"] == "attention"
    assert sidecar["preprocess"] == {"height": 32, "width": 128, "crop": False, "text_crop": False} and sidecar["max_length"] == 8
    assert sidecar["charset"]["tokens"][4:] == list("០១២៣៤៥៦៧៨៩")
    assert sidecar["source_checkpoint"] == str(checkpoint) and sidecar["git_commit"]
    assert sidecar["export"]["format"] == "torchscript"
