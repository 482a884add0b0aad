"""The training loop (runner/training/base_trainer.py): early stopping, mixed precision, accumulation, schedules."""

import math

import pytest
import torch

from runner.config import compose_config
from runner.device import cpu_bf16_support
from runner.models import create_model
from runner.training import OCRTrainer
from runner.training.checkpoint import load_checkpoint
from training.helpers import run


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
        return {"_target_": "tests.test_base_trainer._Linear"}


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


def test_a_trainer_built_in_python_checks_its_monitor_before_any_step(tmp_path):
    from runner.errors import ConfigError
    from training.helpers import make_trainer

    with pytest.raises(ConfigError, match="trainer.monitor must be one of val/seq_accuracy"):
        make_trainer(tmp_path, "trainer.monitor=val/bogus")
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
