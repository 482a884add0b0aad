"""runner/models/ctc.py: CTC decoding and the width a CTC model needs."""

import pytest
import torch

from runner.charset import CHARSETS, EOS
from runner.errors import ConfigError
from runner.models import create_model

DIGITS_CHARSET = CHARSETS["digits"]


def test_ctc_decode_collapses_repeats_and_drops_blanks():
    model = create_model("ctc_small")
    one, two = DIGITS_CHARSET.encode("១")[0], DIGITS_CHARSET.encode("២")[0]
    path = [one, one, 3, one, two, two, 3, 3, EOS, two] + [3] * 22
    logits = torch.nn.functional.one_hot(torch.tensor([path]), DIGITS_CHARSET.vocab_size).float() * 50
    texts, confidences, char_confidences = model.decode_logits(logits)
    assert texts == ["១១២២"] and confidences[0] == pytest.approx(1.0)


def test_ctc_too_narrow_for_max_length_names_model_and_width():
    with pytest.raises(ConfigError, match=r"model=ctc_small: data.image_width is 64.*at least 17.*>= 68"):
        create_model("ctc_small", image_width=64)
