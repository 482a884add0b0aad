"""torchrun support: one process per device, rank 0 writes everything.

The well-known Hydra + DDP trap is one output dir per rank: every process composes the config,
resolves `${now:...}` at a slightly different time and creates its own run dir and log. Here
`hydra_overrides_for_rank()` runs before Hydra parses the command line: ranks > 0 get
`hydra.run.dir=.`, no `.hydra/` subdir and no job log file, so they create nothing; rank 0's run
dir is then broadcast to every rank (`broadcast_object`) for resume and data paths.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_from_env() -> int:
    return int(os.environ.get("RANK", "0"))


def hydra_overrides_for_rank() -> list[str]:
    """Extra command-line overrides that keep ranks > 0 from writing any output."""
    if world_size_from_env() <= 1 or rank_from_env() == 0:
        return []
    return ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled", "hydra.callbacks={}"]


@contextmanager
def distributed_context(device_name: str) -> Iterator[tuple[int, int, str]]:
    """Yield (rank, world_size, device name); under torchrun, init and tear down the process group.

    NCCL on CUDA, gloo on CPU. Outside torchrun this is a no-op yielding (0, 1, device_name).
    """
    world_size = world_size_from_env()
    if world_size <= 1:
        yield 0, 1, device_name
        return
    rank = rank_from_env()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    else:
        device_name = "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    finished = False
    try:
        yield rank, world_size, device_name
        finished = True
    finally:
        shut_down(finished)


def shut_down(finished: bool) -> None:
    """Leave the process group together: after a completed job every rank waits at a barrier first.

    Without it a rank > 0, idle while rank 0 writes the end-of-run reports, tore its gloo group
    down and exited alone; now and then (once in CI) it died in the C++ teardown with "terminate
    called without an active exception" (SIGABRT). The garbage collection then frees the
    DistributedDataParallel wrappers that still hold the group, so its threads stop while the
    interpreter is whole, not during its finalization. After an error there is no barrier: the
    other ranks may never reach it.
    """
    if finished:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src`'s value on every rank (identity outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if `flag` is True on any rank (keeps stop decisions in lock-step)."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def unwrap(model: nn.Module) -> nn.Module:
    """The model itself, inside a DistributedDataParallel and/or torch.compile wrapper."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile
