"""The root config of `python -m runner`: composes every group's schema and checks values.

conf/ mirrors runner/: each group's schema lives beside the module it configures (conf/model ↔
runner/models/config.py, conf/data ↔ runner/data/config.py, conf/trainer, conf/optimizer and
conf/scheduler ↔ runner/training/config.py, conf/loss ↔ runner/losses.py, conf/device ↔
runner/device.py, conf/paths ↔ runner/outputs.py, conf/charset ↔ runner/charset.py). Each is stored in
Hydra's ConfigStore under a name starting with `_` (e.g. `model/_ctc_schema`) that the group's YAML files extend, so a wrong
type, an unknown key or a choice outside its Enum fails at composition; `validate` checks the
values (ranges and cross-field fit) at start-up with one message naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from runner.charset import CharsetConfig, config_charset, register_charset_configs
from runner.data.config import DataConfig, as_data_config, register_data_configs
from runner.data.formats import format_chars
from runner.device import DeviceConfig, register_device_configs
from runner.errors import ConfigError, require
from runner.losses import LossConfig, register_loss_configs
from runner.models.config import register_model_configs
from runner.models.registry import MODEL_CLASSES, model_from_config
from runner.outputs import PathsConfig, register_paths_configs
from runner.schema import CONF_DIR, help_field
from runner.training.config import SchedulerConfig, TrainerConfig, register_training_configs


@dataclass
class MetricsConfig:
    _target_: str = help_field("Metrics accumulator.", "runner.metrics.OCRMetrics")


# --------------------------------------------------------------------------- root
@dataclass
class TrainingConfig:
    """Root config of `python -m runner` (conf/train.yaml)."""

    experiment_name: str = help_field("Name of the run family; the output dir is outputs/<experiment_name>/<date>/<time>.", "default")
    seed: int = help_field("Seeds python, numpy, torch, data order and data generation.", 1234)
    resume: Optional[str] = help_field("auto (continue from this run dir's last checkpoint) or a checkpoint/run-dir path.", None)
    charset: CharsetConfig = field(default_factory=CharsetConfig)
    model: Any = help_field("Model preset (conf/model); typed by the preset's own schema.", MISSING)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: Any = help_field("Optimizer preset (conf/optimizer); typed by the preset's own schema.", MISSING)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    # --- the seed's TrainingConfig API -------------------------------------------------
    @classmethod
    def defaults(cls) -> DictConfig:
        """The default configuration: conf/train.yaml with its default group options."""
        return compose_config("train")

    @classmethod
    def from_dict(cls, values: dict | DictConfig) -> DictConfig:
        """Defaults merged with `values`; unknown keys and wrong types raise ConfigError."""
        try:
            cfg = OmegaConf.merge(cls.defaults(), values)
        except Exception as error:  # omegaconf raises several types; all mean "bad value"
            raise ConfigError(f"invalid training config: {error}") from error
        validate(cfg)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> DictConfig:
        """A saved run config (e.g. a run's .hydra/config.yaml or config_resolved.yaml)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist.")
        loaded = OmegaConf.load(path)
        loaded.pop("hydra", None)
        return cls.from_dict(loaded)

    @staticmethod
    def save_yaml(cfg: DictConfig, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, path, resolve=True)


def compose_config(config_name: str = "train", overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose a config from conf/ the way the command line does, inside or outside a Hydra app."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    if GlobalHydra.instance().is_initialized():
        return compose(config_name, overrides=list(overrides))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))


def validate(cfg: DictConfig) -> None:
    """Value checks that types alone cannot express, group by group. Raises ConfigError naming the key."""
    require(cfg.optimizer.lr > 0, "optimizer.lr", "must be > 0", cfg.optimizer.lr)
    require(cfg.optimizer.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0", cfg.optimizer.weight_decay)
    require(cfg.seed >= 0, "seed", "must be >= 0", cfg.seed)
    # each schema's validate reads its node by attribute, so the composed DictConfig node serves as `self`
    TrainerConfig.validate(cfg.trainer)
    SchedulerConfig.validate(cfg.scheduler)
    DeviceConfig.validate(cfg.device)
    check_known_keys(cfg)
    as_data_config(cfg.data)  # validates data.* and data.augment.*
    _check_formats_fit_charset(cfg)
    _check_model_loss_fit(cfg)
    if cfg.model.get("max_length") is not None:
        require(cfg.model.max_length >= cfg.data.max_length, "model.max_length", f"must be >= data.max_length ({cfg.data.max_length})", cfg.model.max_length)


def _check_formats_fit_charset(cfg: DictConfig) -> None:
    """The generated texts (data.formats, data.ascii_digits) must be spelled with the run's charset."""
    if cfg.data.kind == "folder":
        return  # a folder's labels are checked line by line against the charset when read
    charset = config_charset(cfg)
    outside = sorted(format_chars(cfg.data.formats, cfg.data.ascii_digits) - set(charset.chars))
    if outside:
        drawn = [name for name, weight in cfg.data.formats.items() if weight > 0]
        raise ConfigError(
            f"data.formats ({', '.join(drawn)}) and data.ascii_digits={cfg.data.ascii_digits} write "
            f"{''.join(outside)!r}, which charset '{charset.name}' cannot spell. Train with charset=numbers "
            f"(or experiment=numbers), or keep to data.formats.digits and data.ascii_digits=0 with charset=digits.")


def check_known_keys(cfg: DictConfig, where: str = "") -> None:
    """ConfigError for a key its schema does not have: `+trainer.max_epoch=3` adds one past Hydra's check."""
    for key in cfg.keys():
        if OmegaConf.is_missing(cfg, key) or OmegaConf.is_interpolation(cfg, key):
            continue
        node = cfg[key]
        if isinstance(node, DictConfig):
            check_known_keys(node, f"{where}{key}.")
    schema = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return
    known = [f.name for f in dataclasses.fields(schema)]
    for key in cfg.keys():
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {where}{close[0]}? " if close else ""
            raise ConfigError(f"{where}{key} is not an option of {schema.__name__} (a key added with "
                              f"+{where}{key}=...); {hint}the options are {', '.join(known)}. Remove it or fix its "
                              f"name.")


def _check_model_loss_fit(cfg: DictConfig) -> None:
    """Fail before any data is generated when the loss cannot train the model's head."""
    from hydra.utils import get_class

    from runner.errors import instantiate

    try:
        model_class = get_class(cfg.model._target_)
    except Exception as error:
        raise ConfigError(f"model._target_={cfg.model._target_!r} cannot be imported ({error}).") from error
    instantiate(cfg.loss, charset=config_charset(cfg).name).check_compatible(model_class.head, cfg.model.name)  # also checks the loss's own values
    if cfg.model._target_ in MODEL_CLASSES:  # types, ranges and the CTC width check, before any data is rendered
        model_from_config(cfg.model, "model", config_charset(cfg))


def register_resolvers() -> None:
    """The resolvers conf/ uses: `${run_id:}`, `${config_groups:}` and `${if:...}` (see `choose`).

    `${run_id:}`: a short random id, fixed for one launch, that makes run dirs unique.

    Two runs started in the same second would otherwise share `outputs/<exp>/<date>/<HH-MM-SS>`.
    `use_cache` keeps the value for the launch, and Hydra copies that cache into every job of a
    multirun (joblib workers included), so all jobs of one sweep agree on its dir.
    """
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True)
    if not OmegaConf.has_resolver("config_groups"):
        OmegaConf.register_new_resolver("config_groups", config_group_listing)
    if not OmegaConf.has_resolver("if"):
        OmegaConf.register_new_resolver("if", choose)


def choose(condition: bool, then: Any, otherwise: Any) -> Any:
    """`${if:CONDITION,THEN,OTHERWISE}`: a setting that follows a boolean key, e.g. predict's run dir and log
    handlers following `save_run`."""
    return then if condition else otherwise


def config_group_listing() -> str:
    """`${config_groups:}` for `--help`: every group under conf/ and its presets.

    Hydra's own $APP_CONFIG_GROUPS also lists the schema nodes the presets build on (`_ctc_schema`,
    ...), which are not options a user can pick.
    """
    lines = []
    groups = (path for path in CONF_DIR.rglob("*") if path.is_dir() and "hydra" not in path.relative_to(CONF_DIR).parts)
    for group in sorted(groups):
        options = sorted(file.stem for file in group.glob("*.yaml") if not file.name.startswith("_"))
        if options:
            lines.append(f"{group.relative_to(CONF_DIR).as_posix()}: {', '.join(options)}")
    return "\n".join(lines)


register_resolvers()  # at import: any process that loads a run config (also sweep workers) can resolve it


def register_configs() -> ConfigStore:
    """Store every schema; safe to call more than once."""
    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="_train_schema", node=TrainingConfig)
    register_training_configs(cs)
    register_device_configs(cs)
    register_paths_configs(cs)
    register_data_configs(cs)
    register_model_configs(cs)
    register_loss_configs(cs)
    register_charset_configs(cs)
    return cs
