"""Proof caches: remember prover results by obligation hash.

An obligation is (policy-set digest, values of the facts the policies reference), so two prompts
with the same facts share a proof. Only prover results are cached (never timeouts or failures),
and the three-valued fast path is cheaper than any lookup, so it never consults the cache.

`RedisProofCache` never fails a verification: a Redis error is logged and treated as a miss,
and further calls skip Redis for `retry_after_s` so a dead Redis costs no connect timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

import orjson

log = logging.getLogger(__name__)


@runtime_checkable
class ProofCache(Protocol):
    """Where proofs are kept between obligations."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached result for an obligation hash, or None."""
        ...

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Remember a result (JSON-able dict) for an obligation hash."""
        ...


class MemoryProofCache:
    """An in-process LRU proof cache (thread-safe)."""

    def __init__(self, *, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached result for an obligation hash, or None."""
        with self._lock:
            raw = self._data.get(key)
            if raw is None:
                return None
            self._data.move_to_end(key)
        value: dict[str, Any] = orjson.loads(raw)
        return value

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Remember a result, evicting the least recently used entry when full."""
        raw = orjson.dumps(value)
        with self._lock:
            self._data[key] = raw
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class RedisProofCache:
    """A proof cache in Redis shared by every verify worker; Redis errors degrade to misses."""

    def __init__(
        self,
        client: Any,
        *,
        ttl_s: int = 7 * 24 * 3600,
        prefix: str = "aimds:proof:",
        retry_after_s: float = 5.0,
        clock: Any = time.monotonic,
    ):
        self.client = client
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0
        self.errors = 0

    def _usable(self) -> bool:
        return self._clock() >= self._down_until

    def _failed(self, op: str, exc: Exception) -> None:
        self.errors += 1
        self._down_until = self._clock() + self.retry_after_s
        log.warning(
            "proof cache: redis %s failed (%s: %s); skipping redis for %.1fs",
            op,
            type(exc).__name__,
            exc,
            self.retry_after_s,
        )

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached result, or None on a miss, a bad entry or any Redis error."""
        if not self._usable():
            return None
        try:
            raw = self.client.get(self.prefix + key)
        except Exception as exc:  # redis.RedisError, OSError, anything: a cache never fails us
            self._failed("get", exc)
            return None
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("proof cache: undecodable entry for %s ignored", key[:16])
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        """Store a result with the TTL; Redis errors are logged and swallowed."""
        if not self._usable():
            return
        try:
            self.client.set(self.prefix + key, orjson.dumps(value), ex=self.ttl_s)
        except Exception as exc:
            self._failed("set", exc)
