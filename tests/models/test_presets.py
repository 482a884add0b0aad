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


@pytest.mark.parametrize("name", available_presets())
def test_every_preset_takes_labels_of_24_characters_where_its_width_allows(name):
    """charset=numbers labels run up to 20 characters; a CTC model needs 2*24+1 = 49 columns (196 pixels)."""
    if name.startswith("ctc"):
        with pytest.raises(ConfigError, match=r"data.max_length=24 characters need at least 49.*image_width >= 196"):
            create_model(name, charset="numbers", max_length=24)
        model = create_model(name, charset="numbers", max_length=24, image_width=196)
    else:
        model = create_model(name, charset="numbers", max_length=24)
    assert model.max_length == 24 and model.charset.name == "numbers"
