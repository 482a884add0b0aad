"""What a run writes to TensorBoard (runner/training/tensorboard.py)."""

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from runner.metrics import confusion_matrix_figure
from runner.training import tensorboard
from runner.training.plots import ShownExample, examples_figure
from training.helpers import make_trainer, synthetic_batches


def events(run_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(tensorboard.tensorboard_dir(run_dir)), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_epoch_scalars_are_the_split_metrics_lr_throughput_and_epoch(tmp_path):
    writer = tensorboard.open_writer(tmp_path)
    stats = {"epoch": 1, "train/loss": 0.5, "train/samples_per_s": 180.0, "val/seq_accuracy": 0.25, "lr": 1e-3,
             "epoch_time_s": 9.0}
    tensorboard.log_epoch(writer, 7, stats)
    tensorboard.log_step(writer, 7, loss=0.4, grad_norm=2.0, lr=1e-3, images=25 * 32, seconds=4.0)
    writer.close()
    logged = events(tmp_path)
    assert sorted(logged.Tags()["scalars"]) == ["epoch/epoch", "epoch/images_per_s", "epoch/lr", "train/grad_norm",
                                                "train/images_per_s", "train/loss", "train/loss_step", "train/lr",
                                                "val/seq_accuracy"]
    assert [(e.step, e.value) for e in logged.Scalars("val/seq_accuracy")] == [(7, 0.25)]
    assert logged.Scalars("train/images_per_s")[0].value == 200.0  # images since the last logged step / seconds
    assert logged.Scalars("epoch/images_per_s")[0].value == 180.0


def test_a_resumed_run_replaces_what_was_logged_after_its_checkpoint(tmp_path):
    first = tensorboard.open_writer(tmp_path)
    for step in range(1, 6):
        first.add_scalar("train/loss", float(step), step)
    first.close()
    resumed = tensorboard.open_writer(tmp_path, purge_step=3)  # the checkpoint was written at step 3
    resumed.add_scalar("train/loss", 30.0, 3)
    resumed.close()
    assert [(e.step, e.value) for e in events(tmp_path).Scalars("train/loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_validation_figures_are_the_annotated_confusion_matrix_and_the_examples(tmp_path):
    writer = tensorboard.open_writer(tmp_path)
    confusion = np.eye(11, dtype=np.int64)
    misread = ShownExample(torch.rand(1, 32, 128), "១", "២", 0.75)
    tensorboard.log_validation_figures(writer, 2, confusion, 11, [misread])
    tensorboard.log_validation_figures(writer, 3, confusion, 11, [])  # no images: the matrix alone
    writer.close()
    images = events(tmp_path)
    assert [e.step for e in images.Images("val/confusion_matrix")] == [2, 3]
    assert [e.step for e in images.Images("val/examples")] == [2]
    # the figure of runner.metrics (digit ticks, ∅ row and column, counts in the cells), not a second drawing
    annotated = confusion_matrix_figure(confusion, sequences=11)
    width, height = annotated.get_size_inches() * annotated.dpi
    logged = images.Images("val/confusion_matrix")[0]
    assert (logged.width, logged.height) == (round(width), round(height))


def test_a_validation_pass_shows_its_most_confident_misreads_first_then_correct_ones(tmp_path, monkeypatch):
    """Two batches of 4 with three misreads: TensorBoard shows those three, most confident first, then one correct
    image of each batch, each captioned truth, reading and confidence."""
    trainer = make_trainer(tmp_path, "trainer.num_image_samples=5")
    batches = synthetic_batches(2, seed=1)
    plan = [  # per batch, for each of its 4 images: what the model reads (None = the truth) and its confidence
        [(None, 0.99), ("០០០", 0.60), (None, 0.97), ("១", 0.90)],
        [(None, 0.98), (None, 0.99), (None, 0.95), ("៩៩", 0.95)],
    ]
    readings = iter([([truth if text is None else text for (text, _), truth in zip(reading, batch["texts"])],
                      [confidence for _, confidence in reading]) for batch, reading in zip(batches, plan)])
    shown = []

    def spy_figure(examples):
        shown.extend(examples)
        return examples_figure(examples)

    monkeypatch.setattr(trainer, "_decode_predictions", lambda logits, **options: next(readings))
    monkeypatch.setattr(tensorboard, "examples_figure", spy_figure)
    trainer.writer = tensorboard.open_writer(tmp_path)
    trainer._validate_epoch(batches, "val")
    trainer.writer.close()

    wanted = [(1, 3, "៩៩", 0.95), (0, 3, "១", 0.90), (0, 1, "០០០", 0.60),  # misreads, most confident first
              (0, 0, None, 0.99), (1, 0, None, 0.98)]  # then the first correct image of each batch
    assert [(e.prediction, e.confidence, e.correct) for e in shown] == [
        (text or batches[b]["texts"][i], confidence, text is None) for b, i, text, confidence in wanted]
    for example, (b, i, _, _) in zip(shown, wanted):
        assert example.truth == batches[b]["texts"][i]
        assert torch.equal(example.image, batches[b]["images"][i])
    assert shown[0].caption().startswith("truth ") and ", read 99 (0.95)" in shown[0].caption()
    assert shown[3].caption().startswith("correct: ")
    assert [e.step for e in events(tmp_path).Images("val/examples")] == [0]
