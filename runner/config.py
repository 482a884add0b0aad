"""The structured, type-checked config: dataclass schemas registered in Hydra's ConfigStore.

YAML files under `conf/` only layer presets on top of these schemas, so a wrong type or an
unknown key fails at composition time, and `TrainingConfig.validate` checks values (ranges and
cross-field fit) at start-up with one message naming the key.

Group schemas are stored under names starting with `_` (e.g. `model/_attention_schema`); the
YAML option files extend them through their defaults list.
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

from runner.data.config import DataConfig, as_data_config, register_data_configs
from runner.device import AMP_CHOICES
from runner.errors import ConfigError, require
from runner.losses import LossConfig, register_loss_configs
from runner.metrics import MONITORABLE_METRICS
from runner.models.config import register_model_configs
from runner.models.registry import MODEL_CLASSES, model_from_config
from runner.schema import help_field

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


# --------------------------------------------------------------------------- optimizer
@dataclass
class AdamConfig:
    _target_: str = help_field("torch.optim.Adam or torch.optim.AdamW.", "torch.optim.AdamW")
    _partial_: bool = True
    lr: float = help_field("Peak learning rate (the max LR for one-cycle/warm-up schedules).", 2e-3)
    weight_decay: float = help_field("Weight decay (decoupled for AdamW).", 1e-4)
    betas: list[float] = help_field("Adam betas.", factory=lambda: [0.9, 0.999])
    eps: float = help_field("Adam epsilon.", 1e-8)
    fused: bool = help_field("One fused kernel for the whole step (CPU and CUDA) instead of a loop over parameters "
                             "(1.02x a ctc_small training step here). false = PyTorch's default implementation.", True)


@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = help_field("Peak learning rate.", 0.05)
    weight_decay: float = help_field("L2 weight decay.", 1e-4)
    momentum: float = help_field("Momentum factor.", 0.9)
    nesterov: bool = help_field("Use Nesterov momentum.", True)
    fused: bool = help_field("One fused kernel for the whole step (CPU and CUDA). false = PyTorch's default "
                             "implementation.", True)


# --------------------------------------------------------------------------- scheduler
@dataclass
class SchedulerConfig:
    """Every scheduler factory in runner.training.schedulers takes these plus the optimizer,
    the number of epochs and the optimizer steps per epoch, supplied by the trainer."""

    _target_: str = help_field("Factory in runner.training.schedulers.", "runner.training.schedulers.onecycle")
    _partial_: bool = True
    warmup_fraction: float = help_field("Fraction of all optimizer steps spent warming up (onecycle, warmup_cosine).", 0.15)
    step_size: int = help_field("Epochs between LR decays (steplr).", 10)
    gamma: float = help_field("Multiplicative LR decay (steplr).", 0.5)
    min_lr_ratio: float = help_field("Final/minimum LR as a fraction of optimizer.lr (cosine, onecycle, plateau, warmup_cosine).", 1e-3)
    factor: float = help_field("LR reduction factor when the monitored metric plateaus (plateau).", 0.5)
    patience: int = help_field("Epochs without improvement before reducing LR (plateau).", 2)


# --------------------------------------------------------------------------- device
@dataclass
class DeviceConfig:
    name: str = help_field("auto (cuda if available, else cpu), cpu or cuda.", "auto")
    amp: str = help_field("Mixed precision: auto (bf16 autocast on a CPU that runs bf16 natively, decided by a probe "
                          "at start-up, else fp32; fp16 + GradScaler on CUDA), bf16, fp16 (CUDA) or off.", "auto")
    num_threads: Optional[int] = help_field("torch intra-op threads; null = all cores (or cores / parallel jobs under joblib).", None)
    channels_last: bool = help_field("Use channels_last memory format for the CNN.", False)
    compile: bool = help_field("Wrap the model in torch.compile.", False)
    deterministic: bool = help_field("torch.use_deterministic_algorithms(True) for exact reproducibility.", False)


# --------------------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    enabled: bool = help_field("Stop when the monitored metric stops improving.", True)
    patience: int = help_field("Epochs without improvement (>= min_delta) before stopping.", 5)
    min_delta: float = help_field("Smallest change that counts as an improvement.", 1e-4)
    restore_best_weights: bool = help_field("Load the best epoch's weights before the final evaluation.", True)
    best_tolerance: float = help_field(
        "The best checkpoint is the latest epoch within this of the best monitored value seen: later epochs have "
        "trained longer, and 0.001 is 2 of the 2,000 val images, below the noise. 0 = ties only.", 1e-3)


@dataclass
class CheckpointConfig:
    every_n_epochs: int = help_field("Also keep epoch_NNN.pt every N epochs (0 = never).", 0)
    keep_n: int = help_field("How many epoch_NNN.pt files to keep (newest first).", 3)
    save_last: bool = help_field("Write checkpoints/last.pt after every epoch (needed for resume).", True)


@dataclass
class TrainerConfig:
    _target_: str = help_field("Trainer class.", "runner.training.OCRTrainer")
    _partial_: bool = True
    max_epochs: int = help_field("Upper bound on epochs.", 8)
    max_time_minutes: Optional[float] = help_field(
        "Wall-clock budget of the whole job: data preparation, training and the final evaluation. The LR schedule is "
        "fitted to the speed measured in the first minute of training so it ends annealed when the budget runs out; "
        "a slower machine sees fewer images, never a schedule cut short. null = no budget (max_epochs decides).", 14.0)
    stop_at: Optional[float] = help_field("Stop as soon as the monitored metric reaches this value.", None)
    monitor: str = help_field("Metric that selects the best checkpoint and drives early stopping/plateau.", "val/seq_accuracy")
    mode: str = help_field("max or min for the monitored metric.", "max")
    grad_clip_norm: Optional[float] = help_field("Clip the global gradient norm to this value (null = no clipping, norm still logged).", 5.0)
    accumulate_grad_batches: int = help_field("Optimizer step every k batches (effective batch = k x data.batch_size).", 1)
    lr_scaling: str = help_field("Scale optimizer.lr with the global batch (data.batch_size x processes x accumulation) "
                            "relative to reference_batch_size: none, linear or sqrt.", "none")
    reference_batch_size: int = help_field("Global batch size at which optimizer.lr is meant (for lr_scaling).", 64)
    log_every_n_steps: int = help_field("TensorBoard scalar logging interval in optimizer steps.", 25)
    limit_train_batches: Optional[int] = help_field("Use only this many training batches per epoch.", None)
    limit_val_batches: Optional[int] = help_field("Use only this many validation batches.", None)
    overfit_batches: int = help_field("Train and validate on the same first N training batches (debug=overfit).", 0)
    max_nan_batches: int = help_field("Consecutive non-finite losses tolerated (skipped) before the run stops.", 5)
    progress_bar: Optional[bool] = help_field("Per-epoch progress bar; null = only when stderr is a TTY.", None)
    num_image_samples: int = help_field("Validation images shown with predicted vs true text in TensorBoard.", 16)
    num_worst_examples: int = help_field("Worst validation examples written to errors.md.", 25)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


@dataclass
class MetricsConfig:
    _target_: str = help_field("Metrics accumulator.", "runner.metrics.OCRMetrics")


@dataclass
class PathsConfig:
    output_root: str = help_field("Where run dirs go; KHMER_OCR_OUTPUTS overrides.", "${oc.env:KHMER_OCR_OUTPUTS,outputs}")


# --------------------------------------------------------------------------- root
@dataclass
class TrainingConfig:
    """Root config of `python -m runner` (conf/train.yaml)."""

    experiment_name: str = help_field("Name of the run family; the output dir is outputs/<experiment_name>/<date>/<time>.", "default")
    seed: int = help_field("Seeds python, numpy, torch, data order and data generation.", 1234)
    resume: Optional[str] = help_field("auto (continue from this run dir's last checkpoint) or a checkpoint/run-dir path.", None)
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
    """Value checks that types alone cannot express. Raises ConfigError naming the key."""
    t = cfg.trainer
    require(cfg.optimizer.lr > 0, "optimizer.lr", "must be > 0", cfg.optimizer.lr)
    require(cfg.optimizer.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0", cfg.optimizer.weight_decay)
    require(t.max_epochs > 0, "trainer.max_epochs", "must be > 0", t.max_epochs)
    require(t.accumulate_grad_batches > 0, "trainer.accumulate_grad_batches", "must be > 0", t.accumulate_grad_batches)
    require(t.grad_clip_norm is None or t.grad_clip_norm > 0, "trainer.grad_clip_norm", "must be > 0 or null", t.grad_clip_norm)
    require(t.mode in ("max", "min"), "trainer.mode", "must be max or min", t.mode)
    require(t.lr_scaling in ("none", "linear", "sqrt"), "trainer.lr_scaling", "must be none, linear or sqrt", t.lr_scaling)
    require(t.reference_batch_size > 0, "trainer.reference_batch_size", "must be > 0", t.reference_batch_size)
    require(t.early_stopping.patience >= 0, "trainer.early_stopping.patience", "must be >= 0", t.early_stopping.patience)
    require(t.early_stopping.min_delta >= 0, "trainer.early_stopping.min_delta", "must be >= 0", t.early_stopping.min_delta)
    require(t.early_stopping.best_tolerance >= 0, "trainer.early_stopping.best_tolerance", "must be >= 0",
            t.early_stopping.best_tolerance)
    require(t.checkpoint.keep_n >= 1, "trainer.checkpoint.keep_n", "must be >= 1", t.checkpoint.keep_n)
    require(t.checkpoint.every_n_epochs >= 0, "trainer.checkpoint.every_n_epochs", "must be >= 0", t.checkpoint.every_n_epochs)
    require(t.log_every_n_steps > 0, "trainer.log_every_n_steps", "must be > 0", t.log_every_n_steps)
    require(t.max_time_minutes is None or t.max_time_minutes > 0, "trainer.max_time_minutes", "must be > 0 or null", t.max_time_minutes)
    require(t.limit_train_batches is None or t.limit_train_batches > 0, "trainer.limit_train_batches", "must be > 0 or null", t.limit_train_batches)
    require(t.limit_val_batches is None or t.limit_val_batches > 0, "trainer.limit_val_batches", "must be > 0 or null", t.limit_val_batches)
    require(t.overfit_batches >= 0, "trainer.overfit_batches", "must be >= 0", t.overfit_batches)
    require(t.max_nan_batches >= 1, "trainer.max_nan_batches", "must be >= 1", t.max_nan_batches)
    s = cfg.scheduler
    require(0 <= s.warmup_fraction < 1, "scheduler.warmup_fraction", "must be in [0, 1)", s.warmup_fraction)
    require(s.step_size > 0, "scheduler.step_size", "must be > 0", s.step_size)
    require(0 < s.gamma <= 1, "scheduler.gamma", "must be in (0, 1]", s.gamma)
    require(0 < s.factor < 1, "scheduler.factor", "must be in (0, 1)", s.factor)
    require(0 < s.min_lr_ratio <= 1, "scheduler.min_lr_ratio", "must be in (0, 1]", s.min_lr_ratio)
    require(s.patience >= 0, "scheduler.patience", "must be >= 0", s.patience)
    d = cfg.device
    require(d.name in ("auto", "cpu", "cuda") or d.name.startswith("cuda:"), "device.name", "must be auto, cpu or cuda", d.name)
    require(d.amp in AMP_CHOICES, "device.amp", f"must be {', '.join(AMP_CHOICES[:-1])} or {AMP_CHOICES[-1]}", d.amp)
    require(d.num_threads is None or d.num_threads > 0, "device.num_threads", "must be > 0 or null", d.num_threads)
    require(cfg.seed >= 0, "seed", "must be >= 0", cfg.seed)
    require(t.monitor in MONITORABLE_METRICS, "trainer.monitor", f"must be one of {list(MONITORABLE_METRICS)}",
            t.monitor)
    check_known_keys(cfg)
    as_data_config(cfg.data)  # validates data.* and data.augment.*
    _check_model_loss_fit(cfg)
    if cfg.model.get("max_length") is not None:
        require(cfg.model.max_length >= cfg.data.max_length, "model.max_length", f"must be >= data.max_length ({cfg.data.max_length})", cfg.model.max_length)


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
    instantiate(cfg.loss).check_compatible(model_class.head, cfg.model.name)  # also checks the loss's own values
    if cfg.model._target_ in MODEL_CLASSES:  # types, ranges and the CTC width check, before any data is rendered
        model_from_config(cfg.model, "model")


def register_resolvers() -> None:
    """`${run_id:}`: a short random id, fixed for one launch, that makes run dirs unique.

    Two runs started in the same second would otherwise share `outputs/<exp>/<date>/<HH-MM-SS>`.
    `use_cache` keeps the value for the launch, and Hydra copies that cache into every job of a
    multirun (joblib workers included), so all jobs of one sweep agree on its dir.
    """
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True)
    if not OmegaConf.has_resolver("config_groups"):
        OmegaConf.register_new_resolver("config_groups", config_group_listing)


def config_group_listing() -> str:
    """`${config_groups:}` for `--help`: every group under conf/ and its presets.

    Hydra's own $APP_CONFIG_GROUPS also lists the schema nodes the presets build on (`_ctc_schema`,
    ...), which are not options a user can pick.
    """
    lines = []
    for group in sorted(path for path in CONF_DIR.iterdir() if path.is_dir() and path.name != "hydra"):
        options = sorted(file.stem for file in group.glob("*.yaml") if not file.name.startswith("_"))
        lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines)


register_resolvers()  # at import: any process that loads a run config (also sweep workers) can resolve it


def register_configs() -> ConfigStore:
    """Store every schema; safe to call more than once."""
    register_resolvers()
    cs = ConfigStore.instance()
    cs.store(name="_train_schema", node=TrainingConfig)
    cs.store(group="optimizer", name="_adam_schema", node=AdamConfig)
    cs.store(group="optimizer", name="_sgd_schema", node=SGDConfig)
    cs.store(group="scheduler", name="_scheduler_schema", node=SchedulerConfig)
    cs.store(group="device", name="_device_schema", node=DeviceConfig)
    register_data_configs(cs)
    register_model_configs(cs)
    register_loss_configs(cs)
    return cs
