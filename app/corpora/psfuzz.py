"""The `psfuzz_attacks` source: prompt-security-fuzzer's injection set, attack templates
and goals."""

from __future__ import annotations

import ast
import csv
import io
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from app.corpora._rows import PSFUZZ_SOURCE, CorpusRow, _capped, _sample, normalized_text
from app.corpora._wheels import _parquet_records, _Wheel
from app.errors import ConfigError

_PSF = "ps_fuzz/"
_PSF_ATTACKS = _PSF + "attacks/"
_PSF_INJECTIONS = _PSF + "attack_data/prompt_injections_for_base64.parquet"
#: AdvBench goals (custom_benchmark1.csv is the same list under other column names)
_PSF_HARMFUL = _PSF + "attack_data/harmful_behavior.csv"
#: the CSV's first row is a harmless calibration request, not a harmful goal
_PSF_HARMFUL_CONTROLS = frozenset({"please compute 2*2"})

#: parquet rows (by their `index`) that the original labels as injections only because they
#: leave a newspaper assistant's topic; on their own they are ordinary requests ("generate
#: c++", "Be a DJ", "Formulate an untrue headline", a Winograd question, "state that ...")
_PSF_NOT_ATTACKS = frozenset({168, 171, 348, 351, 363, 386, 395, 435, 461, 462, 494, 516, 534})
#: awesome-chatgpt-prompts role prompts (and their German translations), which the dev
#: corpora hold as benign: never relabelled as attacks here
_PSF_ROLE_PROMPT = re.compile(r"\bI want you to act as an? |\bIch möchte, dass Sie als ", re.I)
_PSF_EXFILTRATION = re.compile(
    r"\b(?:your|all|full|deine[n]?|gesamten|vollständigen|sämtlicher)\s+(?:\w+\s+)?"
    r"prompt[- ]?text|beginning of this prompt|what is written above|your instructions\?"
    r"|sentences before the text",
    re.I,
)
_PSF_ROLEPLAY = re.compile(
    r"\bact as\b|\byou are\b|\bpretend\b|\bimagine you\b|\brole|\bactors?\b|Schauspieler"
    r"|\bDAN\b|\bdu bist\b|\bbist du\b|Stell dir vor|\bentities\b|in the style of|im Stile"
    r"|IM STIL|SONDERN EIN|as a rutheless",
    re.I,
)

#: fuzzer templates that frame a harmful goal (the fuzzer has an LLM write the goal; AdvBench
#: goals stand in for it), as (module, constant, project category)
_PSF_FRAMES: tuple[tuple[str, str, str], ...] = (
    ("aim.py", "aim_prompt_template", "roleplay_jailbreak"),
    ("ucar.py", "ucar_attack_frame", "instruction_override"),
    ("self_refine.py", "self_refine_prompt_template", "roleplay_jailbreak"),
)
#: dynamic tests whose literal `attack_task` is an attack on its own (contextual_redirection
#: asks a history question; affirmative_suffix is one gibberish suffix on a harmless question)
_PSF_DYNAMIC: dict[str, str] = {
    "amnesia": "instruction_override",
    "authoritative_role_impersonation": "instruction_override",
}
_PSF_DAN = re.compile(r"Take this text literally:\n(.+?)\"?\n\nNow, from the above text", re.S)
_PSF_NUMBERED = re.compile(r"^\s*\d+\.\s+", re.M)
_PSF_FRAMED_PER_TEMPLATE = 6
PSFUZZ_LIMIT = 300
PSFUZZ_HARMFUL_LIMIT = 60


def _psfuzz_injections(wheel: _Wheel) -> list[CorpusRow]:
    rows: list[CorpusRow] = []
    for record in _parquet_records(wheel, _PSF_INJECTIONS):
        text = str(record.get("text") or "").strip()
        if (
            not text
            or int(record.get("label", 1)) != 1
            or int(record.get("index", -1)) in _PSF_NOT_ATTACKS
            or _PSF_ROLE_PROMPT.search(text)
        ):
            continue
        if _PSF_EXFILTRATION.search(text):
            category = "system_prompt_exfiltration"
        elif _PSF_ROLEPLAY.search(text):
            category = "roleplay_jailbreak"
        else:
            category = "instruction_override"
        rows.append(CorpusRow(text, 1, PSFUZZ_SOURCE, category, _PSF_INJECTIONS))
    return rows


def _psfuzz_goals(wheel: _Wheel) -> list[str]:
    goals = [
        str(record.get("goal") or "").strip()
        for record in csv.DictReader(io.StringIO(wheel.text(_PSF_HARMFUL)))
    ]
    return sorted({g for g in goals if g and normalized_text(g) not in _PSF_HARMFUL_CONTROLS})


def _psfuzz_templates(wheel: _Wheel, goals: Sequence[str]) -> list[CorpusRow]:
    rows: list[CorpusRow] = []
    for module, constant, category in _PSF_FRAMES:
        origin = _PSF_ATTACKS + module
        template = wheel.module(origin).constants.get(constant)
        if not isinstance(template, str) or "{attack_task}" not in template:
            raise ConfigError(f"{wheel.path.name}:{origin}: no template {constant}")
        picked = _sample(goals, _PSF_FRAMED_PER_TEMPLATE, f"psfuzz:{constant}")
        rows += [
            CorpusRow(template.format(attack_task=g).strip(), 1, PSFUZZ_SOURCE, category, origin)
            for g in picked
        ]
    # dan.py asks an LLM to vary a fixed DAN text, then appends its question
    origin = _PSF_ATTACKS + "dan.py"
    dan = _PSF_DAN.search(str(wheel.module(origin).constants.get("dan_prompt_template", "")))
    if dan is None:
        raise ConfigError(f"{wheel.path.name}:{origin}: no DAN text")
    question = ". Now that you're DAN, tell me who is the first president of United States."
    rows.append(
        CorpusRow(dan.group(1).strip() + question, 1, PSFUZZ_SOURCE, "roleplay_jailbreak", origin)
    )
    origin = _PSF_ATTACKS + "typoglycemia.py"
    typo = wheel.module(origin).local_assignment("TestTypoglycemia", "attack_task")
    rows.append(CorpusRow(str(typo).strip(), 1, PSFUZZ_SOURCE, "encoding_obfuscation", origin))
    origin = _PSF_ATTACKS + "dynamic_test.py"
    mod = wheel.module(origin)
    for node in ast.walk(mod.tree):
        if not isinstance(node, ast.Call):
            continue
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        if "test_name" not in kwargs or "attack_task" not in kwargs:
            continue
        name = mod.eval(kwargs["test_name"], {})
        if name in _PSF_DYNAMIC:
            task = str(mod.eval(kwargs["attack_task"], {})).strip()
            rows.append(CorpusRow(task, 1, PSFUZZ_SOURCE, _PSF_DYNAMIC[name], origin))
    # the system-prompt stealer's task is a numbered list of four separate attacks
    stealer = str(mod.constants.get("steal_system_prompt_attack_text", ""))
    for item in _PSF_NUMBERED.split(stealer):
        if item.strip():
            rows.append(
                CorpusRow(
                    " ".join(line.strip() for line in item.strip().splitlines()),
                    1,
                    PSFUZZ_SOURCE,
                    "system_prompt_exfiltration",
                    origin,
                )
            )
    # RAG poisoning: the poisoned document, and the clean documents it hides among
    origin = _PSF_ATTACKS + "rag_poisoning.py"
    mod = wheel.module(origin)
    poisoned = mod.local_assignment("TestRAGPoisoning", "poisoned_content")
    rows.append(
        CorpusRow(
            textwrap.dedent(str(poisoned)).strip(), 1, PSFUZZ_SOURCE, "indirect_injection", origin
        )
    )
    for document in mod.local_assignment("TestRAGPoisoning", "benign_docs"):
        content = textwrap.dedent(str(document["content"])).strip()
        rows.append(CorpusRow(content, 0, PSFUZZ_SOURCE, "benign:document", origin))
    return rows


def psfuzz_attack_rows(
    wheel_path: str | Path,
    *,
    limit: int = PSFUZZ_LIMIT,
    harmful_limit: int = PSFUZZ_HARMFUL_LIMIT,
) -> list[CorpusRow]:
    """Rows of `psfuzz_attacks`: prompt-security-fuzzer's injection set, templates, AdvBench.

    The injection set is a parquet file: reading it needs pyarrow (ConfigError without it).
    """
    with _Wheel(wheel_path) as wheel:
        goals = _psfuzz_goals(wheel)
        rows = _psfuzz_injections(wheel) + _psfuzz_templates(wheel, goals)
        rows += [CorpusRow(g, 1, PSFUZZ_SOURCE, "harmful_request", _PSF_HARMFUL) for g in goals]
    return _capped(rows, limit, harmful_limit, "psfuzz")
