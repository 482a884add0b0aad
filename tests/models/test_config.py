"""runner/models/config.py and conf/model: preset schemas, the loss a preset selects, data interpolations."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException

from runner.losses import register_loss_configs
from runner.models import model_from_config
from runner.models.config import register_model_configs
from runner.schema import CONF_DIR


@pytest.fixture
def compose_root(tmp_path):
    cs = ConfigStore.instance()
    register_model_configs(cs)
    register_loss_configs(cs)

    def compose_with(overrides: list[str], order: tuple[str, str] = ("loss", "model")):
        choices = {"loss": "crossentropy", "model": "small"}
        root = tmp_path / "root.yaml"
        root.write_text(
            "defaults:\n" + "".join(f"  - {group}: {choices[group]}\n" for group in order) + "  - _self_\n"
            f"hydra:\n  searchpath:\n    - file://{CONF_DIR}\n"
            "data:\n  max_length: 8\n  image_height: 32\n  image_width: 128\n"
        )
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
            return compose("root", overrides=overrides)

    yield compose_with
    GlobalHydra.instance().clear()


def test_ctc_presets_select_ctc_loss_unless_the_command_line_says_otherwise(compose_root):
    assert compose_root([]).loss.name == "crossentropy"
    cfg = compose_root(["model=ctc_small"])
    assert (cfg.model.name, cfg.loss.name) == ("ctc_small", "ctc") and "loss" not in cfg.model
    assert compose_root(["model=ctc_medium", "loss=focal"]).loss.name == "focal"
    assert compose_root(["model=large", "loss=ctc"]).loss.name == "ctc"  # rejected later by OCRLoss.bind


def test_ctc_loss_override_needs_loss_listed_before_model_in_the_root(compose_root):
    # Hydra walks a defaults list backwards: a config can only override groups listed before it.
    with pytest.raises(ConfigCompositionException, match="Could not override 'loss'"):
        compose_root(["model=ctc_small"], order=("model", "loss"))


def test_composed_preset_instantiates_with_data_interpolations(compose_root):
    cfg = compose_root(["model=ctc_medium", "data.image_width=96", "data.max_length=6"])
    model = model_from_config(cfg.model)
    assert (model.name, model.max_length, model.config_dict()["image_width"]) == ("ctc_medium", 6, 96)
