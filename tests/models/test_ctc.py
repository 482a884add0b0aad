"""runner/models/ctc.py: CTC decoding and the width a CTC model needs."""

import numpy as np
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


def test_ctc_char_confidence_is_the_best_frame_of_each_characters_run():
    from runner.decoding import ctc_decode

    one, two = DIGITS_CHARSET.encode("១")[0], DIGITS_CHARSET.encode("២")[0]
    probabilities = [(one, 0.6), (one, 0.9), (3, 0.99), (two, 0.7), (3, 0.5), (two, 0.8)]
    logits = torch.full((1, len(probabilities), DIGITS_CHARSET.vocab_size), -1e4)
    for step, (token, p) in enumerate(probabilities):  # two classes per frame: the argmax with p, the rest on PAD
        logits[0, step, token] = float(np.log(p))
        logits[0, step, 0] = float(np.log(1 - p))
    texts, confidences, char_confidences = ctc_decode(logits.numpy(), DIGITS_CHARSET)
    assert texts == ["១២២"]
    assert char_confidences[0] == pytest.approx([0.9, 0.7, 0.8])
    assert confidences[0] == pytest.approx(np.prod([p for _, p in probabilities]))


def test_a_numbers_model_has_an_output_per_token_and_reads_separators():
    numbers = CHARSETS["numbers"]
    model = create_model("ctc_small", charset="numbers")
    assert model(torch.rand(1, 1, 32, 128)).shape == (1, 32, numbers.vocab_size)
    path = [numbers.char_to_index[c] for c in "១,៥"] + [3] * 29
    logits = torch.nn.functional.one_hot(torch.tensor([path]), numbers.vocab_size).float() * 50
    assert model.decode_logits(logits).texts == ["១,៥"]
    assert create_model("ctc_small").decode_texts(logits[..., :14]) == ["១៥"]  # a digits model knows no ','
