"""runner/inference/files.py: which files an `inputs=` names, and their predictions in input order."""

import re

import pytest
import torch

from runner.data.preprocess import crop_to_content, load_image, preprocess_image
from runner.errors import DataError
from runner.inference.files import Prediction, discover_images, predict_files

LINE = re.compile(r"^(?P<path>[^\t]+)\t(?P<text>[០-៩]*)\t(?P<confidence>[01]\.\d{4})$")


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


def test_prediction_line_has_four_decimals():
    assert Prediction("a/b.png", "១២", 0.98765).line() == "a/b.png\t១២\t0.9877"
