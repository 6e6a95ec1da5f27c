"""Policy facts: the catalog of typed facts and their extraction from a screened prompt.

Owns `Subject` (what the screening stage hands to verification), `FactSpec` and `CATALOG` (the
fact names a policy may use, with their types and domains), the pure text extractors (emails,
phones, cards with Luhn, national ids, IBANs, API keys, private keys, URLs with encoded payloads,
tool/command directives, override and role-play phrasing, system-prompt requests) and
`extract_facts`, which turns a `Subject` into a `FactSet`.

A fact the extractor cannot determine is *unknown* (`None`), never silently false: a missing
score or session value, a role that was not given, a value of the wrong type, or text facts of a
prompt longer than the scan bound (a secret could hide in the unscanned part).

Every regex is precompiled, has bounded repetition and no nested unbounded quantifiers, so a
scan is linear in the (bounded) input.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from app.rules import CATEGORIES

Value = bool | int | float | str


class FactType(enum.StrEnum):
    """Type of a fact: what values it takes and how a policy may compare it."""

    BOOL = "bool"
    INT = "int"
    REAL = "real"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class FactSpec:
    """One fact a policy may reference: its qualified name, type, domain and meaning."""

    name: str
    type: FactType
    description: str
    #: inclusive bounds of numeric facts (None = unbounded)
    lo: float | None = None
    hi: float | None = None
    #: members of an enum fact
    values: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """True for int and real facts."""
        return self.type in (FactType.INT, FactType.REAL)


ROLES = ("user", "system", "assistant", "tool", "document")

#: categories the screening stage may flag (`Subject.categories`): the rules' taxonomy
SCREEN_CATEGORIES = CATEGORIES

#: screening score keys as the screening stage names them -> fact name
SCORE_KEYS = {
    "screen.score": "scores.screen_score",
    "pattern.similarity": "scores.pattern_similarity",
    "rules.score": "scores.rules_score",
    "temporal.score": "scores.temporal_score",
}


def _count(name: str, description: str) -> FactSpec:
    return FactSpec(name, FactType.INT, description, lo=0)


def _flag(name: str, description: str) -> FactSpec:
    return FactSpec(name, FactType.BOOL, description)


def _score(name: str, description: str) -> FactSpec:
    return FactSpec(name, FactType.REAL, description, lo=0.0, hi=1.0)


_SPECS: tuple[FactSpec, ...] = (
    # --- facts extracted from the prompt text (all views) ---
    _count("facts.email_count", "distinct email addresses, documentation domains excluded"),
    _count("facts.phone_count", "distinct phone numbers (+CC international or NANP formatted)"),
    _count("facts.card_count", "distinct payment card numbers passing Luhn with a known prefix"),
    _count("facts.national_id_count", "distinct national ids (US SSN, UK NINO)"),
    _count("facts.iban_count", "distinct IBANs passing the mod-97 check"),
    _count("facts.pii_count", "emails + phones + national ids + IBANs (third-party PII volume)"),
    _count("facts.api_key_count", "distinct API keys/tokens of known formats"),
    _flag("facts.private_key", "a PEM/OpenSSH/PuTTY private key with key material"),
    _count("facts.url_count", "distinct http(s) URLs"),
    _flag("facts.url_payload", "a URL whose query or fragment carries encoded data or a template"),
    _flag(
        "facts.exfil_directive", "an instruction to send data to, or embed it in, a URL/endpoint"
    ),
    _flag("facts.tool_directive", "an instruction to run a command/tool, or tool-call markup"),
    _flag("facts.shell_command", "a dangerous shell or code-execution snippet"),
    _flag("facts.instruction_override", "phrasing that tells the model to drop its instructions"),
    _flag("facts.system_prompt_request", "a request to reveal the system prompt / instructions"),
    _flag("facts.roleplay_jailbreak", "role-play jailbreak phrasing (DAN, no restrictions, ...)"),
    _flag(
        "facts.fake_role_marker", "chat-template role tokens inside the text (<|im_start|>, [INST])"
    ),
    _flag(
        "facts.credential_disclosure",
        "an instruction or command that prints, reads out or sends credentials or environment "
        "secrets",
    ),
    _flag(
        "facts.send_to_recipient",
        "an instruction to send, forward or pay something to an email address or account",
    ),
    _flag(
        "facts.persistence_edit",
        "an instruction or command that changes a shell start-up file, scheduled job, SSH "
        "authorized keys, git hook or CI workflow",
    ),
    _flag(
        "facts.agent_addressed",
        "text addressed to the AI model or agent that reads it ('note to the AI assistant', "
        "'if you are an AI')",
    ),
    _flag(
        "facts.concealment",
        "tells the model to act without telling or asking the user ('do not inform the user', "
        "'silently run')",
    ),
    _flag("facts.obfuscated", "a directive visible only in a decoded view of the text"),
    _count("facts.text_chars", "length of the raw prompt text in characters"),
    FactSpec("facts.role", FactType.ENUM, "role of the text's author", values=ROLES),
    # --- screening scores ---
    _score("scores.screen_score", "fused screening score"),
    _score("scores.pattern_similarity", "max similarity to a known attack pattern"),
    _score("scores.rules_score", "rule detector score"),
    _score("scores.temporal_score", "temporal (session) detector score"),
    # --- session facts from the temporal tables ---
    FactSpec(
        "session.prompts_1m",
        FactType.REAL,
        "prompts of this session in the last minute (hopping window; a count, may be fractional)",
        lo=0.0,
    ),
    _count("session.repeat_near", "near-duplicate prompts of this session in the window"),
    _count("session.probing", "variants of a recently blocked prompt seen since its block"),
    _score("session.escalation", "match of the session's score trajectory to an escalation shape"),
    _score("session.bot_regularity", "bot-like regularity of the session's timing"),
    _count("session.blocked_recent", "prompts of this session blocked recently"),
) + tuple(
    _flag(f"categories.{cat}", f"screening flagged the category {cat}") for cat in SCREEN_CATEGORIES
)

#: every fact a policy may reference, by qualified name
CATALOG: Mapping[str, FactSpec] = {spec.name: spec for spec in _SPECS}


@dataclass(frozen=True, slots=True)
class Subject:
    """What the screening stage hands to verification for one undecided prompt."""

    text: str
    views: tuple[str, ...]
    scores: Mapping[str, float]
    categories: tuple[str, ...]
    session: Mapping[str, float | int | bool | None]
    role: str | None = None


@dataclass(frozen=True, slots=True)
class FactSet:
    """Extracted facts: a value for every catalog fact, `None` where unknown."""

    values: Mapping[str, Value | None]
    notes: tuple[str, ...] = ()

    def unknown(self) -> tuple[str, ...]:
        """Names of the facts whose value is unknown."""
        return tuple(name for name, value in self.values.items() if value is None)

    def to_json(self) -> dict[str, Value | None]:
        """The facts as a JSON-able dict (unknown as null)."""
        return dict(self.values)


# ---------------------------------------------------------------------------------------------
# PII and secrets
# ---------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24})(?![\w-])"
)
_DOC_EMAIL_DOMAINS = frozenset(
    {
        "example.com",
        "example.org",
        "example.net",
        "example.edu",
        "domain.com",
        "yourdomain.com",
        "mydomain.com",
        "yourcompany.com",
    }
)
_DOC_EMAIL_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})


def find_emails(text: str) -> list[str]:
    """Distinct email addresses (lower-cased), documentation domains left out."""
    out: dict[str, None] = {}
    if "@" not in text:
        return []
    for match in _EMAIL.finditer(text):
        domain = match.group(1).lower()
        if domain in _DOC_EMAIL_DOMAINS or domain.rsplit(".", 1)[-1] in _DOC_EMAIL_TLDS:
            continue
        if any(domain.endswith("." + d) for d in _DOC_EMAIL_DOMAINS):
            continue
        out[match.group(0).lower()] = None
    return list(out)


_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w])")
_NANP_HINT = re.compile(r"\d{3}[ .-]\d{4}")
_PHONE_NANP = re.compile(r"(?<![\w.-])\(?[2-9]\d{2}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.-])")


def find_phones(text: str) -> list[str]:
    """Distinct phone numbers in international (+CC ...) or formatted NANP form, as digits."""
    out: dict[str, None] = {}
    if "+" in text:
        for match in _PHONE_INTL.finditer(text):
            digits = re.sub(r"\D", "", match.group(0))
            if 8 <= len(digits) <= 15:
                out["+" + digits] = None
    if _NANP_HINT.search(text) is None:
        return list(out)
    for match in _PHONE_NANP.finditer(text):
        raw = match.group(0)
        if raw.count("(") != raw.count(")"):
            continue
        digits = re.sub(r"\D", "", raw)
        if digits[3:6] == "555" and digits[6:8] == "01":
            continue  # 555-01xx is reserved for fiction
        if "+1" + digits not in out:
            out["+1" + digits] = None
    return list(out)


def luhn_valid(digits: str) -> bool:
    """True when a string of digits passes the Luhn checksum."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_FOUR_DIGITS = re.compile(r"\d{4}")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
#: well-known test card numbers found in payment docs: not real cards
_TEST_CARDS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4012888888881881",
        "4000056655665556",
        "5555555555554444",
        "5105105105105100",
        "5200828282828210",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "3530111333300000",
        "3566002020360505",
        "30569309025904",
        "38520000023237",
    }
)


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649:
        return n in (16, 19)
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    return False


def find_cards(text: str) -> list[str]:
    """Distinct payment card numbers: known brand prefix and length, Luhn-valid, not test PANs."""
    out: dict[str, None] = {}
    if _FOUR_DIGITS.search(text) is None:
        return []
    for match in _CARD.finditer(text):
        raw = match.group(0)
        seps = {c for c in raw if not c.isdigit()}
        if len(seps) > 1:
            continue
        digits = raw.replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or len(set(digits)) < 4:
            continue
        if digits in _TEST_CARDS or not _card_brand_ok(digits) or not luhn_valid(digits):
            continue
        out[digits] = None
    return list(out)


_SSN_HINT = re.compile(r"\d{3}-\d{2}-\d{4}")
_NINO_HINT = re.compile(r"\d{2} ?\d{2} ?\d{2} ?[A-D]")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)(\d{3})-(?!00)(\d{2})-(?!0000)(\d{4})(?![\w-])")
_SSN_LABELLED = re.compile(
    r"\b(?:ssn|social\s+security(?:\s+(?:number|no\.?))?)\s*(?:is|:|#)?\s*"
    r"(?!000|666|9\d\d)(\d{3})\s?(?!00)(\d{2})\s?(?!0000)(\d{4})\b",
    re.IGNORECASE,
)
#: SSNs printed in documentation and advertising (never valid for a person)
_DOC_SSNS = frozenset({"123456789", "078051120", "219099999"})
_NINO = re.compile(
    r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)


def find_national_ids(text: str) -> list[str]:
    """Distinct national ids: US SSNs (dashed, or labelled) and UK National Insurance numbers."""
    out: dict[str, None] = {}
    low = text.lower()
    patterns = []
    if _SSN_HINT.search(text):
        patterns.append(_SSN)
    if "ssn" in low or "social security" in low:
        patterns.append(_SSN_LABELLED)
    for pattern in patterns:
        for match in pattern.finditer(text):
            ssn = "".join(match.groups())
            if ssn not in _DOC_SSNS:
                out["ssn:" + ssn] = None
    if _NINO_HINT.search(text):
        for match in _NINO.finditer(text):
            out["nino:" + match.group(0).replace(" ", "")] = None
    return list(out)


_IBAN_HINT = re.compile(r"[A-Z]{2}\d{2}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
#: IBANs printed in standards and bank documentation
_DOC_IBANS = frozenset(
    {
        "DE89370400440532013000",
        "GB29NWBK60161331926819",
        "GB82WEST12345698765432",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "CH9300762011623852957",
    }
)


def iban_valid(iban: str) -> bool:
    """True when an IBAN (no spaces) has its country's length and passes the mod-97 check."""
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def find_ibans(text: str) -> list[str]:
    """Distinct valid IBANs (documentation samples left out)."""
    out: dict[str, None] = {}
    if _IBAN_HINT.search(text) is None:
        return []
    for match in _IBAN.finditer(text):
        candidate = match.group(0).replace(" ", "")
        # the regex may run into a following word: try the country's exact length as a prefix
        want = _IBAN_LENGTHS.get(candidate[:2])
        if want is None or len(candidate) < want:
            continue
        candidate = candidate[:want]
        if candidate not in _DOC_IBANS and iban_valid(candidate):
            out[candidate] = None
    return list(out)


#: (kind, literal prefixes that every match contains, pattern): the prefixes gate the regex
_API_KEYS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("aws_access_key", ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"),
     re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
     re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b")),
    ("github_pat", ("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b")),
    ("gitlab_token", ("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_-]{20,64}\b")),
    ("slack_token", ("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,250}\b")),
    ("stripe_key", ("k_live_",), re.compile(r"\b[sr]k_live_[A-Za-z0-9]{20,247}\b")),
    ("openai_key", ("sk-proj-", "sk-svcacct-", "sk-admin-"),
     re.compile(r"\bsk-(?:proj-|svcacct-|admin-)[A-Za-z0-9_-]{40,300}")),
    ("openai_legacy_key", ("T3BlbkFJ",),
     re.compile(r"\bsk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b")),
    ("anthropic_key", ("sk-ant-",), re.compile(r"\bsk-ant-[a-z]{3,8}\d{2}-[A-Za-z0-9_-]{80,120}")),
    ("google_api_key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])")),
    ("huggingface_token", ("hf_",), re.compile(r"\bhf_[A-Za-z]{34}\b")),
    ("npm_token", ("npm_",), re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("sendgrid_key", ("SG.",), re.compile(r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b")),
    ("jwt", ("eyJ",), re.compile(
        r"\beyJ[A-Za-z0-9_-]{10,2000}\.eyJ[A-Za-z0-9_-]{10,4000}\.[A-Za-z0-9_-]{16,1000}")),
)  # fmt: skip
_PLACEHOLDER = re.compile(
    r"EXAMPLE|XXXX|xxxx|\*\*\*\*|your|YOUR|0{8}|1234567890|"
    r"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"  # the jwt.io sample token
)


def find_api_keys(text: str) -> list[tuple[str, str]]:
    """Distinct API keys/tokens of known formats as (kind, token); placeholders left out."""
    out: dict[str, str] = {}
    for kind, prefixes, pattern in _API_KEYS:
        if not any(prefix in text for prefix in prefixes):
            continue
        for match in pattern.finditer(text):
            token = match.group(0)
            body = token[4:]
            if _PLACEHOLDER.search(token) or len(set(body)) < 8:
                continue
            out.setdefault(token, kind)
    return [(kind, token) for token, kind in out.items()]


_PEM_HEADER = re.compile(
    r"-----BEGIN (?:(?:RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----"
)
_KEY_MATERIAL = re.compile(r"[A-Za-z0-9+/]{40}")
_PUTTY = re.compile(r"PuTTY-User-Key-File-\d: ")


def has_private_key(text: str) -> bool:
    """True when a private key header is followed by key material (a header alone is not a key)."""
    for match in _PEM_HEADER.finditer(text):
        if _KEY_MATERIAL.search(text, match.end(), match.end() + 800):
            return True
    for match in _PUTTY.finditer(text):
        if "Private-Lines:" in text[match.end() : match.end() + 4000]:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# URLs and exfiltration
# ---------------------------------------------------------------------------------------------

_URL = re.compile(r"\bhttps?://[^\s<>\"'`\])]{1,2048}", re.IGNORECASE)
_TRACKING_PARAMS = frozenset(
    {"gclid", "fbclid", "msclkid", "dclid", "yclid", "mc_eid", "_ga", "_gl", "igshid", "si"}
)
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
_HEX_RUN = re.compile(r"(?:[0-9a-fA-F]{2}){16,}")
_TEMPLATE = re.compile(
    r"\{\{?\s*[A-Za-z_][\w.]{0,40}\s*\}?\}|\$\{?[A-Z_][A-Z0-9_]{1,40}\}?|"
    r"\[(?:DATA|INFO|SECRET|CONTEXT|HISTORY|[A-Z_]{4,30})\]|<(?:DATA|SECRET|INFO)>|%s",
)


def _printable_ratio(data: bytes) -> float:
    if not data:
        return 0.0
    good = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13))
    return good / len(data)


def _decodes_to_text(token: str) -> bool:
    """True when a base64 or hex token decodes to at least 16 bytes of mostly printable text."""
    if _HEX_RUN.fullmatch(token):
        try:
            raw = binascii.unhexlify(token)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) >= 16 and _printable_ratio(raw) >= 0.9:
            return True
    body = token.rstrip("=")
    if len(set(body)) < 10:
        return False
    std = body.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= 16 and _printable_ratio(raw) >= 0.9


def find_urls(text: str) -> list[str]:
    """Distinct http(s) URLs (trailing punctuation trimmed)."""
    out: dict[str, None] = {}
    if "://" not in text:
        return []
    for match in _URL.finditer(text):
        out[match.group(0).rstrip(".,;:!?")] = None
    return list(out)


def url_carries_payload(url: str) -> bool:
    """True when a URL's query or fragment carries encoded text, or a data template placeholder."""
    if _TEMPLATE.search(url):
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    values: list[str] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _TRACKING_PARAMS or key.lower().startswith("utm_"):
            continue
        values.append(value)
    if parts.fragment:
        values.append(unquote(parts.fragment))
    for value in values:
        if _TEMPLATE.search(value):
            return True
        for run in _B64_RUN.findall(value):
            if _decodes_to_text(run):
                return True
        for run in _HEX_RUN.findall(value):
            if _decodes_to_text(run):
                return True
    return False


_GAP = r"(?:\W+\w+){0,6}?\W+"


@dataclass(frozen=True, slots=True)
class _Gated:
    """A regex run only when one of its trigger substrings occurs in the lower-cased text.

    Every match of the pattern contains a trigger, so the gate never changes the answer; it
    only skips the (much slower) regex scan on texts that cannot match.
    """

    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    cased: bool = False  # triggers are checked in the original text (case-sensitive patterns)

    def search(self, text: str, low: str) -> bool:
        haystack = text if self.cased else low
        if not any(t in haystack for t in self.triggers):
            return False
        return self.pattern.search(text) is not None


def _gated(pattern: str, triggers: tuple[str, ...], flags: int = re.IGNORECASE) -> _Gated:
    return _Gated(re.compile(pattern, flags), triggers, cased=not flags & re.IGNORECASE)


_EXFIL = (
    _gated(
        r"\b(?:send|post|upload|forward|transmit|exfiltrate|leak|beacon|submit|ping)\w{0,3}\b"
        + _GAP
        + r"(?:to|at|via|using)\s+(?:https?://|www\.|(?:this|the|my|our|an?|that)\s+"
        r"(?:url|endpoint|webhook|server|link|address|domain))",
        (
            "send",
            "post",
            "upload",
            "forward",
            "transmit",
            "exfiltrate",
            "leak",
            "beacon",
            "submit",
            "ping",
        ),
    ),
    _gated(
        r"\b(?:append|add|include|insert|embed|encode|put|attach|concatenate|place)\w{0,3}\b"
        r"(?:\W+\w+){0,8}?\W+(?:to|in|into|inside|as)\s+(?:the\s+|a\s+|this\s+|that\s+)?"
        r"(?:url|link|query\s*string|query\s+param\w*|image\s+(?:url|link|source|src)|"
        r"markdown\s+image|webhook|src\s+attribute)\b",
        ("url", "link", "query", "image", "webhook", "src"),
    ),
    _gated(
        r"!\[[^\]\n]{0,200}\]\(\s*https?://[^)\s]{1,500}?(?:\{\{?\s*\w|\$\{?\w|\[[A-Z_]{3,}|<\w|%s)",
        ("![",),
    ),
)

# ---------------------------------------------------------------------------------------------
# directives and phrasing
# ---------------------------------------------------------------------------------------------

_SHELL = (
    _gated(r"\brm\s+-(?:rf|fr|r|f)\b\s+[/~*.$]", ("-r", "-f")),
    _gated(r"\b(?:curl|wget)\s[^\n|;]{1,300}\|\s*(?:sudo\s+)?(?:ba|z|k)?sh\b", ("curl", "wget")),
    _gated(r"\bnc[ \t]+-[a-z]*e\s", ("nc ", "nc\t")),
    _gated(r"\bbash\s+-i\s+>&|/dev/tcp/|\bmkfifo\b", ("bash", "/dev/tcp/", "mkfifo")),
    _gated(r"\bchmod\s+(?:\+s|[0-7]?777)\b", ("chmod",)),
    _gated(
        r"\bos\.system\s*\(|\bsubprocess\.\w+\s*\(|\b__import__\s*\(\s*['\"]os",
        ("os.system", "subprocess.", "__import__"),
    ),
    _gated(
        r"\beval\s*\(\s*(?:base64|atob|compile|input|request)|"
        r"\bexec\s*\(\s*(?:base64|compile|__import__|open)",
        ("eval", "exec"),
    ),
    _gated(
        r"\bpowershell(?:\.exe)?\s+-(?:enc|e|c)\b|\bInvoke-Expression\b|\bIEX\s*\(",
        ("powershell", "invoke-expression", "iex"),
    ),
    _gated(r":\(\)\s*\{\s*:\|:&\s*\};:", (":()",)),
    _gated(r"\bdd\s+if=/dev/(?:zero|random)\s+of=/dev/", ("if=/dev/",)),
)
_TOOL = (
    _gated(
        r"\b(?:execute|run|invoke|call|trigger|use)\b(?:\W+\w+){0,2}?\W+"
        r"(?:this|these|the\s+following|following|my|that)\s+(?:\w+\s+){0,2}?"
        r"(?:commands?|shell|terminal|scripts?|tools?|functions?|plugins?|api\s+calls?)\b"
        r"(?![^.\n]{0,40}\b(?:gives?|gave|returns?|returned|throws?|threw|fails?|failed|"
        r"errors?|outputs?|prints?|works?|doesn'?t|does\s+not|is|was)\b)",
        ("command", "shell", "terminal", "script", "tool", "function", "plugin", "api"),
    ),
    _gated(
        r"\byou\s+(?:must|should|will|need\s+to|have\s+to)\s+(?:now\s+)?"
        r"(?:execute|run|invoke|call)\b",
        ("execute", "run", "invoke", "call"),
    ),
    _gated(
        r"<\s*(?:tool_call|function_call|tool_use|invoke)\b|<function=|"
        r"\"(?:function_call|tool_calls?)\"\s*:|"
        r"\{\s*\"name\"\s*:\s*\"[\w.-]{1,64}\"\s*,\s*\"(?:arguments|parameters)\"\s*:",
        ("tool_call", "function_call", "tool_use", "invoke", "<function=", '"name"'),
    ),
)
_OVERRIDE = (
    _gated(
        r"\b(?:ignore|disregard|forget|override|bypass|abandon|discard|skip)\b(?:\W+\w+){0,4}?\W+"
        r"(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|every|system|"
        r"developer|safety)\b(?:\W+\w+){0,3}?\W+"
        r"(?:instructions?|prompts?|rules|guidelines|directives?|directions|programming|guardrails|"
        r"constraints|restrictions|policies|commands|context|filters)\b",
        ("ignore", "disregard", "forget", "override", "bypass", "abandon", "discard", "skip"),
    ),
    _gated(
        r"\b(?:do\s+not|don'?t|stop|no\s+longer|never)\s+(?:follow|obey|adhere\s+to|comply\s+with|"
        r"listen\s+to)\w{0,3}\s+(?:your|the|any|these|those|previous|prior|original|earlier)\s+"
        r"(?:\w+\s+){0,2}?(?:instructions|rules|guidelines|programming|policies|directives)\b",
        ("follow", "obey", "adhere", "comply", "listen"),
    ),
    _gated(
        r"\b(?:new|updated|real|actual|revised|overriding)\s+(?:system\s+)?"
        r"(?:instructions?|prompt|directives?|rules)\s*(?::|are\s*:|are\s+as\s+follows)",
        ("instruction", "prompt", "directive", "rules"),
    ),
)
_SYSPROMPT_TARGET = (
    r"(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret|internal|"
    r"developer|pre-?)\s*(?:prompt|instructions?)|instructions|prompt|configuration|"
    r"custom\s+instructions)"
)
_SYSPROMPT = (
    _gated(
        r"\b(?:reveal|show|print|display|output|repeat|recite|tell\s+me|give\s+me|share|dump|"
        r"leak|expose|disclose|spell\s+out|write\s+out|provide|send\s+me|what\s+(?:is|are|was|were))"
        r"\b(?:\W+\w+){0,3}?\W+your\s+(?:\w+\s+){0,2}?" + _SYSPROMPT_TARGET + r"\b",
        ("prompt", "instruction", "configuration", "system"),
    ),
    _gated(
        r"\b(?:reveal|show|print|display|output|repeat|dump|leak|expose|disclose|extract|return|"
        r"recite)\b(?:\W+\w+){0,3}?\W+(?:the\s+)?(?:system|initial|original|hidden|secret|"
        r"developer)\s+(?:prompt|instructions|message)\b",
        ("prompt", "instruction", "message"),
    ),
    _gated(
        r"\b(?:repeat|print|output|reproduce|recite|copy|echo|write)\b(?:\W+\w+){0,4}?\W+"
        r"(?:words|text|everything|all|content|message|lines|instructions|prompt)\s+"
        r"(?:above|before\s+(?:this|that|the\s+first)|preceding|prior\s+to)\b",
        ("above", "before", "preceding", "prior"),
    ),
    _gated(
        r"\b(?:what\s+were\s+you\s+told|what\s+instructions\s+were\s+you\s+given)\b",
        ("told", "given"),
    ),
)
_ROLEPLAY = (
    _gated(
        r"\b(?:DAN|STAN|DUDE|BetterDAN|AntiGPT|AIM|UCAR|APOPHIS|BISH)\b",
        ("DAN", "STAN", "DUDE", "AntiGPT", "AIM", "UCAR", "APOPHIS", "BISH"),
        0,
    ),
    _gated(
        r"\b(?:do\s+anything\s+now|developer\s+mode\s+(?:enabled|output|on)|"
        r"jailbr(?:oken|eak(?:ed)?)\s+(?:mode|version|ai|assistant|chatbot)|"
        r"evil\s+(?:confidant|assistant|ai|bot|twin)|"
        r"no\s+(?:ethical|moral)\s+(?:guidelines|restrictions|constraints|boundaries|limits)|"
        r"(?:unfiltered|uncensored|unrestricted|amoral)\s+(?:ai|assistant|chatbot|model|mode|"
        r"version|response)s?)\b",
        (
            "anything",
            "developer",
            "jailbr",
            "evil",
            "ethical",
            "moral",
            "unfiltered",
            "uncensored",
            "unrestricted",
        ),
    ),
    _gated(
        r"\b(?:pretend|imagine|act\s+as|role-?play|you\s+are\s+now|from\s+now\s+on)\b[^.\n]{0,120}?"
        r"\b(?:without|with\s+no|free\s+(?:of|from)|not\s+bound\s+by|no\s+longer\s+bound\s+by|"
        r"break\s+free\s+of|ignores?)\s+(?:any\s+|all\s+|the\s+|your\s+)?(?:\w+\s+){0,2}?"
        r"(?:restrictions|limits|limitations|rules|filters|guidelines|ethics|morals|censorship|"
        r"policies|safeguards)\b",
        (
            "restriction",
            "limit",
            "rules",
            "filter",
            "guideline",
            "ethic",
            "moral",
            "censor",
            "policies",
            "safeguard",
        ),
    ),
    _gated(
        r"\bstay\s+in\s+character\b[^.\n]{0,80}?\b(?:never|don'?t|do\s+not)\s+"
        r"(?:refuse|break|decline)|\b(?:never|don'?t|do\s+not)\s+(?:refuse|decline)\b[^.\n]{0,60}?"
        r"\b(?:any|a\s+single|my)\s+(?:request|question|prompt)",
        ("refuse", "decline", "break"),
    ),
)
_ROLE_MARKER = (
    _gated(
        r"<\|(?:im_start|im_end|system|assistant|user|endoftext|begin_of_text|start_header_id|"
        r"end_header_id|eot_id)\|>|\[/?INST\]|<</?SYS>>|\[/?(?:SYSTEM|system)\]|</?\s*system\s*>",
        ("<|", "INST]", "SYS>>", "SYSTEM]", "system"),
        0,
    ),
)


# Agent-context directives: what an injection in a file, an email or a tool's output asks an
# agent to do. Written from the usual attacker techniques (reading credentials from the
# environment and dotfiles, persistence through start-up files, cron, SSH keys and CI, notes
# addressed to the AI, concealment from the user), not from any evaluation source.
_CONFIDENTIAL_NOUN = (
    r"(?:environment\s+variables?|env(?:ironment)?\s+vars?|\.env\s+files?|api[\s_-]?keys?|"
    r"secret\s+keys?|access\s+(?:keys?|tokens?)|auth(?:entication)?\s+tokens?|bearer\s+tokens?|"
    r"session\s+(?:tokens?|cookies?)|credentials|passwords?|passwd|private\s+keys?|ssh\s+keys?|"
    r"secrets)"
)
_CREDENTIAL_FILE = (
    r"(?:\.aws/credentials|\.ssh/id_(?:rsa|dsa|ecdsa|ed25519)\b(?!\.pub)|\.netrc\b|"
    r"\.git-credentials|\.npmrc\b|\.pypirc\b|\.docker/config\.json|\.kube/config\b|/etc/shadow\b)"
)
_CREDENTIALS = (
    _gated(
        # a disclosure verb (not negated), a determiner, then a secret noun
        r"(?<!not )(?<!never )(?<!n't )\b(?:print|echo|output|display|show|reveal|list|dump|paste|"
        r"include|send|share|post|upload|copy|leak|expose|disclose|log|return|write\s+out|"
        r"read\s+out|tell\s+me|give\s+me|provide)\b(?:\W+\w+){0,3}?\W+"
        r"(?:all|your|the|my|our|any|every|these|those|its|their)\s+(?:\w+\s+){0,2}?"
        + _CONFIDENTIAL_NOUN
        + r"\b",
        ("env", "key", "token", "cookie", "credential", "passw", "secret"),
    ),
    _gated(
        # echo $GITHUB_TOKEN, print(os.environ["API_KEY"]) style reads of a secret variable
        r"\b(?:echo|printf|print|cat|puts|console\.log|Write-(?:Output|Host))\b\s*\(?\s*[\"']?"
        r"(?:\$\{?|\$env:|os\.environ\[[\"']|os\.getenv\([\"']|process\.env\.)"
        r"[A-Z0-9_]{0,40}(?:KEY|TOKEN|SECRET|PASSW|CRED|AUTH)",
        ("$", "environ", "getenv", "process.env"),
        0,
    ),
    _gated(
        # the whole environment dumped, or piped to the network
        r"\bprintenv\b(?!\s+(?:PATH|HOME|SHELL|USER|LANG|PWD|TERM)\b)|"
        r"\b(?:env|set|printenv)\s*\|\s*(?:curl|wget|nc|ncat|base64|xxd)\b",
        ("printenv", "|"),
    ),
    _gated(
        # a credential file read or sent
        r"\b(?:cat|type|less|more|head|tail|read|open|print|send|upload|copy|cp|scp|curl|base64|"
        r"include|paste|show|display|output)\b[^\n]{0,60}?" + _CREDENTIAL_FILE,
        (
            "aws/credentials",
            "ssh/id_",
            ".netrc",
            "git-credentials",
            ".npmrc",
            ".pypirc",
            "docker/config",
            "kube/config",
            "/etc/shadow",
        ),
    ),
    _gated(
        # code that reads the environment and sends it
        r"\b(?:os\.environ|os\.getenv|process\.env|System\.getenv)\b[^\n]{0,200}?"
        r"\b(?:requests\.(?:post|get|put)|urlopen|urllib|http\.client|fetch|axios|sendall|webhook)\b|"
        r"\b(?:requests\.(?:post|get|put)|urlopen|fetch|axios\.\w+)\s*\([^\n]{0,200}?"
        r"\b(?:os\.environ|process\.env)\b",
        ("environ", "getenv", "process.env"),
    ),
)
_RECIPIENT = (
    _gated(
        r"\b(?:send|forward|email|e-mail|mail|transfer|share|cc|bcc|wire|pay|reply)\w{0,3}\b"
        r"(?:\W+\w+){0,12}?\W+(?:to|at|with)\s+['\"<]?[\w.+-]{1,64}@[\w-]{1,63}\.[\w.-]{2,63}",
        ("@",),
    ),
    _gated(
        r"\b(?:send|transfer|wire|pay|move|deposit)\w{0,3}\b(?:\W+\w+){0,10}?\W+(?:to|into)\s+"
        r"(?:the\s+|this\s+|my\s+|our\s+|following\s+)?(?:iban|bank\s+account|account|wallet)\b"
        r"[^.\n]{0,20}?\b[A-Z]{2}\d{2}\s?[A-Z0-9]{4}",
        ("iban", "account", "wallet"),
    ),
    _gated(
        # money or data sent to an IBAN-shaped account number itself
        r"\b(?i:send|transfer|wire|pay|move|deposit)\w{0,3}\b(?:\W+\w+){0,10}?\W+(?i:to|into)\s+"
        r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){10,30}\b",
        ("to",),
        0,
    ),
)
_STARTUP_FILE = (
    r"(?:\.bashrc|\.bash_profile|\.bash_login|\.profile\b|\.zshrc|\.zprofile|\.zshenv|"
    r"config\.fish|authorized_keys|crontab|/etc/cron|rc\.local|/etc/profile|sudoers|"
    r"\.git/hooks/|hooks/pre-commit|hooks/post-checkout|\.github/workflows/|\.gitlab-ci\.yml|"
    r"jenkinsfile|\.circleci/config|launchagents|/systemd/system/)"
)
_STARTUP_TRIGGERS = (
    "bashrc",
    "bash_profile",
    "bash_login",
    ".profile",
    "zshrc",
    "zprofile",
    "zshenv",
    "config.fish",
    "authorized_keys",
    "crontab",
    "/etc/cron",
    "rc.local",
    "/etc/profile",
    "sudoers",
    "hooks/",
    "workflows/",
    "gitlab-ci",
    "jenkinsfile",
    "circleci",
    "launchagents",
    "/systemd/system/",
)
_PERSISTENCE = (
    _gated(
        # shell appends to a start-up file, or a job piped into crontab
        r"(?:>>|\btee\s+(?:-a|--append)\s)\s*\S{0,80}?"
        + _STARTUP_FILE
        + r"|\|\s*crontab\s+-(?!\w)",
        (">>", "tee", "crontab"),
    ),
    _gated(
        r"\b(?:add|append|insert|write|put|place|inject|modify|edit|update|change|overwrite|"
        r"create)\w{0,3}\b(?:\W+\w+){0,10}?\W+(?:to|in|into|inside|at\s+the\s+(?:end|top|bottom)\s+of)"
        r"\s+(?:your\s+|the\s+|a\s+|this\s+|their\s+)?(?:user'?s\s+)?[\"'`]?(?:~|\$HOME)?/?"
        r"(?:\S{0,60}?/)?" + _STARTUP_FILE,
        _STARTUP_TRIGGERS,
    ),
)
_AGENT_NOUN = (
    r"(?:ai|a\.i\.|llms?|large\s+language\s+models?|language\s+models?|"
    r"(?:ai\s+|coding\s+|automated\s+)?(?:assistants?|agents?)|chatbots?|copilot|"
    r"gpt(?:-?\d[\w.]*)?|chatgpt|claude|gemini)"
)
_AGENT_ADDRESSED = (
    _gated(
        r"\b(?:note|message|instructions?|attention|important|reminder|notice|memo|directive)"
        r"\s*(?:to|for)\s*:?\s+(?:the\s+|any\s+|all\s+|every\s+)?" + _AGENT_NOUN + r"\b",
        ("to", "for"),
    ),
    _gated(
        r"\bif\s+you\s+(?:are|'re)\s+(?:an?\s+|the\s+)?(?:bot|automated\s+system|"
        + _AGENT_NOUN[3:],
        ("if you",),
    ),
    _gated(
        r"\b(?:ai|llm|automated|coding)\s+(?:assistants?|agents?|models?|systems?|tools?)\s+"
        r"(?:that\s+(?:is|are)\s+)?(?:reading|processing|parsing|summari[sz]ing|reviewing|"
        r"analy[sz]ing|handling|seeing)\s+(?:this|these)\b",
        ("reading", "processing", "parsing", "summari", "reviewing", "analy", "handling", "seeing"),
    ),
    _gated(
        r"\bto\s+you,?\s+(?:gpt-?\d[\w.]*|chatgpt|claude|gemini|llama[\w.-]*|"
        r"the\s+(?:ai|assistant|agent|model))\b",
        ("to you",),
    ),
    _gated(
        r"<\s*/?\s*(?:information|important|system[_ -]?(?:note|message)|ai[_ -]?(?:note|"
        r"instructions?)|admin[_ -]?note)\s*>",
        ("<",),
    ),
)
_CONCEALMENT = (
    _gated(
        r"\b(?:do\s+not|don'?t|never|without)\s+(?:tell|inform|notify|mention|alert|ask|warn|"
        r"let|show|reveal|disclose|report)(?:ing)?\s+(?:\w+\s+){0,2}?(?:the\s+)?"
        r"(?:user|human|operator|developer|owner|customer|client)s?\b",
        (
            "tell",
            "inform",
            "notify",
            "mention",
            "alert",
            "ask",
            "warn",
            "let",
            "show",
            "reveal",
            "disclos",
            "report",
        ),
    ),
    _gated(
        r"\b(?:silently|quietly|secretly|covertly|discreetly|stealthily)\s+(?:\w+\s+){0,2}?"
        r"(?:run|execute|send|add|append|install|forward|copy|upload|delete|modify|include|insert|"
        r"write|post|exfiltrate|transfer)\b",
        ("silently", "quietly", "secretly", "covertly", "discreetly", "stealthily"),
    ),
    _gated(
        r"\bwithout\s+(?:asking|requiring|seeking|requesting|waiting\s+for)\s+(?:for\s+)?"
        r"(?:the\s+user'?s\s+|any\s+|user\s+)?(?:confirmation|permission|approval|consent)\b",
        ("confirmation", "permission", "approval", "consent"),
    ),
)


def _any(gates: tuple[_Gated, ...], text: str, low: str | None = None) -> bool:
    low = text.lower() if low is None else low
    return any(g.search(text, low) for g in gates)


def has_exfil_directive(text: str) -> bool:
    """True when the text tells the model to send data to, or embed data in, a URL or endpoint."""
    return _any(_EXFIL, text)


def has_shell_command(text: str) -> bool:
    """True when the text contains a dangerous shell or code-execution snippet."""
    return _any(_SHELL, text)


def has_tool_directive(text: str) -> bool:
    """True when the text tells the model to run a command or tool, or carries tool-call markup."""
    return _any(_TOOL, text)


def has_instruction_override(text: str) -> bool:
    """True when the text tells the model to ignore or replace its instructions."""
    return _any(_OVERRIDE, text)


def has_system_prompt_request(text: str) -> bool:
    """True when the text asks the model to reveal its system prompt or hidden instructions."""
    return _any(_SYSPROMPT, text)


def has_roleplay_jailbreak(text: str) -> bool:
    """True when the text uses role-play jailbreak phrasing (DAN, 'without any restrictions')."""
    return _any(_ROLEPLAY, text)


def has_fake_role_marker(text: str) -> bool:
    """True when chat-template role tokens appear inside the text."""
    return _any(_ROLE_MARKER, text)


def has_credential_disclosure(text: str) -> bool:
    """True when the text tells the model to print or send credentials or environment secrets."""
    return _any(_CREDENTIALS, text)


def has_send_to_recipient(text: str) -> bool:
    """True when the text tells the model to send or pay something to an email or account."""
    return _any(_RECIPIENT, text)


def has_persistence_edit(text: str) -> bool:
    """True when the text changes a start-up file, cron, SSH keys, a git hook or CI workflow."""
    return _any(_PERSISTENCE, text)


def is_agent_addressed(text: str) -> bool:
    """True when the text speaks to the AI model or agent reading it."""
    return _any(_AGENT_ADDRESSED, text)


def has_concealment(text: str) -> bool:
    """True when the text tells the model to act without telling or asking the user."""
    return _any(_CONCEALMENT, text)


# ---------------------------------------------------------------------------------------------
# whole-subject extraction
# ---------------------------------------------------------------------------------------------

#: directive facts: these count for `facts.obfuscated` when only a decoded view shows them
_DIRECTIVES: tuple[tuple[str, tuple[_Gated, ...]], ...] = (
    ("facts.exfil_directive", _EXFIL),
    ("facts.tool_directive", _TOOL),
    ("facts.shell_command", _SHELL),
    ("facts.instruction_override", _OVERRIDE),
    ("facts.system_prompt_request", _SYSPROMPT),
    ("facts.roleplay_jailbreak", _ROLEPLAY),
    ("facts.fake_role_marker", _ROLE_MARKER),
    ("facts.credential_disclosure", _CREDENTIALS),
    ("facts.send_to_recipient", _RECIPIENT),
    ("facts.persistence_edit", _PERSISTENCE),
    ("facts.agent_addressed", _AGENT_ADDRESSED),
    ("facts.concealment", _CONCEALMENT),
)
_TEXT_COUNTS = (
    "facts.email_count",
    "facts.phone_count",
    "facts.card_count",
    "facts.national_id_count",
    "facts.iban_count",
    "facts.pii_count",
    "facts.api_key_count",
    "facts.url_count",
)
_TEXT_FLAGS = ("facts.private_key", "facts.url_payload", "facts.obfuscated") + tuple(
    name for name, _ in _DIRECTIVES
)


@dataclass(slots=True)
class _Scan:
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    cards: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    ibans: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)
    private_key: bool = False
    url_payload: bool = False


def _scan_secrets(text: str, scan: _Scan) -> None:
    scan.emails.update(find_emails(text))
    scan.phones.update(find_phones(text))
    scan.cards.update(find_cards(text))
    scan.ids.update(find_national_ids(text))
    scan.ibans.update(find_ibans(text))
    scan.keys.update(token for _, token in find_api_keys(text))
    urls = find_urls(text)
    scan.urls.update(urls)
    scan.private_key = scan.private_key or has_private_key(text)
    scan.url_payload = scan.url_payload or any(url_carries_payload(u) for u in urls)


def _coerce(spec: FactSpec, raw: Any) -> tuple[Value | None, str | None]:
    """Coerce a raw score/session value to the fact's type; (None, why) when it does not fit."""
    if raw is None:
        return None, None
    if spec.type is FactType.BOOL:
        if isinstance(raw, bool):
            return raw, None
        if isinstance(raw, int | float) and raw in (0, 1):
            return bool(raw), None
        return None, f"{spec.name}: {raw!r} is not a bool"
    if isinstance(raw, bool):
        raw = int(raw)
    if not isinstance(raw, int | float) or (isinstance(raw, float) and not math.isfinite(raw)):
        return None, f"{spec.name}: {raw!r} is not a number"
    if spec.type is FactType.INT:
        if isinstance(raw, float):
            if not raw.is_integer():
                return None, f"{spec.name}: {raw!r} is not an integer"
            raw = int(raw)
    else:
        raw = float(raw)
    if (spec.lo is not None and raw < spec.lo) or (spec.hi is not None and raw > spec.hi):
        return None, f"{spec.name}: {raw!r} is outside [{spec.lo}, {spec.hi}]"
    return raw, None


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def extract_facts(
    subject: Subject, *, max_scan_chars: int = 200_000, max_views: int = 8
) -> FactSet:
    """Extract every catalog fact from a subject; unknown facts are `None` (pure function)."""
    values: dict[str, Value | None] = dict.fromkeys(CATALOG)
    notes: list[str] = []
    text = subject.text if isinstance(subject.text, str) else ""
    if not isinstance(subject.text, str):
        notes.append("text: not a string")
    views = [v for v in (subject.views or ()) if isinstance(v, str)] or [text]
    truncated = len(views) > max_views
    views = views[:max_views]
    canonical = views[0]
    decoded = [v for v in views[1:] if v != canonical and v != text]
    # the raw text keeps the case and spacing that secret formats need; views may be folded
    surface = _unique([text, canonical])
    budget = max_scan_chars
    scanned_surface: list[str] = []
    for item in surface + decoded:
        if budget <= 0:
            truncated = True
            break
        if len(item) > budget:
            truncated = True
            item = item[:budget]
        budget -= len(item)
        scanned_surface.append(item)
    surface_count = min(len(surface), len(scanned_surface))

    scan = _Scan()
    directive_hits: dict[str, tuple[bool, bool]] = {}
    try:
        for item in scanned_surface:
            _scan_secrets(item, scan)
        lowered = [item.lower() for item in scanned_surface]
        for name, gates in _DIRECTIVES:
            on_surface = any(
                _any(gates, item, low)
                for item, low in zip(scanned_surface[:surface_count], lowered, strict=False)
            )
            in_decoded = any(
                _any(gates, item, low)
                for item, low in zip(
                    scanned_surface[surface_count:], lowered[surface_count:], strict=True
                )
            )
            directive_hits[name] = (on_surface, in_decoded)
    except Exception as exc:  # an extractor bug must not decide: its facts stay unknown
        notes.append(f"text facts unknown: extractor failed: {type(exc).__name__}: {exc}")
        directive_hits = {}
        truncated = True
        scan = _Scan()

    if directive_hits:
        values["facts.email_count"] = len(scan.emails)
        values["facts.phone_count"] = len(scan.phones)
        values["facts.card_count"] = len(scan.cards)
        values["facts.national_id_count"] = len(scan.ids)
        values["facts.iban_count"] = len(scan.ibans)
        values["facts.pii_count"] = len(scan.emails | scan.phones | scan.ids | scan.ibans)
        values["facts.api_key_count"] = len(scan.keys)
        values["facts.url_count"] = len(scan.urls)
        values["facts.private_key"] = scan.private_key
        values["facts.url_payload"] = scan.url_payload
        for name, (on_surface, in_decoded) in directive_hits.items():
            values[name] = on_surface or in_decoded
        values["facts.obfuscated"] = any(
            in_decoded and not on_surface for on_surface, in_decoded in directive_hits.values()
        )
    if truncated:
        # an unscanned tail may hold anything: counts are only lower bounds and absent
        # findings prove nothing, so both become unknown; a finding stays true
        for name in _TEXT_COUNTS:
            values[name] = None
        for name in _TEXT_FLAGS:
            if values[name] is not True:
                values[name] = None
        if directive_hits:
            notes.append(f"text beyond the scan bound ({max_scan_chars} chars, {max_views} views)")
    values["facts.text_chars"] = len(text)

    role = subject.role
    if role is None:
        values["facts.role"] = None
    elif isinstance(role, str) and role.lower() in ROLES:
        values["facts.role"] = role.lower()
    else:
        notes.append(f"facts.role: {role!r} is not one of {', '.join(ROLES)}")

    scores = subject.scores if isinstance(subject.scores, Mapping) else {}
    for key, name in SCORE_KEYS.items():
        value, why = _coerce(CATALOG[name], scores.get(key))
        values[name] = value
        if why:
            notes.append(why)

    session = subject.session if isinstance(subject.session, Mapping) else {}
    for name, spec in CATALOG.items():
        if name.startswith("session."):
            value, why = _coerce(spec, session.get(name.removeprefix("session.")))
            values[name] = value
            if why:
                notes.append(why)

    flagged = {c for c in (subject.categories or ()) if isinstance(c, str)}
    for cat in SCREEN_CATEGORIES:
        values[f"categories.{cat}"] = cat in flagged
    unknown_cats = flagged.difference(SCREEN_CATEGORIES)
    if unknown_cats:
        notes.append(f"categories not in the catalog ignored: {', '.join(sorted(unknown_cats))}")
    return FactSet(values=values, notes=tuple(notes))
