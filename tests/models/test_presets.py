"""runner/models/presets.py: conf/model presets built outside a Hydra run."""

import pytest

from models.helpers import PRESETS
from runner.errors import ConfigError
from runner.models import available_presets, create_model


def test_presets_are_the_documented_five():
    assert available_presets() == sorted(PRESETS)


def test_unknown_preset_and_option_list_what_exists():
    with pytest.raises(ConfigError, match="available presets: ctc_medium, ctc_small, large, medium, small"):
        create_model("huge")
    with pytest.raises(ConfigError, match="unknown option 'hidden'"):
        create_model("small", hidden=3)
