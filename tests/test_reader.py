"""runner/reader.py: `Reader(model).read(x)` for every kind of input, in order, from several threads, with no
process-wide side effects."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from inference.helpers import digits_image, save_checkpoint
from runner import Reader, Reading
from runner.data.preprocess import preprocess_image
from runner.errors import CheckpointError, ConfigError, DataError
from runner.schema import SHIPPED_MODEL

TEXTS = ("១២៣៤", "៥", "៦៧៨៩០១២", "៤២", "៩៩៩", "១០")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [digits_image(text, (40 + 28 * len(text), 50 + 3 * index)) for index, text in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def onnx_reader(onnx_model) -> Reader:
    return Reader(onnx_model)


@pytest.fixture(scope="module")
def cropping_checkpoint(tmp_path_factory) -> Path:
    """A width-bucketed CTC model: the Reader sorts its inputs by width and crops every batch."""
    return save_checkpoint(tmp_path_factory.mktemp("reader") / "ctc.pt", "ctc_small", seed=3, bucketing=True)


def expected(predictor, images) -> list[tuple[str, float]]:
    """What the torch predictor reads in each image alone."""
    return [(texts[0], confidences[0]) for texts, confidences, _ in
            (predictor.predict(preprocess_image(image, predictor.height, predictor.width,
                                                predictor.text_crop).unsqueeze(0)) for image in images)]


def assert_reads(readings: list[Reading], wanted: list[tuple[str, float]]) -> None:
    assert [reading.text for reading in readings] == [text for text, _ in wanted]
    assert [reading.confidence for reading in readings] == pytest.approx([c for _, c in wanted], rel=1e-4, abs=1e-6)


def test_every_kind_of_input_reads_like_the_image_it_holds(onnx_reader, predictor, images, tmp_path):
    image = images[0]
    path = tmp_path / "digits.png"
    image.save(path)
    gray = np.asarray(image)
    rgb = np.asarray(image.convert("RGB"))
    rgba = np.asarray(image.convert("RGBA"))
    inputs = [str(path), path, image, gray, gray[..., None], gray.astype(np.float32) / 255, rgb, rgba,
              image.convert("RGB"), ImageOps.invert(image)]
    readings = onnx_reader.read(inputs)
    assert_reads(readings, expected(predictor, [image]) * len(inputs))
    single = onnx_reader.read(image)
    assert isinstance(single, Reading) and single.text == readings[2].text
    assert single.confidence == pytest.approx(readings[2].confidence, rel=1e-5)
    assert onnx_reader.read(tuple(inputs[:2])) == readings[:2] and onnx_reader.read([]) == []


def test_a_list_is_read_in_batches_and_returned_in_input_order(predictor, onnx_model, checkpoint, images):
    wanted = expected(predictor, images)
    assert_reads(Reader(onnx_model, batch_size=4).read(images), wanted)  # two batches: 4 + 2
    assert_reads(Reader(checkpoint, batch_size=4).read(images), wanted)  # the torch path
    assert_reads(Reader(checkpoint.parent.parent).read(images), wanted)  # a run dir means its best checkpoint


def test_a_width_bucketed_model_sorts_by_width_but_answers_in_order(cropping_checkpoint, images):
    from runner.inference.predictors import load_checkpoint_predictor

    reader = Reader(cropping_checkpoint, batch_size=2)
    assert reader.model.bucketing
    assert_reads(reader.read(images), expected(load_checkpoint_predictor(cropping_checkpoint), images))


def test_value_is_the_text_in_ascii_digits(onnx_reader, images):
    for reading in onnx_reader.read(images):
        assert reading.value == "".join(str("០១២៣៤៥៦៧៨៩".index(c)) for c in reading.text)
    assert Reading("០៤២", 0.9, "042") == Reading("០៤២", 0.9, "042")
    from runner.charset import to_arabic

    assert to_arabic("១២៣") == "123" and to_arabic("០៩") == "09"


def test_a_reading_has_one_confidence_per_character(onnx_reader, checkpoint, images):
    for reader in (onnx_reader, Reader(checkpoint)):
        for reading in reader.read(images):
            assert isinstance(reading.char_confidences, tuple) and len(reading.char_confidences) == len(reading.text)
            assert all(0.0 < c <= 1.0 for c in reading.char_confidences)


def test_a_numbers_model_reads_with_its_own_charset_and_value_keeps_the_separators(tmp_path, images):
    from runner.charset import CHARSETS

    reader = Reader(save_checkpoint(tmp_path / "numbers.pt", "ctc_small", seed=5, charset="numbers"))
    assert reader.model.charset is CHARSETS["numbers"]
    for reading in reader.read(images):
        assert set(reading.text) <= set(CHARSETS["numbers"].chars) and reading.value == CHARSETS["numbers"].value(reading.text)
        assert len(reading.char_confidences) == len(reading.text)


@pytest.mark.parametrize("bad, problem", [
    ("missing.png", "item 1 of the list: image file missing.png does not exist"),
    (np.zeros((4, 5, 2), dtype=np.uint8), "item 1 of the list is an array of shape [4, 5, 2]"),
    (np.zeros((0, 5), dtype=np.uint8), "item 1 of the list is an array of shape [0, 5]"),
    (np.zeros((4, 5), dtype=np.int32), "item 1 of the list is an array of int32"),
    (np.full((4, 5), 200.0), "item 1 of the list is a float array with values outside 0..1"),
    (7, "item 1 of the list is of type int"),
])
def test_a_bad_input_is_a_data_error_naming_the_item(onnx_reader, images, bad, problem, tmp_path):
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(DataError) as refused:
        onnx_reader.read([images[0], bad, images[1]])
    assert problem in str(refused.value)
    with pytest.raises(DataError, match="the image: image file .*broken.png cannot be decoded"):
        onnx_reader.read(tmp_path / "broken.png")


def test_bad_reader_arguments_are_config_errors(onnx_model, tmp_path):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        Reader(onnx_model, batch_size=0)
    with pytest.raises(ConfigError, match="runs ONNX models on the CPU"):
        Reader(onnx_model, device="cuda")
    with pytest.raises(CheckpointError, match="does not exist"):
        Reader(tmp_path / "missing.onnx")


def test_concurrent_reads_from_several_threads_match_sequential_reads(onnx_reader, checkpoint, images):
    for reader in (onnx_reader, Reader(checkpoint)):
        work = [images[i:] + images[:i] for i in range(len(images))] * 3  # different images per call
        sequential = [reader.read(batch) for batch in work]
        with ThreadPoolExecutor(max_workers=4) as pool:
            concurrent = list(pool.map(reader.read, work))
        assert concurrent == sequential


def test_a_reader_changes_no_process_wide_setting_unless_asked(onnx_model, checkpoint, images):
    threads = torch.get_num_threads()
    Reader(checkpoint).read(images[:2])
    Reader(onnx_model).read(images[:2])
    assert torch.get_num_threads() == threads
    try:
        Reader(checkpoint, num_threads=1)
        assert torch.get_num_threads() == 1  # asked for
    finally:
        torch.set_num_threads(threads)


def test_the_default_reader_is_the_shipped_model_or_a_clear_error(images):
    if SHIPPED_MODEL.is_file():
        reading = Reader().read(images[0])
        assert isinstance(reading, Reading) and 0.0 <= reading.confidence <= 1.0
        return
    with pytest.raises(CheckpointError, match=r"no shipped model is installed .* pass a model"):
        Reader()


def test_import_runner_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, runner; runner.Reader; assert 'torch' not in sys.modules, 'torch was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
