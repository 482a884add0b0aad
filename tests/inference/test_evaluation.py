"""runner/inference/evaluation.py: the data a model is scored on, the scoring pass and the report it writes."""

import json

import pytest

from data.helpers import make_folder
from runner.charset import Charset
from runner.config import TrainingConfig, compose_config
from runner.data.config import DataConfig
from runner.data.datasets import KhmerDigitsDataset
from runner.errors import DataError
from runner.inference.config import register_inference_configs
from runner.inference.evaluation import (evaluate_dataset, evaluation_data_config, evaluation_dataset,
                                         evaluation_seed, format_report_table, metrics_report, names_data_source, write_evaluation)
from runner.metrics import OCRMetrics


@pytest.fixture
def trained(predictor):
    """The test model, as if trained with seed 7 on data settings stored in its checkpoint."""
    return type(predictor)(predictor.model, {**predictor.metadata, "training": {
        "seed": 7, "data": {"train_size": 99, "val_size": 11, "image_height": 48, "cache_dir": "/their/disk"}}},
        predictor.source)


def test_evaluation_data_defaults_to_the_training_settings(trained):
    register_inference_configs()  # what importing runner.evaluate does
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


def test_naming_the_data_and_choosing_the_seed(trained, predictor):
    assert names_data_source(["+data.dir=x"]) and names_data_source(["metadata=m.yaml"])
    assert not names_data_source(["data.val_size=5", "batch_size=4"])
    assert evaluation_seed(trained, DataConfig(), 3) == 3  # the command's seed first
    assert evaluation_seed(trained, DataConfig(seed=5)) == 5  # then data.seed
    assert evaluation_seed(trained, DataConfig()) == 7  # then the one training used
    assert evaluation_seed(predictor, DataConfig()) == TrainingConfig.seed  # else training's default


def test_evaluate_dataset_scores_like_ocrmetrics_and_writes_the_report(predictor, tiny_dataset, tmp_path):
    dataset = KhmerDigitsDataset(tiny_dataset, "val_hard")
    metrics = evaluate_dataset(predictor, dataset, batch_size=4)
    expected = OCRMetrics()
    for sample in dataset:
        texts, confidences, _ = predictor.model.predict_with_confidence(sample["image"].unsqueeze(0))
        expected.update(texts, [sample["text"]], paths=[sample["path"]], confidences=confidences)
    assert metrics.compute() == pytest.approx(expected.compute()) and metrics.compute()["count"] == 6
    paths = write_evaluation(metrics, tmp_path, {"checkpoint": "x.pt"})
    written = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert written["checkpoint"] == "x.pt" and written["metrics"] == pytest.approx(expected.compute())
    assert written["confusion_matrix"]["counts"] == expected.confusion_matrix().tolist()
    assert paths["confusion_matrix"].stat().st_size > 0
    rows = paths["worst_errors"].read_text(encoding="utf-8").splitlines()
    assert rows[0] == "path\ttruth\tprediction\tvalue\tconfidence\tchar_confidences\tedit_distance"
    assert len(rows) - 1 == len(expected.error_analysis()["worst_examples"])
    for row, example in zip(rows[1:], written["error_analysis"]["worst_examples"]):
        path, truth, prediction, value, confidence, per_char, distance = row.split("\t")
        assert value == example["value"] == Charset.value(prediction)
        assert len(example["char_confidences"]) == len(prediction) == len(per_char.split())
    table = format_report_table(metrics_report(metrics)).splitlines()
    assert f"{'samples':<22}{6:>10d}" in table
    assert f"{'seq_accuracy':<22}{expected.compute()['seq_accuracy']:>10.4f}" in table


def test_evaluating_a_model_on_labels_outside_its_charset_names_both(predictor, tmp_path):
    make_folder(tmp_path / "prices", ["a.png\t១២", "b.png\t១,៥០០៛"])
    data = DataConfig(kind="folder", dir=str(tmp_path / "prices"), max_length=8)
    with pytest.raises(DataError, match=r"^the dataset does not fit the model .*best.pt, which reads charset 'digits' "
                                        r"\(the ten Khmer digits ០..៩\): .*labels.tsv:2: label '១,៥០០៛' has characters "
                                        r"',' \(U\+002C\), '៛' \(U\+17DB\) not in charset 'digits'.*evaluate a model trained "
                                        r"with charset=numbers\.$"):
        evaluation_dataset(data, "val", 0, whole_folder=True, charset=predictor.charset, model=str(predictor.source))
