"""Helpers of benchmarks/bench_training.py (no timings asserted: only what the batches contain)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_accuracy import accuracy_markdown, compare_with_tesseract  # noqa: E402
from bench_training import model_options, models_markdown, tuning_verdict  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from runner.data.config import DataConfig  # noqa: E402
from runner.models import create_model  # noqa: E402
from runner.training.checkpoint import atomic_save, build_checkpoint  # noqa: E402
from runner.tesseract import tesseract_command  # noqa: E402


def test_model_speed_table_starts_from_the_default_preset_and_counts_parameters():
    options = model_options()
    assert options[0] == ("ctc_small", ["model=ctc_small"], "model=ctc_small")
    assert sorted(name for name, _, _ in options) == ["ctc_medium", "ctc_small", "large", "medium", "small"]
    rows = [{"option": "ctc_small", "images_per_s": 1000.0, "ratio": 1.0},
            {"option": "large", "images_per_s": 150.0, "ratio": 0.15},
            {"option": "small", "note": "failed: out of memory"}]
    table = models_markdown(rows, batches=8, rounds=3).splitlines()
    params = sum(p.numel() for p in create_model("ctc_small").parameters()) / 1e6
    assert f"| ctc_small | {params:.2f} M | 1000 | 1.00× |" in table
    assert "| large | 5.35 M | 150 | 0.15× |" in table
    assert "| small | – | – | failed: out of memory |" in table


def test_tuning_verdict_thresholds():
    assert tuning_verdict(1.25) == "helps"
    assert tuning_verdict(1.0) == "no clear change"
    assert tuning_verdict(0.5) == "hurts"


def test_accuracy_next_to_tesseract_reads_the_same_images_of_every_split(tmp_path):
    data = DataConfig(cache_dir=str(tmp_path / "cache"), train_size=4, val_size=6, hard_val_size=5)
    config_yaml = OmegaConf.to_yaml({"seed": 3, "data": OmegaConf.structured(data)})
    payload = build_checkpoint(model=create_model("ctc_small"), epoch=1, global_step=1, metrics={},
                               config_yaml=config_yaml, preprocess={"height": 32, "width": 128})
    atomic_save(payload, tmp_path / "best.pt")
    tesseract = tesseract_command() is not None
    rows = compare_with_tesseract(tmp_path / "best.pt", images=5, tesseract=tesseract)
    assert [row["split"] for row in rows][:2] == ["val", "val_hard"], "the training data's own splits, found again"
    for row in rows:
        assert row["images"] == 5 and 0.0 <= row["model_seq_accuracy"] <= 1.0
        assert (row["tesseract_seq_accuracy"] is not None) == tesseract
    assert {row["model"] for row in rows} == {"ctc_small"}
    table = accuracy_markdown(rows)
    assert all(f"| {row['split']} (" in table for row in rows)
