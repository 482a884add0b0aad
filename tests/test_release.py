"""runner/release.py: each shipped model's card holds figures a fresh evaluation of the shipped file reproduces."""

import json

import pytest

from runner.data.config import DataConfig
from runner.data.generate import data_fonts
from runner.release import card_charset, card_markdown, card_paths, check_figures
from runner.schema import SHIPPED_MODELS, model_path


@pytest.fixture(scope="module", params=sorted(SHIPPED_MODELS))
def shipped(request):
    """(charset, model file, card) of each shipped model."""
    model = SHIPPED_MODELS[request.param]
    if not model.is_file():
        pytest.skip(f"no shipped {request.param} model at {model} (make release-model)")
    return request.param, model, json.loads(card_paths(model)[1].read_text(encoding="utf-8"))


def test_the_card_figures_are_what_the_shipped_model_reads_on_the_check_split(shipped, tmp_path):
    _, model, card = shipped
    families = sorted({font.family for font in data_fonts(DataConfig())})
    if families != card["fonts"]:
        pytest.skip(f"this machine's Khmer fonts {families} differ from those the card's check data was rendered "
                    f"with ({card['fonts']}): `make fonts` installs them")
    fresh = check_figures(model, tmp_path)
    recorded = card["check"]
    assert (fresh["split"], fresh["images"], fresh["data"]) == (recorded["split"], recorded["images"], recorded["data"])
    assert fresh["seq_accuracy"] == pytest.approx(recorded["seq_accuracy"], abs=1.0 / recorded["images"])
    assert fresh["cer"] == pytest.approx(recorded["cer"], abs=0.01)


def test_the_card_names_its_commits_fonts_splits_charset_and_limits(shipped):
    charset, model, card = shipped
    scores = {row["split"]: row for row in card["splits"]}
    assert set(scores) == {"val", "val_hard", "val_unseen_fonts", "val_hard_unseen_fonts"}
    # what we ship: at least 99% (digits) / 97% (numbers) of clean numbers in the training fonts, 97% in held-out
    # families
    assert scores["val"]["seq_accuracy"] >= (0.99 if charset == "digits" else 0.97)
    assert scores["val_unseen_fonts"]["seq_accuracy"] >= 0.97
    assert card_charset(card["config"]) == charset and card["model"] == model.name
    assert card["trained_at_commit"] and card["packaged_at_commit"] and len(card["fonts"]) >= 2 and card["limits"]
    markdown = card_paths(model)[0].read_text(encoding="utf-8")
    assert markdown == card_markdown(card)  # the readable card says exactly what the data says


def test_a_shipped_model_is_named_by_its_charset_and_paths_stay_paths(tmp_path, monkeypatch):
    assert model_path(None) == SHIPPED_MODELS["digits"]
    assert model_path("numbers") == SHIPPED_MODELS["numbers"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "numbers").mkdir()  # a run dir called numbers here is the user's, not the shipped model
    assert model_path("numbers") == tmp_path / "numbers" or model_path("numbers").resolve() == tmp_path / "numbers"
    assert card_paths(SHIPPED_MODELS["numbers"])[0].name == "MODEL_CARD.numbers.md"
    assert card_paths(SHIPPED_MODELS["digits"])[1].name == "model_card.json"
