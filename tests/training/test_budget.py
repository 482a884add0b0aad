"""The time budget's plan (runner/training/budget.py): the LR schedule ends when the budget does."""

import itertools
import os
import signal

import pytest
import torch

from runner.training import base_trainer, schedulers
from runner.training.budget import SchedulePlan, StepSpeed, fit_plan, initial_plan, needs_refit, stop_reason
from runner.training.checkpoint import load_checkpoint
from runner.training.guards import TrainingInterrupted
from training.helpers import make_trainer, replace_training_loss

FINAL_LR = 2e-3 * 1e-3  # optimizer.lr x scheduler.min_lr_ratio: where one-cycle ends


class FakeClock:
    """The trainer's clock, advancing `tick` seconds at every reading: a machine of known, steady speed."""

    def __init__(self, tick: float = 0.02) -> None:
        self.tick, self.readings = tick, itertools.count()
        self.now = 0.0

    def __call__(self) -> float:
        next(self.readings)
        self.now += self.tick
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(base_trainer, "clock", clock)
    return clock


def test_without_a_budget_the_schedule_follows_the_optimizer_steps_exactly():
    plan = initial_plan(full_steps=120, budget_s=None, now_s=3.0, final_eval_s=10.0)
    assert [plan.schedule_step(step, now_s=1e9) for step in (0, 1, 77, 120)] == [0, 1, 77, 120]
    assert not plan.done(119, 1e9) and plan.deadline_s is None


def test_a_shorter_plan_walks_the_whole_schedule_and_ends_at_its_final_lr():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    scheduled = schedulers.onecycle(optimizer, epochs=10, steps_per_epoch=30, min_lr_ratio=1e-3)
    plan = SchedulePlan(full_steps=300, planned_steps=75, deadline_s=1e9, budget_s=1e9)
    lrs = []
    for step in range(1, 76):
        optimizer.step()
        scheduled.advance_to(plan.schedule_step(step, now_s=0.0))
        lrs.append(optimizer.param_groups[0]["lr"])
    assert plan.done(75, 0.0) and scheduled.position == 300
    assert lrs[-1] == pytest.approx(FINAL_LR, rel=1e-6)
    assert max(lrs) == pytest.approx(2e-3, rel=0.02)  # the warm-up peak is still on the way


def test_the_time_fraction_takes_over_when_the_machine_slows_down():
    plan = SchedulePlan(full_steps=1000, planned_steps=100, deadline_s=110.0, budget_s=120.0, train_start_s=10.0)
    assert plan.progress(50, now_s=60.0) == pytest.approx(0.5)  # on plan: both fractions agree
    assert plan.progress(20, now_s=60.0) == pytest.approx(0.5)  # half as fast: time leads
    assert plan.schedule_step(20, now_s=60.0) == 500
    assert not plan.done(60, 109.0) and plan.done(60, 110.0)  # the deadline ends the schedule at step 60


def test_fit_plan_fits_steps_validations_and_the_final_evaluation_into_the_budget():
    plan = initial_plan(full_steps=100_000, budget_s=600.0, now_s=100.0, final_eval_s=20.0)
    fitted = fit_plan(plan, budget_s=600.0, now_s=160.0, step=300, epochs_done=0, steps_per_epoch=1000,
                      step_s=0.2, val_epoch_s=4.0, final_eval_s=20.0)
    validations = -(-fitted.planned_steps // 1000)  # after every epoch the steps reach, the last one included
    finish = 160.0 + (fitted.planned_steps - 300) * 0.2 + validations * 4.0
    assert fitted.fitted and fitted.deadline_s == pytest.approx(600.0 - 20.0 - 5.0 - 4.0)
    end = fitted.deadline_s + fitted.val_s  # the last validation ends here; the final evaluation follows
    assert end - 0.04 * (end - 160.0) <= finish <= end
    # a fast machine keeps the configured length
    fast = fit_plan(plan, budget_s=600.0, now_s=160.0, step=300, epochs_done=0, steps_per_epoch=1000,
                    step_s=1e-4, val_epoch_s=0.1, final_eval_s=1.0)
    assert fast.planned_steps == 100_000
    assert needs_refit(plan, fitted) and not needs_refit(fitted, fitted)


def test_step_speed_skips_start_up_and_prefers_the_speed_since_the_last_plan():
    speed = StepSpeed(accumulate_grad_batches=2)
    for _ in range(10):  # SKIP_FIRST_STEPS x 2 batches of start-up
        speed.add(100.0)
    assert speed.step_seconds() is None
    for _ in range(60):
        speed.add(1.0)
    speed.restart_recent()
    for _ in range(60):
        speed.add(2.0)
    assert speed.step_seconds() == pytest.approx(4.0)  # 2 s a batch since the plan, 2 batches a step
    speed.restart_recent()
    speed.add(2.0)  # too few recent batches: the speed since start-up
    assert speed.step_seconds() == pytest.approx(2 * (60 * 1.0 + 61 * 2.0) / 121)


def test_the_stop_reason_says_whether_the_plan_or_the_deadline_ended_the_run():
    plan = SchedulePlan(full_steps=1000, planned_steps=400, deadline_s=100.0, budget_s=120.0)
    assert stop_reason(plan, 1000, 2) == "max_epochs"
    assert stop_reason(plan, 400, 2).startswith("time budget of 2 min: the planned 400 optimizer steps are done")
    assert stop_reason(plan, 250, 2).startswith("time budget of 2 min: the deadline came at step 250 of the planned 400")


def test_a_tiny_budget_ends_at_the_schedules_final_lr_and_stores_the_plan(tmp_path, fake_clock):
    trainer = make_trainer(tmp_path, "trainer.max_epochs=10000", "trainer.max_time_minutes=0.1",
                           "scheduler=onecycle", "trainer.early_stopping.enabled=false")
    results = trainer.train()
    assert results["stop_reason"].startswith("time budget of 0.1 min")
    assert 1 <= results["epochs_completed"] < 10000
    assert results["history"][-1]["lr"] == pytest.approx(FINAL_LR, rel=1e-6)
    assert trainer.scheduler.position == trainer.full_steps  # the whole configured curve, compressed
    stored = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["training_state"]["plan"]
    assert stored == trainer.plan.state_dict()  # the plan the run ended on
    assert stored["fitted"] and stored["budget_s"] == pytest.approx(6.0)
    assert results["global_step"] <= stored["planned_steps"] and stored["deadline_s"] < stored["budget_s"]


def test_a_run_that_slows_down_after_planning_still_ends_annealed(tmp_path, fake_clock):
    trainer = make_trainer(tmp_path, "trainer.max_epochs=10000", "trainer.max_time_minutes=0.1",
                           "scheduler=onecycle", "trainer.early_stopping.enabled=false")
    first_plan = []

    def slow_down_after_planning(loss, _n):
        if trainer.plan.fitted:
            first_plan[:] = first_plan or [trainer.plan.planned_steps]
            fake_clock.tick = 0.03  # the machine gets three times slower
        return loss

    replace_training_loss(trainer, slow_down_after_planning)
    results = trainer.train()
    assert results["history"][-1]["lr"] == pytest.approx(FINAL_LR, rel=1e-6)
    assert results["global_step"] < 0.8 * first_plan[0]  # fewer images than first planned, fully annealed
    assert results["stop_reason"].startswith("time budget")


def test_a_resumed_run_continues_the_stored_plan(tmp_path, fake_clock):
    trainer = make_trainer(tmp_path, "trainer.max_epochs=10000", "trainer.max_time_minutes=0.1",
                           "trainer.early_stopping.enabled=false")

    def terminate_once_planned(loss, _n):
        if trainer.plan.fitted and trainer.global_step > 20:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    replace_training_loss(trainer, terminate_once_planned)
    with pytest.raises(TrainingInterrupted):
        trainer.train()
    stored = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["training_state"]["plan"]
    resumed = make_trainer(tmp_path, "trainer.max_epochs=10000", "trainer.max_time_minutes=0.1",
                           "trainer.early_stopping.enabled=false", "resume=auto")
    resumed._maybe_resume()
    resumed._start_plan()
    assert resumed.plan.state_dict() == {**stored, "time_floor": True}
