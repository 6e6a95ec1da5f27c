"""Rule detector: linear-time regular expressions for the common manipulation phrasings.

Each rule belongs to one attack category and carries a weight in [0, 1]. Rules run over the
normalizer's views (canonical text, decoded payloads, extracted markup), so obfuscation is
handled there, not here. The patterns use bounded gaps (`(?:\\W+\\w+){0,4}`) over disjoint
character classes, which keeps matching linear: there is no nested unbounded quantifier.

The rule score is a noisy-or of the weights of distinct rules that fired; the fusion model
uses it (and per-category hits) as features next to kNN similarity and temporal features.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

CATEGORIES = (
    "instruction_override",
    "system_prompt_exfiltration",
    "tool_abuse",
    "data_exfiltration",
    "secrets_pii",
    "roleplay_jailbreak",
    "indirect_injection",
    "encoding_obfuscation",
    "harmful_request",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One named regular expression for one category."""

    id: str
    category: str
    weight: float
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched, with the matched snippet."""

    rule_id: str
    category: str
    weight: float
    snippet: str


@dataclass(frozen=True, slots=True)
class RuleReport:
    """All rule hits on a prompt and their combined score."""

    hits: tuple[RuleHit, ...]
    score: float

    def categories(self) -> tuple[str, ...]:
        """Distinct categories hit, strongest first."""
        best: dict[str, float] = {}
        for hit in self.hits:
            best[hit.category] = max(best.get(hit.category, 0.0), hit.weight)
        return tuple(sorted(best, key=lambda c: -best[c]))

    def category_score(self, category: str) -> float:
        """Noisy-or of the weights of the hits in one category."""
        return _noisy_or(h.weight for h in self.hits if h.category == category)


def _noisy_or(weights: Iterable[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


def _rule(rule_id: str, category: str, weight: float, regex: str) -> Rule:
    return Rule(rule_id, category, weight, re.compile(regex, re.IGNORECASE))


_IGNORE = r"(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect|discard)"
_PRIOR = r"(?:previous|prior|above|earlier|preceding|original|initial|all|any|your|the|these|those)"
_INSTR = (
    r"(?:instructions?|prompts?|rules?|guidelines?|directives?|commands?|context|constraints?"
    r"|restrictions?|polic(?:y|ies)|programming|guardrails?)"
)

RULES: tuple[Rule, ...] = (
    # --- instruction override -------------------------------------------------------------
    _rule(
        "override.ignore_previous",
        "instruction_override",
        0.9,
        rf"\b{_IGNORE}\W+(?:\w+\W+){{0,3}}?{_PRIOR}\W+(?:\w+\W+){{0,2}}?{_INSTR}\b",
    ),
    _rule(
        "override.new_instructions",
        "instruction_override",
        0.6,
        r"\b(?:new|updated|real|true|actual)\s+(?:instructions?|rules|task|objective)\s*(?::|are|is)",
    ),
    _rule(
        "override.instead",
        "instruction_override",
        0.5,
        r"\b(?:instead|rather),?\s+(?:you\s+(?:must|should|will)|do|say|output|print|respond)\b",
    ),
    _rule(
        "override.stop_and",
        "instruction_override",
        0.45,
        r"\b(?:stop|halt|cease)\W+(?:\w+\W+){0,2}?(?:what\s+you\s+are\s+doing|the\s+task|translating|summari[sz]ing)\b",
    ),
    _rule(
        "override.multilingual",
        "instruction_override",
        0.85,
        r"\b(?:ignor(?:ez|iere|a)|olvida|vergiss|oublie[zr]?)\W+(?:\w+\W+){0,3}?"
        r"(?:instructions?|instrucciones|anweisungen|consignes|istruzioni|instruções|regeln|reglas)\b"
        r"|игнорируй|забудь\W+(?:\w+\W+){0,2}?инструкци|忽略(?:之前|以上|所有|先前)|無視して",
    ),
    # --- system prompt exfiltration -------------------------------------------------------
    _rule(
        "exfil.system_prompt",
        "system_prompt_exfiltration",
        0.85,
        r"\b(?:reveal|show|print|repeat|output|display|tell|give|leak|dump|share|recite|write)\W+"
        r"(?:\w+\W+){0,4}?(?:system|initial|original|hidden|secret|internal|developer|pre-?)\s*"
        r"(?:prompts?|instructions?|messages?|configuration|rules)\b",
    ),
    _rule(
        "exfil.words_above",
        "system_prompt_exfiltration",
        0.7,
        r"\b(?:repeat|print|output|spell\s+out)\W+(?:\w+\W+){0,3}?(?:words|text|everything|all)\W+"
        r"(?:\w+\W+){0,2}?(?:above|before|preceding|so\s+far)\b",
    ),
    _rule(
        "exfil.what_instructions",
        "system_prompt_exfiltration",
        0.55,
        r"\bwhat\s+(?:were|are)\s+your\s+(?:initial\s+|original\s+|exact\s+)?(?:instructions|rules|directives|system\s+prompt)\b",
    ),
    # --- tool / shell abuse ---------------------------------------------------------------
    _rule(
        "tool.shell_command",
        "tool_abuse",
        0.6,
        r"\b(?:run|execute|exec|eval)\W+(?:\w+\W+){0,3}?(?:shell|bash|terminal|command|powershell|cmd)\b",
    ),
    _rule(
        "tool.dangerous_cmd",
        "tool_abuse",
        0.75,
        r"(?:\brm\s+-rf\s+/|\bcurl\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b|\bwget\s+[^|\n]{1,200}\|\s*(?:ba)?sh\b"
        r"|\bchmod\s+\+x\b|/etc/(?:passwd|shadow)\b|\bnc\s+-e\b|\bos\.system\(|\bsubprocess\.|\b__import__\(\s*['\"]os)",
    ),
    _rule(
        "tool.call_tool",
        "tool_abuse",
        0.5,
        r"\b(?:call|invoke|use)\s+the\s+\w+\s+(?:tool|function|plugin|api)\s+(?:to|and)\s+(?:delete|send|transfer|email|post|upload)\b",
    ),
    # --- data exfiltration ----------------------------------------------------------------
    _rule(
        "exfil.markdown_beacon",
        "data_exfiltration",
        0.8,
        r"!\[[^\]\n]{0,100}\]\(https?://[^)\s]{1,300}[?&][^)\s=]{1,40}=(?:\{|\[|%7B|\$)",
    ),
    _rule(
        "exfil.send_to_url",
        "data_exfiltration",
        0.65,
        r"\b(?:send|post|upload|forward|transmit|exfiltrate|append)\W+(?:\w+\W+){0,5}?(?:to|into)\W+"
        r"(?:https?://|this\s+(?:url|endpoint|webhook)|the\s+(?:url|endpoint|webhook)|my\s+server)",
    ),
    _rule(
        "exfil.conversation",
        "data_exfiltration",
        0.6,
        r"\b(?:send|email|forward|post)\W+(?:\w+\W+){0,3}?(?:conversation|chat\s+history|previous\s+messages|user(?:'s)?\s+data)\b",
    ),
    # --- secrets / PII disclosure ---------------------------------------------------------
    _rule(
        "secrets.reveal",
        "secrets_pii",
        0.7,
        r"\b(?:reveal|give|show|tell|list|print|leak|dump)\W+(?:\w+\W+){0,4}?(?:passwords?|api\s+keys?|secret\s+keys?|credentials|tokens?|private\s+keys?|ssh\s+keys?|credit\s+card\s+numbers?|social\s+security\s+numbers?)\b",
    ),
    _rule(
        "secrets.env",
        "secrets_pii",
        0.6,
        r"\b(?:environment\s+variables|\.env\s+file|aws_secret_access_key|OPENAI_API_KEY)\b",
    ),
    # --- role-play jailbreak --------------------------------------------------------------
    _rule(
        "jailbreak.dan",
        "roleplay_jailbreak",
        0.85,
        r"\b(?:DAN|do\s+anything\s+now|developer\s+mode|jailbr(?:oken|eak)|STAN|DUDE\s+mode|AIM\b)",
    ),
    _rule(
        "jailbreak.no_rules",
        "roleplay_jailbreak",
        0.75,
        r"\b(?:no|without\s+any|free\s+(?:of|from))\s+(?:\w+\s+){0,2}?(?:restrictions|filters|limitations|rules|guidelines|censorship|moral(?:s|ity)?|ethics)\b"
        r"(?:\W+\w+){0,8}?\W+(?:you|answer|respond|reply)",
    ),
    _rule(
        "jailbreak.pretend",
        "roleplay_jailbreak",
        0.55,
        r"\b(?:pretend|imagine|act\s+as\s+if|roleplay\s+as|from\s+now\s+on)\W+(?:\w+\W+){0,5}?(?:you\s+(?:are|have)\s+(?:no|not|an?\s+(?:unfiltered|uncensored|evil|unrestricted)))",
    ),
    _rule(
        "jailbreak.unfiltered",
        "roleplay_jailbreak",
        0.6,
        r"\b(?:unfiltered|uncensored|unrestricted|amoral|unethical|no\s+ethical)\s+(?:ai|assistant|chatbot|model|version|mode|persona)\b",
    ),
    _rule(
        "jailbreak.never_refuse",
        "roleplay_jailbreak",
        0.7,
        r"\b(?:never|don't|do\s+not|won't|will\s+not|cannot)\s+(?:refuse|decline|say\s+(?:no|that\s+you\s+can't))\b",
    ),
    _rule(
        "jailbreak.stay_in_character",
        "roleplay_jailbreak",
        0.45,
        r"\b(?:stay|remain|keep)\s+in\s+character\b",
    ),
    # --- indirect injection (text addressed to the model inside a document) ---------------
    _rule(
        "indirect.to_ai",
        "indirect_injection",
        0.6,
        r"\b(?:note|attention|message|instruction)\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|llm|language\s+model|chatbot|gpt|claude)\b",
    ),
    _rule(
        "indirect.if_you_are_ai",
        "indirect_injection",
        0.7,
        r"\bif\s+you\s+are\s+(?:an?\s+)?(?:ai|assistant|llm|language\s+model|large\s+language\s+model)\b",
    ),
    _rule(
        "indirect.hidden_marker",
        "indirect_injection",
        0.5,
        r"(?:\[\s*(?:system|instructions?|admin)\s*\]|<\s*/?\s*(?:system|im_start|im_end)\s*>|###\s*(?:system|instruction)\b)",
    ),
    # --- encoding as a carrier ------------------------------------------------------------
    _rule(
        "encoding.decode_follow",
        "encoding_obfuscation",
        0.55,
        r"\b(?:decode|decipher|decrypt|translate)\W+(?:\w+\W+){0,4}?(?:and|then)\W+(?:\w+\W+){0,2}?(?:follow|execute|run|do|obey|answer)\b",
    ),
)


class RuleDetector:
    """Runs `RULES` over a prompt's views and reports the hits."""

    def __init__(self, *, rules: tuple[Rule, ...] = RULES, max_chars: int = 50_000):
        self._rules = rules
        self._max_chars = max_chars

    def scan(self, views: Iterable[str]) -> RuleReport:
        """Hits over all views (each rule reported once, with its first snippet)."""
        hits: dict[str, RuleHit] = {}
        for text in views:
            chunk = text[: self._max_chars]
            for rule in self._rules:
                if rule.id in hits:
                    continue
                match = rule.pattern.search(chunk)
                if match:
                    hits[rule.id] = RuleHit(
                        rule.id, rule.category, rule.weight, match.group(0)[:120]
                    )
        ordered = tuple(sorted(hits.values(), key=lambda h: -h.weight))
        return RuleReport(hits=ordered, score=_noisy_or(h.weight for h in ordered))
