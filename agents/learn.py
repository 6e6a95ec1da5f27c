"""Stage 6: `learn_from_feedback` (aimds.feedback → aimds.patterns | deadletter) and
`follow_patterns` (aimds.patterns → this worker's pattern store).

The learn agent runs where the signing key is (`AIMDS_PATTERN_SIGNING_KEY`); bad or refused
feedback is dead-lettered for review, and the verifier's proposals wait for an analyst. The
follower runs on every worker with a trusted key: it reads the compacted patterns topic from
the beginning (no consumer group, so every worker sees every update) and applies each
verified record; a record that is refused, or that fails in any other way, is logged and
counted, changes nothing, and the follower goes on. No learning logic lives here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agents._acks import Sent
from agents._deadletter import handle_each
from app.errors import UpdateRefused
from app.kafka_io import read_messages
from app.records import parse_feedback

log = logging.getLogger(__name__)

#: seconds between attempts when the patterns topic cannot be read
RETRY_S = 5.0


def register(aimds: Any) -> dict[str, Any]:
    """Register the learn agent and the pattern follower (each only when configured)."""
    app, out, settings = aimds.faust, aimds.outputs, aimds.settings
    registered: dict[str, Any] = {}
    learner, follower = aimds.learner, aimds.follower

    if learner is not None:

        async def learn_one(event: Any) -> Sent:
            feedback = parse_feedback(event.value, max_text_chars=settings.max_text_chars)
            outcome = learner.learn(feedback)
            if outcome is None:
                log.info(
                    "proposal %s from %s awaits an analyst (aimds proposals)",
                    feedback.prompt_id,
                    feedback.source,
                )
                return []
            learned = await out.send("patterns", outcome.pattern_id.encode(), outcome.record)
            log.info(
                "feedback %s → %s (%s)", feedback.prompt_id, outcome.pattern_id, outcome.reason
            )
            return [learned]

        @app.agent(aimds.topics.feedback, name="learn_from_feedback")
        async def learn_from_feedback(stream: Any) -> None:
            await handle_each(
                stream,
                learn_one,
                out=out,
                stage="learn",
                log=log,
                max_message_bytes=settings.max_message_bytes,
            )

        registered["learn_from_feedback"] = learn_from_feedback

    if follower is not None:

        @app.task
        async def follow_patterns() -> None:
            topic = settings.topic("patterns")
            while True:
                try:
                    async for msg in read_messages(settings, topic, follow=True):
                        apply_one(msg)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the worker keeps screening meanwhile
                    log.exception("reading %s failed; retrying in %.0fs", topic, RETRY_S)
                await asyncio.sleep(RETRY_S)

        def apply_one(msg: Any) -> None:
            try:
                outcome = follower.apply(msg.key, msg.value)
            except UpdateRefused as exc:
                log.warning(
                    "refused pattern update %s[%s]@%s: %s",
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    exc,
                )
                return
            except Exception:  # noqa: BLE001 - one record must not stall the follower on it
                follower.refused += 1
                log.exception(
                    "pattern update %s[%s]@%s failed", msg.topic, msg.partition, msg.offset
                )
                return
            log.info(
                "pattern update %s@%s: %s (store %s)",
                msg.key,
                msg.offset,
                outcome,
                follower.store.version,
            )

        registered["follow_patterns"] = follow_patterns

    return registered
