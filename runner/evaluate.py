"""`python -m runner.evaluate checkpoint=PATH`: score a model on labelled images.

    python -m runner.evaluate checkpoint=outputs/default/2025-01-01/12-00-00            # training's val split
    python -m runner.evaluate checkpoint=best.pt split=val_hard
    python -m runner.evaluate checkpoint=best.pt metadata=data/khmer20k/metadata.yaml split=val_unseen_fonts
    python -m runner.evaluate checkpoint=model.onnx data=folder data.dir=scans/            # every image in labels.tsv

Prints a table and writes metrics.json, confusion_matrix.png and worst_errors.tsv into the run dir
(outputs/evaluate/<date>/<time>/). With no data named, it uses the data settings and seed the
model was trained with, i.e. the same cached generated dataset (see conf/evaluate.yaml).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner.cli import CONFIG_PATH, entry_point, hydra_output_dir
from runner.inference.config import check_inference_config, register_inference_configs
from runner.inference.evaluation import (evaluate_dataset, evaluation_data_config, evaluation_dataset,
                                         evaluation_seed, format_report_table, metrics_report, write_evaluation)
from runner.inference.predictors import load_predictor

log = logging.getLogger("runner.evaluate")
register_inference_configs()


def evaluate(cfg: DictConfig, output_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate cfg.checkpoint on the chosen split; returns the metrics.json content."""
    check_inference_config(cfg)
    predictor = load_predictor(cfg.checkpoint, cfg.device, cfg.num_threads)
    data, from_training = evaluation_data_config(cfg.data, predictor, overrides)
    seed = evaluation_seed(predictor, data, cfg.seed)
    dataset, description = evaluation_dataset(data, cfg.split, seed, cfg.metadata,
                                              whole_folder=data.kind == "folder" and not from_training)
    log.info("evaluating %s (%s, %s head) on %s: %d images%s", predictor.source, predictor.name, predictor.head,
             description, len(dataset), " (the model's training data settings)" if from_training else "")
    metrics = evaluate_dataset(predictor, dataset, cfg.batch_size, cfg.worst_k, data.num_workers, data.max_length)
    context = {"checkpoint": str(predictor.source), "runtime": predictor.kind,
               "model": {"name": predictor.name, "head": predictor.head},
               "data": {"source": description, "split": cfg.split, "seed": seed, "from_training": from_training}}
    paths = write_evaluation(metrics, output_dir, context)
    print(format_report_table(metrics_report(metrics)))
    log.info("wrote %s", ", ".join(str(path) for path in paths.values()))
    return {**context, **metrics_report(metrics)}


@hydra.main(config_path=CONFIG_PATH, config_name="evaluate", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> float:
    report = evaluate(cfg, hydra_output_dir() or Path.cwd(), list(HydraConfig.get().overrides.task))
    return float(report["metrics"]["seq_accuracy"])


if __name__ == "__main__":
    main()
