"""The commands built on runner/inference/ (runner.predict, runner.evaluate, runner.export): their checks in
process, then each end to end in a subprocess."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from inference.helpers import digits_image
from runner.charset import Charset
from runner.config import compose_config
from runner.data.datasets import KhmerDigitsDataset
from runner.errors import ConfigError
from runner.inference.evaluation import evaluate_dataset
from runner.inference.files import PredictionFailures
from runner.inference.metadata import sidecar_path
from runner.schema import SHIPPED_MODEL
from runner.training.checkpoint import git_commit

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<path>[^\t]+)\t(?P<text>[០-៩]*)\t(?P<value>[0-9]*)\t(?P<confidence>[01]\.\d{4})"
                  r"\t(?P<char_confidences>(?:[01]\.\d{3}(?: [01]\.\d{3})*)?)$")
HEADER = "path\ttext\tvalue\tconfidence\tchar_confidences"


@pytest.mark.parametrize("module, overrides, message", [
    ("predict", ["inputs=missing", "batch_size=0"], "batch_size must be > 0"),
    ("evaluate", ["num_threads=0"], "num_threads must be > 0 or null"),
    ("export", ["parity_images=0"], "parity_images must be > 0"),
])
def test_entry_points_check_their_values_before_reading_anything(module, overrides, message, tmp_path):
    from runner import evaluate, export, predict

    task = {"predict": predict.predict, "evaluate": lambda cfg: evaluate.evaluate(cfg, tmp_path),
            "export": export.export}[module]
    with pytest.raises(ConfigError, match=message):  # the checkpoint does not exist: it was never opened
        task(compose_config(module, [f"checkpoint={tmp_path / 'missing.pt'}", *overrides]))


@pytest.mark.parametrize("module, override, allowed", [
    ("export", "format=zip", "[onnx, torchscript]"),
    ("predict", "format=xml", "[tsv, jsonl, csv]"),
    ("evaluate", "split=test", "[val, val_hard, val_unseen_fonts, val_hard_unseen_fonts, train]"),
])
def test_a_wrong_choice_is_refused_when_the_config_is_composed(module, override, allowed, tmp_path):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config(module, [f"checkpoint={tmp_path / 'missing.pt'}", override])
    assert f"expected one of {allowed}" in str(refused.value.__cause__)


def test_predict_formats_carry_the_same_values(checkpoint, image_folder, tmp_path):
    from runner.predict import predict

    def predicted(format: str) -> str:
        output = tmp_path / f"predictions.{format}"
        with pytest.raises(PredictionFailures):  # broken.png
            predict(compose_config("predict", [f"checkpoint={checkpoint}", f"inputs={image_folder}",
                                               f"output={output}", f"format={format}"]))
        return output.read_text(encoding="utf-8")

    tsv = [line.split("\t") for line in predicted("tsv").splitlines()]
    assert tsv[0] == HEADER.split("\t") and len(tsv) == 8
    assert list(csv.reader(io.StringIO(predicted("csv"), newline=""))) == tsv
    records = [json.loads(line) for line in predicted("jsonl").splitlines()]
    assert [[r["path"], r["text"], r["value"], r["confidence"]] for r in records] == \
           [[p, t, v, float(c)] for p, t, v, c, _ in tsv[1:]]
    assert [r["path"] for r in records if "error" in r] == ["broken.png"]
    for record, (_, text, value, _, per_char) in zip(records, tsv[1:]):
        assert value == Charset.value(text) and len(record["char_confidences"]) == len(text)
        assert all(0.0 <= c <= 1.0 for c in record["char_confidences"])
        assert [float(c) for c in per_char.split()] == pytest.approx(record["char_confidences"], abs=6e-4)


def test_predict_never_writes_over_its_list_file(checkpoint, image_folder, tmp_path):
    from runner.predict import predict

    listing = tmp_path / "list.txt"
    listing.write_text(f"{image_folder}/gray.png\n")
    with pytest.raises(ConfigError, match="is also one of the inputs of this run"):
        predict(compose_config("predict", [f"checkpoint={checkpoint}", f"inputs=@{listing}", f"output={listing}"]))
    assert listing.read_text() == f"{image_folder}/gray.png\n"


@pytest.mark.parametrize("content, message", [
    (None, "inputs=@list.txt: no such list file"),
    ("# nothing yet\n", "inputs=@list.txt: the list file"),
])
def test_predict_refuses_a_missing_or_empty_list_in_one_paragraph(content, message, checkpoint, tmp_path,
                                                                  run_entry, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "list.txt").write_text(content)
    code, stdout, stderr = run_entry("runner.predict", f"checkpoint={checkpoint}", "inputs=@list.txt")
    assert code == 2 and stdout == "" and stderr.startswith("error (DataError): ")
    assert message in " ".join(stderr.split()) and len(stderr.strip().split("\n\n")) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == (["list.txt"] if content else [])


def test_predict_progress_goes_to_stderr_only(checkpoint, image_folder, run_entry, monkeypatch):
    from runner import progress

    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(progress, "clock", lambda: next(ticks))  # every update is 10 s later: lines are logged
    code, stdout, stderr = run_entry("runner.predict", f"checkpoint={checkpoint}", f"inputs={image_folder}",
                                     "batch_size=2")
    assert code == 1 and "predicting: 7/7 images (100%)" in stderr
    assert stdout.splitlines()[0] == HEADER and all(LINE.match(line) for line in stdout.splitlines()[1:]), stdout


def test_evaluate_reports_the_scores_of_its_split(checkpoint, predictor, tiny_dataset, tmp_path):
    from runner.evaluate import evaluate

    overrides = [f"checkpoint={checkpoint}", f"metadata={tiny_dataset}", "split=val_hard", "batch_size=4"]
    report = evaluate(compose_config("evaluate", overrides), tmp_path, overrides)
    expected = evaluate_dataset(predictor, KhmerDigitsDataset(tiny_dataset, "val_hard"), batch_size=4).compute()
    assert report["metrics"] == pytest.approx(expected) and report["metrics"]["count"] == 6
    assert report["data"] == {"source": f"{tiny_dataset} [val_hard]", "split": "val_hard", "seed": 1234,
                              "from_training": False}
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["data"] == report["data"]


# --------------------------------------------------------------------------- subprocesses
def run_cli(module: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", module, *overrides, f"hydra.run.dir={cwd / 'run'}"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def test_predict_cli_prints_only_predictions_and_exits_1_on_a_broken_file(checkpoint, image_folder, tmp_path):
    result = run_cli("runner.predict", f"checkpoint={checkpoint.parent.parent}", f"inputs={image_folder}",
                     "batch_size=2", cwd=tmp_path)  # a run dir resolves to its checkpoints/best.pt
    assert result.returncode == 1, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header == HEADER and len(lines) == 7 and all(LINE.match(line) for line in lines), result.stdout
    assert "broken.png\t\t\t0.0000\t" in lines
    assert "skipping broken.png" in result.stderr and "1 of 7 input files could not be read" in result.stderr
    assert "Traceback" not in result.stderr


def run_predict_in(cwd: Path, *overrides: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m runner.predict` started in `cwd`, with its default run dir and outputs root."""
    env = {key: value for key, value in os.environ.items() if key != "KHMER_OCR_OUTPUTS"}
    env.update(HYDRA_FULL_ERROR="0", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "runner.predict", *overrides], cwd=cwd, input=stdin,
                          capture_output=True, text=True, env=env, timeout=300)


def test_predict_reads_paths_from_stdin_and_leaves_no_run_dir(checkpoint, image_folder, tmp_path):
    (tmp_path / "scans").mkdir()
    for name in ("gray.png", "photo.jpg"):
        (tmp_path / "scans" / name).write_bytes((image_folder / name).read_bytes())
    before = sorted(tmp_path.rglob("*"))
    result = run_predict_in(tmp_path, f"checkpoint={checkpoint}", "inputs=-", "format=jsonl",
                            stdin="scans/photo.jpg\n# not this one\n\nscans/gray.png\n")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == ["scans/photo.jpg", "scans/gray.png"]
    assert sorted(tmp_path.rglob("*")) == before  # no outputs/, no .hydra/, no predict.log


@pytest.mark.skipif(not SHIPPED_MODEL.is_file(), reason="no shipped model (make release-model)")
def test_predict_without_a_checkpoint_reads_with_the_shipped_model(tmp_path):
    digits_image("០៩៨៧៦៥", size=(260, 60)).save(tmp_path / "number.png")
    result = run_predict_in(tmp_path, "inputs=number.png", "format=jsonl")
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["text"] == "០៩៨៧៦៥" and row["value"] == "098765" and row["confidence"] > 0.9
    assert len(row["char_confidences"]) == 6 and all(0.5 < c <= 1.0 for c in row["char_confidences"])


def test_predict_save_run_keeps_a_run_dir_with_its_log(checkpoint, image_folder, tmp_path):
    (tmp_path / "list.txt").write_text(f"{image_folder}/gray.png\n")
    result = run_predict_in(tmp_path, f"checkpoint={checkpoint}", "inputs=@list.txt", "save_run=true",
                            "format=csv", "output=${hydra:runtime.output_dir}/predictions.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    [run_dir] = (tmp_path / "outputs" / "predict").glob("*/*")
    assert {path.name for path in run_dir.iterdir()} == {".hydra", "predict.log", "job_status.json",
                                                         "predictions.csv"}
    assert "reading 1 images" in (run_dir / "predict.log").read_text(encoding="utf-8")
    rows = list(csv.reader((run_dir / "predictions.csv").open(encoding="utf-8", newline="")))
    assert rows[0] == list(HEADER.split("\t")) and rows[1][0] == f"{image_folder}/gray.png"


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
    assert re.search(r"seq_accuracy\s+\d\.\d{4}", result.stdout) and "char_acc" in result.stdout
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
    assert sidecar["preprocess"] == {"height": 32, "width": 128, "bucketing": False, "text_crop": False} and sidecar["max_length"] == 8
    assert sidecar["charset"]["tokens"][4:] == list("០១២៣៤៥៦៧៨៩")
    assert sidecar["source_checkpoint"] == str(checkpoint) and sidecar["git_commit"] == git_commit()
    assert sidecar["export"]["format"] == "torchscript"
