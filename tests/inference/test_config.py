"""runner/inference/config.py: the entry points' schemas compose from conf/ and their values are checked."""

import pytest
from hydra.errors import ConfigCompositionException

from runner.config import compose_config
from runner.errors import ConfigError
from runner.inference.config import SPLITS, check_inference_config, register_inference_configs


@pytest.fixture(autouse=True)
def schemas():
    register_inference_configs()  # what importing runner.evaluate / predict / export does


def test_schemas_type_the_three_entry_points():
    cfg = compose_config("predict", ["checkpoint=run", "inputs=scans"])
    assert (cfg.batch_size, cfg.device, cfg.num_threads, cfg.output, cfg.overwrite) == (64, "auto", None, None, False)
    cfg = compose_config("evaluate", ["checkpoint=run"])
    assert cfg.split == "val" and cfg.split in SPLITS and cfg.seed is None and cfg.data.kind == "generated"
    cfg = compose_config("export", ["checkpoint=run"])
    assert (cfg.format, cfg.dynamo, cfg.parity_images, cfg.atol) == ("onnx", True, 32, 1e-3)
    with pytest.raises(ConfigCompositionException, match="batch_size=many"):  # an int field
        compose_config("predict", ["checkpoint=run", "inputs=scans", "batch_size=many"])


@pytest.mark.parametrize("override, message", [
    ("batch_size=0", "batch_size must be > 0, got 0"),
    ("num_threads=0", "num_threads must be > 0 or null, got 0"),
    ("num_threads=-2", "num_threads must be > 0 or null, got -2"),
])
def test_check_inference_config_names_the_wrong_value(override, message):
    with pytest.raises(ConfigError, match=message):
        check_inference_config(compose_config("predict", ["checkpoint=run", "inputs=scans", override]))


def test_check_inference_config_accepts_the_defaults_and_a_thread_count():
    check_inference_config(compose_config("evaluate", ["checkpoint=run"]))
    check_inference_config(compose_config("evaluate", ["checkpoint=run", "num_threads=2", "batch_size=1"]))
