"""Inference shared by `runner.evaluate`, `runner.predict`, `runner.export` and the benchmarks, one module a job.

    config       the three entry points' schemas and their value checks
    predictors   Predictor: a checkpoint, an ONNX or a TorchScript export read the same way; load_predictor
    metadata     what travels with an exported model (sidecar JSON / embedded copy)
    files        image discovery and prediction on files
    formats      predict's output rows: tsv, csv, jsonl
    evaluation   the data a model is scored on, the scoring pass and its report
    export       ONNX / TorchScript export and the parity check it must pass

The names below are re-exported so `from runner.inference import X` keeps working; the project itself imports
from the submodule that defines each name.
"""

from runner.inference.config import (EvaluateConfig, ExportConfig, PredictConfig, PredictFormat, SPLITS,
                                     check_inference_config, register_inference_configs)
from runner.inference.evaluation import (evaluate_dataset, evaluation_data_config, evaluation_dataset,
                                         evaluation_seed, format_report_table, metrics_report, names_data_source,
                                         override_keys, write_evaluation)
from runner.inference.export import (ExportError, ParityReport, check_parity, export_onnx, export_torchscript,
                                     parity_batches, quiet_exporter, render_images, rendered_images)
from runner.inference.files import (ImageInput, Prediction, PredictionFailures, discover_images, image_suffixes,
                                    list_file, predict_files)
from runner.inference.formats import PredictionWriter
from runner.inference.metadata import (EXPORT_FORMAT, METADATA_KEY, checkpoint_metadata, read_export_metadata,
                                       sidecar_path, write_sidecar)
from runner.inference.predictors import (OnnxPredictor, Predictor, TorchPredictor, TorchScriptPredictor,
                                         load_predictor, predictor_files)

__all__ = [
    "EXPORT_FORMAT", "METADATA_KEY", "SPLITS", "EvaluateConfig", "ExportConfig", "ExportError", "ImageInput",
    "OnnxPredictor", "ParityReport", "PredictConfig", "PredictFormat", "Prediction", "PredictionFailures",
    "PredictionWriter", "Predictor",
    "TorchPredictor", "TorchScriptPredictor", "check_inference_config", "check_parity", "checkpoint_metadata",
    "discover_images", "evaluate_dataset", "evaluation_data_config", "evaluation_dataset", "evaluation_seed",
    "export_onnx", "export_torchscript", "format_report_table", "image_suffixes", "list_file", "load_predictor",
    "metrics_report", "names_data_source", "override_keys", "parity_batches", "predict_files", "predictor_files",
    "quiet_exporter", "read_export_metadata", "register_inference_configs", "render_images", "rendered_images",
    "sidecar_path", "write_evaluation", "write_sidecar",
]
