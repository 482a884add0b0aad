"""Run set-up shared by every entry point: device, threads, seeds, output dirs."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from runner.data.generate import default_workers as available_cores  # CPU affinity: a SLURM allocation, taskset
from runner.errors import ConfigError
from runner.training.checkpoint import checkpoints_dir
from runner.training.tensorboard import tensorboard_dir

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """auto → cuda when available, else cpu. Asking for cuda without CUDA is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name} was requested but this machine has no usable CUDA device "
                              f"(torch {torch.__version__}, cuda available: False); use device=cpu or device=auto.")
        return torch.device(name)
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def parallel_jobs() -> int:
    """How many jobs share this machine's cores in a parallel multirun on it.

    joblib: its n_jobs; submitit_local starts every job at once, like n_jobs=-1.
    """
    from hydra.core.hydra_config import HydraConfig

    if os.environ.get("KHMER_OCR_PARALLEL_JOBS"):
        return max(1, int(os.environ["KHMER_OCR_PARALLEL_JOBS"]))
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        n_jobs = int(launcher.get("n_jobs") or 1)
    elif target.endswith("submitit_launcher.LocalLauncher"):
        n_jobs = -1
    else:
        return 1
    cores = available_cores()
    return cores if n_jobs < 0 else max(1, min(n_jobs, cores))


def configure_threads(num_threads: Optional[int]) -> int:
    """Set torch intra-op threads; parallel jobs split the cores so they never oversubscribe."""
    jobs = parallel_jobs()
    if num_threads is None:
        num_threads = max(1, available_cores() // jobs)
    torch.set_num_threads(num_threads)
    log.info("torch threads: %d (%d cores shared by %d parallel jobs)", torch.get_num_threads(), available_cores(),
             jobs)
    return num_threads


def setup_training_environment(config: DictConfig, output_dir: Optional[str | Path] = None,
                               create_dirs: bool = True) -> Path:
    """Validate the config, seed, set threads and determinism, and create the run's output dirs.

    Returns the run's output dir (Hydra's run dir when called under Hydra). `create_dirs=False`
    on DDP ranks > 0, which write nothing.
    """
    from runner.config import validate

    validate(config)
    if output_dir is None:
        output_dir = Path(OmegaConf.select(config, "paths.output_root") or "outputs") / config.experiment_name
    output_dir = Path(output_dir)
    if create_dirs:
        checkpoints_dir(output_dir).mkdir(parents=True, exist_ok=True)
        tensorboard_dir(output_dir).mkdir(parents=True, exist_ok=True)
    configure_threads(config.device.num_threads)
    # near convergence gradients turn denormal, and denormal arithmetic makes CPU steps much slower
    torch.set_flush_denormal(True)
    seed_everything(config.seed)
    if config.device.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return output_dir
