"""Progress of long steps (runner/progress.py): a tqdm bar on a terminal, a few log lines elsewhere."""

import io
import logging

import pytest
from tqdm import tqdm

from runner import progress
from runner.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress, "clock", fake)
    return fake


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "runner.progress"]


def test_on_a_terminal_it_is_a_tqdm_bar_on_that_stream():
    stream = Terminal()
    with progress_bar(40, "decoding val", "images", stream=stream, delay=0) as bar:
        assert isinstance(bar, tqdm)
        bar.update(40)
    shown = stream.getvalue()
    assert "decoding val" in shown and "40/40" in shown and "\r" in shown


def test_elsewhere_a_long_step_logs_a_bounded_number_of_lines_and_no_carriage_returns(clock, caplog):
    stream = io.StringIO()  # a pipe, a SLURM log: not a terminal
    caplog.set_level(logging.INFO, logger="runner.progress")
    with progress_bar(2000, "decoding val", "images", stream=stream) as bar:
        for _ in range(2000):
            clock.now += 0.012  # 24 s in all
            bar.update(1)
    logged = lines(caplog)
    assert stream.getvalue() == ""  # nothing drawn on the stream itself
    assert not any("\r" in line for line in logged)
    assert 5 <= len(logged) <= 11  # about one per tenth after the quiet start, and the last
    assert "decoding val: 1000/2000 images (50%), 12 s, ETA 12 s" in logged
    assert logged[-1] == "decoding val: 2000/2000 images (100%), 24 s"


def test_a_slow_step_logs_at_least_every_30_seconds(clock, caplog):
    caplog.set_level(logging.INFO, logger="runner.progress")
    with progress_bar(1000, "evaluating", "batch", stream=io.StringIO()) as bar:
        for _ in range(40):
            clock.now += 10.0  # 400 s for 4% of the work
            bar.update(1)
    logged = lines(caplog)
    assert 12 <= len(logged) <= 15  # 400 s / 30 s, plus the last
    assert logged[0].startswith("evaluating: 3/1000 batch (0%), 30 s, ETA 2 h 46 min")


def test_a_short_step_shows_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="runner.progress")
    stream = io.StringIO()
    with progress_bar(100, "predicting", "images", stream=stream) as bar:
        for _ in range(100):
            clock.now += 0.01  # 1 s in all
            bar.update(1)
    assert lines(caplog) == [] and stream.getvalue() == ""


def test_show_false_is_silent_and_show_true_draws_a_bar_even_without_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="runner.progress")
    off, on = io.StringIO(), io.StringIO()
    with progress_bar(3, "epoch 1/3", stream=off, show=False) as bar:
        bar.update(3)
    with progress_bar(3, "epoch 1/3", stream=on, show=True, delay=0) as bar:
        bar.update(3)
    assert off.getvalue() == "" and lines(caplog) == []
    assert "epoch 1/3" in on.getvalue() and "3/3" in on.getvalue()


def test_without_log_lines_a_step_off_the_terminal_shows_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="runner.progress")
    with progress_bar(10, "epoch 1/3", stream=io.StringIO(), log_lines=False) as bar:
        clock.now += 100.0
        bar.update(10)
    assert lines(caplog) == []


def test_progress_yields_every_item_and_counts_them():
    stream = Terminal()
    assert list(progress.progress(iter(range(7)), 7, "evaluating", "batch", stream=stream, delay=0)) == list(range(7))
    assert "7/7" in stream.getvalue()
