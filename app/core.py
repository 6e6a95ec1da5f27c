"""Builds the core pipeline (screener + verifier) from settings, once, at start.

Loading is logged with its duration so slow starts are visible; everything heavy (models,
indexes, JIT warm-up) happens here, never on the first request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.pipeline import Pipeline
from app.settings import Settings

log = logging.getLogger(__name__)


def redis_client(settings: Settings) -> Any:
    """A Redis client for the caches, or None when Redis is disabled or unreachable."""
    if not settings.redis_url:
        return None
    import redis

    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=0.05, socket_connect_timeout=0.2
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        log.warning("Redis at %s unreachable (%s): caches disabled", settings.redis_url, exc)
        return None
    return client


def build_screener(settings: Settings) -> Any:
    """The screening stage configured by settings."""
    from app.screening import Screener

    options = {}
    if settings.allow_threshold is not None:
        options["allow_below"] = settings.allow_threshold
    if settings.block_threshold is not None:
        options["block_at"] = settings.block_threshold
    return Screener(**options)


def build_verifier(settings: Settings, *, redis: Any = None) -> Any:
    """The verification stage configured by settings."""
    from app.verification import MemoryProofCache, RedisProofCache, Verifier, load_policies

    policies = load_policies(settings.policy_file or None)
    cache = RedisProofCache(redis) if redis is not None else MemoryProofCache()
    return Verifier(policies=policies, cache=cache, timeout_s=settings.verify_timeout_s)


def build_pipeline(settings: Settings, *, use_redis: bool = True) -> Pipeline:
    """Screener and verifier, loaded and warmed up, behind one `Pipeline`."""
    started = time.perf_counter()
    screener = build_screener(settings)
    verifier = build_verifier(settings, redis=redis_client(settings) if use_redis else None)
    log.info("core pipeline ready in %.2fs", time.perf_counter() - started)
    return Pipeline(screener=screener, verifier=verifier, max_text_chars=settings.max_text_chars)
