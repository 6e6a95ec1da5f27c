"""`verify_prompts`: aimds.verification (the Lean verification topic) → decisions | deadletter.

A BLOCK for a violated content policy is also sent to aimds.feedback as a confirmed attack
(`app.learning.verifier_feedback`), where the learn agent may turn it into a pattern.

Each request becomes a proof obligation in the core (`Pipeline.verify`), run in a worker
thread with a per-obligation time budget; on timeout the decision is ESCALATE with that
reason. Undecodable requests are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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

    async def verify_one(event: Any) -> None:
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
        await out.send("decisions", message.key, record)
        confirmed = verifier_feedback(record, prompt.text)
        if confirmed is not None:  # stage 6: a prover-confirmed attack is learned
            await out.send("feedback", prompt.id.encode(), confirmed)

    @app.agent(aimds.topics.verification, name="verify_prompts")
    async def verify_prompts(stream: Any) -> None:
        await handle_each(stream, verify_one, out=out, stage="verify", log=log)

    return verify_prompts
