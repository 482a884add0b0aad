"""What a run writes to TensorBoard (runner/training/tensorboard.py)."""

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.training import tensorboard


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(tensorboard.tensorboard_dir(run_dir)), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_epoch_scalars_are_the_split_metrics_lr_and_epoch(tmp_path):
    writer = tensorboard.open_writer(tmp_path)
    stats = {"epoch": 1, "train/loss": 0.5, "val/seq_accuracy": 0.25, "lr": 1e-3, "epoch_time_s": 9.0}
    tensorboard.log_epoch(writer, 7, stats)
    tensorboard.log_step(writer, 7, loss=0.4, grad_norm=2.0, lr=1e-3, batch_size=32, step_time=0.5)
    writer.close()
    logged = events(tmp_path)
    assert sorted(logged.Tags()["scalars"]) == ["epoch/epoch", "epoch/lr", "train/grad_norm", "train/loss",
                                                "train/loss_step", "train/lr", "train/samples_per_s_step",
                                                "val/seq_accuracy"]
    assert [(e.step, e.value) for e in logged.Scalars("val/seq_accuracy")] == [(7, 0.25)]
    assert logged.Scalars("train/samples_per_s_step")[0].value == 64.0


def test_a_resumed_run_replaces_what_was_logged_after_its_checkpoint(tmp_path):
    first = tensorboard.open_writer(tmp_path)
    for step in range(1, 6):
        first.add_scalar("train/loss", float(step), step)
    first.close()
    resumed = tensorboard.open_writer(tmp_path, purge_step=3)  # the checkpoint was written at step 3
    resumed.add_scalar("train/loss", 30.0, 3)
    resumed.close()
    assert [(e.step, e.value) for e in events(tmp_path).Scalars("train/loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_validation_figures(tmp_path):
    writer = tensorboard.open_writer(tmp_path)
    confusion = np.eye(11, dtype=np.int64)
    tensorboard.log_validation_figures(writer, 2, confusion, 11, [torch.rand(1, 32, 128)], ["១"], ["២"])
    tensorboard.log_validation_figures(writer, 3, confusion, 11, [], [], [])  # no images: the matrix alone
    writer.close()
    images = events(tmp_path)
    assert [e.step for e in images.Images("val/confusion_matrix")] == [2, 3]
    assert [e.step for e in images.Images("val/examples")] == [2]
