"""Clean stops (runner/training/guards.py): SIGINT/SIGTERM, NaN/Inf losses, out of memory."""

import os
import re
import signal

import pytest
import torch

from runner.errors import UserError, format_user_error
from runner.training.checkpoint import load_checkpoint
from runner.training.guards import (NonFiniteLossError, NonFiniteLosses, OutOfMemory, StopSignals,
                                    TrainingInterrupted)
from training.helpers import make_trainer, replace_training_loss


def test_sigterm_mid_epoch_saves_the_state_and_says_how_to_resume(tmp_path):
    trainer = make_trainer(tmp_path)

    def terminate_during_batch_5(loss, n):  # batch 2 of epoch 2
        if n == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    replace_training_loss(trainer, terminate_during_batch_5)
    with pytest.raises(TrainingInterrupted) as interrupted:
        trainer.train()
    message = str(interrupted.value)
    last = tmp_path / "checkpoints" / "last.pt"
    assert interrupted.value.exit_code == 130
    assert "SIGTERM during epoch 2 after batch 2" in message
    assert f"resume={last} hydra.run.dir={tmp_path}" in message
    saved = load_checkpoint(last)
    assert saved["epoch"] == 1 and saved["training_state"]["step_in_epoch"] == 2
    assert saved["training_state"]["partial_epoch"]["batches"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_second_signal_stops_at_once():
    before = signal.getsignal(signal.SIGINT)
    stop = StopSignals()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.received == signal.SIGINT  # the first one only asks
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is before


def test_only_non_finite_losses_in_a_row_count_toward_the_limit(tmp_path):
    guard = NonFiniteLosses(limit=2, checkpoints=tmp_path)
    nan = torch.tensor(float("nan"))
    guard.skipped(nan, epoch=1, batch=0)
    guard.finite()
    guard.skipped(nan, epoch=1, batch=2)
    with pytest.raises(NonFiniteLossError, match=f"2 consecutive batches .* kept in {re.escape(str(tmp_path))}"):
        guard.skipped(nan, epoch=1, batch=3)


def test_nan_and_inf_batches_are_skipped_with_a_warning(tmp_path, caplog):
    trainer = make_trainer(tmp_path, "trainer.max_epochs=1")
    poison = {1: float("nan"), 2: float("inf")}
    replace_training_loss(trainer, lambda loss, n: loss * poison[n] if n in poison else loss)
    results = trainer.train()
    assert results["history"][0]["train/nan_batches"] == 2
    assert "non-finite loss (nan) at epoch 1 batch 0: batch skipped" in caplog.text
    assert "non-finite loss (inf) at epoch 1 batch 1" in caplog.text
    weights = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["state_dict"].values()
    assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())


def test_repeated_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    make_trainer(tmp_path, "trainer.max_time_minutes=1e-6").train()  # stops after epoch 1 with last.pt
    last = tmp_path / "checkpoints" / "last.pt"
    before = last.read_bytes()
    trainer = make_trainer(tmp_path, "resume=auto", "trainer.max_nan_batches=2")
    replace_training_loss(trainer, lambda loss, n: loss * float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"2 consecutive batches had a NaN/Inf loss at epoch 2.*last good "
                                                 r"checkpoint is kept"):
        trainer.train()
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]


def test_out_of_memory_becomes_one_paragraph_naming_the_knobs(tmp_path):
    trainer = make_trainer(tmp_path, "trainer.accumulate_grad_batches=2")

    def out_of_memory(*_args, **_kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total)")

    trainer.model.forward = out_of_memory
    with pytest.raises(OutOfMemory) as raised:
        trainer.train()
    assert isinstance(raised.value, UserError)
    message = " ".join(format_user_error(raised.value).split())
    for knob in ("data.batch_size=4", "trainer.accumulate_grad_batches=2", "device.amp=off",
                 "data.batch_size=2 trainer.accumulate_grad_batches=4 keeps the effective batch of 8",
                 "resume=auto", "Tried to allocate 2.00 GiB"):
        assert knob in message, knob
    assert not (tmp_path / "checkpoints" / "last.pt").exists()
