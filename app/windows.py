"""In-process twins of the worker's Faust windowed tables, for `aimds scan` and tests.

The worker counts prompts per session in a 60 s tumbling window and blocks per session in a
600 s window hopping every 60 s, both by event time. `aimds scan` has no Faust, so it keeps
the same counts here with the same window arithmetic (window start = ts - ts % step), so
both paths hand the verification stage identical session facts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

#: the worker's windowed tables and the scan path's counters use these same sizes (seconds)
RATE_WINDOW_S = 60.0
BLOCKED_WINDOW_S = 600.0
BLOCKED_STEP_S = 60.0
#: the worker keeps a session's temporal state in tumbling windows of this size, reading the
#: window of the record and the ones on each side: twice the temporal stage's idle TTL, so a
#: state within the TTL is always in one of them, and windows expire after two sizes
SESSION_WINDOW_S = 3600.0


@dataclass
class TumblingCounter:
    """Counts per key in tumbling windows of `size` seconds, keeping `keep` windows."""

    size: float
    keep: int = 10
    _counts: dict[tuple[str, float], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: str, ts: float, n: int = 1) -> int:
        """Add to the window holding `ts`; return that window's count."""
        start = ts - ts % self.size
        self._counts[(key, start)] += n
        self._expire(start)
        return self._counts[(key, start)]

    def current(self, key: str, ts: float) -> int:
        """The count of the window holding `ts`."""
        return self._counts.get((key, ts - ts % self.size), 0)

    def _expire(self, newest: float) -> None:
        if len(self._counts) > 4096:
            horizon = newest - self.keep * self.size
            for k in [k for k in self._counts if k[1] < horizon]:
                del self._counts[k]


@dataclass
class HoppingCounter:
    """Counts per key in windows of `size` seconds that start every `step` seconds."""

    size: float
    step: float
    _tumbling: TumblingCounter = field(init=False)

    def __post_init__(self) -> None:
        self._tumbling = TumblingCounter(self.step, keep=int(self.size // self.step) + 2)

    def add(self, key: str, ts: float, n: int = 1) -> int:
        """Add an event at `ts`; return `recent(key, ts)`."""
        self._tumbling.add(key, ts, n)
        return self.recent(key, ts)

    def recent(self, key: str, ts: float) -> int:
        """Events in the oldest hopping window that still contains `ts` (the last ~`size` s).

        That window starts at floor((ts - size + step) / step) * step; a hopping window is the
        union of `size / step` tumbling windows of `step`. The worker reads the same window
        with `table[key].delta(size - step)`.
        """
        first = (ts - self.size + self.step) // self.step * self.step
        last = ts // self.step * self.step
        total, start = 0, first
        while start <= last:
            total += self._tumbling.current(key, start)
            start += self.step
        return total
