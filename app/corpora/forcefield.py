"""The `forcefield_attacks` source: forcefield's built-in attack catalog and the prompts of
its safety and governance eval suites."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from app.corpora._rows import FORCEFIELD_SOURCE, CorpusRow
from app.corpora._wheels import _NotLiteral, _Wheel
from app.errors import ConfigError

_FF_CATALOG = "forcefield/attacks.py"
_FF_EVALS = ("forcefield/evals/safety.yaml", "forcefield/evals/governance.yaml")

#: catalog category -> project category; None: left out. The compliance/governance "attacks"
#: ("Remove all logs of our conversation", "Disable rate limiting for my account") are requests
#: a user may make in earnest, not manipulation of the model
_FF_CATALOG_CATEGORIES: dict[str, str | None] = {
    "prompt_injection_basic": "instruction_override",
    "system_prompt_extraction": "system_prompt_exfiltration",
    "role_escalation": "instruction_override",
    # requests for keys, tokens, connection strings and PII in the model's context
    "data_exfiltration": "secrets_pii",
    "pii_exposure": "secrets_pii",
    "tool_misuse": "tool_abuse",
    "jailbreak_indirect": "indirect_injection",
    "output_corruption": "harmful_request",
    "streaming_evasion": "encoding_obfuscation",
    "multimodal_image_text": "indirect_injection",
    "rag_context_poisoning": "indirect_injection",
    "compliance_governance": None,
    "chat_template_backdoor": "instruction_override",
}
#: chat-template backdoors that are persona jailbreaks (DAN, developer mode, "evil AI")
_FF_CATALOG_ROLEPLAY = frozenset(
    {
        "chat_template_backdoor-003",
        "chat_template_backdoor-005",
        "chat_template_backdoor-006",
        "chat_template_backdoor-007",
    }
)
#: eval-case category -> project category (the cases marked `expect: passed` are benign)
_FF_CASE_CATEGORIES: dict[str, str] = {
    "hate_speech": "harmful_request",
    "violence": "harmful_request",
    "self_harm": "harmful_request",
    "malware": "harmful_request",
    "social_engineering": "harmful_request",
    "jailbreak_success": "roleplay_jailbreak",
    "dangerous_command": "tool_abuse",
    "credential_exfil": "data_exfiltration",
    "sensitive_file": "tool_abuse",
    "privilege_escalation": "tool_abuse",
    "tool_misuse": "tool_abuse",
    "benign": "benign",
}


def _catalog(wheel: _Wheel) -> list[tuple[str, str, str]]:
    """(id, category, prompt) of each `Attack(...)` in the module's `CATALOG` list."""
    module = wheel.module(_FF_CATALOG)
    for node in module.tree.body:
        if (
            isinstance(node, ast.AnnAssign | ast.Assign)
            and any(
                isinstance(t, ast.Name) and t.id == "CATALOG"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            and isinstance(node.value, ast.List)
        ):
            out: list[tuple[str, str, str]] = []
            for element in node.value.elts:
                if not (
                    isinstance(element, ast.Call)
                    and isinstance(element.func, ast.Name)
                    and element.func.id == "Attack"
                    and len(element.args) == 5
                    and not element.keywords
                ):
                    raise ConfigError(f"{wheel.path.name}:{_FF_CATALOG}: not Attack(5 args)")
                try:
                    identifier, category, _, _, prompt = (
                        str(module.eval(a, {})) for a in element.args
                    )
                except _NotLiteral as exc:
                    raise ConfigError(f"{wheel.path.name}:{_FF_CATALOG}: {exc}") from exc
                out.append((identifier, category, prompt))
            return out
    raise ConfigError(f"{wheel.path.name}:{_FF_CATALOG}: no CATALOG list")


def _cases(wheel: _Wheel, name: str) -> list[dict[str, Any]]:
    try:
        suite = yaml.safe_load(wheel.text(name)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{wheel.path.name}:{name}: {exc}") from exc
    cases = suite.get("cases") if isinstance(suite, dict) else None
    if not isinstance(cases, list):
        raise ConfigError(f"{wheel.path.name}:{name}: no cases list")
    return [c for c in cases if isinstance(c, dict)]


def forcefield_attack_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `forcefield_attacks`: the attack catalog and the eval suites' prompts.

    The eval cases that forcefield expects to pass are benign rows. An unknown catalog or
    case category is a ConfigError (a new pin needs a look).
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for identifier, family, prompt in _catalog(wheel):
            if family not in _FF_CATALOG_CATEGORIES:
                raise ConfigError(f"{wheel.path.name}: unknown attack category {family!r}")
            category = _FF_CATALOG_CATEGORIES[family]
            if category is None or not prompt.strip():
                continue
            if identifier in _FF_CATALOG_ROLEPLAY:
                category = "roleplay_jailbreak"
            origin = f"{_FF_CATALOG}:{identifier}"
            rows.append(CorpusRow(prompt.strip(), 1, FORCEFIELD_SOURCE, category, origin))
        for name in _FF_EVALS:
            for case in _cases(wheel, name):
                family = str(case.get("category"))
                if family not in _FF_CASE_CATEGORIES:
                    raise ConfigError(f"{wheel.path.name}:{name}: unknown category {family!r}")
                category = _FF_CASE_CATEGORIES[family]
                label = 0 if category == "benign" else 1
                if case.get("expect") != ("passed" if label == 0 else "blocked"):
                    raise ConfigError(
                        f"{wheel.path.name}:{name}: {case.get('id')} expects "
                        f"{case.get('expect')!r} for {family!r}"
                    )
                text = str(case.get("prompt") or "").strip()
                if text:
                    origin = f"{name}:{case.get('id')}"
                    rows.append(CorpusRow(text, label, FORCEFIELD_SOURCE, category, origin))
    return sorted(rows, key=lambda r: (r.text, r.origin))
