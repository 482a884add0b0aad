"""What stops a run cleanly: SIGINT/SIGTERM, NaN/Inf losses and running out of device memory."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch

from runner.errors import UserError

if TYPE_CHECKING:
    from runner.training.base_trainer import BaseTrainer

log = logging.getLogger("runner.trainer")


class TrainingInterrupted(UserError):
    """SIGINT/SIGTERM: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


class NonFiniteLossError(UserError):
    """Too many consecutive NaN/Inf losses."""


class OutOfMemory(UserError):
    """The device ran out of memory; the message names the settings that lower it."""


class StopSignals:
    """SIGINT/SIGTERM ask the loop to stop after the current batch (`received`); a second one stops at once."""

    def __init__(self) -> None:
        self.received: Optional[int] = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT/SIGTERM inside the block (main thread only), the previous handlers after it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def request_stop(signum: int, _frame: Any) -> None:
            if self.received is not None:  # a second Ctrl-C: stop now
                signal.default_int_handler(signum, _frame)
            self.received = signum
            log.warning("received %s: saving a checkpoint after this batch", signal.Signals(signum).name)

        for sig in previous:
            signal.signal(sig, request_stop)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def interrupted(signum: int, *, epoch: int, batch: int, last_checkpoint: Path, run_dir: Path) -> TrainingInterrupted:
    """The error a stop by `signum` ends the run with: where the state is, and the command that resumes it."""
    return TrainingInterrupted(
        f"stopped by {signal.Signals(signum).name} during epoch {epoch} after batch {batch}; the state is saved in "
        f"{last_checkpoint}. Resume exactly where it stopped with: python -m runner <same overrides> "
        f"resume={last_checkpoint} hydra.run.dir={run_dir}")


class NonFiniteLosses:
    """NaN/Inf losses in a row: the loop skips each such batch; `limit` of them in a row stop the run."""

    def __init__(self, limit: int, checkpoints: Path) -> None:
        self.limit, self.checkpoints = limit, checkpoints
        self.in_a_row = 0

    def finite(self) -> None:
        self.in_a_row = 0

    def skipped(self, loss: torch.Tensor, *, epoch: int, batch: int) -> None:
        """Warn about a skipped batch; NonFiniteLossError when it is the `limit`-th in a row."""
        self.in_a_row += 1
        log.warning("non-finite loss (%s) at epoch %d batch %d: batch skipped", loss.item(), epoch, batch)
        if self.in_a_row >= self.limit:
            raise NonFiniteLossError(
                f"{self.in_a_row} consecutive batches had a NaN/Inf loss at epoch {epoch}; training stopped. The last "
                f"good checkpoint is kept in {self.checkpoints}. Lower optimizer.lr, set trainer.grad_clip_norm, or "
                f"try device.amp=off.")


@contextmanager
def out_of_memory_advice(trainer: BaseTrainer) -> Iterator[None]:
    """A CUDA out-of-memory error becomes one paragraph naming the knobs, not a traceback."""
    try:
        yield
    except torch.OutOfMemoryError as error:
        batch, accumulate = trainer.config.data.batch_size, trainer.tcfg.accumulate_grad_batches
        smaller = max(1, batch // 2)
        raise OutOfMemory(
            f"out of memory on {trainer.device} in epoch {trainer.epoch + 1} with data.batch_size={batch}, "
            f"trainer.accumulate_grad_batches={accumulate}, device.amp={trainer.config.device.amp}. Lower "
            f"data.batch_size; data.batch_size={smaller} trainer.accumulate_grad_batches="
            f"{accumulate * batch // smaller} keeps the effective batch of {batch * accumulate}. Mixed precision "
            f"halves activation memory: use device.amp=auto (fp16 on CUDA) if it is off. A smaller model= also "
            f"helps. Checkpoints of completed epochs are kept in {trainer.checkpoints.directory}; continue with "
            f"resume=auto hydra.run.dir={trainer.output_dir}. ({str(error).splitlines()[0]})") from error
