"""`python -m runner.predict checkpoint=PATH inputs=PATH_OR_DIR_OR_GLOB_OR_@LIST_OR_- [output=FILE]`: read images.

Writes the predictions (format=tsv or csv: a `path, text, value, confidence, char_confidences` header row,
then a row per image; format=jsonl: one object per image; see runner/inference/formats.py) to `output` (renamed into place once complete; an existing file is
replaced only with overwrite=true), or to stdout, which then carries nothing else: logs and progress go to
stderr. Nothing else is written unless save_run=true, which keeps a run dir
(outputs/predict/<date>/<time>-<id>/: .hydra/, predict.log, job_status.json). A file that cannot be
read is warned about and gets an empty prediction; the command then exits with status 1 after writing
every other row.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.predict")  # before hydra and torch: a base install gets the pip command, not a traceback

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator, Optional, TextIO

import hydra
from omegaconf import DictConfig

from runner.cli import CONFIG_PATH, entry_point
from runner.data.generate import resolve_path
from runner.inference.config import check_inference_config, register_inference_configs
from runner.inference.files import (
    PredictionFailures,
    discover_images,
    list_file,
    predict_files,
)
from runner.inference.formats import PredictionWriter
from runner.inference.predictors import load_predictor, predictor_files
from runner.outputs import atomic_path, check_output
from runner.schema import model_path

log = logging.getLogger("runner.predict")
register_inference_configs()


def predict(cfg: DictConfig) -> int:
    """Predict every image of cfg.inputs; returns the number of images read."""
    check_inference_config(cfg)
    images = discover_images(cfg.inputs)
    predictor = load_predictor(model_path(cfg.checkpoint), cfg.device, cfg.num_threads)
    listed = list_file(cfg.inputs)
    read = [image.path for image in images] + ([listed] if listed is not None else [])
    output = check_output(resolve_path(cfg.output), "output", overwrite=cfg.overwrite, inputs=read,
                          sources=predictor_files(predictor)) if cfg.output else None
    log.info("reading %d images with %s (%s, %s)", len(images), predictor.source, predictor.name, predictor.kind)
    failed = []
    with _destination(output) as handle:
        writer = PredictionWriter(handle, cfg.format)
        for prediction in predict_files(predictor, images, cfg.batch_size):
            writer.write(prediction)
            if prediction.error:
                failed.append(prediction.name)
    if output is not None:
        log.info("wrote %d predictions to %s", len(images), output)
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise PredictionFailures(f"{len(failed)} of {len(images)} input files could not be read as images ({shown}); "
                                 f"their rows have an empty prediction and the other {len(images) - len(failed)} "
                                 f"were written to {output or 'stdout'}. Replace or remove those files.")
    return len(images)


@contextlib.contextmanager
def _destination(output: Optional[Path]) -> Iterator[TextIO]:
    """stdout, or a text file renamed into place at `output` once complete."""
    if output is None:
        yield sys.stdout
        return
    with atomic_path(output) as temporary, open(temporary, "w", encoding="utf-8", newline="") as handle:
        yield handle


@hydra.main(config_path=CONFIG_PATH, config_name="predict", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> int:
    return predict(cfg)


if __name__ == "__main__":
    main()
