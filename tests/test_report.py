"""runner/report.py: report.html of a small real evaluation, its content, and how a real browser renders it."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from inference.helpers import save_checkpoint

from runner.config import compose_config
from runner.metrics import ScoredSamples
from runner.report import misreads, reject_curve_svg

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "report.png"


@pytest.fixture(scope="module")
def evaluated(tiny_dataset, tmp_path_factory):
    """(run dir, metrics.json) of `runner.evaluate` on the tiny dataset's val_hard split with an untrained model,
    whose run dir has a training history: every image is misread, so the gallery has all of them."""
    from runner.evaluate import evaluate

    run = tmp_path_factory.mktemp("run")
    checkpoint = save_checkpoint(run / "checkpoints" / "best.pt")
    history = [{"epoch": epoch, "train/loss": 2.0 / epoch, "val/loss": 2.5 / epoch, "val/seq_accuracy": 0.1 * epoch}
               for epoch in (1, 2, 3)]
    (run / "metrics.json").write_text(json.dumps({"history": history}), encoding="utf-8")
    out = tmp_path_factory.mktemp("evaluate")
    overrides = [f"checkpoint={checkpoint}", f"metadata={tiny_dataset}", "split=val_hard", "batch_size=4"]
    evaluate(compose_config("evaluate", overrides), out, overrides)
    return out, json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def test_report_holds_the_scores_the_misreads_and_nothing_from_outside(evaluated):
    out, metrics = evaluated
    page = (out / "report.html").read_text(encoding="utf-8")
    scores = metrics["metrics"]
    split_row = (f'<td class="t">val_hard</td><td>{int(scores["count"])}</td><td>{scores["seq_accuracy"]:.4f}</td>'
                 f'<td>{scores["cer"]:.4f}</td>')
    assert split_row in page  # the table's numbers are metrics.json's
    for font, row in metrics["per_font"].items():
        assert f'<td class="t">{font}</td><td>{row["images"]}</td><td>{row["seq_accuracy"]:.4f}</td>' in page
    assert metrics["per_degradation"] and sum(row["images"] for row in metrics["per_font"].values()) == 6
    wrong = metrics["error_analysis"]["wrong_sequences"]
    assert wrong > 0 and f"{wrong} of {wrong} misreads" in page
    for example in metrics["error_analysis"]["worst_examples"]:
        assert example["truth"] in page and Path(example["path"]).name in page
    gallery = page[page.index('<table class="gallery">'):]
    assert gallery.count('src="data:image/png;base64,') == 2 * wrong  # original and model input of each misread
    assert page.count('src="data:image/png;base64,') == 2 * wrong + 2  # + confusion matrix and training curves
    assert "<svg" in page and "reject curve" in page and "AUROC" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower()
    confidence = metrics["confidence"]
    assert confidence["images"] == 6 and confidence["reject_curve"][-1]["kept"] == 1.0
    assert confidence["threshold"] is None and "No confidence threshold reaches 99.5%" in page


def test_text_from_data_is_escaped_and_the_most_confident_misreads_come_first():
    samples = ScoredSamples(["១", "២", "៣", "៤"], ["១", "៩", "៩", "៩"], ["a", "b", "c", "d"], [0.9, 0.2, 0.8, 0.2])
    assert misreads(samples) == [2, 1, 3] and misreads(samples, limit=1) == [2]
    svg = reject_curve_svg([{"threshold": 0.5, "kept": 1.0, "accuracy": 0.5}], None, 0.995)
    assert svg.startswith("<svg") and "<polyline" in svg and "http" not in svg


def find_browser() -> str | None:
    return next((path for name in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if (path := shutil.which(name))), None)


@pytest.mark.skipif(find_browser() is None, reason="no headless browser (chromium / google-chrome) on PATH; "
                                                   "install one with `apt-get install chromium`")
def test_a_headless_browser_renders_the_report_without_console_errors(evaluated, tmp_path):
    out, _ = evaluated
    screenshot = tmp_path / "report.png"
    result = subprocess.run(
        [find_browser(), "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
         "--window-size=1100,1800", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one
