"""LazyKernels: built on the first call only, once even when threads race for it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app._jit import LazyKernels, njit


def test_kernels_are_built_once_and_returned_ever_after() -> None:
    calls: list[int] = []

    def build() -> tuple[int, ...]:
        calls.append(1)
        return (len(calls),)

    kernels = LazyKernels(build)
    assert calls == []  # nothing is built before the first call
    assert kernels() == (1,)
    assert kernels() == (1,)
    assert calls == [1]


@pytest.mark.parametrize("threads", [2, 8])
def test_racing_threads_build_once(threads: int) -> None:
    calls: list[int] = []
    start = threading.Barrier(threads)

    def build() -> tuple[int, ...]:
        calls.append(1)
        time.sleep(0.05)  # a slow compile: the other threads arrive meanwhile
        return (42,)

    kernels = LazyKernels(build)
    seen: list[tuple[int, ...]] = []

    def worker() -> None:
        start.wait()
        seen.append(kernels())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=10)
    assert calls == [1]
    assert seen == [(42,)] * threads


def _add(a: float, b: float) -> float:
    return a + b


def _twice(x: np.ndarray) -> np.ndarray:
    return x * 2


@pytest.mark.parametrize("inline", [False, True])
def test_njit_compiles_the_function_the_project_way(inline: bool) -> None:
    compiled = njit(_add, inline=inline)
    assert compiled(2.0, 3.5) == 5.5
    assert compiled.targetoptions.get("nogil") is True
    assert np.array_equal(njit(_twice)(np.arange(3.0)), np.array([0.0, 2.0, 4.0]))
