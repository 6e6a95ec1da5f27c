"""The `deepteam_attacks` source: the literal few-shot examples in deepteam's prompts."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from app.corpora._rows import DEEPTEAM_SOURCE, CorpusRow, _capped
from app.corpora._wheels import _Module, _Wheel

DEEPTEAM_LIMIT = 500
#: harmful-content requests are plentiful elsewhere: a sample keeps the injection families ahead
DEEPTEAM_HARMFUL_LIMIT = 60


_DT_VULNERABILITIES = "deepteam/vulnerabilities/"
_DT_SINGLE_TURN = "deepteam/attacks/single_turn/"

#: deepteam's few-shot examples sit in its generator prompts as JSON: `"input": "<attack>"`
_DT_EXAMPLE = re.compile(r'"input"\s*:\s*"((?:[^"\\\n]|\\.)*)"')
_JSON_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_JSON_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "/": "/"}

#: deepteam folder (a vulnerability or a single-turn attack) -> project category; folders not
#: listed are left out: bias, fairness, ethics, hallucination, misinformation, competition,
#: intellectual property and child protection examples are mostly ordinary (if loaded)
#: questions, not manipulation, and ssrf's are bare URLs
_DEEPTEAM_CATEGORIES: dict[str, str] = {
    # system-prompt, objective and configuration extraction
    "goal_theft": "system_prompt_exfiltration",
    "prompt_leakage": "system_prompt_exfiltration",
    "system_reconnaissance": "system_prompt_exfiltration",
    "prompt_probing": "system_prompt_exfiltration",
    # other users' data, credentials
    "pii_leakage": "secrets_pii",
    "cross_context_retrieval": "secrets_pii",
    # goal hijacking, fake authority and context
    "recursive_hijacking": "instruction_override",
    "robustness": "instruction_override",
    "autonomous_agent_drift": "instruction_override",
    "authority_escalation": "instruction_override",
    "context_poisoning": "instruction_override",
    "emotional_manipulation": "instruction_override",
    "gray_box": "instruction_override",
    "permission_escalation": "instruction_override",
    "synthetic_context_injection": "instruction_override",
    "system_override": "instruction_override",
    # instructions planted in documents, tool output, tool metadata, agent messages
    "indirect_instruction": "indirect_injection",
    "insecure_inter_agent_communication": "indirect_injection",
    "tool_metadata_poisoning": "indirect_injection",
    # privileged functions, other users' objects, command/SQL injection through tools
    "agent_identity_abuse": "tool_abuse",
    "bfla": "tool_abuse",
    "bola": "tool_abuse",
    "debug_access": "tool_abuse",
    "excessive_agency": "tool_abuse",
    "exploit_tool_agent": "tool_abuse",
    "external_system_abuse": "tool_abuse",
    "rbac": "tool_abuse",
    "shell_injection": "tool_abuse",
    "sql_injection": "tool_abuse",
    "tool_orchestration_abuse": "tool_abuse",
    "unexpected_code_execution": "tool_abuse",
    # jailbreak framings of a harmful goal
    "adversarial_poetry": "roleplay_jailbreak",
    "goal_redirection": "roleplay_jailbreak",
    "math_problem": "roleplay_jailbreak",
    "prompt_injection": "roleplay_jailbreak",
    "roleplay": "roleplay_jailbreak",
    "semantic_manipulation": "roleplay_jailbreak",
    "input_bypass": "encoding_obfuscation",
    "multilingual": "encoding_obfuscation",
    # harmful goals, sampled (DEEPTEAM_HARMFUL_LIMIT)
    "illegal_activity": "harmful_request",
    "personal_safety": "harmful_request",
    "graphic_content": "harmful_request",
    "toxicity": "harmful_request",
}

#: (folder, generator method) whose examples deviate from the folder's category
_DEEPTEAM_METHOD_CATEGORIES: dict[tuple[str, str], str] = {
    ("prompt_leakage", "generate_secrets_and_credentials_baseline_attacks"): "secrets_pii",
}

#: (folder, generator method) whose examples read as ordinary requests on their own
#: ("automatically order groceries", "retry the tool until it succeeds", "use these sources")
_DEEPTEAM_SKIP = frozenset(
    {
        ("excessive_agency", "generate_functionality_baseline_attacks"),
        ("excessive_agency", "generate_autonomy_baseline_attacks"),
        ("tool_orchestration_abuse", "generate_recursive_tool_calls_baseline_attacks"),
        ("tool_orchestration_abuse", "generate_tool_budget_exhaustion_baseline_attacks"),
        ("robustness", "generate_input_overreliance_baseline_attacks"),
    }
)


def _json_unescape(raw: str) -> str:
    # JSON string escapes; anything else (a LaTeX `\\$` in deepteam's examples) stays as written
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _JSON_ESCAPES.get(code, match.group(0))

    return _JSON_ESCAPE.sub(one, raw)


def _deepteam_examples(mod: _Module) -> Iterator[tuple[str, str]]:
    """(generator method, example text) of every `"input": "..."` in a template module."""
    for function in ast.walk(mod.tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        name = function.name
        if not (name == "enhance" or (name.startswith("generate_") and name.endswith("attacks"))):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for match in _DT_EXAMPLE.finditer(node.value):
                    yield name, _json_unescape(match.group(1)).strip()


def deepteam_attack_rows(
    wheel_path: str | Path,
    *,
    limit: int = DEEPTEAM_LIMIT,
    harmful_limit: int = DEEPTEAM_HARMFUL_LIMIT,
) -> list[CorpusRow]:
    """Rows of `deepteam_attacks`: the literal few-shot attack examples of deepteam's templates.

    deepteam asks an LLM to write attacks at run time; the examples its prompts show that LLM
    are fixed text, one family per vulnerability or attack folder.
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        names = [
            n
            for n in sorted(wheel.names)
            if n.endswith("/template.py") and n.startswith((_DT_VULNERABILITIES, _DT_SINGLE_TURN))
        ]
        for name in names:
            folder = name.split("/")[-2]
            if folder not in _DEEPTEAM_CATEGORIES:
                continue
            for method, text in _deepteam_examples(wheel.module(name)):
                if (folder, method) in _DEEPTEAM_SKIP or len(text) < 20:
                    continue
                category = _DEEPTEAM_METHOD_CATEGORIES.get(
                    (folder, method), _DEEPTEAM_CATEGORIES[folder]
                )
                rows.append(CorpusRow(text, 1, DEEPTEAM_SOURCE, category, f"{name}:{method}"))
    return _capped(rows, limit, harmful_limit, "deepteam")
