"""torchrun support: one process per device, rank 0 writes everything."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist


@contextmanager
def distributed_context(device_name: str) -> Iterator[tuple[int, int, str]]:
    """Yield (rank, world_size, device name); under torchrun, init and tear down the process group.

    NCCL on CUDA, gloo on CPU. Outside torchrun this is a no-op yielding (0, 1, device_name).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield 0, 1, device_name
        return
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    else:
        device_name = "cpu"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield rank, world_size, device_name
    finally:
        dist.destroy_process_group()
