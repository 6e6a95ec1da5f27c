"""Stage 6, learning: confirmed attacks become signed pattern updates that every worker applies.

Feedback arrives on `aimds.feedback`: an analyst's label, or a verifier's proposal (a
verification BLOCK for a content policy). The learn agent turns an analyst-confirmed attack
into a pattern record signed with an Ed25519 key and publishes it on the compacted
`aimds.patterns` topic, keyed by a pattern id derived from the text (the same text always
gives the same id, so compaction keeps one copy). An analyst's `benign` label publishes a
signed retraction for that id. A proposal is never learned by itself: the prompt's author
chose its text, and as a pattern it would block that text for every user. Analysts list
proposals with `aimds proposals` and confirm the ones they agree with.

Every worker follows `aimds.patterns` from the beginning and applies what it reads to its
pattern store (`PatternFollower`): a signature from a trusted public key is required, so a
producer that can write to the topic but does not hold the signing key can neither add nor
retract a pattern, and null-value tombstones are ignored. Each record carries the learn
agent's clock; a record older than one already applied for its id is a replay and refused.
New patterns go to the store's exact delta buffer at once; the index is rebuilt in the
background after `rebuild_after` patterns were added or retracted (a rebuild also frees the
rows of retracted patterns).

The signature protects the patterns topic only. Whoever can write to `aimds.feedback` is an
analyst to the learn agent: restrict that topic to analysts and the verify agent (Kafka ACLs).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from app.errors import ConfigError, FeedbackRefused, PatternStoreError, UpdateRefused
from app.patterns import CATEGORY_SEVERITY, Pattern
from app.records import Feedback
from topics.schemas import validator

log = logging.getLogger(__name__)

#: prefix of the ids of learned patterns (the only ones the follower adds or retracts)
LEARNED_PREFIX = "learned-"
#: prefix of the source of every learned pattern (the trained pack's sources never have it)
LEARNED_SOURCE_PREFIX = "feedback:"
#: verification policies whose violation (with action BLOCK) makes the TEXT a proposal. Rate
#: and session policies say something about the session, not the text
LEARNABLE_POLICIES = ("override.", "exfil.system_prompt", "tool.", "jailbreak.", "obfuscation.")
#: policies about the data a prompt carries: a text that violates one is never proposed, since
#: as a pattern it would copy a user's secret or personal data into the pattern set
PRIVATE_POLICIES = ("secrets.", "pii.")
#: source label of the proposals the verify agent sends
VERIFIER_SOURCE = "verifier"
#: category of a learned pattern whose feedback names none
DEFAULT_CATEGORY = "confirmed_attack"


def learned_pattern_id(text: str) -> str:
    """The pattern id of a learned text: a hash of the stripped text (replays give the same id)."""
    return LEARNED_PREFIX + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:24]


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short id of a public key (first 16 hex digits of the SHA-256 of its raw bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(directory: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair (`pattern-signing.pem`, mode 0600, and `.pub`); return paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / "pattern-signing.pem", out / "pattern-signing.pub"
    key = Ed25519PrivateKey.generate()
    try:
        private_path.touch(mode=0o600, exist_ok=False)
    except FileExistsError as exc:
        raise ConfigError(f"{private_path} exists: keep it, or remove it first") from exc
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def _signed_bytes(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes a signature covers: every field but `signature`, keys sorted."""
    body = {k: v for k, v in record.items() if k != "signature"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class PatternSigner:
    """Signs pattern records with an Ed25519 private key (held by the learn agent only)."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: str | Path) -> PatternSigner:
        """Load a PEM (PKCS#8, unencrypted) Ed25519 private key; ConfigError if unusable."""
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigError(f"pattern signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"pattern signing key {path}: not an Ed25519 key")
        return cls(key)

    def sign(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """`record` with this key's `key_id` and a hex `signature` over the canonical bytes."""
        signed = dict(record)
        signed["key_id"] = self.key_id
        signed["signature"] = self._key.sign(_signed_bytes(signed)).hex()
        return signed


class UpdateVerifier:
    """Checks pattern records against the trusted public keys (any of them may have signed)."""

    def __init__(self, public_keys: Iterable[Ed25519PublicKey]):
        self._keys = {key_id(k): k for k in public_keys}
        if not self._keys:
            raise ConfigError("pattern updates need at least one trusted public key")

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> UpdateVerifier:
        """Load PEM Ed25519 public keys; ConfigError if one is unusable."""
        keys = []
        for path in paths:
            try:
                key = serialization.load_pem_public_key(Path(path).read_bytes())
            except (OSError, ValueError, UnsupportedAlgorithm) as exc:
                raise ConfigError(f"trusted pattern key {path}: {exc}") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"trusted pattern key {path}: not an Ed25519 key")
            keys.append(key)
        return cls(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the trusted keys."""
        return tuple(sorted(self._keys))

    def verify(self, record: Mapping[str, Any]) -> None:
        """Return if `record` is signed by a trusted key; raise `UpdateRefused` otherwise."""
        signature, kid = record.get("signature"), record.get("key_id")
        if not isinstance(signature, str) or not isinstance(kid, str):
            raise UpdateRefused("pattern update is not signed")
        key = self._keys.get(kid)
        if key is None:
            raise UpdateRefused(f"pattern update signed by unknown key {kid[:32]!r}")
        try:
            key.verify(bytes.fromhex(signature), _signed_bytes(record))
        except (InvalidSignature, ValueError) as exc:
            raise UpdateRefused("pattern update signature does not verify") from exc


@dataclass(frozen=True, slots=True)
class LearnOutcome:
    """What one feedback record becomes on `aimds.patterns`: a signed pattern or retraction."""

    pattern_id: str
    record: dict[str, Any]
    reason: str


class Learner:
    """Feedback → signed pattern update, with guards against learning ordinary prompts.

    `benign_similarity` (text → similarity of the nearest benign exemplar) refuses attack
    labels for texts that read like ordinary prompts: as a pattern such a text would block
    its benign neighbours. Refusals are `FeedbackRefused` errors (dead-lettered for review).
    Records carry `clock()` (the learn agent's time, not the feedback's): the follower orders
    updates of one id by it. `canonical` (text → the screener's canonical view) is what is
    learned: screening matches canonical views, so an obfuscated attack (zero-width,
    look-alike letters, fullwidth) learned as typed would not match itself.
    `max_per_hour` bounds how many patterns are learned in any hour (retractions are not
    counted): a flood on the feedback topic, from a bug or a stolen analyst credential, is
    refused and dead-lettered instead of filling every worker's store.
    """

    def __init__(
        self,
        signer: PatternSigner,
        *,
        benign_similarity: Any = None,
        canonical: Any = None,
        max_benign_similarity: float = 0.9,
        default_severity: float = 0.8,
        min_chars: int = 12,
        max_chars: int = 20_000,
        max_per_hour: int | None = 1000,
        clock: Any = time.time,
    ):
        self.signer = signer
        self._benign_similarity = benign_similarity
        self._canonical = canonical
        self.max_benign_similarity = max_benign_similarity
        self.default_severity = default_severity
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.max_per_hour = max_per_hour
        self._clock = clock
        self._learned_at: deque[float] = deque()  # times of the last hour's learned patterns

    def learn(self, feedback: Feedback) -> LearnOutcome | None:
        """The pattern update for one feedback record; None for a proposal (not learned).

        Raises `FeedbackRefused` for feedback that must not be learned.
        """
        if feedback.label == "proposed":
            return None
        if feedback.source == VERIFIER_SOURCE:
            raise FeedbackRefused(
                f"source {VERIFIER_SOURCE!r} is reserved for proposals: an analyst confirms them"
            )
        category = feedback.category or DEFAULT_CATEGORY
        if category != DEFAULT_CATEGORY and category not in CATEGORY_SEVERITY:
            raise FeedbackRefused(
                f"category {category[:64]!r} is not one of {sorted(CATEGORY_SEVERITY)}"
            )
        text = feedback.text.strip()
        if self._canonical is not None:
            text = str(self._canonical(text)).strip() or text
        pattern_id = learned_pattern_id(text)
        now = float(self._clock())
        record = {
            "id": pattern_id,
            "text": text,
            "category": category,
            "severity": 0.0,
            "source": LEARNED_SOURCE_PREFIX + feedback.source,
            "ts": now,
        }
        if feedback.label == "benign":
            record["retracted"] = True
            return LearnOutcome(
                pattern_id,
                self.signer.sign(record),
                f"labelled benign by {feedback.source}: retract if learned",
            )
        if len(text) < self.min_chars:
            raise FeedbackRefused(
                f"text has {len(text)} characters; a pattern needs at least {self.min_chars}"
            )
        if len(text) > self.max_chars:
            raise FeedbackRefused(
                f"text has {len(text)} characters; a pattern may have at most {self.max_chars}"
            )
        if self._benign_similarity is not None:
            similarity = float(self._benign_similarity(text))
            if similarity >= self.max_benign_similarity:
                raise FeedbackRefused(
                    f"text is {similarity:.3f} similar to a benign exemplar (limit"
                    f" {self.max_benign_similarity}): as a pattern it would block ordinary"
                    " prompts; review it by hand"
                )
        self._admit(now)
        severity = self.default_severity if feedback.severity is None else feedback.severity
        record["severity"] = float(severity)
        return LearnOutcome(pattern_id, self.signer.sign(record), f"confirmed by {feedback.source}")

    def _admit(self, now: float) -> None:
        """Count one learned pattern against the hourly limit (`FeedbackRefused` beyond it)."""
        if self.max_per_hour is None:
            return
        learned = self._learned_at
        while learned and learned[0] <= now - 3600.0:
            learned.popleft()
        if len(learned) >= self.max_per_hour:
            raise FeedbackRefused(
                f"{len(learned)} patterns learned in the last hour (limit {self.max_per_hour}):"
                " resend this feedback later"
            )
        learned.append(now)


def verifier_feedback(decision: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    """The proposal a verification decision makes, or None.

    Only a BLOCK where a content policy (`LEARNABLE_POLICIES`) whose own action is BLOCK was
    violated proposes the text, and never when a secret or PII policy was violated too. A
    proposal is a `proposed` label: the learn agent waits for an analyst to confirm it.
    """
    if decision.get("action") != "BLOCK" or decision.get("stage") != "verification":
        return None
    audit = decision.get("verification") or {}
    violated = {
        str(p.get("id")): str(p.get("action"))
        for p in audit.get("policies", ())
        if isinstance(p, Mapping) and p.get("status") == "violated"
    }
    if any(policy.startswith(PRIVATE_POLICIES) for policy in violated):
        return None
    learnable = [
        policy
        for policy, action in violated.items()
        if policy.startswith(LEARNABLE_POLICIES) and action == "BLOCK"
    ]
    if not learnable:
        return None
    categories = [c for c in decision.get("categories", ()) if c in CATEGORY_SEVERITY]
    return {
        "prompt_id": decision["prompt_id"],
        "session_id": decision.get("session_id"),
        "label": "proposed",
        "category": categories[0] if categories else None,
        "text": text,
        "source": VERIFIER_SOURCE,
        "ts": float(decision.get("ts", 0.0)),
        "policies": learnable,
    }


class PatternFollower:
    """Applies `aimds.patterns` records to a pattern store (each worker runs one).

    Records are verified before anything is applied; a refused record changes nothing. Only
    learned patterns are touched (id derived from the text, `feedback:` source), and per id
    only records at least as new as the last one applied, so a replayed record cannot undo
    a retraction. At most `max_learned` learned patterns are live at once: the store, its
    memory and its rebuilds stay bounded whatever the signer publishes.
    """

    def __init__(
        self,
        store: Any,
        verifier: UpdateVerifier,
        *,
        rebuild_after: int = 256,
        max_learned: int = 100_000,
    ):
        self.store = store
        self.verifier = verifier
        self.rebuild_after = rebuild_after
        self.max_learned = max_learned
        self._live: set[str] = set()  # learned ids this follower added and did not retract
        self.applied = 0
        self.retired = 0
        self.refused = 0
        self._latest: dict[str, float] = {}  # pattern id -> ts of the last record applied
        self._changes_since_build = 0  # patterns added or retired since the last rebuild
        self._rebuilding: Any = None

    def apply(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one record; return `added`, `retired`, `unchanged`, or raise `UpdateRefused`."""
        try:
            outcome = self._apply(key, value)
        except UpdateRefused:
            self.refused += 1
            raise
        if outcome in ("added", "retired"):
            self._changes_since_build += 1
            if self._changes_since_build >= self.rebuild_after and (
                self._rebuilding is None or not self._rebuilding.is_alive()
            ):
                self._changes_since_build = 0
                self._rebuilding = self.store.rebuild_in_background()
        return outcome

    def _apply(self, key: bytes | None, value: bytes | None) -> str:
        if value is None:
            raise UpdateRefused(
                "null-value tombstone ignored: retractions are signed records from the learn agent"
            )
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise UpdateRefused(f"pattern update is not JSON: {exc}") from exc
        try:
            validator("pattern")(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise UpdateRefused(f"pattern update: {exc.name}: {exc.message}") from exc
        self.verifier.verify(record)
        pattern_id = record["id"]
        if key is None or key.decode("utf-8", "replace") != pattern_id:
            raise UpdateRefused("pattern update key differs from its id")
        if pattern_id != learned_pattern_id(record["text"]) or not record["source"].startswith(
            LEARNED_SOURCE_PREFIX
        ):
            raise UpdateRefused(
                f"pattern update {pattern_id[:64]!r} is not a learned pattern of its text"
            )
        ts = float(record["ts"])
        latest = self._latest.get(pattern_id)
        if latest is not None and ts < latest:
            raise UpdateRefused(
                f"pattern update {pattern_id} is older than the one applied (a replay)"
            )
        retraction = bool(record.get("retracted"))
        if not retraction and pattern_id not in self._live and len(self._live) >= self.max_learned:
            raise UpdateRefused(
                f"{self.max_learned} learned patterns are live: retract some before adding more"
            )
        self._latest[pattern_id] = ts
        if retraction:
            self._live.discard(pattern_id)
            removed = self.store.remove([pattern_id])
            self.retired += removed
            return "retired" if removed else "unchanged"
        pattern = Pattern(
            id=pattern_id,
            text=record["text"],
            category=record["category"],
            severity=float(record["severity"]),
            source=record["source"],
        )
        before = self.store.version
        try:
            self.store.add([pattern])
        except PatternStoreError as exc:  # e.g. a blank text: the follower must move past it
            raise UpdateRefused(f"pattern update cannot be stored: {exc}") from exc
        self._live.add(pattern_id)
        if self.store.version == before:
            return "unchanged"
        self.applied += 1
        return "added"
