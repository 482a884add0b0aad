"""Every option of every group composes, resolves and instantiates; bad values fail clearly."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from runner.config import CONF_DIR, TrainingConfig, compose_config, validate
from runner.errors import ConfigError
from runner.training.utils import resolve_device

GROUPS = ["model", "loss", "optimizer", "scheduler", "trainer", "device", "paths", "data", "data/augment", "debug",
          "experiment", "hparams_search"]
REPO = Path(__file__).resolve().parent.parent


def options(group):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def model_for(loss):
    return "ctc_small" if loss == "ctc" else "small"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_resolves_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "loss":
        overrides.append(f"model={model_for(option)}")
    if group == "data" and option == "folder":
        overrides.append("data.dir=/some/labelled/folder")
    if group == "hparams_search":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config("train", overrides)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    validate(cfg)


@pytest.mark.parametrize("model", options("model"))
def test_models_instantiate_with_their_default_loss_and_optimizers(model):
    cfg = compose_config("train", [f"model={model}"])
    net = instantiate(cfg.model)
    assert net.head == ("ctc" if model.startswith("ctc") else "attention")
    instantiate(cfg.loss).bind(net)  # the model preset picks a loss that fits
    # composed once each: composing is what takes the time here, not instantiating
    schedulers = [compose_config("train", [f"scheduler={scheduler}"]).scheduler for scheduler in options("scheduler")]
    for optimizer in options("optimizer"):
        opt_cfg = compose_config("train", [f"model={model}", f"optimizer={optimizer}"]).optimizer
        optimizer_obj = instantiate(opt_cfg)(net.parameters())
        for sched_cfg in schedulers:
            instantiate(sched_cfg)(optimizer_obj, epochs=2, steps_per_epoch=3, mode="max")


def test_trainer_and_metrics_instantiate():
    cfg = compose_config("train")
    assert callable(instantiate(cfg.trainer))
    metrics = instantiate(cfg.metrics)
    metrics.update(["០១"], ["០១"])
    assert metrics.compute()["seq_accuracy"] == 1.0


def test_focal_fits_both_heads_and_ctc_model_selects_ctc_loss():
    assert compose_config("train", ["model=ctc_small"]).loss.name == "ctc"
    assert compose_config("train", ["model=ctc_medium", "loss=focal"]).loss.name == "focal"
    assert compose_config("train", ["loss=focal", "model=large"]).model.name == "large"


@pytest.mark.parametrize("override,key", [
    ("data.batch_size=0", "data.batch_size"),
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-0.1", "optimizer.lr"),
    ("trainer.early_stopping.patience=-1", "trainer.early_stopping.patience"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("scheduler.warmup_fraction=1.5", "scheduler.warmup_fraction"),
    ("loss.label_smoothing=1.5", "loss.label_smoothing"),
    ("data.max_length=0", "data.max_length"),
])
def test_invalid_values_name_their_key(override, key):
    cfg = compose_config("train", [override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize("override,allowed", [
    ("trainer.mode=biggest", "[max, min]"),
    ("trainer.lr_scaling=cubic", "[none, linear, sqrt]"),
    ("device.amp=fp8", "[auto, bf16, fp16, off]"),
    ("data.kind=fold", "[generated, onthefly, folder]"),
])
def test_a_wrong_choice_is_refused_at_composition_listing_the_allowed_values(override, allowed):
    with pytest.raises(ConfigCompositionException) as refused:
        compose_config("train", [override])
    key, value = override.split("=")
    message = str(refused.value.__cause__)
    assert f"Invalid value '{value}', expected one of {allowed}" in message and f"full_key: {key}" in message


@pytest.mark.parametrize("override,message", [
    ("+trainer.max_epoch=3", "trainer.max_epoch is not an option of TrainerConfig (a key added with "
                             "+trainer.max_epoch=...); did you mean trainer.max_epochs?"),
    ("+trainer.early_stopping.patiense=1", "did you mean trainer.early_stopping.patience?"),
    ("+model.hidden=64", "model.hidden is not an option of CTCModelConfig"),
    ("data.max_length=100000", "data.max_length must be <= 32 characters, got 100000"),
    ("data.image_width=100000", "data.image_width must lie in data.image_height (32)..4096, got 100000"),
    ("trainer.monitor=val/bogus", "trainer.monitor must be one of val/seq_accuracy, val/char_accuracy"),
    ("model.hidden_size=1000000", "hidden_size must be an even number in 2..4096, got 1000000"),
])
def test_keys_added_with_plus_unknown_metrics_and_absurd_sizes_fail_before_any_work(override, message):
    with pytest.raises(ConfigError) as refused:
        validate(compose_config("train", [override]))
    assert message in str(refused.value)


def test_incompatible_model_and_loss_names_both():
    cfg = compose_config("train", ["model=large", "loss=ctc"])
    with pytest.raises(ConfigError, match="loss=ctc does not fit model=large"):
        validate(cfg)


def test_cuda_without_cuda_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device=cuda"):
        resolve_device("cuda")


def test_training_config_api(tmp_path):
    cfg = TrainingConfig.defaults()
    assert cfg.model.name and cfg.trainer.monitor == "val/seq_accuracy"
    TrainingConfig.save_yaml(cfg, tmp_path / "c.yaml")
    again = TrainingConfig.from_yaml(tmp_path / "c.yaml")
    assert again.optimizer.lr == cfg.optimizer.lr
    assert TrainingConfig.from_dict({"optimizer": {"lr": 0.01}}).optimizer.lr == 0.01
    with pytest.raises(ConfigError, match="not_a_key"):
        TrainingConfig.from_dict({"trainer": {"not_a_key": 1}})
    with pytest.raises(ConfigError, match="batch_size"):
        TrainingConfig.from_dict({"data": {"batch_size": "many"}})
    with pytest.raises(ConfigError, match="optimizer.lr"):
        TrainingConfig.from_dict({"optimizer": {"lr": -1.0}})


def test_env_var_sets_output_root(monkeypatch):
    monkeypatch.setenv("KHMER_OCR_OUTPUTS", "/tmp/elsewhere")
    assert compose_config("train").paths.output_root == "/tmp/elsewhere"


def _run_cli(*overrides, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "runner", *overrides], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


def test_help_lists_the_presets_of_every_group_and_no_schema_nodes():
    result = _run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "_schema" not in result.stdout
    for group in GROUPS:
        assert f"{group}: {', '.join(o for o in options(group) if not o.startswith('_'))}\n" in result.stdout
    assert "model:\n  name: ctc_small" in result.stdout  # the composed config follows


@pytest.mark.parametrize("overrides,expected", [
    (("data.batch_size=0",), "data.batch_size must be > 0"),
    (("model=large", "loss=ctc"), "loss=ctc does not fit model=large"),
    (("data.batch_size=abc",), "data.batch_size"),
    (("trainer.no_such_key=1",), "no_such_key"),
    (("model=huge",), "huge"),
])
def test_cli_errors_are_short_and_exit_nonzero(overrides, expected, tmp_path):
    result = _run_cli(*overrides, f"paths.output_root={tmp_path}")
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 25  # hydra lists the available options


def test_numbers_labels_of_24_characters_fit_a_ctc_model_only_as_wide_as_its_ctc_steps_need():
    cfg = compose_config("train", ["charset=numbers", "data.max_length=24"])
    with pytest.raises(ConfigError, match=r"model=ctc_small: data.image_width is 128.*set data.image_width >= 196"):
        validate(cfg)
    validate(compose_config("train", ["charset=numbers", "data.max_length=24", "data.image_width=196"]))
    validate(compose_config("train", ["charset=numbers", "data.max_length=24", "model=small", "loss=crossentropy"]))


def test_focal_alpha_is_sized_by_the_runs_charset():
    numbers = ["loss=focal", "charset=numbers"]
    validate(compose_config("train", [*numbers, f"loss.alpha=[{','.join(['1.0'] * 30)}]"]))  # one per character
    with pytest.raises(ConfigError, match=r"loss.alpha=.* must be 30 non-negative weights .*charset 'numbers'.* or 34"):
        validate(compose_config("train", [*numbers, f"loss.alpha=[{','.join(['1.0'] * 10)}]"]))
