"""`python -m runner.export checkpoint=PATH format=onnx|torchscript output=FILE`: ship a model.

Writes the model and FILE.json (model name/head/config, charset, preprocessing size, max_length,
source checkpoint, git commit); ONNX also embeds that JSON in its metadata_props, so `runner.predict
checkpoint=FILE.onnx` works with or without the sidecar. The export is then checked on rendered
images: decoded texts must equal the checkpoint's and logits must agree within `atol`, else it fails.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.export")  # before hydra and torch: a base install gets the pip command, not a traceback

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from runner.cli import CONFIG_PATH, entry_point
from runner.data.generate import resolve_path
from runner.errors import ConfigError, require
from runner.inference.config import register_inference_configs
from runner.inference.export import check_parity, export_onnx, export_torchscript, rendered_images
from runner.inference.metadata import sidecar_path, write_sidecar
from runner.inference.predictors import (OnnxPredictor, TorchPredictor, TorchScriptPredictor, load_predictor,
                                         predictor_files)
from runner.outputs import atomic_path, check_output

log = logging.getLogger("runner.export")
register_inference_configs()
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


def export(cfg: DictConfig) -> Path:
    """Export cfg.checkpoint, check parity, write the sidecar; returns the exported file."""
    require(cfg.parity_images > 0, "parity_images", "must be > 0", cfg.parity_images)
    predictor = load_predictor(cfg.checkpoint, device="cpu")
    if not isinstance(predictor, TorchPredictor):
        raise ConfigError(f"checkpoint={cfg.checkpoint} is already an exported model; export from the .pt "
                          f"checkpoint or run dir it came from.")
    output = resolve_path(cfg.output) if cfg.output else predictor.source.with_suffix(SUFFIXES[cfg.format])
    for path in (output, sidecar_path(output)):
        check_output(path, "output", overwrite=cfg.overwrite, sources=predictor_files(predictor))
    log.info("exporting %s (%s) to %s", predictor.source, predictor.name, output)
    # both files appear only once the export has read rendered images exactly like the checkpoint
    with atomic_path(output) as model_file, atomic_path(sidecar_path(output)) as sidecar_file:
        if cfg.format == "onnx":
            export_onnx(predictor, model_file, dynamo=cfg.dynamo, opset=cfg.opset)
            exported = OnnxPredictor(model_file, predictor.metadata)
        else:
            export_torchscript(predictor, model_file)
            exported = TorchScriptPredictor(model_file, predictor.metadata)
        images, _ = rendered_images(cfg.parity_images, predictor.height, predictor.width, predictor.max_length,
                                    cfg.seed, text_crop=predictor.text_crop)
        report = check_parity(predictor, exported, images, cfg.atol)
        write_sidecar(sidecar_file, output.name, predictor.metadata, cfg.format)
    sidecar = sidecar_path(output)
    print(f"parity ({exported.kind} vs pytorch): {report.images} rendered images, identical texts, "
          f"max abs logit difference {report.max_abs_diff:.2e}")
    print(f"model:    {output}\nmetadata: {sidecar}")
    return output


@hydra.main(config_path=CONFIG_PATH, config_name="export", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> str:
    return str(export(cfg))


if __name__ == "__main__":
    main()
