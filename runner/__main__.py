"""`python -m runner [overrides]`: train a model (see conf/train.yaml and README.md)."""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner")  # before hydra and torch: a base install gets the pip command, not a traceback

import sys

import hydra
from omegaconf import DictConfig

from runner.cli import CONFIG_PATH, entry_point
from runner.config import register_configs
from runner.train import train
from runner.training.distributed import hydra_overrides_for_rank

register_configs()


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> float:
    """Returns the monitored metric so sweepers (optuna) can optimize it."""
    return float(train(cfg)["best_metric"])


if __name__ == "__main__":
    sys.argv += hydra_overrides_for_rank()  # under torchrun, only rank 0 writes outputs
    main()
