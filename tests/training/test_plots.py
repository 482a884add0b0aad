"""Figures and reports a person reads (runner/training/plots.py)."""

import torch
from PIL import Image

from runner.training.plots import ShownExample, examples_figure, write_curves

HISTORY = [{"epoch": epoch, "train/loss": 2.0 / epoch, "train/seq_accuracy": 0.3 * epoch, "val/loss": 1.5 / epoch,
            "val/seq_accuracy": 0.31 * epoch, "hard_val/seq_accuracy": 0.2 * epoch, "lr": 1e-3 / epoch,
            "train/samples_per_s": 900.0 + epoch, "epoch_time_s": 10.0} for epoch in (1, 2, 3)]


def test_curves_png_is_written_from_a_history(tmp_path):
    path = write_curves(HISTORY, tmp_path / "run" / "curves.png")
    assert path == tmp_path / "run" / "curves.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size == (1000, 700)
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]  # written atomically: no temporary left


def test_curves_name_the_splits_and_survive_missing_columns(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn = {}
    real_savefig = Figure.savefig

    def savefig(figure, *args, **kwargs):
        drawn["titles"] = [axes.get_title() for axes in figure.axes]
        drawn["legends"] = [[text.get_text() for text in axes.get_legend().get_texts()] if axes.get_legend() else []
                            for axes in figure.axes]
        drawn["texts"] = [[text.get_text() for text in axes.texts] for axes in figure.axes]
        return real_savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    write_curves(HISTORY, tmp_path / "curves.png")
    assert drawn["titles"] == ["loss", "sequence accuracy", "learning rate (epoch end)", "training throughput"]
    assert drawn["legends"][:2] == [["train", "val"], ["hard_val", "train", "val"]]
    old_run = [{"epoch": 1, "train/loss": 1.0, "val/loss": 0.9, "lr": 1e-3}]  # no accuracy or throughput
    write_curves(old_run, tmp_path / "curves.png")
    assert drawn["texts"][1] == ["not recorded"] and drawn["texts"][3] == ["not recorded"]


def test_examples_are_captioned_with_truth_reading_and_confidence():
    examples = [ShownExample(torch.rand(1, 32, 128), "១២", "១៣", 0.875),
                ShownExample(torch.rand(1, 32, 128), "៤", "៤", 0.99)]
    figure = examples_figure(examples)
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert titles == ["truth 12, read 13 (0.88)", "correct: 4 (0.99)"]
    assert [axes.title.get_color() for axes in figure.axes[:2]] == ["red", "green"]
    assert figure.get_suptitle().startswith("1 misreads, most confident first; 1 correct")
