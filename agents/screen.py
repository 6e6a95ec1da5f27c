"""`screen_prompts`: aimds.prompts → decisions | verification | deadletter.

Parse (bad input → dead letter), drop duplicates, load the session's state from the tables,
call the core pipeline, store the state back, send. No detection logic lives here. Any
unexpected failure of one record is dead-lettered (Faust would ack it anyway), and the
agent goes on with the next record.
"""

from __future__ import annotations

import logging
from typing import Any

from app.decisions import dead_letter
from app.errors import ParseError
from app.pipeline import dedup_key, duplicate
from app.records import Action
from app.windows import BLOCKED_STEP_S, BLOCKED_WINDOW_S

log = logging.getLogger(__name__)


def register(aimds: Any) -> Any:
    """Register the screen agent on an `AimdsApp`; return the agent."""
    app, tables, pipeline, out = aimds.faust, aimds.tables, aimds.pipeline, aimds.outputs
    screener = pipeline.screener
    dedup_ttl = aimds.settings.dedup_ttl_s

    async def screen_one(event: Any) -> None:
        message, raw = event.message, event.value
        prompt = pipeline.parse(raw)
        key = dedup_key(prompt)
        seen = tables.seen_prompt_ids[key]
        if seen.current() or seen.delta(dedup_ttl):
            raise duplicate(prompt)
        tables.seen_prompt_ids[key] += 1
        sid = prompt.session_id
        tables.prompts_per_session_1m[sid] += 1
        facts = {
            "prompts_1m": tables.prompts_per_session_1m[sid].current(),
            "blocked_10m": tables.blocked_per_session_10m[sid].delta(
                BLOCKED_WINDOW_S - BLOCKED_STEP_S
            ),
        }
        stored = tables.session_state.get(sid)
        session = screener.new_session() if stored is None else screener.load_session(stored)
        routed = pipeline.screen(prompt, session, facts)
        tables.session_state[sid] = screener.dump_session(session)
        if routed.result.action is Action.BLOCK:
            tables.blocked_per_session_10m[sid] += 1
        await out.send(routed.topic, message.key, routed.record)

    @app.agent(aimds.topics.prompts, name="screen_prompts")
    async def screen_prompts(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                await screen_one(event)
            except Exception as exc:  # noqa: BLE001 - bad input must never stop the agent
                stage = "parse" if isinstance(exc, ParseError) else "screen"
                if stage == "screen":
                    log.exception(
                        "screening %s[%s]@%s failed",
                        message.topic,
                        message.partition,
                        message.offset,
                    )
                else:
                    log.warning(
                        "dead-lettering %s[%s]@%s: %s",
                        message.topic,
                        message.partition,
                        message.offset,
                        exc,
                    )
                await out.send(
                    "deadletter",
                    message.key,
                    dead_letter(
                        event.value,
                        key=message.key,
                        stage=stage,
                        error=exc,
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                    ),
                )

    return screen_prompts
