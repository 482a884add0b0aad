"""Export: a checkpoint's model as ONNX or TorchScript, and the parity check an export must pass."""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch
from PIL import Image

from runner.data.config import AugmentConfig, DataConfig
from runner.data.generate import data_fonts
from runner.data.preprocess import CROP_MULTIPLE, MIN_CROP_WIDTH, content_width, preprocess_image
from runner.data.render import render_sample, sample_key
from runner.errors import UserError
from runner.inference.metadata import METADATA_KEY

if TYPE_CHECKING:  # predictors import quiet_exporter from here
    from runner.inference.predictors import Predictor, TorchPredictor

log = logging.getLogger("runner.inference")


class ExportError(UserError):
    """An exported model that does not reproduce its checkpoint."""


def render_images(count: int, max_length: int = 8, seed: int = 0,
                  augment: Optional[AugmentConfig] = None) -> list[tuple[Image.Image, str]]:
    """`count` freshly rendered (image, label) pairs, drawn like the training data (light augmentation)."""
    fonts = data_fonts(DataConfig())
    augment = augment or AugmentConfig()
    samples = []
    for index in range(count):
        image, spec = render_sample(sample_key(seed, "inference_check", index), fonts, augment, 1, max_length)
        samples.append((image, spec.text))
    return samples


def rendered_images(count: int, height: int, width: int, max_length: int, seed: int = 0,
                    augment: Optional[AugmentConfig] = None, text_crop: bool = False) -> tuple[torch.Tensor, list[str]]:
    """`count` rendered samples preprocessed to [count, 1, height, width], and their labels."""
    samples = render_images(count, max_length, seed, augment)
    return (torch.stack([preprocess_image(image, height, width, text_crop) for image, _ in samples]),
            [text for _, text in samples])


@dataclass
class ParityReport:
    images: int
    max_abs_diff: float
    mismatches: list[tuple[int, str, str]]  # (image index, reference text, exported text)


def parity_batches(images: torch.Tensor, bucketing: bool, group: int = 8) -> list[torch.Tensor]:
    """[B, 1, H, W] images as parity-check batches: all at once and, for a cropping model, also in
    groups of `group` sorted by text width, so the export is checked at several batch widths."""
    if not bucketing or len(images) <= group:
        return [images]
    order = sorted(range(len(images)), key=lambda i: content_width(images[i], multiple=1, min_width=1))
    return [images] + [images[order[start:start + group]] for start in range(0, len(order), group)]


def check_parity(reference: Predictor, exported: Predictor, images: torch.Tensor, atol: float = 1e-3) -> ParityReport:
    """Compare logits and decoded texts; ExportError if any text differs or logits drift beyond `atol`."""
    difference, texts_reference, texts_exported = 0.0, [], []
    for batch in parity_batches(images, reference.bucketing):
        expected, actual = reference.logits(batch), exported.logits(batch)
        if expected.shape != actual.shape:
            raise ExportError(f"{exported.source} returns logits of shape {list(actual.shape)}, the checkpoint "
                              f"{list(expected.shape)}; the export is broken.")
        difference = max(difference, float((expected - actual).abs().max()))
        texts_reference += reference.predict(batch)[0]
        texts_exported += exported.predict(batch)[0]
    mismatches = [(i, a, b) for i, (a, b) in enumerate(zip(texts_reference, texts_exported)) if a != b]
    report = ParityReport(len(images), difference, mismatches)
    if mismatches or not difference <= atol:
        examples = ", ".join(f"image {i}: {a!r} vs {b!r}" for i, a, b in mismatches[:3]) or "texts equal"
        raise ExportError(f"{exported.source} ({exported.kind}) disagrees with {reference.source}: "
                          f"{len(mismatches)} of {len(images)} rendered images read differently ({examples}); max "
                          f"abs logit difference {difference:.3g} (tolerance {atol:g}). Nothing was written; try the "
                          f"other ONNX exporter (dynamo=true/false) or report the model.")
    return report


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporters' narration (every decomposition, folding pass, missing torchvision op);
    none of it is actionable, and the parity check is what tells whether the export is right."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir", "torch.export")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _onnx_export_kwargs(dynamo: bool, ctc: bool, opset: Optional[int]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"input_names": ["images"], "output_names": ["logits"], "verbose": False, "dynamo": dynamo}
    if opset is not None:
        kwargs["opset_version"] = opset
    if dynamo:
        # one self-contained file, not model.onnx + model.onnx.data: the weights are small enough to embed
        columns = torch.export.Dim("columns", min=MIN_CROP_WIDTH // CROP_MULTIPLE, max=65536)
        kwargs.update(dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536), 3: CROP_MULTIPLE * columns},),
                      external_data=False)
    else:
        kwargs["dynamic_axes"] = {"images": {0: "batch", 3: "width"},
                                  "logits": {0: "batch", 1: "steps"} if ctc else {0: "batch"}}
    return kwargs


def export_onnx(predictor: TorchPredictor, output: Path, dynamo: bool = True, opset: Optional[int] = None) -> Path:
    """Write `predictor`'s model as ONNX with dynamic batch and width axes and its metadata embedded.

    The width is dynamic (a multiple of 4) so a cropping model reads cropped batches; CTC logits
    then have one step per 4 columns.
    """
    import onnx

    model = predictor.model.cpu().eval()
    example = torch.zeros(2, 1, predictor.height, predictor.width)
    output.parent.mkdir(parents=True, exist_ok=True)
    ctc = predictor.head == "ctc"
    with quiet_exporter():
        if dynamo:
            try:
                torch.onnx.export(model, (example,), str(output), **_onnx_export_kwargs(True, ctc, opset))
            except Exception as error:  # torch.export is young: fall back to the mature exporter, parity-checked too
                lines = str(error).strip().splitlines() or [type(error).__name__]
                reason = next((line for line in lines if line.startswith("<class")), lines[0])  # its summary line
                log.warning("the dynamo ONNX exporter failed on %s (%s); exporting with the TorchScript-based exporter "
                            "instead (dynamo=false)", predictor.name, reason[:200])
                dynamo = False
        if not dynamo:
            torch.onnx.export(model, (example,), str(output), **_onnx_export_kwargs(False, ctc, opset))
    graph = onnx.load(str(output))
    if ctc:  # the dynamo exporter declares the example's step count; ONNX Runtime would warn on every other width
        graph.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "steps"
        del graph.graph.value_info[:]  # optional shape hints, some with that count; ONNX Runtime infers its own
    graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(predictor.metadata, ensure_ascii=False))
    graph.producer_name = "khmer-digits-ocr"
    onnx.save(graph, str(output))
    predictor.model.to(predictor.device)
    return output


def export_torchscript(predictor: TorchPredictor, output: Path) -> Path:
    """Trace the inference forward (fixed-length greedy loop) with the metadata as an extra file."""
    model = predictor.model.cpu().eval()
    example = torch.zeros(2, 1, predictor.height, predictor.width)
    output.parent.mkdir(parents=True, exist_ok=True)
    with quiet_exporter(), torch.no_grad():  # also hides torch.jit's deprecation notices
        traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(output), _extra_files={f"{METADATA_KEY}.json": json.dumps(predictor.metadata)})
    predictor.model.to(predictor.device)
    return output
