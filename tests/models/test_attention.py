"""runner/models/attention.py: the attention decoder's greedy decoding and confidence."""

import pytest
import torch

from runner.charset import EOS, VOCAB_SIZE, encode
from runner.models import create_model


def test_attention_decode_stops_at_eos_and_confidence_is_product_up_to_eos():
    model = create_model("small")
    logits = torch.full((1, 9, VOCAB_SIZE), -30.0)
    for step, token in enumerate([encode("៣")[0], EOS, encode("៤")[0]]):
        logits[0, step, token] = 0.0
    logits[0, 0, encode("៧")[0]] = 0.0  # step 0: ៣ and ៧ tie at p=0.5 each (argmax takes ៣)
    texts, confidences = model.decode_logits(logits)
    assert texts == ["៣"] and confidences[0] == pytest.approx(0.5)
