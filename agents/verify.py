"""`verify_prompts`: aimds.verification (the Lean verification topic) → decisions | deadletter.

A BLOCK for a violated content policy is also sent to aimds.feedback as a proposal
(`app.learning.verifier_feedback`), which an analyst may confirm as a pattern to learn. The
proposal is best-effort: if it cannot be sent, the decision stands and the failure is logged.

Each request becomes a proof obligation in the core (`Pipeline.verify`), run in a worker
thread with a per-obligation time budget; on timeout the decision is ESCALATE with that
reason. Undecodable requests are dead-lettered. A request whose decision was delivered is
marked done in the `verified-records` table, so that a worker reading it again after a
restart or a rebalance does not decide the prompt twice.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents._acks import DoneMarks, Sent
from agents._deadletter import handle_each
from app.decisions import parse_verification_request
from app.learning import verifier_feedback

log = logging.getLogger(__name__)


def register(aimds: Any) -> Any:
    """Register the verify agent on an `AimdsApp`; return the agent."""
    app, pipeline, out = aimds.faust, aimds.pipeline, aimds.outputs
    settings = aimds.settings
    timeout_s = settings.verify_timeout_s
    # Z3 releases the GIL while it searches, so a thread keeps the event loop responsive.
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aimds-verify")

    async def verify_one(event: Any) -> Sent:
        message = event.message
        prompt, screen = parse_verification_request(
            event.value, max_text_chars=settings.max_text_chars
        )
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(executor, pipeline.verify, prompt, screen)
        try:
            record = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            log.warning("verification of prompt %s timed out after %ss", prompt.id, timeout_s)
            record = pipeline.timeout_decision(prompt, screen, timeout_s)
        decided = await out.send("decisions", message.key, record)
        proposal = verifier_feedback(record, prompt.text)
        if proposal is not None:  # stage 6: an analyst decides whether the text is learned
            try:
                await out.send("feedback", prompt.id.encode(), proposal)
            except Exception:  # noqa: BLE001 - the decision is out: one outcome per prompt
                log.exception("proposing prompt %s for learning failed", prompt.id)
        return [decided]  # the proposal is best-effort: the event is done with its decision

    @app.agent(aimds.topics.verification, name="verify_prompts")
    async def verify_prompts(stream: Any) -> None:
        await handle_each(
            stream,
            verify_one,
            out=out,
            stage="verify",
            log=log,
            max_message_bytes=settings.max_message_bytes,
            marks=DoneMarks(aimds.tables.verified_records),
        )

    return verify_prompts
