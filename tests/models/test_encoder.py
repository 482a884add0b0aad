"""runner/models/encoder.py: the shared CNN + BiLSTM encoder and what every model does with it."""

import pytest
import torch

from models.helpers import PRESETS, loss_for, make_batch
from runner.charset import CHARSETS
from runner.device import cpu_bf16_support
from runner.models import create_model, model_from_config

DIGITS_CHARSET = CHARSETS["digits"]


@pytest.mark.parametrize("name", PRESETS)
def test_forward_shapes_predict_and_config_roundtrip(name):
    model = create_model(name)
    batch = make_batch(["០១២", "៩៨៧៦៥៤៣២"], max_length=8, width=128)
    logits = model(batch["images"], batch["targets"])
    greedy = model(batch["images"])
    if model.head == "attention":
        assert logits.shape == (2, 9, DIGITS_CHARSET.vocab_size)  # predicts targets[:, 1:]
        assert greedy.shape == (2, model.max_length + 1, DIGITS_CHARSET.vocab_size)
    else:
        assert logits.shape == greedy.shape == (2, 32, DIGITS_CHARSET.vocab_size)  # T = width / 4
    texts, confidences, _ = model.predict_with_confidence(batch["images"])
    assert len(texts) == 2 and all(set(text) <= set("០១២៣៤៥៦៧៨៩") for text in texts)
    assert all(0.0 <= confidence <= 1.0 for confidence in confidences)
    assert model.training  # predict restores the mode it found
    config = model.config_dict()
    assert config["_target_"].startswith("runner.models.") and config["name"] == name
    torch.save({"model": config}, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    rebuilt = model_from_config(torch.load(buffer, weights_only=True)["model"])
    assert type(rebuilt) is type(model) and rebuilt.config_dict() == config


# the bigger presets take tens of seconds each on 2 cores: they run with `make test-slow`
OVERFIT_CASES = ["small", "ctc_small"] + [pytest.param(name, marks=pytest.mark.slow)
                                         for name in ("medium", "large", "ctc_medium")]


@pytest.mark.parametrize("name", OVERFIT_CASES)
def test_overfits_one_small_batch(name):
    # max_length 4 on 64-pixel-wide images keeps this to a few seconds on 2 cores (CTC: T=16 >= 9).
    torch.manual_seed(0)
    texts = ["០១២៣", "៨៩", "១១៣", "៥"]
    model = create_model(name, dropout=0.0, max_length=4, image_width=64)
    batch = make_batch(texts, max_length=4, width=64)
    loss_fn = loss_for(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(800):  # ctc_small needs ~300 steps with avx512 kernels, ~460 with avx2's (other rounding)
        loss = loss_fn(model(batch["images"], batch["targets"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.05:
            break
    assert loss.item() < 0.05
    with torch.no_grad():
        assert model.decode_logits(model(batch["images"]))[0] == texts
        for _ in range(60):  # let BatchNorm's running statistics catch up with the fitted weights
            model(batch["images"], batch["targets"])
    # predict() runs in eval mode; for attention models it also exits once every row has said EOS
    # (here after 2..5 steps), and must agree with the fixed max_length+1-step path.
    texts_predicted, confidences, _ = model.predict_with_confidence(batch["images"])
    assert texts_predicted == texts
    with torch.no_grad():
        fixed_texts, fixed_confidences, _ = model.eval().decode_logits(model(batch["images"]))
    assert (fixed_texts, fixed_confidences) == (texts, pytest.approx(confidences, abs=1e-6))
    assert all(0.0 < confidence <= 1.0 for confidence in confidences)


@pytest.mark.parametrize("name", ["small", "ctc_small"])
@pytest.mark.skipif(not cpu_bf16_support().native, reason=f"no native bf16 here: {cpu_bf16_support().reason}")
def test_other_widths_channels_last_and_bf16_autocast(name):
    model = create_model(name)
    batch = make_batch(["០១២៣៤៥៦៧"], max_length=8, width=96)
    images = batch["images"].contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_for(model)(model(images, batch["targets"]), batch)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    # Every parameter gets a gradient: DistributedDataParallel needs no find_unused_parameters.
    assert all(p.grad is not None for p in model.parameters())


def test_greedy_forward_traces_to_a_fixed_graph():
    model = create_model("small").eval()
    images = make_batch(["០១"], max_length=8, width=128)["images"]
    traced = torch.jit.trace(model, images, check_trace=False)
    assert torch.allclose(traced(images), model(images), atol=1e-5)
