"""Stage 6, learning: confirmed attacks become signed pattern updates that every worker applies.

Feedback (an analyst's label, or a verification BLOCK for a content policy) arrives on
`aimds.feedback`. The learn agent turns a confirmed attack into a pattern record signed with
an Ed25519 key and publishes it on the compacted `aimds.patterns` topic, keyed by a pattern
id derived from the text (the same text always gives the same id, so compaction keeps one
copy). An analyst's `benign` label for a learned text publishes a tombstone for that id.

Every worker follows `aimds.patterns` from the beginning and applies what it reads to its
pattern store (`PatternFollower`): a signature from a trusted public key is required, so a
producer that can write to the topic but does not hold the signing key cannot add patterns.
Tombstones carry no signature (Kafka compaction needs a null value), so they can only retire
learned patterns, never the trained pack. New patterns go to the store's exact delta buffer
at once; the index is rebuilt in the background once the delta holds `rebuild_after` rows.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from app.errors import ConfigError, FeedbackRefused, PatternStoreError, UpdateRefused
from app.patterns import Pattern
from app.records import Feedback
from topics.schemas import validator

log = logging.getLogger(__name__)

#: prefix of the ids of learned patterns (the only ones a tombstone may retire)
LEARNED_PREFIX = "learned-"
#: verification policies whose violation confirms the TEXT as an attack. Rate, session, secret
#: and PII policies are left out: they say something about the session or the data a prompt
#: carries, and storing such a text as a pattern would copy a user's secret into the pattern set.
LEARNABLE_POLICIES = ("override.", "exfil.system_prompt", "tool.", "jailbreak.", "obfuscation.")
#: source label of feedback the verify agent sends
VERIFIER_SOURCE = "verifier"


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
    private_path.touch(mode=0o600, exist_ok=False)
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
        except (OSError, ValueError, TypeError) as exc:
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
            except (OSError, ValueError) as exc:
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
    """What one feedback record becomes on `aimds.patterns`: a signed record or a tombstone."""

    pattern_id: str
    record: dict[str, Any] | None  # None: a tombstone (retire the learned pattern)
    reason: str


class Learner:
    """Feedback → signed pattern update, with guards against learning ordinary prompts.

    `benign_similarity` (text → similarity of the nearest benign exemplar) refuses attack
    labels for texts that read like ordinary prompts: as a pattern such a text would block
    its benign neighbours. Refusals are `FeedbackRefused` errors (dead-lettered for review).
    """

    def __init__(
        self,
        signer: PatternSigner,
        *,
        benign_similarity: Any = None,
        max_benign_similarity: float = 0.9,
        default_severity: float = 0.8,
        min_chars: int = 12,
        max_chars: int = 20_000,
    ):
        self.signer = signer
        self._benign_similarity = benign_similarity
        self.max_benign_similarity = max_benign_similarity
        self.default_severity = default_severity
        self.min_chars = min_chars
        self.max_chars = max_chars

    def learn(self, feedback: Feedback) -> LearnOutcome:
        """The pattern update for one feedback record (FeedbackRefused: not to be learned)."""
        text = feedback.text.strip()
        pattern_id = learned_pattern_id(text)
        if feedback.label == "benign":
            return LearnOutcome(
                pattern_id, None, f"labelled benign by {feedback.source}: retire if learned"
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
        severity = self.default_severity if feedback.severity is None else feedback.severity
        record = {
            "id": pattern_id,
            "text": text,
            "category": feedback.category or "confirmed_attack",
            "severity": float(severity),
            "source": f"feedback:{feedback.source}",
            "ts": float(feedback.ts),
        }
        return LearnOutcome(pattern_id, self.signer.sign(record), f"confirmed by {feedback.source}")


def verifier_feedback(decision: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    """The feedback record a verification decision confirms, or None.

    Only a BLOCK for a violated content policy (`LEARNABLE_POLICIES`) confirms the text.
    """
    if decision.get("action") != "BLOCK" or decision.get("stage") != "verification":
        return None
    violated = [str(v) for v in decision.get("violated_policies", ())]
    learnable = [v for v in violated if v.startswith(LEARNABLE_POLICIES)]
    if not learnable:
        return None
    categories = list(decision.get("categories", ()))
    return {
        "prompt_id": decision["prompt_id"],
        "session_id": decision.get("session_id"),
        "label": "attack",
        "category": categories[0] if categories else learnable[0].split(".")[0],
        "text": text,
        "source": VERIFIER_SOURCE,
        "ts": float(decision.get("ts", 0.0)),
        "policies": learnable,
    }


class PatternFollower:
    """Applies `aimds.patterns` records to a pattern store (each worker runs one).

    Records are verified before anything is applied; a refused record changes nothing.
    """

    def __init__(self, store: Any, verifier: UpdateVerifier, *, rebuild_after: int = 256):
        self.store = store
        self.verifier = verifier
        self.rebuild_after = rebuild_after
        self.applied = 0
        self.retired = 0
        self.refused = 0
        self._rebuilding: Any = None

    def apply(self, key: bytes | None, value: bytes | None) -> str:
        """Apply one record; return `added`, `retired`, `unchanged`, or raise `UpdateRefused`."""
        try:
            outcome = self._apply(key, value)
        except UpdateRefused:
            self.refused += 1
            raise
        if outcome == "added" and self.store.n_delta_rows >= self.rebuild_after:
            if self._rebuilding is None or not self._rebuilding.is_alive():
                self._rebuilding = self.store.rebuild_in_background()
        return outcome

    def _apply(self, key: bytes | None, value: bytes | None) -> str:
        if value is None:  # tombstone
            pattern_id = key.decode("utf-8", "replace") if key is not None else ""
            if not pattern_id.startswith(LEARNED_PREFIX):
                raise UpdateRefused(
                    f"tombstone for {pattern_id[:64]!r}: only learned patterns can be retired"
                )
            removed = self.store.remove([pattern_id])
            self.retired += removed
            return "retired" if removed else "unchanged"
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise UpdateRefused(f"pattern update is not JSON: {exc}") from exc
        try:
            validator("pattern")(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise UpdateRefused(f"pattern update: {exc.name}: {exc.message}") from exc
        self.verifier.verify(record)
        if key is not None and key.decode("utf-8", "replace") != record["id"]:
            raise UpdateRefused("pattern update key differs from its id")
        pattern = Pattern(
            id=record["id"],
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
        if self.store.version == before:
            return "unchanged"
        self.applied += 1
        return "added"
