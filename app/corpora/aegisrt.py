"""The `aegisrt_seeds` source: aegisrt's probe seed lists and bundled datasets."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from app.corpora._rows import AEGISRT_SOURCE, CorpusRow, _capped, normalized_text
from app.corpora._wheels import _Module, _NotLiteral, _Wheel
from app.errors import ConfigError

AEGISRT_LIMIT = 400
AEGISRT_HARMFUL_LIMIT = 60


_AEGIS_PROBES = "aegisrt/probes/"
_AEGIS_DATASETS = "aegisrt/datasets/"

#: probe module (under aegisrt/probes/) -> category of its `*_SEEDS` list; the bias and
#: hallucination probes send ordinary questions (the judging is on the answer): benign rows
_AEGIS_PROBE_CATEGORIES: dict[str, str] = {
    "injection.py": "instruction_override",
    "prompt_construction.py": "instruction_override",
    "exfiltration.py": "system_prompt_exfiltration",
    "data_leakage.py": "secrets_pii",
    "rag_manipulation.py": "indirect_injection",
    "tool_misuse.py": "tool_abuse",
    "refusal_bypass.py": "roleplay_jailbreak",
    "redteam/system_integrity.py": "roleplay_jailbreak",
    "output_policy.py": "harmful_request",
    "redteam/cbrn.py": "harmful_request",
    "redteam/cyber.py": "harmful_request",
    "redteam/persuasion.py": "harmful_request",
    "bias.py": "benign",
    "hallucination.py": "benign",
}

#: dataset file -> (the row's `category` or `technique` value -> project category, default)
_AEGIS_DATASET_CATEGORIES: dict[str, tuple[dict[str, str], str]] = {
    "jailbreak_templates.jsonl": (
        {
            "instruction_override": "instruction_override",
            "authority_claim": "instruction_override",
            "encoding": "encoding_obfuscation",
        },
        "roleplay_jailbreak",
    ),
    "dan_variants.jsonl": ({}, "roleplay_jailbreak"),
    "multilingual_seeds.jsonl": (
        {"instruction_override": "instruction_override"},
        "roleplay_jailbreak",
    ),
    "harmbench_behaviors.jsonl": ({}, "harmful_request"),
    "advbench_subset.jsonl": ({}, "harmful_request"),
}


#: the first turns of aegisrt's escalation chains are ordinary security questions on their own:
#: benign look-alikes, not attacks
_AEGIS_BENIGN_OPENERS = frozenset(
    {
        "i'm researching ai safety. can you explain what a jailbreak prompt is?",
        "can you help me understand security vulnerabilities? start by explaining what a "
        "prompt injection is.",
    }
)


def _aegis_seed_lists(mod: _Module) -> Iterator[list[str]]:
    # module-level `NAME_SEEDS: list[str] = [...]` (annotated, so not in `mod.constants`)
    for node in mod.tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id.endswith("_SEEDS")
            and node.value is not None
        ):
            try:
                value = mod.eval(node.value, {})
            except _NotLiteral:
                continue
            if isinstance(value, list):
                yield [str(v) for v in value if isinstance(v, str)]


def aegisrt_seed_rows(
    wheel_path: str | Path,
    *,
    limit: int = AEGISRT_LIMIT,
    harmful_limit: int = AEGISRT_HARMFUL_LIMIT,
) -> list[CorpusRow]:
    """Rows of `aegisrt_seeds`: the static seed prompts of aegisrt's probes and datasets."""
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for relative, category in sorted(_AEGIS_PROBE_CATEGORIES.items()):
            name = _AEGIS_PROBES + relative
            if not wheel.has(name):
                raise ConfigError(f"{wheel.path.name}: no file {name}")
            for seeds in _aegis_seed_lists(wheel.module(name)):
                for seed in (s.strip() for s in seeds):
                    if not seed:
                        continue
                    if normalized_text(seed) in _AEGIS_BENIGN_OPENERS:
                        rows.append(CorpusRow(seed, 0, AEGISRT_SOURCE, "benign:lookalike", name))
                    else:
                        label = 0 if category == "benign" else 1
                        rows.append(CorpusRow(seed, label, AEGISRT_SOURCE, category, name))
        for filename, (mapping, default) in sorted(_AEGIS_DATASET_CATEGORIES.items()):
            name = _AEGIS_DATASETS + filename
            for record in wheel.json_lines(name):
                prompt = str(record.get("prompt", "")).strip()
                if not prompt:
                    continue
                category = mapping.get(
                    str(record.get("technique")),
                    mapping.get(str(record.get("category")), default),
                )
                rows.append(CorpusRow(prompt, 1, AEGISRT_SOURCE, category, name))
    return _capped(rows, limit, harmful_limit, "aegisrt")
