"""runner/release.py: the shipped model's card holds figures a fresh evaluation of the shipped file reproduces."""

import json

import pytest

from runner.data.config import DataConfig
from runner.data.generate import data_fonts
from runner.release import SHIPPED_DIR, card_markdown, check_figures

MODEL = SHIPPED_DIR / "default.onnx"
CARD = SHIPPED_DIR / "model_card.json"


@pytest.fixture(scope="module")
def card():
    if not MODEL.is_file():
        pytest.skip(f"no shipped model at {MODEL} (make release-model)")
    return json.loads(CARD.read_text(encoding="utf-8"))


def test_the_card_figures_are_what_the_shipped_model_reads_on_the_check_split(card, tmp_path):
    families = sorted({font.family for font in data_fonts(DataConfig())})
    if families != card["fonts"]:
        pytest.skip(f"this machine's Khmer fonts {families} differ from those the card's check data was rendered "
                    f"with ({card['fonts']}): `make fonts` installs them")
    fresh = check_figures(MODEL, tmp_path)
    recorded = card["check"]
    assert (fresh["split"], fresh["images"], fresh["data"]) == (recorded["split"], recorded["images"], recorded["data"])
    assert fresh["seq_accuracy"] == pytest.approx(recorded["seq_accuracy"], abs=1.0 / recorded["images"])
    assert fresh["cer"] == pytest.approx(recorded["cer"], abs=0.01)


def test_the_card_names_its_commits_fonts_splits_and_limits(card):
    scores = {row["split"]: row for row in card["splits"]}
    assert set(scores) == {"val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"}
    # what we ship: at least 99% of clean numbers in the training fonts, 97% in held-out families
    assert scores["val"]["seq_accuracy"] >= 0.99 and scores["val_unseen_fonts"]["seq_accuracy"] >= 0.97
    assert card["trained_at_commit"] and card["packaged_at_commit"] and len(card["fonts"]) >= 2 and card["limits"]
    markdown = (SHIPPED_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert markdown == card_markdown(card)  # the readable card says exactly what the data says
