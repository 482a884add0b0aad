"""Inference shared by `runner.evaluate`, `runner.predict`, `runner.export` and the benchmarks, one module a job.

    config        the three entry points' schemas and their value checks
    stored_model  what a stored model says about its input and output (size, crop, decoding, calibration)
    predictors    Predictor: a checkpoint, an ONNX or a TorchScript export read the same way; load_predictor
    onnx          an exported model run by ONNX Runtime on numpy arrays: the path that needs no torch
    metadata      what travels with an exported model (sidecar JSON / embedded copy)
    files         image discovery and prediction on files
    formats       predict's output rows: tsv, csv, jsonl
    evaluation    the data a model is scored on, the scoring pass and its report
    export        ONNX / TorchScript export and the parity check it must pass

The names below are re-exported so `from runner.inference import X` keeps working; they are imported on first
use (runner.lazy), so the ONNX path imports no torch. The project itself imports from the submodule that defines
each name.
"""

from runner.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "config": ("EvaluateConfig", "ExportConfig", "PredictConfig", "PredictFormat", "SPLITS", "check_inference_config",
               "register_inference_configs"),
    "evaluation": ("evaluate_dataset", "evaluation_data_config", "evaluation_dataset", "evaluation_seed",
                   "format_report_table", "metrics_report", "names_data_source", "override_keys", "write_evaluation"),
    "export": ("ExportError", "ParityReport", "check_parity", "export_onnx", "export_torchscript", "parity_batches",
               "quiet_exporter", "render_images", "rendered_images"),
    "files": ("ImageInput", "Prediction", "PredictionFailures", "discover_images", "image_suffixes", "list_file",
              "predict_files"),
    "formats": ("PredictionWriter",),
    "metadata": ("EXPORT_FORMAT", "METADATA_KEY", "checkpoint_metadata", "read_export_metadata", "sidecar_path",
                 "write_sidecar"),
    "onnx": ("OnnxModel",),
    "predictors": ("OnnxPredictor", "Predictor", "TorchPredictor", "TorchScriptPredictor", "load_predictor",
                   "predictor_files"),
})
