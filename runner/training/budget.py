"""The time budget's plan: how many optimizer steps the LR schedule spans, so it ends with the budget.

`trainer.max_time_minutes` is the whole job's wall-clock budget: data preparation, training and
the final evaluation. The schedule factories build a schedule for the configured length
(`max_epochs` x steps per epoch, `full_steps`); a `SchedulePlan` maps the run's progress onto it,
so a run planned for fewer steps walks the same curve faster and still ends at its final LR.

Progress is the larger of two fractions: steps done of the planned steps, and (with a budget)
training time used of the training time available. The plan fits its steps to the measured
speed with a margin, so the step fraction leads and the run is step-exact; the time fraction
only takes over when the machine slows down after planning, and then still ends the schedule at
the deadline.

When the plan is made: the configured length at the start; fitted to the measured speed after
`PLAN_AFTER_S` of training or at the end of the first epoch, whichever comes first; fitted again
at an epoch end only when the speed has drifted by more than `REPLAN_TOLERANCE`, so a machine
whose speed holds keeps one plan. The plan is part of the checkpoint: a resumed run continues it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

PLAN_AFTER_S = 60.0  # training seconds measured before the first fitted plan
REPLAN_TOLERANCE = 0.03  # refit when the fitted step count moves by more than this share
SKIP_FIRST_STEPS = 5  # one-off start-up costs (oneDNN primitive creation) stay out of the step rate
RECENT_BATCHES = 50  # a refit measures the speed since the last plan once it spans this many batches


@dataclass
class SchedulePlan:
    full_steps: int  # the configured schedule's length: max_epochs x optimizer steps per epoch
    planned_steps: int  # where this run's schedule ends (<= full_steps)
    deadline_s: Optional[float] = None  # job-clock second of the last optimizer step; None = no budget
    budget_s: Optional[float] = None  # trainer.max_time_minutes in seconds, for the whole job
    train_start_s: float = 0.0  # job-clock second training began
    fitted: bool = False  # planned_steps comes from measured speed (else: the configured length)
    val_s: float = 0.0  # seconds of one validation pass, which follows the last step
    time_floor: bool = True  # the time fraction may lead (off under DDP, where ranks' clocks differ)
    note: str = "no time budget: the schedule spans trainer.max_epochs"

    def progress(self, step: int, now_s: float) -> float:
        """0 at the first step, 1 when the schedule has reached its end."""
        fraction = step / max(1, self.planned_steps)
        if self.deadline_s is not None and self.time_floor:
            span = max(self.deadline_s - self.train_start_s, 1e-9)
            fraction = max(fraction, (now_s - self.train_start_s) / span)
        return min(1.0, fraction)

    def schedule_step(self, step: int, now_s: float) -> int:
        """The step of the full-length schedule that `step` optimizer steps of this plan correspond to."""
        if self.planned_steps == self.full_steps and self.deadline_s is None:
            return step
        return min(self.full_steps, round(self.progress(step, now_s) * self.full_steps))

    def done(self, step: int, now_s: float) -> bool:
        return self.progress(step, now_s) >= 1.0

    def past_deadline(self, now_s: float) -> bool:
        """Past the last step's deadline and the validation after it: stop even mid-plan."""
        return self.deadline_s is not None and now_s >= self.deadline_s + self.val_s

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "SchedulePlan":
        return cls(**{key: state[key] for key in cls.__dataclass_fields__ if key in state})


def initial_plan(full_steps: int, budget_s: Optional[float], now_s: float, final_eval_s: float) -> SchedulePlan:
    """The plan before any speed is measured: the configured length, and the deadline if there is a budget."""
    if budget_s is None:
        return SchedulePlan(full_steps, full_steps, train_start_s=now_s)
    deadline = _deadline(budget_s, final_eval_s)
    return SchedulePlan(full_steps, full_steps, deadline, budget_s, now_s,
                        note=f"budget {budget_s / 60:g} min: configured length until the speed is measured")


def _deadline(budget_s: float, final_eval_s: float) -> float:
    slack = min(5.0, 0.02 * budget_s)  # saving, reports, the interpreter's own exit
    return budget_s - final_eval_s - slack


def fit_plan(plan: SchedulePlan, *, budget_s: float, now_s: float, step: int, epochs_done: int,
             steps_per_epoch: int, step_s: float, val_epoch_s: float, final_eval_s: float) -> SchedulePlan:
    """The plan whose steps, validations and final evaluation fit the budget at the measured speed."""
    deadline = _deadline(budget_s, final_eval_s) - val_epoch_s  # the last epoch's validation follows the last step
    remaining = deadline - now_s
    margin = 0.03 * max(remaining, 0.0)  # the step fraction leads the time fraction by this much

    def seconds_to(total: int) -> float:  # training steps to `total`, and a validation after every epoch reached
        validations = max(0, math.ceil(total / steps_per_epoch) - epochs_done - 1)  # the last one is after deadline
        return (total - step) * step_s + validations * val_epoch_s

    low, high = step, plan.full_steps  # the most steps whose time fits: seconds_to only grows with the steps
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if seconds_to(middle) <= remaining - margin else (low, middle - 1)
    planned = max(step + 1, low)
    epochs = planned / steps_per_epoch
    note = (f"budget {budget_s / 60:g} min: {planned:,} of {plan.full_steps:,} optimizer steps ({epochs:.2f} epochs) at "
            f"{1 / max(step_s, 1e-9):.1f} steps/s, {val_epoch_s:.0f} s per validation, {final_eval_s:.0f} s final "
            f"evaluation; training ends by {deadline / 60:.1f} min")
    return SchedulePlan(plan.full_steps, planned, deadline, budget_s, plan.train_start_s, True, val_epoch_s,
                        plan.time_floor, note)


def stop_reason(plan: SchedulePlan, step: int, budget_minutes: float) -> str:
    """Why a run that ran out of its time budget's plan stopped at optimizer step `step`."""
    if step >= plan.full_steps:
        return "max_epochs"
    if step >= plan.planned_steps:
        return (f"time budget of {budget_minutes:g} min: the planned {plan.planned_steps:,} optimizer steps are done "
                f"and the LR schedule has reached its end")
    return (f"time budget of {budget_minutes:g} min: the deadline came at step {step:,} of the planned "
            f"{plan.planned_steps:,}; the LR schedule has reached its end")


class StepSpeed:
    """This process's training speed after start-up: over all batches, and since the last plan (the recent speed)."""

    def __init__(self, accumulate_grad_batches: int) -> None:
        self.accumulate = accumulate_grad_batches
        self.seen = 0  # batches timed, start-up included
        self.batches, self.seconds = 0, 0.0
        self.recent_batches, self.recent_seconds = 0, 0.0

    def add(self, batch_seconds: float) -> None:
        self.seen += 1
        if self.seen > SKIP_FIRST_STEPS * self.accumulate:
            self.batches += 1
            self.seconds += batch_seconds
            self.recent_batches += 1
            self.recent_seconds += batch_seconds

    def step_seconds(self) -> Optional[float]:
        """Seconds per optimizer step: since the last plan when that has enough batches (the speed drifts as
        oneDNN caches kernels for new widths, or as the machine's load changes), else since start-up."""
        recent = self.recent_batches >= RECENT_BATCHES
        batches, seconds = (self.recent_batches, self.recent_seconds) if recent else (self.batches, self.seconds)
        if batches == 0:
            return None
        return seconds / batches * self.accumulate

    def restart_recent(self) -> None:
        """A new plan was made: the recent speed counts from here."""
        self.recent_batches, self.recent_seconds = 0, 0.0


def needs_refit(plan: SchedulePlan, refit: SchedulePlan) -> bool:
    if not plan.fitted:
        return True
    return abs(refit.planned_steps - plan.planned_steps) > REPLAN_TOLERANCE * plan.planned_steps
