"""End-to-end training on tiny data (debug=fast) and the trainer's contracts."""

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.config import compose_config
from runner.device import cpu_bf16_support
from runner.models import create_model
from runner.train import train
from runner.training import OCRTrainer
from runner.training.base_trainer import TrainingInterrupted
from runner.training.checkpoint import load_checkpoint, load_model

PRESETS = ["small", "medium", "large", "ctc_small", "ctc_medium"]


def run(tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_config("train", ["debug=fast", f"paths.output_root={tmp_path}", *overrides])
    return train(cfg)


def scalars(run_dir: Path) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize("preset", PRESETS)
def test_fast_run_per_preset_writes_layout_checkpoints_and_tensorboard(preset, tmp_path):
    results = run(tmp_path, f"model={preset}")
    out = Path(results["paths"]["output_dir"])
    for name in ("checkpoints/best.pt", "checkpoints/last.pt", "metrics.json", "confusion_matrix.png", "errors.md"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1 and "val/seq_accuracy" in metrics["final_metrics"]
    assert {"train_s", "final_eval_s"} <= set(metrics["timings"])

    model, payload = load_model(out)  # a run dir loads its best checkpoint
    assert payload["model"]["name"] == preset and payload["preprocess"] == {"height": 32, "width": 128, "crop": True,
                                                                               "text_crop": True}
    assert len(model.predict(torch.rand(2, 1, 32, 128))) == 2
    assert load_checkpoint(out / "checkpoints" / "last.pt")["training_state"]["optimizer"]["state"]

    logged = scalars(out)
    for tag in ("train/loss", "val/loss", "val/seq_accuracy", "val/char_accuracy", "val/cer", "train/lr",
                "train/grad_norm", "train/samples_per_s", "hparams/seq_accuracy"):
        assert tag in logged, f"{tag} missing from TensorBoard ({sorted(logged)})"
    assert all(math.isfinite(v) for v in logged["train/loss_step"])


def _comparable(history):
    return [{k: v for k, v in row.items() if "time" not in k and "samples_per_s" not in k and "data_wait" not in k}
            for row in history]


def test_resume_gives_identical_weights_and_metrics(tmp_path):
    common = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "model=ctc_small",
              "trainer.early_stopping.restore_best_weights=false"]
    straight = run(tmp_path / "straight", *common)
    # the same run, stopped by SIGTERM at the end of epoch 1's training, then resumed from its last.pt
    stop_after_step = OCRTrainer._optimizer_step

    def terminate_after_step_3(self):
        norm = stop_after_step(self)
        if self.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return norm

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OCRTrainer, "_optimizer_step", terminate_after_step_3)
        with pytest.raises(TrainingInterrupted):
            run(tmp_path / "split", *common)
    (last,) = (tmp_path / "split").glob("**/checkpoints/last.pt")
    assert load_checkpoint(last)["global_step"] == 3
    resumed = run(tmp_path / "split", *common, f"resume={last}")
    assert resumed["epochs_completed"] == 2

    a = load_checkpoint(straight["paths"]["last_checkpoint"])
    b = load_checkpoint(resumed["paths"]["last_checkpoint"])
    assert a["global_step"] == b["global_step"] == 6
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
    assert _comparable(straight["history"]) == _comparable(resumed["history"])
    assert straight["final_metrics"] == resumed["final_metrics"]


def test_early_stopping_restores_best_weights(tmp_path):
    # monitoring val/loss in "max" mode: a falling loss never improves, so epoch 1 stays best
    results = run(tmp_path, "trainer.max_epochs=4", "trainer.monitor=val/loss", "trainer.mode=max",
                  "trainer.early_stopping.patience=0", "model=ctc_small")
    assert results["epochs_completed"] == 2 and results["best_epoch"] == 1
    assert results["stop_reason"].startswith("early stopping")
    assert results["best_weights_restored"]
    best = load_checkpoint(results["paths"]["best_checkpoint"])
    assert best["epoch"] == 1
    assert results["final_metrics"]["val/loss"] == pytest.approx(results["history"][0]["val/loss"], rel=1e-4)


@pytest.mark.skipif(not cpu_bf16_support().native, reason=f"no native bf16 here: {cpu_bf16_support().reason}")
def test_bf16_autocast_path_on_cpu(tmp_path):
    results = run(tmp_path, "device=cpu", "device.amp=bf16", "model=small")
    assert math.isfinite(results["history"][0]["train/loss"])


class _Linear(torch.nn.Module):
    """A BatchNorm- and dropout-free CTC model, so accumulation can be compared exactly."""

    head, name, max_length = "ctc", "linear", 4

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(32, 14)

    def forward(self, images, targets=None):
        columns = images.mean(dim=2).transpose(1, 2).repeat(1, 1, 32)  # [B, W, 32]
        return self.proj(columns)

    def decode_logits(self, logits):
        return create_model("ctc_small").decode_logits(logits)

    def config_dict(self):
        return {"_target_": "tests.test_trainer._Linear"}


def _batches(n, size):
    generator = torch.Generator().manual_seed(1)
    for _ in range(n):
        targets = torch.full((size, 6), 0)
        targets[:, 0], targets[:, 1:4], targets[:, 4] = 1, torch.randint(4, 14, (size, 3), generator=generator), 2
        yield {"images": torch.rand(size, 1, 32, 16, generator=generator), "targets": targets,
               "target_lengths": torch.full((size,), 3), "texts": [""] * size, "paths": [""] * size}


@pytest.mark.parametrize("accumulate", [2, 4])
def test_accumulation_matches_one_big_batch(accumulate, tmp_path):
    big = list(_batches(1, 8))
    small = [{k: (v[i * (8 // accumulate):(i + 1) * (8 // accumulate)]) for k, v in big[0].items()}
             for i in range(accumulate)]
    weights = []
    for batches, k in ((big, 1), (small, accumulate)):
        cfg = compose_config("train", ["model=ctc_small", "scheduler=steplr", "optimizer=sgd", "optimizer.momentum=0", "optimizer.nesterov=false",
                                       "optimizer.weight_decay=0", f"trainer.accumulate_grad_batches={k}",
                                       "device=cpu", "device.amp=off", "trainer.grad_clip_norm=null"])
        trainer = OCRTrainer(_Linear(), batches, batches, cfg, "cpu", output_dir=tmp_path)
        trainer._train_epoch()
        assert trainer.global_step == 1
        weights.append(trainer.raw_model.proj.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_scheduler_steps_per_optimizer_step(tmp_path):
    results = run(tmp_path, "trainer.max_epochs=2", "trainer.limit_train_batches=3", "model=ctc_small",
                  "scheduler=onecycle")
    checkpoint = load_checkpoint(results["paths"]["last_checkpoint"])
    assert checkpoint["training_state"]["scheduler"]["last_epoch"] == results["global_step"] == 6
    lrs = [row["lr"] for row in results["history"]]
    assert lrs[1] < lrs[0]
