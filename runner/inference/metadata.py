"""The metadata that travels with an exported model: built from a checkpoint, written beside it, read back."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from runner import __version__
from runner.charset import check_charset
from runner.errors import CheckpointError
from runner.stored import FORMAT_VERSION, NotPlainData, check_plain_data, upgrade
from runner.training.checkpoint import check_stored_layout, git_commit, stored_model_options

log = logging.getLogger("runner.inference")

EXPORT_FORMAT = "khmer-digits-ocr.export"
METADATA_KEY = "khmer_digits_ocr"  # ONNX metadata_props key / TorchScript extra file holding the sidecar JSON


def checkpoint_metadata(payload: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """What travels with an exported model (the sidecar JSON): enough to preprocess, decode and trace it.

    `payload` is a loaded checkpoint, already brought to the current format by load_checkpoint."""
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
    """The sidecar JSON of an exported model, else the copy embedded in the ONNX file. CheckpointError if neither."""
    sidecar = sidecar_path(path)
    source = str(sidecar)
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8")
    else:
        import onnx

        try:
            props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
        except Exception as error:
            raise CheckpointError(f"{path} is not a readable ONNX file ({str(error).splitlines()[0]}); "
                                  f"re-export it with `python -m runner.export`.") from error
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
    check_charset(metadata.get("charset"), source)
    check_stored_layout(metadata, source)
    stored_length = stored_model_options(metadata["model"], source)[1]["max_length"]
    if type(metadata.get("max_length")) is not int or metadata["max_length"] != stored_length:
        raise CheckpointError(f"{source}: max_length is {metadata.get('max_length')!r} but model.config says "
                              f"{stored_length!r}; the file was edited or is damaged. Re-export the model.")
    try:
        check_plain_data(metadata.get("training") or {}, "training")
    except NotPlainData as error:
        raise CheckpointError(f"{source}: {error}. Re-export the model from its checkpoint.") from error
    return metadata


def write_sidecar(path: Path, model_file: str, metadata: dict[str, Any], format: str) -> Path:
    """The JSON beside an exported model (`model_file`, its name in the same folder)."""
    content = {**metadata, "export": {"format": format, "file": model_file,
                                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "torch_version": str(torch.__version__)}}
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
