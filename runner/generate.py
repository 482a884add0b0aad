"""`python -m runner.generate`: write a rendered dataset (images + metadata.yaml).

    python -m runner.generate data.dir=data/khmer20k data.train_size=20000 seed=7 data/augment=heavy

With data.dir=null (the default) it fills the training cache under data.cache_dir, so a later
`python -m runner` with the same settings starts without generating.
"""

from __future__ import annotations

from runner.extras import require_train_extra

require_train_extra("python -m runner.generate")  # before hydra and torch: a base install gets the pip command, not a traceback

import logging

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from runner.data.config import GenerateConfig, data_seed, register_data_configs
from runner.data.generate import ensure_generated_dataset, resolve_path, write_dataset
from runner.cli import CONFIG_PATH, entry_point
from runner.errors import DataError

log = logging.getLogger(__name__)
register_data_configs(ConfigStore.instance())


@hydra.main(config_path=CONFIG_PATH, config_name="generate", version_base="1.3")
@entry_point
def main(cfg: DictConfig) -> str:
    config: GenerateConfig = OmegaConf.to_object(cfg)
    config.data.validate()
    seed = data_seed(config.data, config.seed)
    if config.data.dir is None:
        metadata = ensure_generated_dataset(config.data, seed)
    else:
        target = resolve_path(config.data.dir)
        if target.exists() and any(target.iterdir()):
            if not config.overwrite:
                raise DataError(f"data.dir={target} already exists and is not empty; pass overwrite=true to "
                                f"replace it or choose another data.dir.")
            log.info("overwriting %s", target)
        metadata = write_dataset(config.data, seed, target, replace=config.overwrite)
    log.info("dataset written: %s", metadata)
    print(metadata)
    return str(metadata)


if __name__ == "__main__":
    main()
