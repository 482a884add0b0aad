"""`python -m runner.evaluate checkpoint=PATH`: score a model on labelled images.

    python -m runner.evaluate checkpoint=outputs/default/2025-01-01/12-00-00            # training's val split
    python -m runner.evaluate checkpoint=best.pt split=val_hard
    python -m runner.evaluate checkpoint=best.pt metadata=data/khmer20k/metadata.yaml split=val_unseen_fonts
    python -m runner.evaluate checkpoint=model.onnx data=folder data.dir=scans/            # every image in labels.tsv

Prints a table and writes metrics.json, confusion_matrix.png, worst_errors.tsv and report.html (what
the model gets wrong, runner/report.py) into the run dir (outputs/evaluate/<date>/<time>/). With no data named, it uses the data settings and seed the
model was trained with, i.e. the same cached generated dataset (see conf/evaluate.yaml).
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.evaluate")  # before hydra and torch: a base install gets the pip command, not a traceback

import logging
from pathlib import Path
from typing import Any, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner.cli import CONFIG_PATH, entry_point, hydra_output_dir
from runner.data.generate import groups_by_path
from runner.errors import require
from runner.inference.config import check_inference_config, register_inference_configs
from runner.inference.evaluation import (
    evaluation_data_config,
    evaluation_dataset,
    evaluation_seed,
    format_report_table,
    metrics_report,
    read_dataset,
    write_evaluation,
)
from runner.inference.predictors import load_predictor
from runner.metrics import readings_report
from runner.report import training_run, write_report
from runner.schema import model_path

log = logging.getLogger("runner.evaluate")
register_inference_configs()


def evaluate(cfg: DictConfig, output_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate cfg.checkpoint on the chosen split; returns the metrics.json content."""
    check_inference_config(cfg)
    require(cfg.report_images >= 0, "report_images", "must be >= 0", cfg.report_images)
    predictor = load_predictor(model_path(cfg.checkpoint), cfg.device, cfg.num_threads)
    data, from_training = evaluation_data_config(cfg.data, predictor, overrides)
    seed = evaluation_seed(predictor, data, cfg.seed)
    dataset, description = evaluation_dataset(data, cfg.split, seed, cfg.metadata,
                                              whole_folder=data.kind == "folder" and not from_training,
                                              charset=predictor.charset, model=str(predictor.source))
    log.info("evaluating %s (%s, %s head, %s) on %s: %d images%s", predictor.source, predictor.name, predictor.head,
             predictor.charset, description, len(dataset),
             " (the model's training data settings)" if from_training else "")
    samples = read_dataset(predictor, dataset, cfg.batch_size, data.num_workers, data.max_length)
    metrics = samples.scored(cfg.worst_k, predictor.charset)
    groups = groups_by_path(dataset)
    readings = readings_report(samples, groups, predictor.metadata["calibration"])
    context = {"checkpoint": str(predictor.source), "runtime": predictor.kind,
               "model": {"name": predictor.name, "head": predictor.head, "charset": predictor.charset.name},
               "data": {"source": description, "split": cfg.split, "seed": seed, "from_training": from_training}}
    paths = write_evaluation(metrics, output_dir, context, readings)
    report = {**context, **metrics_report(metrics, readings)}
    scores = report["metrics"]
    split = "all images" if data.kind == "folder" and not from_training and not cfg.metadata else str(cfg.split)
    history, curves = training_run(predictor.source)
    paths["report"] = write_report(
        output_dir / "report.html", report, samples, title=f"What {predictor.name} gets wrong on {split}",
        splits={split: {"images": int(scores["count"]), "seq_accuracy": scores["seq_accuracy"], "cer": scores["cer"]}},
        groups=groups, preprocess=(predictor.height, predictor.width, predictor.text_crop), history=history,
        curves_png=curves, limit=cfg.report_images)
    print(format_report_table(report))
    log.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    return report


@hydra.main(config_path=CONFIG_PATH, config_name="evaluate", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> float:
    report = evaluate(cfg, hydra_output_dir() or Path.cwd(), list(HydraConfig.get().overrides.task))
    return float(report["metrics"]["seq_accuracy"])


if __name__ == "__main__":
    main()
