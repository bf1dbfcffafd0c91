"""One progress reporter for every trainer: throttled lines with a rate and an ETA."""

from __future__ import annotations

import math
import time
from typing import Callable

__all__ = ["Every", "Progress", "format_duration"]


def format_duration(s: float) -> str:
  """`1h02m` or `3m04s` (`?` for an unknown, infinite time), for progress lines."""
  if not math.isfinite(s):
    return "?"
  s = int(s)
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Every:
  """A wall-clock period: `due(now)` is True once `seconds` passed since the last time it
  was (or since the start); `due(now, force=True)` is True now and starts the period
  again. `seconds <= 0` is due every time."""

  def __init__(self, seconds: float, now: float | None = None):
    self.seconds = float(seconds)
    self.last = time.time() if now is None else now

  def due(self, now: float, force: bool = False) -> bool:
    if force or now - self.last >= self.seconds:
      self.last = now
      return True
    return False


class Progress:
  """Progress lines every `every_s` seconds, with the rate of this session's work.

  `advance(units)` counts work done (a trainer's own unit: chunks, updates per run);
  `rate` is units per second since the start (or the last `restart`), and `eta(left)` the
  seconds `left` more units take at that rate (infinite before any work).
  """

  def __init__(self, every_s: float, say: Callable[[str], None]):
    self.say = say
    self.period = Every(every_s)
    self.restart()

  def restart(self, now: float | None = None) -> None:
    """Measures the rate from `now` on (e.g. a new epoch); the report period goes on."""
    self.start = time.time() if now is None else now
    self.units = 0

  def advance(self, units: float = 1) -> None:
    self.units += units

  def elapsed(self, now: float) -> float:
    return now - self.start

  def rate(self, now: float) -> float:
    return self.units / max(now - self.start, 1e-9)

  def eta(self, left: float, now: float) -> float:
    rate = self.rate(now)
    return left / rate if rate > 0 else math.inf

  def report(self, line: Callable[[], str], now: float, force: bool = False) -> None:
    """Says `line()` when the period is due (or `force`)."""
    if self.period.due(now, force):
      self.say(line())
