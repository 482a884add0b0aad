import pytest
import torch
import torch.nn.functional as F

from runner.charset import BLANK, CHARSETS, EOS, PAD, SOS
from runner.errors import ConfigError
from runner.losses import OCRLoss
from runner.models import create_model

DIGITS_CHARSET = CHARSETS["digits"]

D = 4  # token id of the digit ០; digit k is D + k


@pytest.fixture
def batch() -> dict:
    # Labels ០១២, ៣, ៤៤ (repeats matter for CTC); max_length 3 -> targets have 5 columns.
    targets = torch.tensor([
        [SOS, D, D + 1, D + 2, EOS],
        [SOS, D + 3, EOS, PAD, PAD],
        [SOS, D + 4, D + 4, EOS, PAD],
    ])
    return {"targets": targets, "target_lengths": torch.tensor([3, 1, 2])}


def attention_logits(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 4, DIGITS_CHARSET.vocab_size, generator=torch.Generator().manual_seed(seed))


def bound(name: str, head: str, **kwargs) -> OCRLoss:
    loss = OCRLoss(name, **kwargs)
    loss.check_compatible(head, "small" if head == "attention" else "ctc_small")
    return loss


def test_crossentropy_ignores_logits_at_pad_positions(batch):
    loss_fn = bound("crossentropy", "attention", label_smoothing=0.1)
    logits = attention_logits()
    changed = logits.clone()
    pad = batch["targets"][:, 1:] == PAD
    changed[pad] = 100.0 * torch.randn_like(changed[pad])
    assert torch.allclose(loss_fn(logits, batch), loss_fn(changed, batch))


def test_crossentropy_is_mean_over_non_pad_tokens(batch):
    logits = attention_logits()
    targets = batch["targets"][:, 1:]
    keep = targets != PAD
    expected = F.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(bound("crossentropy", "attention")(logits, batch), expected)


def test_focal_with_gamma_zero_equals_crossentropy(batch):
    logits = attention_logits(1)
    focal = bound("focal", "attention", gamma=0.0)
    assert torch.allclose(focal(logits, batch), bound("crossentropy", "attention")(logits, batch))


def test_focal_down_weights_easy_tokens_and_applies_alpha(batch):
    logits = attention_logits(2)
    assert bound("focal", "attention", gamma=2.0)(logits, batch) < bound("crossentropy", "attention")(logits, batch)
    double = bound("focal", "attention", gamma=0.0, alpha=[2.0] * 10)  # digits x2, EOS x1
    assert double(logits, batch) > bound("focal", "attention", gamma=0.0)(logits, batch)


def test_ctc_matches_torch_ctc_loss(batch):
    logits = torch.randn(3, 12, DIGITS_CHARSET.vocab_size, generator=torch.Generator().manual_seed(3))
    expected = F.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        torch.tensor([D, D + 1, D + 2, D + 3, D + 4, D + 4]),
        input_lengths=torch.tensor([12, 12, 12]),
        target_lengths=torch.tensor([3, 1, 2]),
        blank=BLANK,
    )
    assert torch.allclose(bound("ctc", "ctc")(logits, batch), expected)


def test_focal_ctc_with_gamma_zero_equals_ctc(batch):
    logits = torch.randn(3, 12, DIGITS_CHARSET.vocab_size, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(bound("focal", "ctc", gamma=0.0)(logits, batch), bound("ctc", "ctc")(logits, batch))
    assert bound("focal", "ctc", gamma=2.0)(logits, batch) <= bound("ctc", "ctc")(logits, batch)


def test_ctc_zero_infinity_handles_impossible_alignment(batch):
    logits = torch.randn(3, 2, DIGITS_CHARSET.vocab_size, requires_grad=True)  # 2 steps cannot hold ០១២ or ៤_៤
    loss = bound("ctc", "ctc")(logits, batch)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_loss_is_float32_under_bf16_autocast(batch):
    logits = attention_logits().bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = bound("crossentropy", "attention")(logits, batch)
    assert loss.dtype == torch.float32


@pytest.mark.parametrize(("loss", "model", "hint"), [
    ("ctc", "large", r"pick a ctc_\* model"),
    ("crossentropy", "ctc_small", "use loss=ctc or loss=focal"),
])
def test_incompatible_loss_and_model_fail_naming_both(loss, model, hint):
    with pytest.raises(ConfigError, match=rf"loss={loss} does not fit model={model}.*{hint}"):
        OCRLoss(loss).bind(create_model(model))


def test_focal_picks_variant_from_the_model():
    assert OCRLoss("focal").bind(create_model("ctc_small")).head == "ctc"
    assert OCRLoss("focal").bind(create_model("small")).head == "attention"


def test_bad_loss_options_are_config_errors():
    with pytest.raises(ConfigError, match="loss.name must be one of crossentropy, ctc, focal"):
        OCRLoss("dice")
    with pytest.raises(ConfigError, match=r"loss.alpha=.* must be 10"):
        OCRLoss("focal", alpha=[1.0, 2.0])
