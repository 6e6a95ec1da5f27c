"""`screen_prompts`: aimds.prompts → decisions | verification | deadletter.

Parse (bad input → dead letter), drop duplicates, load the session's state from the tables,
call the core pipeline, store the state back, send. No detection logic lives here. Any
unexpected failure of one record is dead-lettered, and the agent goes on with the next
record. With AIMDS_SCREEN_BATCH > 1 the agent takes up to that many records at once and
has the pipeline normalize and embed them together (the semantic embedders are cheaper per
prompt in a batch); screening and table updates stay one record at a time, in order. Each
record is acknowledged once its outcome is on the broker (`Acks`), and then marked done in
the dedup table, so that a worker that reads it again after a restart or a rebalance
acknowledges it without screening it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from agents._acks import Acks, Sent
from agents._deadletter import send_dead_letter
from app.errors import ParseError
from app.pipeline import dedup_key, duplicate
from app.records import Action
from app.windows import BLOCKED_STEP_S, BLOCKED_WINDOW_S, SESSION_WINDOW_S

log = logging.getLogger(__name__)


def record_position(message: Any) -> int:
    """A record's partition and offset as one positive int (the dedup table's value; an id
    seen before the table held positions has the value 1, which no record here has). The
    table holds it negated once the record's outcome is delivered."""
    return (message.offset + 1) * 65536 + message.partition + 1


def register(aimds: Any) -> Any:
    """Register the screen agent on an `AimdsApp`; return the agent."""
    app, tables, pipeline, out = aimds.faust, aimds.tables, aimds.pipeline, aimds.outputs
    screener = pipeline.screener
    dedup_ttl = aimds.settings.dedup_ttl_s
    batch, batch_wait_s = aimds.settings.screen_batch, aimds.settings.screen_batch_wait_s

    def admit(event: Any) -> tuple[Any, int, Callable[[], None]] | None:
        """Parse, refuse duplicate ids, count: the prompt, its session's count in the minute
        and the write that marks the record done; None for a record done before.

        The count is read here, right after this prompt's own increment, so a batch sees the
        same counts as one record at a time.
        """
        # parsed, and its Kafka time checked, before any table sees the record
        prompt = pipeline.parse(event.value, record_ts=event.message.timestamp)
        key = dedup_key(prompt)
        seen = tables.seen_prompt_ids[key]
        # the table holds where the record that first carried the id was read, negated once
        # that record's outcome was delivered
        first, here = seen.current() or seen.delta(dedup_ttl), record_position(event.message)
        if first == -here:
            return None  # read again after a restart; its outcome is on the broker already
        if first and first != here:
            raise duplicate(prompt)  # another record with the id: a producer's re-send
        # the same record again (processed before a restart, without its outcome known to be
        # delivered) is screened again: its outcome must not be a duplicate_prompt
        tables.seen_prompt_ids[key] = here
        rate = tables.prompts_per_session_1m[prompt.session_id]
        rate += 1

        def done() -> None:
            tables.seen_prompt_ids[key] = -here

        return prompt, rate.current(), done

    async def screen_admitted(event: Any, prompt: Any, rate: int, prepared: Any = None) -> Sent:
        sid = prompt.session_id
        facts = {
            "prompts_1m": rate,
            # read at screening time: it counts the blocks of the batch's earlier records
            "blocked_10m": tables.blocked_per_session_10m[sid].delta(
                BLOCKED_WINDOW_S - BLOCKED_STEP_S
            ),
        }
        # the record's window of states and the ones on each side: a record whose time runs
        # behind the session's latest may sit a window behind the latest state
        windows = tables.session_state[sid]
        stored = [windows.delta(d) for d in (SESSION_WINDOW_S, 0.0, -SESSION_WINDOW_S)]
        session = screener.resume_session(stored, prompt.ts)
        routed = pipeline.screen(prompt, session, facts, prepared)
        tables.session_state[sid] = screener.dump_session(session)
        if routed.result.action is Action.BLOCK:
            tables.blocked_per_session_10m[sid] += 1
        return [await out.send(routed.topic, event.message.key, routed.record)]

    async def dead_letter_of(event: Any, exc: Exception) -> Sent:
        message = event.message
        stage = "parse" if isinstance(exc, ParseError) else "screen"
        if stage == "screen":
            log.exception(
                "screening %s[%s]@%s failed", message.topic, message.partition, message.offset
            )
        else:
            log.warning(
                "dead-lettering %s[%s]@%s: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
        return await send_dead_letter(
            out, event, stage=stage, error=exc, max_message_bytes=aimds.settings.max_message_bytes
        )

    async def screen_events(stream: Any, acks: Acks, events: Sequence[Any]) -> None:
        """Admit each event, prepare the admitted ones together, screen them in order; each
        event is acknowledged once its outcome is delivered."""
        admitted = []
        for event in events:
            if not await acks.first_time(event):
                continue  # handed over again by Faust: screened (or in progress) already
            # windowed tables take the time of Faust's current event, which noack_take does
            # not set per event; set it right before each event's table work (no await
            # between), since the stream keeps buffering the next events meanwhile
            stream._set_current_event(event)
            try:
                entry = admit(event)
            except Exception as exc:  # noqa: BLE001 - bad input must never stop the agent
                await acks.after(event, await dead_letter_of(event, exc))
                continue
            if entry is None:
                await acks.done_before(event)
            else:
                admitted.append((event, entry))
        prepared = (
            pipeline.prepare([prompt for _, (prompt, _, _) in admitted])
            if len(admitted) > 1
            else [None] * len(admitted)
        )
        for (event, (prompt, rate, done)), ready in zip(admitted, prepared, strict=True):
            stream._set_current_event(event)
            try:
                sent = await screen_admitted(event, prompt, rate, ready)
            except Exception as exc:  # noqa: BLE001 - one record's failure stays its own
                sent = await dead_letter_of(event, exc)
            await acks.after(event, sent, then=done)

    @app.agent(aimds.topics.prompts, name="screen_prompts")
    async def screen_prompts(stream: Any) -> None:
        acks = Acks(stream)  # events are acknowledged by `acks` only, never by the iteration
        if batch > 1:
            async for events in stream.noack_take(batch, within=batch_wait_s):
                await screen_events(stream, acks, events)
        else:
            async for event in stream.noack().events():
                await screen_events(stream, acks, [event])

    return screen_prompts
