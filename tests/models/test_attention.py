"""runner/models/attention.py: the attention decoder's greedy decoding and confidence."""

import pytest
import torch

from runner.charset import CHARSETS, EOS
from runner.models import create_model

DIGITS_CHARSET = CHARSETS["digits"]


def test_attention_decode_stops_at_eos_and_confidence_is_product_up_to_eos():
    model = create_model("small")
    logits = torch.full((1, 9, DIGITS_CHARSET.vocab_size), -30.0)
    for step, token in enumerate([DIGITS_CHARSET.encode("៣")[0], EOS, DIGITS_CHARSET.encode("៤")[0]]):
        logits[0, step, token] = 0.0
    logits[0, 0, DIGITS_CHARSET.encode("៧")[0]] = 0.0  # step 0: ៣ and ៧ tie at p=0.5 each (argmax takes ៣)
    texts, confidences, char_confidences = model.decode_logits(logits)
    assert texts == ["៣"] and confidences[0] == pytest.approx(0.5)
