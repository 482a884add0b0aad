"""Progress of long steps: a tqdm bar on a terminal, a few log lines elsewhere (SLURM, CI, pipes).

On a terminal (stderr is a TTY) a step shows a tqdm bar on stderr; elsewhere carriage-return
bars would flood the log, so it logs one line now and then instead: each time another tenth is
done, and at least every LINE_EVERY_S seconds (`decoding val: 1000/2000 images (50%), 12 s, ETA 12 s`).
A step that finishes within QUIET_S seconds shows nothing either way.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO, TypeVar

from tqdm.auto import tqdm

log = logging.getLogger("runner.progress")

QUIET_S = 3.0  # a step shorter than this shows no progress at all
LINE_EVERY_S = 30.0  # the longest a log line waits while the next tenth is not yet done
PARTS = 10  # a log line each time another tenth of the work is done
T = TypeVar("T")
clock = time.monotonic  # log lines read this clock (tests replace it)


def on_terminal(stream: Optional[TextIO] = None) -> bool:
    """Whether `stream` (default: stderr) is a terminal, where a redrawn bar is readable."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class LogLines:
    """tqdm's update/set_postfix/close for logs: a bounded number of one-line entries, no '\\r'."""

    def __init__(self, total: int, desc: str, unit: str, *, initial: int = 0, delay: float = QUIET_S) -> None:
        self.total, self.desc, self.unit, self.n, self.delay = total, desc, unit, initial, delay
        self._started = clock()
        self._last_line: Optional[float] = None  # when the last line was logged
        self._last_n = initial
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = clock()
        if now - self._started < self.delay or self.n >= self.total:
            return  # too soon to say anything; the last line is close()'s
        since = now - (self._last_line if self._last_line is not None else self._started)
        parts = max(self.total, 1)
        if self.n * PARTS // parts > self._last_n * PARTS // parts or since >= LINE_EVERY_S:
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self._started
        done = f"{self.n}/{self.total} {self.unit} ({self.n / max(self.total, 1):.0%}), {_duration(elapsed)}"
        if 0 < self.n < self.total:
            done += f", ETA {_duration(elapsed / self.n * (self.total - self.n))}"
        log.info("%s: %s", self.desc, done)
        self._last_line, self._last_n = now, self.n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """Bars show running figures; the log has its own summary lines."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        now = clock()
        if self._last_line is not None or now - self._started >= self.delay:
            self._line(now)

    def __enter__(self) -> "LogLines":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int, desc: str, unit: str = "it", *, show: Optional[bool] = None, log_lines: bool = True,
                 stream: Optional[TextIO] = None, initial: int = 0, leave: bool = True,
                 delay: float = QUIET_S) -> tqdm | LogLines:
    """A progress display with tqdm's update/set_postfix/close for a step of `total` `unit`s.

    `show`: None = a tqdm bar on `stream` (default stderr) when it is a terminal, else log lines
    (with `log_lines`) or nothing; True = a tqdm bar anyway; False = nothing.
    """
    stream = sys.stderr if stream is None else stream
    if show is None:
        show = on_terminal(stream) or None
    if show is None and log_lines:
        return LogLines(total, desc, unit, initial=initial, delay=delay)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, leave=leave, delay=delay,
                dynamic_ncols=True, disable=not show)


def progress(iterable: Iterable[T], total: int, desc: str, unit: str = "it", **options: Any) -> Iterator[T]:
    """`iterable`'s items, one `unit` each, shown by `progress_bar(total, desc, unit, **options)`."""
    with progress_bar(total, desc, unit, **options) as bar:
        for item in iterable:
            yield item
            bar.update(1)
