"""runner/models/attention.py: the attention decoder's greedy decoding and confidence."""

import numpy as np
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


def test_attention_char_confidence_is_its_steps_max_probability():
    from runner.decoding import attention_decode

    steps = [(DIGITS_CHARSET.encode("៣")[0], 0.6), (DIGITS_CHARSET.encode("៤")[0], 0.8), (EOS, 0.9), (4, 0.1)]
    logits = torch.full((2, len(steps), DIGITS_CHARSET.vocab_size), -1e4)
    for step, (token, p) in enumerate(steps):
        logits[:, step, token] = float(np.log(p))
        logits[:, step, 0 if token else 1] = float(np.log(1 - p))
    logits[1, 0, :] = -1e4
    logits[1, 0, EOS] = 0.0  # the second row ends at once: no characters
    texts, confidences, char_confidences = attention_decode(logits.numpy(), DIGITS_CHARSET)
    assert texts == ["៣៤", ""] and char_confidences == [pytest.approx([0.6, 0.8]), []]
    assert confidences[0] == pytest.approx(0.6 * 0.8 * 0.9)


def test_an_attention_model_for_numbers_embeds_and_classifies_every_token():
    numbers = CHARSETS["numbers"]
    model = create_model("small", charset="numbers", max_length=20)
    assert model.decoder.embedding.num_embeddings == model.decoder.classifier.out_features == numbers.vocab_size
    assert model(torch.rand(1, 1, 32, 128)).shape == (1, 21, numbers.vocab_size)
