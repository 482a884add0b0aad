"""runner/models/registry.py: a model config is checked against the registry before anything is built."""

import pytest

from runner.models import model_from_config


@pytest.mark.parametrize("config, problem", [
    ({"_target_": "builtins.open", "file": "x", "mode": "w"}, "model._target_ is 'builtins.open', which is not"),
    ({"_target_": "runner.models.ctc.CRNN", "name": {"_target_": "os.getcwd"}}, "model.name._target_ names code"),
    ({"_target_": "runner.models.ctc.CRNN", "channels": [32, 64, {"_partial_": True}, 128]},
     "model.channels[2]._partial_ names code to run"),
    ({"_target_": "runner.models.ctc.CRNN", "name": "${oc.env:HOME}"}, "model.name holds an interpolation"),
    ({"_target_": "runner.models.ctc.CRNN", "hidden_sise": 64}, "Key 'hidden_sise' not in 'CTCModelConfig'"),
    ({"_target_": "runner.models.ctc.CRNN", "rnn_layers": 1000}, "rnn_layers must be in 1..8, got 1000"),
])
def test_a_config_is_checked_against_the_registry_before_anything_is_built(config, problem):
    from runner.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        model_from_config(config)
    assert problem in str(refused.value)


def test_the_registry_and_the_torch_free_list_of_stored_model_names_agree():
    from runner.models.registry import MODEL_CLASSES
    from runner.stored import MODEL_HEADS

    assert {name: model_class.head for name, (model_class, _) in MODEL_CLASSES.items()} == MODEL_HEADS
