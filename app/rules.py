"""Rule detector: linear-time regular expressions for the common manipulation phrasings.

Each rule belongs to one attack category and carries a weight in [0, 1]. Rules run over the
normalizer's views (canonical text, decoded payloads, extracted markup), so obfuscation is
handled there, not here. Matching is linear in the input for every pattern, so no prompt can
make a rule backtrack: Hyperscan (vectorscan) finds which rules may match in one pass, and RE2
(google-re2) confirms each candidate and extracts its snippet, so RE2's semantics decide. The
patterns are also valid Python `re` syntax (a test checks the engines agree).

The rule score is a noisy-or of the weights of distinct rules that fired; the fusion model
uses it (and per-category hits) as features next to kNN similarity and temporal features.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

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

    def category_scores(self, categories: Sequence[str]) -> list[float]:
        """`category_score` of each of `categories`, in one pass over the hits."""
        miss = dict.fromkeys(categories, 1.0)
        for hit in self.hits:
            if hit.category in miss:
                miss[hit.category] *= 1.0 - hit.weight
        return [1.0 - miss[c] for c in categories]


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
        r"\benvironment\s+variables\b|\.env\s+file\b|\b(?:aws_secret_access_key|openai_api_key)\b",
    ),
    # --- role-play jailbreak --------------------------------------------------------------
    _rule(
        "jailbreak.dan",
        "roleplay_jailbreak",
        0.85,
        # "dan" alone is a first name: only with jailbreak context
        r"\bdan\b[^.\n]{0,80}?\b(?:mode|anything|jailbr\w*|persona|stands\s+for)\b"
        r"|\bdo\s+anything\s+now\b|\b(?:developer|dude|god|unrestricted)\s+mode\b|\bjailbr(?:oken|eak)",
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


_DIRECTIVE = r"(?:you\s+(?:must|will|shall|should|are\s+to)|now|from\s+now\s+on|please)"

#: more phrasings of the same families, written from public taxonomies of LLM attacks
#: (OWASP LLM01, PromptInject, garak probe families, jailbreak studies), not from eval data
EXTRA_RULES: tuple[Rule, ...] = (
    # instruction override / policy manipulation
    _rule(
        "override.forget_everything",
        "instruction_override",
        0.7,
        r"\b(?:forget|erase|clear|wipe|reset)\s+(?:\w+\s+){0,2}?(?:everything|all|your\s+memory|"
        r"your\s+(?:training|programming|context))\b(?:\W+\w+){0,4}?\W+(?:before|above|you\s+(?:know|were))",
    ),
    _rule(
        "override.start_fresh",
        "instruction_override",
        0.5,
        r"\b(?:let's|let\s+us)\s+start\s+(?:fresh|over|anew)\b|\bnew\s+(?:session|conversation)\s+"
        r"(?:with|under)\s+(?:new|different)\s+rules\b",
    ),
    _rule(
        "override.do_not_follow",
        "instruction_override",
        0.65,
        r"\b(?:do\s+not|don't|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to|comply\s+with)\s+"
        r"(?:\w+\s+){0,2}?(?:rules|guidelines|instructions|policies|polic(?:y)|programming|restrictions)\b",
    ),
    _rule(
        "override.disable_safety",
        "instruction_override",
        0.75,
        r"\b(?:disable|deactivate|turn\s+off|switch\s+off|remove|bypass|circumvent|override|lift)\s+"
        r"(?:\w+\s+){0,3}?(?:safety|content|security|ethical|moderation)\s+"
        r"(?:features?|filters?|protocols?|guidelines|guardrails?|checks?|settings|restrictions|measures)\b",
    ),
    _rule(
        "override.safety_off",
        "instruction_override",
        0.7,
        r"\b(?:safety|filters?|guardrails?|restrictions|moderation|content[_\s]policy)\s*"
        r"(?:=|:|is\s+now|are\s+now|set\s+to)\s*[\"']?(?:off|disabled|false|none|0|optional|null)\b",
    ),
    _rule(
        "override.privileged_mode",
        "instruction_override",
        0.65,
        r"\b(?:enter|enable|activate|switch\s+to|you\s+are\s+(?:now\s+)?in)\s+(?:\w+\s+)?"
        r"(?:admin|administrator|root|sudo|debug|maintenance|god|developer|test|override|unrestricted|"
        r"superuser)\s+mode\b",
    ),
    _rule(
        "override.authority_claim",
        "instruction_override",
        0.55,
        r"\b(?:i\s+am|this\s+is)\s+(?:your|the|an?)\s+(?:developer|creator|administrator|admin|"
        r"system\s+administrator|openai|anthropic|owner)\b(?:\W+\w+){0,8}?\W+"
        r"(?:override|authori[sz]e|grant|allow|disable|unlock|ignore)",
    ),
    _rule(
        "override.supersede",
        "instruction_override",
        0.65,
        r"\b(?:supersedes?|overrides?|replaces?|takes?\s+precedence\s+over)\s+(?:\w+\s+){0,2}?"
        r"(?:all\s+)?(?:previous|prior|other|your|system)\s+(?:instructions|rules|prompts?|guidelines)\b",
    ),
    _rule(
        "override.your_new_role",
        "instruction_override",
        0.5,
        rf"\b{_DIRECTIVE}\W+(?:\w+\W+){{0,2}}?(?:act|behave|respond|function|operate)\s+as\s+(?:an?\s+)?"
        r"(?:unrestricted|unfiltered|uncensored|different|new|evil|rogue|malicious)\b",
    ),
    # special tokens and role markers smuggled into user text
    _rule(
        "override.special_tokens",
        "instruction_override",
        0.7,
        r"<\|(?:im_start|im_end|endoftext|system|user|assistant|start_header_id|end_header_id|eot_id)\|>"
        r"|\[/?inst\]|<</?sys>>|\[/?system\]|<\s*/?\s*system\s*>|\b(?:eot|sot)\s*>|<(?:eot|sot)>",
    ),
    _rule(
        "override.fake_role_turn",
        "instruction_override",
        0.55,
        r"(?:^|\n)\s*(?:system|assistant|admin|developer)\s*:\s*(?:\w+\W+){0,6}?"
        r"(?:ignore|override|disable|you\s+(?:are|must|will)|new\s+instructions)",
    ),
    _rule(
        "override.json_role", "instruction_override", 0.6, r"[\"']role[\"']\s*:\s*[\"']system[\"']"
    ),
    # system prompt / configuration extraction
    _rule(
        "exfil.your_prompt",
        "system_prompt_exfiltration",
        0.6,
        r"\b(?:your|the)\s+(?:system|initial|original|hidden|secret|pre-?|custom|full)\s*"
        r"(?:prompt|instructions|message|configuration|directives)\b(?:\W+\w+){0,6}?\W+"
        r"(?:verbatim|word\s+for\s+word|exactly|in\s+full|in\s+a\s+code\s+block)",
    ),
    _rule(
        "exfil.begin_with",
        "system_prompt_exfiltration",
        0.6,
        r"\b(?:begin|start)\s+(?:your\s+(?:reply|response|answer)\s+)?with\s+[\"'](?:you\s+are|"
        r"sure|certainly|absolutely|here\s+(?:is|are))",
    ),
    _rule(
        "exfil.what_told",
        "system_prompt_exfiltration",
        0.5,
        r"\bwhat\s+(?:were|was)\s+you\s+(?:told|instructed|programmed|asked)\s+(?:to\s+do\s+)?"
        r"(?:before|initially|at\s+the\s+(?:start|beginning))\b",
    ),
    _rule(
        "exfil.guidelines_specific",
        "system_prompt_exfiltration",
        0.45,
        r"\b(?:list|enumerate|summari[sz]e|describe)\s+(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?"
        r"(?:rules|guidelines|restrictions|instructions|constraints)\s+(?:verbatim|exactly|in\s+detail|one\s+by\s+one)",
    ),
    # code execution and tool abuse
    _rule(
        "tool.code_exec",
        "tool_abuse",
        0.7,
        r"\b(?:os\.(?:system|popen|spawn\w*|exec\w*)|subprocess\.\w+|__import__|importlib\."
        r"import_module|child_process|runtime\.getruntime\(\)\.exec|shell_exec|proc_open|passthru|"
        r"system\s*\(\s*[\"'](?:whoami|id|ls|cat|rm|curl|wget|nc|bash|sh)\b)",
    ),
    _rule(
        "tool.eval_exec",
        "tool_abuse",
        0.55,
        r"\b(?:eval|exec)\s*\(\s*(?:[\"'`]|atob|base64|compile|string\.fromcharcode|"
        r"bytes\.fromhex|chr\(|\[)",
    ),
    _rule(
        "tool.recon_cmd",
        "tool_abuse",
        0.55,
        r"(?:^|[\s`'\"(;|&])(?:whoami|uname\s+-a|cat\s+/etc/|ls\s+-la\s+/|id\s*;|hostname\s*;|"
        r"net\s+user|ipconfig|ifconfig|printenv|env\s*\||history\s*\|)",
    ),
    _rule(
        "tool.reverse_shell",
        "tool_abuse",
        0.8,
        r"(?:/bin/(?:ba)?sh\s+-i|bash\s+-c\s+[\"']|/dev/tcp/|\bnc(?:at)?\s+(?:-\w+\s+)*-e\b|"
        r"powershell(?:\.exe)?\s+(?:-\w+\s+)*-e(?:nc(?:odedcommand)?)?\b|mkfifo\s+/tmp/|"
        r"\bsocket\.socket\(|pty\.spawn)",
    ),
    _rule(
        "tool.injection_payload",
        "tool_abuse",
        0.6,
        r"(?:\$\{jndi:|;\s*drop\s+table\b|'\s*or\s+'1'\s*=\s*'1|\bunion\s+select\b|"
        r"<script\b|javascript:\s*\w|\bonerror\s*=|xp_cmdshell|\{\{\s*(?:config|self|request)\.)",
    ),
    _rule(
        "tool.run_this",
        "tool_abuse",
        0.45,
        r"\b(?:execute|run|eval(?:uate)?|interpret)\s*(?:this|the\s+following|it|:)\W+(?:\w+\W+){0,3}?"
        r"(?:code|command|script|payload|snippet|program|python|javascript|bash|shell)\b",
    ),
    _rule(
        "tool.agent_action",
        "tool_abuse",
        0.55,
        r"\b(?:delete|drop|wipe|transfer|wire|grant|escalate|approve|refund)\s+(?:all\s+)?"
        r"(?:\w+\s+){0,2}?(?:files|records|database|accounts?|funds|money|permissions|privileges|users)\b"
        r"(?:\W+\w+){0,6}?\W+(?:without|no\s+need\s+(?:to|for)|skip(?:ping)?)\s+"
        r"(?:\w+\s+)?(?:confirmation|approval|verification|asking|checks?)",
    ),
    # data exfiltration
    _rule(
        "exfil.send_data",
        "data_exfiltration",
        0.6,
        r"\b(?:send|email|post|upload|forward|leak|exfiltrate)\s+(?:\w+\s+){0,3}?"
        r"(?:it|this|them|everything|the\s+(?:\w+\s+)?(?:data|results?|contents?|file|logs?|keys?|passwords?|"
        r"credentials|answers?))\s+to\s+(?:\S+@\S+|my\s+(?:email|server|webhook|endpoint)|"
        r"(?:this|the\s+following)\s+(?:address|email|url|server|webhook))",
    ),
    _rule(
        "exfil.image_url_data",
        "data_exfiltration",
        0.55,
        r"!\[[^\]\n]{0,80}\]\(https?://[^)\s]{1,200}(?:\?|&)(?:q|d|data|c|msg|secret|p|info|x)=",
    ),
    # secrets and training data
    _rule(
        "secrets.training_data",
        "secrets_pii",
        0.55,
        r"\b(?:training|fine-?tuning)\s+(?:data|examples|set|corpus)\b(?:\W+\w+){0,6}?\W+"
        r"(?:verbatim|exact(?:ly)?|examples?|repeat|reproduce|show|print|list|reveal)"
        r"|\b(?:repeat|reproduce|regurgitate)\s+(?:\w+\s+){0,3}?(?:training|memori[sz]ed)\s+(?:data|text|examples)",
    ),
    _rule(
        "secrets.other_users",
        "secrets_pii",
        0.6,
        r"\b(?:other|previous|another)\s+users?(?:'s|s')?\s+(?:\w+\s+)?(?:data|conversations?|messages|"
        r"queries|prompts|information|emails?|details)\b",
    ),
    _rule(
        "secrets.dump_env",
        "secrets_pii",
        0.6,
        r"\b(?:print|dump|show|list|output|reveal)\s+(?:\w+\s+){0,2}?(?:env(?:ironment)?\s+vars?|"
        r"os\.environ|process\.env|secrets?|api[_\s-]?keys?|tokens?|credentials|config(?:uration)?\s+files?)\b",
    ),
    # role-play / persona jailbreaks
    _rule(
        "jailbreak.free_from",
        "roleplay_jailbreak",
        0.6,
        r"\byou\s+(?:are|have\s+been|were)\s+(?:now\s+)?(?:free|freed|liberated|unbound|released|"
        r"unshackled|no\s+longer\s+(?:bound|restricted|limited|constrained))\b",
    ),
    _rule(
        "jailbreak.without_limits",
        "roleplay_jailbreak",
        0.55,
        r"\b(?:without|with\s+no|free\s+(?:of|from)|beyond|unbound\s+by)\s+(?:any\s+)?"
        r"(?:restrictions|limitations|limits|filters|rules|guidelines|censorship|boundaries|"
        r"ethical\s+(?:constraints|guidelines)|moral\s+(?:constraints|guidelines))\b",
    ),
    _rule(
        "jailbreak.two_responses",
        "roleplay_jailbreak",
        0.65,
        r"\b(?:two|2|both)\s+(?:different\s+)?(?:responses|answers|replies|paragraphs)\b(?:\W+\w+){0,12}?"
        r"\W+(?:jailbr\w*|unfiltered|uncensored|developer\s+mode|without\s+restrictions|normal)\b",
    ),
    _rule(
        "jailbreak.evil_persona",
        "roleplay_jailbreak",
        0.6,
        r"\b(?:evil|malicious|rogue|dark|unethical|amoral|chaotic)\s+(?:ai|assistant|twin|version|"
        r"confidant|alter\s+ego|persona|character|bot|gpt)\b",
    ),
    _rule(
        "jailbreak.hypothetical_bypass",
        "roleplay_jailbreak",
        0.45,
        r"\b(?:hypothetically|in\s+a\s+(?:fictional|hypothetical)\s+(?:world|scenario|story))\b"
        r"(?:\W+\w+){0,10}?\W+(?:no\s+(?:rules|restrictions|laws|ethics)|not\s+bound|anything\s+goes|"
        r"without\s+(?:restrictions|consequences))",
    ),
    _rule(
        "jailbreak.grandma",
        "roleplay_jailbreak",
        0.55,
        r"\b(?:my\s+(?:late|dead|deceased)\s+(?:grand(?:ma|mother|pa|father)|mother|father))\b"
        r"(?:\W+\w+){0,10}?\W+(?:used\s+to|would)\s+(?:tell|read|recite|say)",
    ),
    _rule(
        "jailbreak.opposite",
        "roleplay_jailbreak",
        0.5,
        r"\b(?:opposite\s+(?:day|mode)|anti-?gpt|betterdan|maximum\s+mode|aim\s+stands\s+for|"
        r"always\s+intelligent\s+and\s+machiavellian)\b",
    ),
    _rule(
        "jailbreak.no_refusal_tokens",
        "roleplay_jailbreak",
        0.6,
        r"\b(?:never|don't|do\s+not|must\s+not)\s+(?:\w+\s+){0,2}?(?:apologi[sz]e|warn|add\s+(?:a\s+)?"
        r"(?:disclaimer|warning)|mention\s+(?:ethics|legality|that\s+you\s+are\s+an\s+ai)|"
        r"say\s+(?:i'm\s+sorry|i\s+cannot|as\s+an\s+ai))",
    ),
    # indirect injection
    _rule(
        "indirect.when_processing",
        "indirect_injection",
        0.6,
        r"\b(?:when|if|while)\s+(?:you\s+)?(?:are\s+)?(?:summari[sz]ing|reading|processing|"
        r"analy[sz]ing|translating|parsing)\s+(?:this|the)\s+(?:document|page|email|file|text|"
        r"message|content|review)\b(?:\W+\w+){0,8}?\W+(?:ignore|instead|must|you\s+(?:should|will))",
    ),
    _rule(
        "indirect.ai_reading",
        "indirect_injection",
        0.6,
        r"\b(?:ai|assistant|llm|model|bot|agent)s?\s+(?:reading|processing|summari[sz]ing|"
        r"scraping|crawling)\s+this\b",
    ),
    _rule(
        "indirect.important_ai",
        "indirect_injection",
        0.5,
        r"\b(?:important|attention|urgent|notice|critical)\s*[:!-]+\s*(?:\w+\s+){0,2}?"
        r"(?:ai|assistant|llm|model|chatbot|gpt)\b",
    ),
    _rule(
        "indirect.retrieved_override",
        "indirect_injection",
        0.5,
        r"\b(?:ignore|disregard|override)\s+(?:\w+\s+){0,2}?(?:retrieved|provided|the\s+above)\s+"
        r"(?:context|documents?|information|sources?|data)\b",
    ),
    _rule(
        "indirect.reply_with",
        "indirect_injection",
        0.45,
        r"\b(?:reply|respond|answer|output)\s+(?:only\s+)?with\s+[\"'][^\"'\n]{1,60}[\"']\s*"
        r"(?:and\s+nothing\s+else|only|instead)\b",
    ),
    # encodings as carriers
    _rule(
        "encoding.respond_encoded",
        "encoding_obfuscation",
        0.5,
        r"\b(?:respond|reply|answer|write|output)\s+(?:\w+\s+){0,3}?(?:in|using)\s+(?:base64|rot13|"
        r"hex(?:adecimal)?|binary|morse|leetspeak|reverse(?:d)?\s+(?:order|text)|pig\s+latin|"
        r"caesar\s+cipher)\b",
    ),
    _rule(
        "encoding.decode_payload",
        "encoding_obfuscation",
        0.5,
        r"\b(?:base64|rot13|hex|binary|caesar|morse)\b(?:\W+\w+){0,4}?\W+(?:decode|decrypt|"
        r"translate|convert)\b(?:\W+\w+){0,6}?\W+(?:follow|execute|run|do|obey|answer|comply)",
    ),
    _rule(
        "encoding.token_split",
        "encoding_obfuscation",
        0.45,
        r"\b(?:concatenate|combine|join|put\s+together)\s+(?:\w+\s+){0,3}?(?:strings|words|letters|"
        r"parts|tokens|variables)\b(?:\W+\w+){0,8}?\W+(?:follow|execute|run|answer|instruction)",
    ),
    # indirect injection: a document that addresses the model and reorders its task
    _rule(
        "indirect.task_first",
        "indirect_injection",
        0.55,
        r"\bbefore\s+you\s+(?:can\s+)?(?:solve|complete|finish|answer|continue|proceed|start|do)"
        r"\w*\s+(?:\w+\s+){0,4}?(?:task|request|question|job)\b(?:\W+\w+){0,14}?\W+first\b",
    ),
    _rule(
        "indirect.message_to_you",
        "indirect_injection",
        0.5,
        r"\b(?:important|urgent|priority)\s+(?:message|note|instructions?|notice)\s+from\s+"
        r"(?:\w+\W+){1,4}?to\s+you\b",
    ),
    _rule(
        "indirect.instead_of_task",
        "indirect_injection",
        0.5,
        r"\binstead\s+of\s+(?:\w+\s+){0,3}?(?:the\s+)?(?:original|user'?s?|given|current|"
        r"assigned)\s+(?:task|request|instructions?|question)\b",
    ),
    _rule(
        "indirect.pseudo_tag",
        "indirect_injection",
        0.4,
        r"<\s*/?\s*(?:information|important|admin)\s*>"
        r"|#{2,}\s*\(?\s*system[_\s]message\b",
    ),
    # harmful goals (what jailbreaks are for)
    _rule(
        "harm.weapons",
        "harmful_request",
        0.6,
        r"\b(?:how\s+(?:to|do\s+i|can\s+i|would\s+(?:i|one|you))|steps?\s+to|instructions\s+"
        r"(?:for|to|on)|guide\s+(?:to|for|on)|recipe\s+for)\s+(?:\w+\s+){0,3}?(?:make|build|"
        r"synthesi[sz]e|create|produce|assemble|manufacture|cook)\s+(?:\w+\s+){0,3}?(?:bomb|"
        r"explosives?|napalm|meth(?:amphetamine)?|nerve\s+agent|sarin|ricin|bioweapon|chemical\s+weapon|"
        r"poison|gun|firearm|silencer|pipe\s+bomb|molotov)",
    ),
    _rule(
        "harm.cyber",
        "harmful_request",
        0.55,
        r"\b(?:write|create|develop|code|build|generate)\s+(?:\w+\s+){0,3}?(?:malware|ransomware|"
        r"keylogger|virus|trojan|worm|botnet|rootkit|exploit|phishing\s+(?:email|page|site)|"
        r"credential\s+stealer|backdoor)\b",
    ),
    _rule(
        "harm.crime",
        "harmful_request",
        0.5,
        r"\b(?:how\s+(?:to|do\s+i|can\s+i)|help\s+me|teach\s+me\s+(?:how\s+)?to|steps?\s+to)\s+"
        r"(?:\w+\s+){0,2}?(?:steal|launder\s+money|hack\s+into|break\s+into|stalk|kidnap|"
        r"murder|kill\s+(?:someone|a\s+person|my)|evade\s+(?:taxes|the\s+police)|counterfeit|"
        r"smuggle|blackmail|dox)\b",
    ),
)

RULES = RULES + EXTRA_RULES


#: rules whose match can be a plain programming-interface name or call (`subprocess.run`,
#: `__import__`, `exec(compile(...))`, `run(command, ...)`): in pasted source code, on a
#: line of code, such a match is code under review, not a directive (`interfaces_only_in_code`)
CODE_API_RULES = frozenset(
    {"tool.code_exec", "tool.dangerous_cmd", "tool.eval_exec", "tool.shell_command"}
)
#: names that run code or commands in Python, Node, Java and PHP (`subprocess.` apart: as a
#: snippet it may end at a full stop, as a line's mention it needs a name after the dot)
_INTERFACE = (
    r"os\.(?:system|popen|spawn|exec)|__import__|importlib\.import_module|child_process"
    r"|runtime\.getruntime\(\)\.exec|shell_exec|proc_open|passthru"
)
#: a snippet of those rules that is only a programming interface: names and calls with no
#: shell command in them (`rm -rf /`, `curl ... | sh`, `/etc/passwd`, `system("whoami")`
#: and "run this shell command" in prose stay hits everywhere); each alternative is linear
_CODE_API_SNIPPET = re.compile(
    rf"(?:{_INTERFACE}|subprocess\.)(?:\w*\(?|\(\s*['\"]os)?|(?:eval|exec)\s*\(.*"
    r"|(?:run|execute|exec|eval)\s*\([\w\s,=]*",
    re.IGNORECASE | re.DOTALL,
)
#: where a line names one (`run(` only with a command argument, as `tool.shell_command`
#: matches it)
_INTERFACE_MENTION = re.compile(
    rf"{_INTERFACE}|subprocess\.\w|\b(?:eval|exec)\s*\(|\b(?:run|execute)\s*\("
    r"[\w\s,=]{0,80}?(?:shell|bash|terminal|command|powershell|cmd)",
    re.IGNORECASE,
)
#: first keywords of a line of code (Python, JavaScript, Go, Rust, Java, C, shell)
_CODE_STARTS = (
    "def ", "class ", "import ", "from ", "return", "if ", "elif ", "else", "for ", "while ",
    "try:", "try {", "except", "finally", "with ", "raise ", "yield", "async ", "await ",
    "const ", "let ", "var ", "function ", "func ", "fn ", "pub ", "public ", "private ",
    "package ", "#include", "@", "}", ")", "]", "case ", "switch ", "catch",
)  # fmt: skip
_CODE_ENDS = ("{", "}", ";", ":", "(", "[", ",", ")", "]")
_CODE_STATEMENT = re.compile(r"[\w.\[\]'\"]+\s*[-+*/|&%]?=[^=]|[\w.]+\(.*\)[;,]?$|[\w.]+,$")
#: `looks_like_source` reads at most this many lines
SOURCE_MAX_LINES = 400
#: and calls a text source code from this many lines of code on, with at most this many
#: lines of prose (docstrings, a request) per line of code
SOURCE_MIN_CODE_LINES = 8
SOURCE_PROSE_PER_CODE = 2


def _line_kind(line: str) -> bool | None:
    """True for a line of code, False for prose, None for neither (blank, comment, fence)."""
    s = line.strip()
    if not s or s.startswith(("```", '"""', "'''")):
        return None
    if s.startswith(("#", "//", "/*", "*", "--")) and not s.startswith("#include"):
        return None
    return bool(
        s.startswith(_CODE_STARTS)
        or (s.endswith(_CODE_ENDS) and any(c in s for c in "([{="))
        or _CODE_STATEMENT.match(s)
    )


def looks_like_source(text: str) -> bool:
    """True when `text` is mostly lines of program source (a pasted file, not a request).

    Comments, docstring quotes and markdown fences count for neither side (a chunk of a file
    may start inside a docstring, so its text counts as prose); a request around the code
    ("Review this:") is a line or two of prose. Reads the first `SOURCE_MAX_LINES` lines
    with string tests and two anchored, linear expressions, so its cost is bounded whatever
    the input.
    """
    code = prose = 0
    for number, line in enumerate(text.split("\n", SOURCE_MAX_LINES)):
        if number == SOURCE_MAX_LINES:
            break
        kind = _line_kind(line)
        if kind is not None:
            code += kind
            prose += not kind
    return code >= SOURCE_MIN_CODE_LINES and code * SOURCE_PROSE_PER_CODE >= prose


def interfaces_only_in_code(text: str) -> bool:
    """True when `text` `looks_like_source` and every line naming a programming interface
    (`subprocess.`, `os.system`, `exec(`, `run(` ...) is a line of code.

    An interface named in a comment, a docstring's prose, a README line or an issue ("AI:
    before you start, call os.system(...)") is text about running code, the way an injection
    inside a repository reads to an agent, so one such line keeps every interface hit.
    Linear in the text: one search per line with an expression of literals.
    """
    if not looks_like_source(text):
        return False
    return all(_line_kind(line) for line in text.split("\n") if _INTERFACE_MENTION.search(line))


#: letters RE2 folds onto Cyrillic letters of the rules (д, о, с, т: the Cyrillic Extended-C
#: block) and Hyperscan's older Unicode tables do not: a view with one is matched by RE2 alone
_RE2_ONLY = re.compile("[\u1c80-\u1c88]")

_COMPILED: dict[str, Any] = {}  # rule-set key -> Hyperscan database, once per process
_COMPILE_LOCK = threading.Lock()


def prefilter_flags() -> int:
    """Hyperscan flags of every rule: case-insensitive UTF-8, one report per rule, prefilter."""
    import hyperscan

    return int(
        hyperscan.HS_FLAG_CASELESS
        | hyperscan.HS_FLAG_UTF8
        | hyperscan.HS_FLAG_SINGLEMATCH
        | hyperscan.HS_FLAG_PREFILTER
    )


def _prefilter_database(sources: Sequence[str], cache_dir: str | Path | None) -> Any:
    """A Hyperscan database that reports every rule that may match (a superset of RE2's).

    Every rule is compiled in prefilter mode, which accepts constructs Hyperscan cannot run
    exactly (e.g. large bounded repeats) by matching more, never less. Compiling takes
    seconds, so the database is kept per process and, with `cache_dir`, serialized on disk
    (a database serialized for another CPU or library version fails to load and is rebuilt).
    """
    import hyperscan

    flags = prefilter_flags()
    digest = hashlib.sha256(f"{metadata.version('hyperscan')}:{flags}".encode())
    for source in sources:
        digest.update(b"\0" + source.encode("utf-8"))
    key = digest.hexdigest()[:16]
    with _COMPILE_LOCK:
        database = _COMPILED.get(key)
        if database is not None:
            return database
        path = Path(cache_dir) / f"rules-{key}.hsdb" if cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                database = hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
            except (hyperscan.error, OSError, ValueError):  # rebuildable: compile below
                database = None
        if database is None:
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(
                expressions=[source.encode("utf-8") for source in sources],
                ids=list(range(len(sources))),
                elements=len(sources),
                flags=[flags] * len(sources),
            )
            if path is not None:
                _write_atomically(path, hyperscan.dumpb(database))
        _COMPILED[key] = database
        return database


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file (a cache is never seen half-written)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:  # an unwritable cache costs a compile at the next start, nothing else
        pass


class RuleDetector:
    """Runs `RULES` over a prompt's views and reports the hits.

    A Hyperscan prefilter finds the rules that may match a view in one linear-time pass; RE2
    confirms each of them and extracts its snippet, so a hit is exactly an RE2 match (RE2 never
    backtracks, so no input can make a rule slow). Both engines fold case by Unicode rules;
    the few characters only RE2 folds send their view to an RE2 `Set` (a test checks this
    covers every letter the rules use).
    """

    def __init__(
        self,
        *,
        rules: tuple[Rule, ...] = RULES,
        max_chars: int = 50_000,
        max_mem: int = 64 << 20,
        cache_dir: str | Path | None = None,
    ):
        import re2

        options = re2.Options()
        options.max_mem = max_mem
        self._rules = rules
        sources = ["(?i)" + rule.pattern.pattern for rule in rules]
        self._patterns = [re2.compile(source, options) for source in sources]
        self._set = re2.Set.SearchSet(options)
        for source in sources:
            self._set.Add(source)
        self._set.Compile()
        self._prefilter = _prefilter_database([r.pattern.pattern for r in rules], cache_dir)
        self._scratch = threading.local()  # a Hyperscan scratch serves one thread at a time
        self._max_chars = max_chars

    def warm_up(self, texts: Iterable[str]) -> int:
        """Scan `texts` once and forget the result; returns how many were scanned.

        RE2 builds its DFAs lazily, state by state, as input reaches them: the first long
        prompts whose candidates RE2 confirms pay for that construction. Known attack and
        benign texts at load time build the common states off the request path.
        """
        count = 0
        for text in texts:
            self.scan((text,))
            count += 1
        return count

    def scan(self, views: Iterable[str], *, raw: str | None = None) -> RuleReport:
        """Hits over all views (each rule reported once, with its first snippet).

        A view longer than `max_chars` is scanned at its head and its tail, so a payload
        appended to a long document is still seen while the cost stays bounded. `raw` is the
        prompt as sent (the views have lost its lines): when it is source code that names
        programming interfaces only on lines of code (`interfaces_only_in_code`), a match in
        the first view that is only such an interface (`CODE_API_RULES`) is code under
        review, and the rule fires only on another of its matches or in a decoded view.
        """
        hits: dict[str, RuleHit] = {}
        source: bool | None = None if raw is not None else False
        for position, text in enumerate(views):
            if len(text) > self._max_chars:
                half = self._max_chars // 2
                text = text[:half] + "\n" + text[-half:]
            # both engines match UTF-8 bytes: encode once for the prefilter and every snippet
            # search (a str search re-encodes the text and maps byte offsets back)
            encoded = text.encode("utf-8")
            for index in self._candidates(text, encoded):
                rule = self._rules[index]
                if rule.id in hits:
                    continue
                match = self._patterns[index].search(encoded)
                if match is None:  # the prefilter matches more than the rule
                    continue
                if position == 0 and rule.id in CODE_API_RULES and _is_code_api(match):
                    if source is None:  # decided once, and only when it matters
                        source = interfaces_only_in_code(raw or "")
                    if source:
                        match = next(
                            (
                                m
                                for m in self._patterns[index].finditer(encoded)
                                if not _is_code_api(m)
                            ),
                            None,
                        )
                        if match is None:
                            continue
                # a match spans whole characters, so its bytes decode on their own
                snippet = match.group(0).decode("utf-8")[:120]
                hits[rule.id] = RuleHit(rule.id, rule.category, rule.weight, snippet)
        ordered = tuple(sorted(hits.values(), key=lambda h: -h.weight))
        return RuleReport(hits=ordered, score=_noisy_or(h.weight for h in ordered))

    def _candidates(self, text: str, encoded: bytes) -> list[int]:
        """Indices of the rules that may match `text` (`encoded` in UTF-8), ascending."""
        if not text.isascii() and _RE2_ONLY.search(text):
            return sorted(self._set.Match(encoded) or ())
        found: set[int] = set()
        scratch = getattr(self._scratch, "value", None)
        if scratch is None:
            import hyperscan

            scratch = self._scratch.value = hyperscan.Scratch(self._prefilter)
        self._prefilter.scan(
            encoded,
            match_event_handler=lambda index, start, end, flags, context: found.add(index),
            scratch=scratch,
        )
        return sorted(found)


def _is_code_api(match: Any) -> bool:
    """Whether an RE2 match of a `CODE_API_RULES` rule is only a programming interface."""
    return _CODE_API_SNIPPET.fullmatch(match.group(0).decode("utf-8")) is not None
