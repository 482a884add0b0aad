"""The metadata that travels with an exported model: built from a checkpoint, written beside it, read back.

Reading needs no torch (the ONNX path imports this module); building it from a checkpoint and writing it import
the training stack when called, as only an export does.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner import __version__
from runner.charset import charset_from_stored
from runner.errors import CheckpointError
from runner.stored import (FORMAT_VERSION, NotPlainData, check_plain_data, check_stored_layout, check_unbuilt_model,
                           upgrade)

log = logging.getLogger("runner.inference")

EXPORT_FORMAT = "khmer-digits-ocr.export"
METADATA_KEY = "khmer_digits_ocr"  # ONNX metadata_props key / TorchScript extra file holding the sidecar JSON


def checkpoint_metadata(payload: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """What travels with an exported model (the sidecar JSON): enough to preprocess, decode and trace it.

    `payload` is a loaded checkpoint, already brought to the current format by load_checkpoint."""
    from omegaconf import OmegaConf

    from runner.training.checkpoint import git_commit

    model = payload["model"]
    training: dict[str, Any] = {}
    if payload.get("config_yaml"):
        try:
            trained = OmegaConf.to_container(OmegaConf.create(payload["config_yaml"]), resolve=False)
            training = {"seed": trained.get("seed"), "data": trained.get("data")}
            check_plain_data(training, "config_yaml")
            if not isinstance(training["seed"], (int, type(None))) or \
                    not isinstance(training["data"], (dict, type(None))):
                raise NotPlainData("config_yaml has a seed that is not an integer or data that is not a mapping")
        except Exception as error:  # a hand-edited or foreign config must not block inference
            log.warning("%s: its stored training config cannot be used (%s); ignoring it", source, error)
            training = {}
    return {
        "format": EXPORT_FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": model["name"], "head": model["head"], "config": model["config"]},
        "charset": payload["charset"],
        "calibration": payload["calibration"],
        "preprocess": {key: payload["preprocess"][key] for key in ("height", "width", "bucketing", "text_crop")},
        "max_length": int(model["config"]["max_length"]),
        "source_checkpoint": str(source),
        "checkpoint_epoch": payload["epoch"],
        "checkpoint_metrics": payload["metrics"],
        "checkpoint_git_commit": payload["git_commit"],
        "git_commit": git_commit(),
        "runner_version": __version__,
        "training": training,
    }


def sidecar_path(model_path: str | Path) -> Path:
    """model.onnx -> model.onnx.json"""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def read_export_metadata(path: Path) -> dict[str, Any]:
    """The sidecar JSON of an exported model, else the copy embedded in the ONNX file (read with ONNX Runtime,
    so the `onnx` package is not needed). CheckpointError if neither, or if it fails a check."""
    sidecar = sidecar_path(path)
    source = str(sidecar)
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8")
    else:
        props = _embedded_metadata(path, sidecar)
        if METADATA_KEY not in props:
            raise CheckpointError(f"{path} has no {sidecar.name} beside it and no '{METADATA_KEY}' metadata inside, so "
                                  f"its preprocessing and decoding are unknown; export it with `python -m runner.export` "
                                  f"(which writes both).")
        text, source = props[METADATA_KEY], f"{path} (embedded metadata)"
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source} is not valid JSON ({error}); re-export the model.") from error
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{source} is not khmer-digits-ocr export metadata (no '{EXPORT_FORMAT}' marker).")
    upgrade(metadata, source, unversioned=1)  # sidecars before versioning had the v1 layout
    charset_from_stored(metadata.get("charset"), source)  # a vocabulary this runner knows, else CheckpointError
    check_stored_layout(metadata, source)
    check_unbuilt_model(metadata, source)  # no model is built from an export: its graph is what runs
    try:
        check_plain_data(metadata.get("training") or {}, "training")
    except NotPlainData as error:
        raise CheckpointError(f"{source}: {error}. Re-export the model from its checkpoint.") from error
    return metadata


def _embedded_metadata(path: Path, sidecar: Path) -> dict[str, str]:
    """The metadata_props of an ONNX file, as ONNX Runtime reads them."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise CheckpointError(f"{path} has no {sidecar.name} beside it and no '{METADATA_KEY}' metadata inside that "
                              f"ONNX Runtime can read ({str(error).splitlines()[0]}); it is not a valid ONNX model. "
                              f"Export one with `python -m runner.export` (which writes both).") from error
    return dict(session.get_modelmeta().custom_metadata_map)


def write_sidecar(path: Path, model_file: str, metadata: dict[str, Any], format: str) -> Path:
    """The JSON beside an exported model (`model_file`, its name in the same folder)."""
    import torch

    content = {**metadata, "export": {"format": format, "file": model_file,
                                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "torch_version": str(torch.__version__)}}
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
