"""runner/inference/files.py: which files an `inputs=` names, and their predictions in input order."""

import io
import sys

import pytest
import torch

from runner.data.preprocess import crop_to_content, load_image, preprocess_image
from runner.errors import DataError
from runner.inference.files import discover_images, list_file, predict_files


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


def test_a_list_file_names_images_in_its_order_relative_to_its_folder(image_folder, tmp_path, monkeypatch):
    listing = tmp_path / "lists" / "scans.txt"
    listing.parent.mkdir()
    listing.write_text(f"# today's scans\n\n{image_folder}/sub/tiny.png\n  ../copy.png  \r\n# done: gray\n"
                       f"missing.png\n{image_folder}/gray.png\n", encoding="utf-8")
    (tmp_path / "copy.png").write_bytes((image_folder / "gray.png").read_bytes())
    monkeypatch.chdir(image_folder)  # relative paths follow the list, not the current folder
    images = discover_images(f"@{listing}")
    assert [item.name for item in images] == [f"{image_folder}/sub/tiny.png", "../copy.png", "missing.png",
                                              f"{image_folder}/gray.png"]  # as written, in order, duplicates kept
    assert [item.path for item in images][1:3] == [listing.parent / "../copy.png", listing.parent / "missing.png"]
    assert list_file(f"@{listing}") == listing and list_file(str(listing)) is None


def test_a_missing_listed_file_is_reported_like_an_unreadable_image(predictor, image_folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{image_folder}/gray.png\nmissing.png\n")
    predictions = list(predict_files(predictor, discover_images(f"@{listing}")))
    assert [(p.name, p.text, p.confidence) for p in predictions][1] == ("missing.png", "", 0.0)
    assert "does not exist" in predictions[1].error and predictions[0].error is None and predictions[0].text


def test_stdin_names_images_relative_to_the_current_folder(image_folder, monkeypatch):
    monkeypatch.chdir(image_folder)
    monkeypatch.setattr(sys, "stdin", io.StringIO("sub/tiny.png\n# skipped\ngray.png\n"))
    images = discover_images("-")
    assert [(item.name, item.path) for item in images] == [("sub/tiny.png", image_folder / "sub/tiny.png"),
                                                           ("gray.png", image_folder / "gray.png")]


@pytest.mark.parametrize("content, message", [
    (None, "no such list file"),
    ("# only a comment\n\n   \n", r"names no images \(only blank lines and # comments\)"),
    (b"\xff\xfe\x00binary", "is not UTF-8 text"),
    ("sub\n", "line 1 of the list file .* names a folder \\(sub\\)"),
])
def test_a_list_that_names_no_images_is_refused(content, message, image_folder, tmp_path, monkeypatch):
    listing = tmp_path / "list.txt"
    if isinstance(content, bytes):
        listing.write_bytes(content)
    elif content is not None:
        listing.write_text(content)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match=f"inputs=@list.txt: .*{message}"):
        discover_images("@list.txt")


def test_empty_stdin_is_refused(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    with pytest.raises(DataError, match="inputs=-: stdin names no images"):
        discover_images("-")


def test_predict_files_reads_every_mode_and_reports_broken_files(predictor, image_folder):
    images = discover_images(image_folder)
    predictions = list(predict_files(predictor, images, batch_size=3))  # batches split across the broken file
    assert [p.name for p in predictions] == [item.name for item in images]
    by_name = {p.name: p for p in predictions}
    assert by_name["broken.png"].error and "broken.png" in by_name["broken.png"].error
    assert (by_name["broken.png"].text, by_name["broken.png"].confidence) == ("", 0.0)
    for prediction, item in zip(predictions, images):
        if prediction.error:
            continue
        # batching changes nothing: each file alone gives the same text and confidence
        single_text, single_confidence, _ = predictor.model.predict_with_confidence(
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
        text, confidence, _ = cropping_predictor.model.predict_with_confidence(alone)
        assert (prediction.text, prediction.confidence) == (text[0], pytest.approx(confidence[0]))

