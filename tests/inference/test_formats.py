"""runner/inference/formats.py: predict's tsv, csv and jsonl carry the same values and read back exactly."""

import csv
import io
import json

import pytest

from runner.inference.config import PredictFormat
from runner.inference.files import Prediction
from runner.inference.formats import HEADER, PredictionWriter

PREDICTIONS = [Prediction("a/b.png", "១២", 0.98765, char_confidences=[0.99951, 0.9881]),
               Prediction("scan, page 2.png", "១,៥០០៛", 1.0, char_confidences=[1.0, 0.5, 1.0, 1.0, 1.0, 0.25]),
               Prediction("broken.png", "", 0.0, "image file broken.png cannot be decoded")]


def written(format: str, predictions=PREDICTIONS) -> str:
    handle = io.StringIO(newline="")
    writer = PredictionWriter(handle, format)
    for prediction in predictions:
        writer.write(prediction)
    return handle.getvalue()


def test_tsv_has_a_header_value_four_decimals_and_space_joined_char_confidences():
    assert written("tsv").splitlines() == [
        "path\ttext\tvalue\tconfidence\tchar_confidences",
        "a/b.png\t១២\t12\t0.9877\t1.000 0.988",
        "scan, page 2.png\t១,៥០០៛\t1,500៛\t1.0000\t1.000 0.500 1.000 1.000 1.000 0.250",
        "broken.png\t\t\t0.0000\t"]


@pytest.mark.parametrize("format", ["csv", "jsonl"])
def test_every_format_reads_back_to_the_tsv_values(format):
    tsv_rows = [line.split("\t") for line in written("tsv").splitlines()]
    if format == "csv":
        rows = list(csv.reader(io.StringIO(written("csv"), newline="")))
        assert rows == tsv_rows  # header included; the commas in the path and the text were quoted
    else:
        records = [json.loads(line) for line in written("jsonl").splitlines()]
        assert [[r["path"], r["text"], r["value"], r["confidence"]] for r in records] == \
               [[path, text, value, float(confidence)] for path, text, value, confidence, _ in tsv_rows[1:]]
        assert [" ".join(f"{c:.3f}" for c in r["char_confidences"]) for r in records] == [row[4] for row in tsv_rows[1:]]
        assert [len(r["char_confidences"]) for r in records] == [len(r["text"]) for r in records]
        assert [r.get("error") for r in records] == [None, None, "image file broken.png cannot be decoded"]


def test_jsonl_keeps_khmer_and_has_no_header():
    assert written("jsonl", PREDICTIONS[:1]) == ('{"path": "a/b.png", "text": "១២", "value": "12", "confidence": 0.9877, '
                                                 '"char_confidences": [0.9995, 0.9881]}\n')


def test_a_tab_or_newline_in_a_path_is_exact_in_csv_and_jsonl_and_escaped_in_tsv(caplog):
    odd = [Prediction("tab\there, and comma.png", "១", 0.5, char_confidences=[0.5]),
           Prediction("new\nline.png", "២", 0.25, char_confidences=[0.25])]
    rows = list(csv.reader(io.StringIO(written("csv", odd), newline="")))
    assert rows == [list(HEADER), ["tab\there, and comma.png", "១", "1", "0.5000", "0.500"],
                    ["new\nline.png", "២", "2", "0.2500", "0.250"]]
    assert [json.loads(line)["path"] for line in written("jsonl", odd).splitlines()] == [p.name for p in odd]
    assert written("tsv", odd).splitlines()[1:] == ["tab\\there, and comma.png\t១\t1\t0.5000\t0.500",
                                                    "new\\nline.png\t២\t2\t0.2500\t0.250"]
    assert "format=csv or format=jsonl keep it exactly" in caplog.text


def test_a_format_outside_the_choices_is_refused():
    assert [format.value for format in PredictFormat] == ["tsv", "jsonl", "csv"]
    with pytest.raises(ValueError):
        PredictionWriter(io.StringIO(), "xml")
