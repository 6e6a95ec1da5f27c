"""Numba kernels compiled on first use: once per process, thread-safe, cached on disk.

Every compiled hot path (hashing, candidate merges, the normalizer's letter gate, the
temporal observe kernel, index-hit expansion) is built through `LazyKernels`, so importing a
module never pays for numba and two threads never compile the same kernel twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyKernels:
    """The kernels `build` compiles, built on the first call and returned ever after."""

    __slots__ = ("_build", "_kernels", "_lock")

    def __init__(self, build: Callable[[], tuple[Any, ...]]) -> None:
        self._build = build
        self._kernels: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> tuple[Any, ...]:
        """The compiled kernels (compiling them now if this is the first call)."""
        kernels = self._kernels
        if kernels is None:
            with self._lock:
                if self._kernels is None:
                    self._kernels = self._build()
                kernels = self._kernels
        return kernels


def njit(function: Callable[..., Any], *, inline: bool = False) -> Any:
    """`function` compiled the project's way: nopython, no GIL, cached on disk."""
    import numba

    if inline:
        return numba.njit(cache=True, nogil=True, inline="always")(function)
    return numba.njit(cache=True, nogil=True)(function)
