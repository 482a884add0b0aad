"""`train(cfg)` end to end on tiny data (debug=fast): every preset writes a complete run dir."""

import json
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.training.checkpoint import load_checkpoint, load_model, run_checkpoint
from training.helpers import run

PRESETS = ["small", "medium", "large", "ctc_small", "ctc_medium"]


def scalars(run_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("preset", PRESETS)
def test_fast_run_per_preset_writes_layout_checkpoints_and_tensorboard(preset, tmp_path):
    results = run(tmp_path, f"model={preset}")
    out = Path(results["paths"]["output_dir"])
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.json", "confusion_matrix.png", "errors.md",
                 "curves.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and "val/seq_accuracy" in metrics["final_metrics"]
    assert {"train_s", "final_eval_s"} <= set(metrics["timings"])
    assert metrics["paths"]["best_checkpoint"] == str(run_checkpoint(out, "best"))
    assert metrics["paths"]["last_checkpoint"] == str(run_checkpoint(out, "last"))
    assert metrics["paths"]["curves"] == str(out / "curves.png")

    model, payload = load_model(out)  # a run dir loads its best checkpoint
    assert payload["model"]["name"] == preset and payload["preprocess"] == {"height": 32, "width": 128, "bucketing": True,
                                                                               "text_crop": True}
    assert len(model.predict(torch.rand(2, 1, 32, 128))) == 2
    assert load_checkpoint(out / "checkpoints" / "last.pt")["training_state"]["optimizer"]["state"]
    # the calibration fitted on every validation split's final pass travels with both checkpoints
    assert payload["calibration"] == metrics["calibration"] == load_checkpoint(out / "checkpoints" / "last.pt")[
        "calibration"]
    splits = {"val": metrics["final_metrics"], **metrics["extra_val_metrics"]}
    assert metrics["calibration"]["images"] == sum(row[f"{split}/images"] for split, row in splits.items())
    assert metrics["calibration"]["fitted_on"].split(" + ") == sorted(splits, key=list(splits).index)[1:] + ["val"]

    logged = scalars(out)
    for tag in ("train/loss", "val/loss", "val/seq_accuracy", "val/char_accuracy", "val/cer", "train/lr",
                "train/grad_norm", "train/images_per_s", "epoch/images_per_s", "hparams/seq_accuracy"):
        assert tag in logged, f"{tag} missing from TensorBoard ({sorted(logged)})"
    assert all(math.isfinite(v) for v in logged["train/loss_step"])
