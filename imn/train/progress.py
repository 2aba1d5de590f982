"""Periodic progress lines with rate and ETA for long loops (training, explanation, ...)."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("imn")


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Logs ``what i/total, rate, ETA`` at most every ``interval`` seconds.

    ``units_per_item`` converts items (steps) into the unit the rate is quoted in (samples).
    """

    def __init__(self, what: str, total: int, *, unit: str = "samples", units_per_item: int = 1,
                 interval: float = 10.0, log: logging.Logger = logger):
        self.what, self.total, self.unit = what, total, unit
        self.units_per_item = units_per_item
        self.interval = interval
        self.log = log
        self.start = time.perf_counter()
        self.last_print = self.start
        self.done = 0

    def update(self, n: int = 1, extra: str = "", force: bool = False) -> None:
        self.done += n
        now = time.perf_counter()
        if not force and now - self.last_print < self.interval and self.done < self.total:
            return
        self.last_print = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done * self.units_per_item / elapsed
        remaining = (self.total - self.done) * self.units_per_item / max(rate, 1e-9)
        self.log.info(
            "%s %d/%d  %.1f %s/s  elapsed %s  ETA %s%s",
            self.what, self.done, self.total, rate, self.unit,
            format_seconds(elapsed), format_seconds(remaining), f"  {extra}" if extra else "",
        )

    @property
    def rate(self) -> float:
        return self.done * self.units_per_item / max(time.perf_counter() - self.start, 1e-9)
