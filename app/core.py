"""Builds the core pipeline (screener + verifier) from settings, once, at start.

Loading is logged with its duration so slow starts are visible; everything heavy (models,
indexes, JIT warm-up) happens here, never on the first request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from importlib import resources
from pathlib import Path
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


def knn_options(name: str) -> dict[str, Any]:
    """Embedder options of the pattern stage: 256-d hashing keeps kNN queries at ~50 µs with
    pynndescent (1024-d hashed vectors made its graph search both slow and inexact)."""
    return {"dim": 256} if name == "hashing" else {}


def classifier_embedder(name: str, *, shared: Any = None) -> Any:
    """The text classifier's embedder: `hashing` (1024-d), or parts joined by '+'.

    `shared` is the pattern stage's embedder: a part of the same name reuses that instance
    (and its token cache), and the screener passes its rows instead of embedding twice.
    """
    from app.embedders import ConcatEmbedder, load_embedder

    def part(part_name: str) -> Any:
        options = {"dim": 1024} if part_name == "hashing" else {}
        if shared is not None and shared.name == part_name and not options:
            return shared
        return load_embedder(part_name, **options)

    parts = [part(p) for p in name.split("+")]
    return parts[0] if len(parts) == 1 else ConcatEmbedder(parts)


def model_dir(settings: Settings) -> Path:
    """Directory of the trained artifacts (fusion.json, patterns.jsonl.gz)."""
    if settings.model_path:
        return Path(settings.model_path)
    return Path(str(resources.files("app").joinpath("data", "model")))


def load_pattern_store(
    settings: Settings,
    directory: Path,
    embedder: Any,
    *,
    window_chars: int | None,
    progress: bool = False,
    pack_name: str = "patterns.jsonl.gz",
    with_curated: bool = True,
    search: dict[str, Any] | None = None,
) -> Any:
    """A store over the pack `pack_name` in `directory`: from the on-disk cache, or built once.

    The cache key hashes the pack (and the curated pack when included), the embedder version
    and the windowing, so a retrained pack or another embedder never reuses a stale index.
    """
    from app.errors import PatternStoreError
    from app.patterns import PatternStore, load_curated_patterns
    from app.training import read_pattern_pack

    pack = directory / pack_name
    curated = Path(str(resources.files("app").joinpath("data", "curated_patterns.yaml")))
    key = hashlib.sha256(pack.read_bytes())
    if with_curated:
        key.update(curated.read_bytes())
    key.update(f"{embedder.name}:{embedder.version}:{window_chars}".encode())
    if search:  # how the model searches its stores (older models: the defaults)
        key.update(json.dumps(search, sort_keys=True).encode())
    cache = Path(settings.home) / "stores" / key.hexdigest()[:16]
    if (cache / "manifest.json").exists():
        try:
            store = PatternStore.load(cache, embedder=embedder)
            log.info("pattern store loaded from %s (%d patterns)", cache, len(store))
            return store
        except (PatternStoreError, OSError, ValueError) as exc:  # a cache is rebuildable
            log.warning("ignoring unusable pattern-store cache %s: %s", cache, exc)
    started = time.perf_counter()
    store = PatternStore(embedder=embedder, window_chars=window_chars, **(search or {}))
    patterns = read_pattern_pack(pack)
    if with_curated:
        patterns += load_curated_patterns(curated)
    store.add(patterns)
    store.build(progress=progress)
    log.info(
        "store %s built in %.1fs (%d patterns)",
        pack_name,
        time.perf_counter() - started,
        len(store),
    )
    try:
        store.save(cache)
    except OSError as exc:
        log.warning("could not cache the pattern store in %s: %s", cache, exc)
    return store


def rules_warm_up_texts(store: Any, benign: Any) -> list[str]:
    """The texts the rule detector scans at load: every attack pattern and benign exemplar."""
    return [p.text for s in (store, benign) if s is not None for p in s.patterns()]


def build_screener(settings: Settings, *, progress: bool = False) -> Any:
    """The detection engine configured by settings and the trained artifacts."""
    from app.embedders import load_embedder
    from app.errors import ConfigError
    from app.fusion import FusionModel
    from app.normalize import Normalizer
    from app.patterns import PatternStore
    from app.rules import RuleDetector
    from app.screening import Screener

    directory = model_dir(settings)
    model = FusionModel.load(directory / "fusion.json").with_thresholds(
        settings.allow_threshold, settings.block_threshold
    )
    embedder = load_embedder(settings.embedder, **knn_options(settings.embedder))
    if model.embedder != f"{embedder.name}:{embedder.version}":
        raise ConfigError(
            f"the fusion model was trained with embedder {model.embedder}, not "
            f"{embedder.name}:{embedder.version}; retrain with `aimds train` or change "
            "AIMDS_EMBEDDER"
        )
    window_chars = model.provenance.get("window_chars")
    search = dict(model.provenance.get("knn_search") or {})
    if settings.pattern_store_path:
        store = PatternStore.load(settings.pattern_store_path, embedder=embedder)
    else:
        store = load_pattern_store(
            settings,
            directory,
            embedder,
            window_chars=window_chars,
            progress=progress,
            search=search,
        )
    benign = load_pattern_store(
        settings,
        directory,
        embedder,
        window_chars=window_chars,
        progress=progress,
        pack_name="benign.jsonl.gz",
        with_curated=False,
        search=search,
    )
    store.warm_up()
    benign.warm_up()
    rules = RuleDetector(cache_dir=Path(settings.home) / "rules")
    # off the first requests' path: RE2's lazily built DFA states for typical prompts
    rules.warm_up(rules_warm_up_texts(store, benign))
    spec = model.provenance.get("classifier_embedder") or {"name": "hashing"}
    classifier = classifier_embedder(spec["name"], shared=embedder)
    if len(model.text_coef) != classifier.dim or spec.get("version", classifier.version) != (
        classifier.version
    ):
        raise ConfigError(
            f"the fusion model's text classifier was trained on {spec}, which does not match "
            f"{classifier.name}:{classifier.version}; retrain with `aimds train`"
        )
    return Screener(
        normalizer=Normalizer(),
        rules=rules,
        embedder=classifier,
        store=store,
        model=model,
        benign_store=benign,
    )


def build_verifier(settings: Settings, *, redis: Any = None) -> Any:
    """The verification stage configured by settings."""
    from app.verification import MemoryProofCache, RedisProofCache, Verifier, load_policies

    policies = load_policies(settings.policy_file or None)
    cache = RedisProofCache(redis) if redis is not None else MemoryProofCache()
    return Verifier(policies=policies, cache=cache, timeout_s=settings.verify_timeout_s)


def build_pipeline(
    settings: Settings, *, use_redis: bool = True, progress: bool = False
) -> Pipeline:
    """Screener and verifier, loaded and warmed up, behind one `Pipeline`."""
    started = time.perf_counter()
    screener = build_screener(settings, progress=progress)
    verifier = build_verifier(settings, redis=redis_client(settings) if use_redis else None)
    log.info("core pipeline ready in %.2fs", time.perf_counter() - started)
    return Pipeline(
        screener=screener,
        verifier=verifier,
        max_text_chars=settings.max_text_chars,
        max_clock_skew_s=settings.max_clock_skew_s,
    )


def build_learning(settings: Settings, screener: Any) -> tuple[Any, Any]:
    """Stage 6 for this worker: `(Learner or None, PatternFollower or None)`.

    The learner needs the signing key; the follower needs trusted public keys (the signing
    key's own public key when none are configured) and a screener with a pattern store.
    Without them that part is off, and pattern updates are never applied unchecked.
    """
    from app.learning import Learner, PatternFollower, PatternSigner, UpdateVerifier

    store = getattr(screener, "pattern_store", None)
    signer = (
        PatternSigner.from_file(settings.pattern_signing_key)
        if settings.pattern_signing_key
        else None
    )
    learner = None
    if signer is not None:
        benign = getattr(screener, "benign_similarity", None)
        views = getattr(screener, "views", None)
        learner = Learner(
            signer,
            benign_similarity=benign,
            canonical=(lambda text: views(text)[0]) if views is not None else None,
            max_per_hour=settings.feedback_max_per_hour,
        )
    follower = None
    if store is not None:
        if settings.trusted_key_paths:
            verifier = UpdateVerifier.from_files(settings.trusted_key_paths)
            if signer is not None and signer.key_id not in verifier.key_ids:
                log.warning(
                    "the pattern signing key %s is not among the trusted keys %s: workers"
                    " trusting only those will refuse every pattern this worker learns",
                    signer.key_id,
                    ", ".join(verifier.key_ids),
                )
        elif signer is not None:
            verifier = UpdateVerifier([signer.public_key])
        else:
            verifier = None
        if verifier is not None:
            follower = PatternFollower(
                store, verifier, rebuild_after=settings.pattern_rebuild_after
            )
    return learner, follower
