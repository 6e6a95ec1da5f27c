"""The scan path's window counters use the same window arithmetic as Faust's windowed tables."""

from __future__ import annotations

import random

import pytest
from faust.windows import HoppingWindow, TumblingWindow

from app.windows import HoppingCounter, TumblingCounter


def faust_tumbling_count(events: list[float], ts: float, size: float) -> int:
    window = TumblingWindow(size)
    current = window.current(ts)
    return sum(1 for e in events if current in window.ranges(e))


def faust_hopping_delta_count(events: list[float], ts: float, size: float, step: float) -> int:
    """What `table[key].delta(size - step)` returns on a hopping table that got `events`."""
    window = HoppingWindow(size, step)
    target = window.delta(ts, size - step)
    return sum(1 for e in events if target in window.ranges(e))


@pytest.mark.parametrize("seed", range(5))
def test_tumbling_matches_faust(seed: int) -> None:
    rng = random.Random(seed)
    counter = TumblingCounter(60.0)
    events: list[float] = []
    ts = 1_700_000_000.0
    for _ in range(200):
        ts += rng.choice([0.5, 3, 20, 61, 130])
        events.append(ts)
        got = counter.add("s", ts)
        assert got == faust_tumbling_count(events, ts, 60.0)


@pytest.mark.parametrize("seed", range(5))
def test_hopping_recent_matches_faust_delta(seed: int) -> None:
    rng = random.Random(seed)
    counter = HoppingCounter(600.0, 60.0)
    events: list[float] = []
    ts = 1_700_000_000.0
    for _ in range(150):
        ts += rng.choice([1, 15, 45, 90, 400])
        events.append(ts)
        counter.add("s", ts)
        assert counter.recent("s", ts) == faust_hopping_delta_count(events, ts, 600.0, 60.0)


def test_counters_are_per_key_and_expire() -> None:
    counter = TumblingCounter(10.0, keep=2)
    for i in range(5000):
        counter.add(f"k{i}", 1000.0 + i)
    assert counter.current("k4999", 5999.0) == 1
    assert counter.current("k0", 1000.0) == 0  # expired long ago
    assert len(counter._counts) <= 4097
