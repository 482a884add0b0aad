"""Resume (runner/training/state.py): which checkpoint it reads, and that it puts every piece back exactly."""

import logging
import os
import random
import signal

import numpy as np
import pytest
import torch

from runner.data.datasets import LabeledFolderDataset
from runner.data.loaders import make_loader
from runner.errors import CheckpointError
from runner.training import OCRTrainer
from runner.training.checkpoint import atomic_save, load_checkpoint, run_checkpoint
from runner.training.guards import TrainingInterrupted
from runner.training.run_dir import RunDirInUse
from runner.training.state import resume_path, rng_state, set_rng_state
from training.helpers import (assert_same_final_state, bucketed_loaders, comparable, make_trainer,
                              replace_training_loss, run)


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
    assert comparable(straight["history"]) == comparable(resumed["history"])
    assert straight["final_metrics"] == resumed["final_metrics"]


def terminate_during_batch(trainer: OCRTrainer, number: int) -> None:
    """SIGTERM while the `number`-th training batch (from 1) computes its loss."""
    def terminate(loss, n):
        if n == number:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    replace_training_loss(trainer, terminate)


@pytest.mark.parametrize("data", ["batch lists", "width-bucketed image files"])
def test_a_mid_epoch_stop_resumes_to_the_end_of_a_straight_run(data, tmp_path):
    def loaders() -> tuple:  # fresh loaders for every trainer, as a new process would build them
        return bucketed_loaders(tmp_path / "images") if data == "width-bucketed image files" else ()

    straight = make_trainer(tmp_path / "straight", loaders=loaders()).train()
    trainer = make_trainer(tmp_path / "split", loaders=loaders())
    terminate_during_batch(trainer, 5)  # batch 2 of epoch 2
    with pytest.raises(TrainingInterrupted):
        trainer.train()
    last = tmp_path / "split" / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["training_state"]["step_in_epoch"] == 2

    resumed = make_trainer(tmp_path / "split", "resume=auto", loaders=loaders()).train()
    assert_same_final_state(tmp_path / "straight" / "checkpoints" / "last.pt", last)
    assert comparable(straight["history"]) == comparable(resumed["history"])
    assert straight["final_metrics"] == resumed["final_metrics"]


def test_a_mid_epoch_resume_on_other_batches_is_refused(tmp_path):
    train, val = bucketed_loaders(tmp_path / "images")
    trainer = make_trainer(tmp_path / "run", loaders=(train, val))
    terminate_during_batch(trainer, 2)
    with pytest.raises(TrainingInterrupted):
        trainer.train()
    other_batches = make_loader(LabeledFolderDataset(tmp_path / "images"), 3, shuffle=True, seed=1234, bucketing=True)
    with pytest.raises(CheckpointError, match="saved mid-epoch while training on other batches"):
        make_trainer(tmp_path / "run", "resume=auto", loaders=(other_batches, val)).train()


def test_resume_reads_the_last_checkpoint_of_a_run_dir(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="runner.trainer")
    run_dir = tmp_path / "run"
    assert resume_path(None, run_dir) is None
    assert resume_path("auto", run_dir) is None and "no checkpoint in" in caplog.text  # nothing yet: start fresh
    with pytest.raises(CheckpointError, match="is a directory without checkpoints/last.pt"):
        resume_path(str(tmp_path), run_dir)
    last = run_checkpoint(run_dir, "last")
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    run_checkpoint(run_dir, "best").write_bytes(b"")  # resume never takes best.pt (weights only)
    assert resume_path("auto", run_dir) == last
    assert resume_path(str(run_dir), tmp_path / "other") == last
    assert resume_path(str(last.parent), tmp_path / "other") == last  # the checkpoints folder itself
    with pytest.raises(RunDirInUse, match="a fresh run here would overwrite it"):
        resume_path(None, run_dir)


def test_a_weights_only_checkpoint_is_not_resumed(tmp_path):
    make_trainer(tmp_path / "run", "trainer.max_epochs=1").train()
    best = run_checkpoint(tmp_path / "run", "best")
    with pytest.raises(CheckpointError, match="holds weights only"):
        make_trainer(tmp_path / "other", f"resume={best}").train()
    last = load_checkpoint(run_checkpoint(tmp_path / "run", "last"))
    atomic_save({**last, "training_state": {**last["training_state"], "optimizer": "broken"}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="holds a damaged training state"):
        make_trainer(tmp_path / "third", f"resume={tmp_path / 'bad.pt'}").train()


def test_rng_state_survives_safe_loading_and_restores_every_generator(tmp_path):
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    np.random.randn()  # numpy now holds a cached gaussian, which is part of its state
    atomic_save({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), np.random.randn(), torch.rand(1).item())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), np.random.randn(), torch.rand(1).item()) == expected
