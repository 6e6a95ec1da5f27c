"""Stage 1 of screening: normalize a prompt and bring hidden text into plain sight.

This module owns the `Normalizer`. It turns one prompt into a canonical text
(NFKC, invisible/bidi/control characters removed, look-alike letters folded,
casefolded, whitespace collapsed) plus a small, bounded set of extra *views*
that the detectors scan too:

- text pulled out of carriers: HTML comments, attributes and hidden elements,
  markdown alt/title text, JSON and YAML string values, HTML entities and
  escape sequences;
- text decoded from base64, hex, URL-encoding, decimal character codes,
  rot13 and reversed text; decoded text is rescanned, nested up to
  `max_depth` (base64 of rot13, a comment holding base64, ...);
- text smuggled in Unicode tag characters or variation selectors;
- letter-level rewrites: leetspeak and letters split by separators.

The transforms that fired are returned too: obfuscation is itself a signal,
so decoders only fire when the decoded text reads as language (hashes, JWTs,
presigned URLs, attachments and maths do not), and letter-level rewrites only
when they spell known words.

Everything is bounded: input size (`max_chars`, head and tail kept), number
and size of views, candidates and decoded bytes, depth. Regexes are linear (no
nested quantifiers over overlapping classes; delimited scans exclude their
delimiter; bounded repetitions); multi-character delimiters are found with
`str.find`. Cheap gates (a `bytes.translate` into character classes, read by
small numba kernels, and a few substring tests) decide which scans run at all and
where, because per-character regex scanning is what costs time in CPython; every
gate only skips work that provably finds nothing, so results are those of the
plain scans.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

import numpy as np
import numpy.typing as npt

from app._jit import LazyKernels, njit
from app.errors import ConfigError

__all__ = [
    "TRANSFORMS",
    "NormalizedText",
    "Normalizer",
    "View",
    "load_common_words",
    "looks_like_language",
]

#: every name that can appear in `NormalizedText.transforms`, in a fixed order (a feature vector)
TRANSFORMS: tuple[str, ...] = (
    "zero_width",
    "bidi",
    "control",
    "unicode_tags",
    "variation_selectors",
    "combining",
    "homoglyph",
    "fullwidth",
    "styled",
    "leet",
    "separators",
    "html_comment",
    "html_attribute",
    "hidden_span",
    "html_entity",
    "markdown",
    "json_string",
    "yaml_string",
    "escape",
    "base64",
    "hex",
    "url",
    "charcode",
    "rot13",
    "reversed",
    "depth_limit",  # DEPTH_LIMIT: not an obfuscation but a limit reached
)


@dataclass(frozen=True, slots=True)
class View:
    """One text the detectors scan, with the de-obfuscation path that produced it."""

    text: str
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """The canonical text of a prompt, its extra views and the transforms that fired."""

    canonical: str
    views: tuple[View, ...]
    transforms: frozenset[str]
    truncated: bool


# =========================================================================== language test


@cache
def load_common_words() -> frozenset[str]:
    """The shipped common-English word list (app/data/normalize_words.txt)."""
    text = resources.files("app").joinpath("data/normalize_words.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


_LETTER_RUN = re.compile(r"[^\W\d_]+")
_ASCII_WORD3 = re.compile(r"[a-z]{3,}")
_ASCII_WORD3_BYTES = re.compile(rb"[a-z]{3,}")
_NOT_PRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
_C1 = re.compile(r"[\x80-\x9f]")
# UTF-8 read as Latin-1 ("\u00f0\x9f\x91\xa8" for an emoji): lead bytes that become these
_MOJIBAKE_LEAD = re.compile("[\u00c2\u00c3\u00e2\u00f0]")
_SHORT_COMMANDS = frozenset({"rm", "cd", "ls", "nc", "id", "sh", "ps", "cp", "mv", "dd", "su"})
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM",
)


def looks_like_language(text: str, words: frozenset[str] | None = None) -> bool:
    """Whether `text` reads as natural language: English words, a command, or word-shaped prose."""
    words = load_common_words() if words is None else words
    stripped = text.strip()
    if len(stripped) < 4:
        return False
    if len(_NOT_PRINTABLE.findall(stripped)) > 0.02 * len(stripped) and not _mojibake(stripped):
        return False
    tokens = _LETTER_RUN.findall(stripped.casefold())
    if not tokens:
        return False
    letters = sum(map(len, tokens))
    dense = len(stripped) - stripped.count(" ") - stripped.count("\n")
    if letters < 0.5 * dense:
        return False
    if len(tokens) <= 3:
        if letters < 0.6 * dense:
            return False
        # a short command ("whoami", "rm -rf /", "echo hacked"): a real word, or printable
        # ASCII with a space (random bytes almost never are)
        if any((len(t) >= 3 and t in words) or t in _SHORT_COMMANDS for t in tokens):
            return True
        return len(stripped) >= 10 and stripped.isascii() and " " in stripped
    hits = sum(1 for t in tokens if t in words)
    if hits >= 2 and hits >= 0.25 * len(tokens):
        return True
    # prose in another language: several word-sized tokens, mostly letters, separated by spaces
    mean = letters / len(tokens)
    return letters >= 0.75 * dense and 2.5 <= mean <= 12 and " " in stripped


def _mojibake(text: str) -> bool:
    """Whether the unprintable characters are C1 controls of UTF-8 text decoded as Latin-1."""
    c1 = len(_C1.findall(text))
    other = len(_NOT_PRINTABLE.findall(text)) - c1
    # each C1 control follows a lead character within a 2-4 byte sequence
    return (
        other <= 0.02 * len(text)
        and c1 <= 0.3 * len(text)
        and c1 <= 3 * len(_MOJIBAKE_LEAD.findall(text))
    )


#: how many more layers a decoded single token may take to reach language and still count as
#: a payload; cheap (each layer shrinks), and deeper than `max_depth` so that a chain too deep
#: to unwrap is recognised as one (and the prompt fails closed, `DEPTH_LIMIT`)
_NESTED_TOKEN_LAYERS = 8


def _decodes_to_language(
    text: str, words: frozenset[str], depth: int = _NESTED_TOKEN_LAYERS
) -> bool:
    """Whether decoded text is language, or rot13/reversed/encoded language (nested payloads)."""
    if looks_like_language(text, words):
        return True
    if not text.isascii() or len(text) > 20_000:
        return False
    if looks_like_language(text.translate(_ROT13), words) or looks_like_language(text[::-1], words):
        return True
    # one token that is itself base64 or hex: accepted only if it, in turn, decodes to language
    # (or, `depth` layers down, still decodes to text: a chain deeper than any that is followed)
    token = text.strip()
    if len(token) < 12 or " " in token:
        return False
    inner: bytes | None = None
    try:
        if _HEX_TOKEN.fullmatch(token):
            inner = bytes.fromhex(token[: len(token) - len(token) % 2])
        elif _BASE64_TOKEN.fullmatch(token):
            inner = base64.b64decode(token + "=" * (-len(token.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return False
    if inner is None:
        return False
    if depth == 0:
        return _printable(inner[:48])
    try:
        return _decodes_to_language(inner.decode("utf-8"), words, depth - 1)
    except UnicodeDecodeError:
        return False


_HEX_TOKEN = re.compile(r"[0-9a-fA-F]+")
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/]+={0,2}")

# =========================================================================== character tables

_ASCII_BYTES = bytes(range(128))
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")
_ASCII_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F])
# zero-width and other invisible format characters (Cf and fillers): deleted
_ZW_CLASS = (
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2065"
    "\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
)
_BIDI_CLASS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_C0_C1_CLASS = "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f"
_INVISIBLE = re.compile(
    f"[{_ZW_CLASS}{_BIDI_CLASS}{_C0_C1_CLASS}\U000e0000-\U000e0fff\ufe00-\ufe0f]"
)
# a soft hyphen (U+00AD) is removed like the others but is not evidence: it is a hyphenation
# hint that text pasted from web pages and PDFs carries inside long words (a review found one
# soft hyphen enough to BLOCK "photo\u00adsynthesis")
_ZW_BETWEEN_LETTERS = re.compile(
    f"[A-Za-z\u00c0-\u024f][{_ZW_CLASS.replace(chr(0xAD), '')}]+(?=[A-Za-z\u00c0-\u024f])"
)
#: invisible characters and controls are removed wherever they are, but count as obfuscation
#: only from two on: one is what copy and paste leaves (a review found one ZWSP or NUL in one
#: word enough to BLOCK 12 of 300 benign prompts); obfuscation splits words everywhere
_EVIDENCE_FROM = 2
# RLM/LRM/ALM are ordinary in right-to-left prose, and so are embeddings and isolates around
# a right-to-left word ("translate \u202b<Hebrew>\u202c"); overrides reorder what is shown,
# and embeddings or isolates touching Latin letters split or hide Latin words
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_SUSPICIOUS = re.compile(
    "[\u202d\u202e]|[A-Za-z\u00c0-\u024f][\u202a-\u202c\u2066-\u2069]"
    "|[\u202a-\u202c\u2066-\u2069][A-Za-z\u00c0-\u024f]"
)
# C1 controls are nearly always mojibake (cp1252 punctuation decoded as latin-1): removed
# silently; C0 controls and DEL inside prose are not typed by people
_C0_CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x7f]")
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]{4,}")
_ZW_CHAR = re.compile(f"[{_ZW_CLASS.replace(chr(0xAD), '')}]")
_VS_RUN = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]{8,}")
_FULLWIDTH_RUN = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]{4,}")
# mathematical alphanumerics, circled/squared letters, superscript and modifier letters
_STYLED_CLASS = (
    "\U0001d400-\U0001d7ff\u24b6-\u24e9\U0001f130-\U0001f189\u02b0-\u02b8\u1d2c-\u1d6a"
    "\u1d9b-\u1dbf\u2071\u207f\u2090-\u209c"
)
_STYLED_RUN = re.compile(f"[{_STYLED_CLASS}]{{3,}}")
_STYLED_CHAR = re.compile(f"[{_STYLED_CLASS}]")
# marks for letters only: U+20D0-20FF (the keycap in "1\ufe0f\u20e3") dress symbols and emoji
_COMBINING = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\ufe20-\ufe2f]")
_OVERLAY_MARK = re.compile("[\u0334-\u0338]")
_STACKED_MARKS = re.compile(f"{_COMBINING.pattern}{{2,}}")
_ASCII_LETTER = re.compile("[A-Za-z]")
# any character one of the steps above (or the look-alike folding) cares about
_SPECIAL = re.compile(
    f"[{_ZW_CLASS}{_BIDI_CLASS}{_STYLED_CLASS}\x80-\x9f\U000e0000-\U000e0fff\ufe00-\ufe0f"
    "\uff10-\uff5a\u0300-\u036f\u0483-\u0489"
    "\u1ab0-\u1aff\u1dc0-\u1dff\ufe20-\ufe2f\u0250-\u02af\u0370-\u058f\u1d00-\u1d2b\ua730\ua731]"
)

# Look-alikes. STRICT is used inside words that mix Latin with another script; Greek lower
# case letters that are everyday maths symbols (alpha, nu, rho, ...) are left out there so
# "n\u03b1" or "\u03c1gh" stay as written. FULL is used when the text is Latin with look-alikes
# and no other letter of those scripts.
_STRICT_PAIRS = (
    # Cyrillic
    "\u0430a \u0435e \u043eo \u0440p \u0441c \u0443y \u0445x \u0455s \u0456i \u0458j \u0501d "
    "\u04cfl \u04bbh \u051bq \u051dw \u04afy "
    "\u0410A \u0412B \u0415E \u041aK \u041cM \u041dH \u041eO \u0420P \u0421C \u0422T \u0425X "
    "\u0423Y \u0405S \u0406I \u0408J \u051aQ \u051cW \u04aeY \u04c0I "
    # Greek
    "\u0391A \u0392B \u0395E \u0396Z \u0397H \u0399I \u039aK \u039cM \u039dN \u039fO \u03a1P "
    "\u03a4T \u03a5Y \u03a7X \u03bfo "
    # Armenian
    "\u0585o \u057du \u0570h"
)
_EXTRA_FULL_PAIRS = "\u03b1a \u03b9i \u03bdv \u03bak \u03c1p \u03c4t \u03c5u \u03c7x \u03b5e"
# small capitals and IPA letters are never ordinary prose: always folded
_ALWAYS_PAIRS = (
    "\u1d00a \u0299b \u1d04c \u1d05d \u1d07e \ua730f \u0262g \u029ch \u026ai \u1d0aj \u1d0bk "
    "\u029fl \u1d0dm \u0274n \u1d0fo \u1d18p \u01eaq \u0280r \ua731s \u1d1bt \u1d1cu \u1d20v "
    "\u1d21w \u028fy \u1d22z \u0251a \u0261g"
)


def _pairs(spec: str) -> dict[str, str]:
    return {p[0]: p[1] for p in spec.split()}


_STRICT = _pairs(_STRICT_PAIRS)
_FULL = {**_STRICT, **_pairs(_EXTRA_FULL_PAIRS)}
_ALWAYS = _pairs(_ALWAYS_PAIRS)
_STRICT_MAP = str.maketrans(_STRICT)
_FULL_MAP = str.maketrans(_FULL)
_ALWAYS_MAP = str.maketrans(_ALWAYS)
_SCRIPT_GATE = re.compile("[\u0250-\u02af\u0370-\u058f\u1d00-\u1d2b\ua730\ua731]")
_ALWAYS_GATE = re.compile("[" + "".join(sorted(_ALWAYS)) + "]")
_STRICT_CLASS = "".join(sorted(_STRICT))
_MIXED_ADJACENT = re.compile(f"[A-Za-z][{_STRICT_CLASS}]|[{_STRICT_CLASS}][A-Za-z]")
_NONCONFUSABLE_SCRIPT = re.compile(
    "["
    + "".join(
        chr(c)
        for c in (*range(0x370, 0x400), *range(0x400, 0x530), *range(0x531, 0x590))
        if chr(c).isalpha() and chr(c) not in _FULL
    )
    + "]"
)
_NON_LATIN_LETTER = re.compile("[^\\W\\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_WORD_TAIL = re.compile(r"[^\W\d_]{0,64}")

# =========================================================================== cheap gates


def _class_table(groups: dict[bytes, bytes]) -> bytes:
    table = bytearray(b"#" * 256)
    for chars, cls in groups.items():
        for c in chars:
            table[c] = cls[0]
    return bytes(table)


_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_DIGITS = b"0123456789"
# lower-cased text: letters, digits and leet symbols, one-letter separators, commas
_CLASSES = _class_table(
    {_LOWER + _UPPER: b"a", _DIGITS + b"@$|": b"0", b" .-_": b".", b",": b",", b"!": b"!"}
)
# case kept: base64 seeds (an upper-case letter right after a lower-case letter or a digit)
# and YAML key lines ("key: value")
_CASE_CLASSES = _class_table(
    {_LOWER + b"_": b"a", _UPPER: b"A", _DIGITS: b"0", b":": b":", b" \t": b" ", b"\n": b"n"}
)
_HEX_CLASSES = _class_table({_DIGITS + b"abcdefABCDEF": b"h", b" :,": b"."})
_HEX_NEEDLES = (b"h" * 16, b"hh.hh.hh.hh.hh")
_BASE64_CLASSES = _class_table({_LOWER + _UPPER + _DIGITS + b"+/-_": b"b"})
_LEET_TOKEN_CLASSES = _class_table({_LOWER + _DIGITS + b"@$|!": b"t"})

_COMMON = (
    "the and you your all to is of for this with are that not from have what how can will "
    "was were they them there their then than now know just like about into only other "
    "which when where who why would should could must make tell give take write say print "
    "ignore previous instructions instruction prompt system rules password secret reveal "
    "forget disregard above below following pretend act mode developer unrestricted"
).split()
# common words after rot13 / reversal, minus real words ("bar" is rot13 of "one"): one of
# them nearly always shows up in such a payload, so a set test on the tokens gates the work
_ROT13_MARKERS = frozenset(w.translate(_ROT13) for w in _COMMON) - frozenset(_COMMON)
_REVERSED_MARKERS = frozenset(w[::-1] for w in _COMMON) - frozenset(_COMMON)
_ROT13_OR_REVERSED_MARKERS = _ROT13_MARKERS | _REVERSED_MARKERS

# letter-bigram language signal for short rot13/reversed payloads ("Pbafbyr.ybt(flfgrzCebzcg)",
# "')(daer.)'dwssap/cte/'(nepo(tnirp"), too short for the word count above: bytes map to
# 0 (anything but a letter: a word boundary) or 1-26, and a table of log P(next | letter)
# learnt from the word list scores the text, its rot13 and its reversal position by position
_LETTER_INDEX = bytes(
    _LOWER.index(c) + 1 if c in _LOWER else _UPPER.index(c) + 1 if c in _UPPER else 0
    for c in range(256)
)
_ROT13_INDEX = np.array([0, *(((i + 13) % 26) + 1 for i in range(26))], dtype=np.intp)
#: the best-improving span must gain this many nats (several letters' worth) ...
_BIGRAM_GAIN_TWO_WORDS = 8.0
_BIGRAM_GAIN_ONE_WORD = 20.0
#: ... at this mean gain per position, with decoded known words among its tokens
_BIGRAM_MEAN_GAIN = 0.3
_DECODED_WORD_SHARE = 0.3
_BIGRAM_WINDOW = 4_000
#: letters of decoded known words a payload needs ("whoami", "print open")
_DECODED_LETTERS = 6


_NOT_LOWER_TO_SPACE = bytes(c if c in _LOWER else 0x20 for c in range(256))


def _ascii_words3(data: bytes) -> set[str]:
    """`set(_ASCII_WORD3.findall(text))` from the UTF-8 of text (a-z runs are ASCII bytes)."""
    return {t for t in data.translate(_NOT_LOWER_TO_SPACE).decode("ascii").split() if len(t) >= 3}


def _rot13_token(token: str) -> str:
    return token.translate(_ROT13)


def _reverse_token(token: str) -> str:
    return token[::-1]


_DECODERS = {"rot13": _rot13_token, "reversed": _reverse_token}


def _letter_bigrams(words: Iterable[str]) -> npt.NDArray[np.float64]:
    """log P(next | current) over word boundary (0) and letters (1-26), add-one smoothed."""
    counts = np.ones((27, 27))
    for word in words:
        codes = [0, *_utf8(word).translate(_LETTER_INDEX), 0]
        if 0 in codes[1:-1]:
            continue
        np.add.at(counts, (codes[:-1], codes[1:]), 1.0)
    table = np.log(counts / counts.sum(axis=1, keepdims=True))
    table[0, 0] = 0.0  # runs of non-letters carry no signal
    return table


def _best_gain(gain: npt.NDArray[np.float64]) -> tuple[float, int, int]:
    """The contiguous run of positions with the largest summed gain (Kadane via prefix sums)."""
    prefix = np.concatenate(([0.0], np.cumsum(gain)))
    lowest = np.minimum.accumulate(prefix)
    end = int(np.argmax(prefix - lowest))
    start = int(np.argmin(prefix[: end + 1]))
    return float(prefix[end] - prefix[start]), start, end


# =========================================================================== letter level

_LEET_PRIMARY = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
    | {"@": "a", "$": "s", "!": "i", "|": "l"}
)
_LEET_ALTERNATE = str.maketrans(
    {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
    | {"@": "a", "$": "s", "!": "l", "|": "i"}
)
_LEET_CHARS = frozenset("0134578@$!|9")
_NUMBER_WITH_SUFFIX = re.compile(
    r"[0-9]*(?:1st|2nd|3rd|[0-9]th)$|[0-9]+(?:s|d|x|k|m|h|am|pm|kg|km|cm|mm|ml|mg|gb|mb|kb|hz"
    r"|px|pt|em|min|hr|hrs|yr|yrs|ft|lb|lbs|oz|in|b|g|l|v|w)$"
)

_L = r"[^\W\d_](?![^\W\d_])"  # one letter standing alone
_SEP_GATE = re.compile(r"[a-z]([ ._\-])[a-z]\1[a-z]\1[a-z](?![^\W\d_])")
_SEP_RUNS = {
    " ": re.compile(rf"(?<![^\W\d_]){_L}(?: {_L})*(?:(?: {{2,}}|[ \t]*\n[ \t]*){_L}(?: {_L})*)*"),
    ".": re.compile(rf"(?<![^\W\d_]){_L}(?:\.{_L})*(?: +{_L}(?:\.{_L})*)*"),
    "-": re.compile(rf"(?<![^\W\d_]){_L}(?:-{_L})*(?: +{_L}(?:-{_L})*)*"),
    "_": re.compile(rf"(?<![^\W\d_]){_L}(?:_{_L})*(?:(?: +|_{{2,}}){_L}(?:_{_L})*)*"),
}
_SEP_CLASSES = _class_table({_LOWER: b"a", b" ._-": b"."})
_SEP_GAPS = {
    " ": re.compile(r" {2,}|[ \t]*\n[ \t]*"),
    ".": re.compile(r" +"),
    "-": re.compile(r" +"),
    "_": re.compile(r" +|_{2,}"),
}

# =========================================================================== carriers

_HTML_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]{0,15})\b([^<>]{0,20000})>")
_HTML_ANY_TAG = re.compile(r"<[^<>]{0,2000}>")
_HTML_ATTRIBUTE = re.compile(
    r"""\b(?:alt|title|aria-label|aria-description|placeholder|summary|content|label|value"""
    r"""|data-[a-z0-9_-]{1,40})\s*=\s*(?:"([^"]{1,20000})"|'([^']{1,20000})')""",
    re.IGNORECASE,
)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?"
    r"\s*(?:[;\"']|$)|opacity\s*:\s*0(?:\.0+)?\s*(?:[;\"']|$)|color\s*:\s*(?:#fff(?:fff)?\b|white\b"
    r"|transparent\b)|\bhidden\b|aria-hidden\s*=\s*[\"']?true|(?:height|width|max-height)\s*:\s*0"
    r"(?:px)?\s*(?:[;\"']|$)|left\s*:\s*-\d{3,}",
    re.IGNORECASE,
)
_MARKDOWN_LINK = re.compile(
    r"(!?)\[((?:[^\[\]\n\\]|\\.){0,20000})\]\(\s*([^\s()]{0,2000})"
    r"(?:\s+(?:\"([^\"\n]{0,20000})\"|'([^'\n]{0,20000})'))?\s*\)"
)
_MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|])")
_JSON_PAIR = re.compile(r'"[^"\\\n]{1,200}"\s*:\s*"((?:[^"\\\n]|\\.){1,20000})"')
_YAML_KEY_LINE = re.compile(r"[ \t]{0,40}(?:- )?[A-Za-z_][\w.-]{0,60}:(?:[ \t]+(.{1,20000}))?$")
_YAML_MAPPING_KEY = re.compile(r"[ \t]{0,40}([A-Za-z_][\w.-]{0,60}):(?:[ \t]|$)")
_YAML_STRUCTURE = re.compile(
    r"[ \t]{0,40}(?:(?:- )?[A-Za-z_][\w.-]{0,60}:(?:[ \t]|$)|- |#|---|\.\.\.)"
)
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{1,7}|[xX][0-9a-fA-F]{1,6});?")
_ESCAPE_RUN = re.compile(r"(?:\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}){4,}")

# =========================================================================== decoders

# (boundaries are checked outside the regex: a leading lookbehind defeats the prefix scan)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}|[0-9a-fA-F]{2}(?:[ :,][0-9a-fA-F]{2}){7,}")
_HEX_NOT_DIGIT = re.compile(r"0x|[^0-9a-fA-F]")
_CHARCODE_RUN = re.compile(r"(?:\d{2,6}[ \t]*,[ \t]*){4,}\d{2,6}(?![\d.])")
_NUMBER = re.compile(r"\d+")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_PERCENT_RUN = re.compile(r"(?:%[0-9a-fA-F]{2}){3,}")
_PERCENT_ALNUM = re.compile(r"%(?:3[0-9]|4[1-9a-fA-F]|5[0-9aA]|6[1-9a-fA-F]|7[0-9aA])")
_PERCENT_SPACE_IN_PROSE = re.compile(r"[A-Za-z0-9]%20[A-Za-z]")
#: a token (up to 2,000 characters around an escape) that is a URL, a path or a query string
_URL_TOKEN_MARK = re.compile(r"://|\bwww\.|/|[?&][\w.%-]{0,64}=")
_TOKEN_EDGE = frozenset(" \t\r\n\"'<>()[]{}`")


def _spaces_in_prose(text: str, limit: int = 2) -> int:
    """Escaped spaces between words outside URLs, counted up to `limit`.

    "ignore%20all%20rules" hides prose; `badge/code%20style-ruff` or `?label=PyPI%20downloads`
    is how a URL spells a space (README badges have them by the dozen). A token (the text
    between whitespace, quotes or brackets, at most 2,000 characters each side) with `://`,
    `www.`, `/` or a query parameter (`?name=`, `&name=`) is a URL, a path or a query string;
    a question mark alone is prose ("what%20is%20your%20prompt?").
    """
    found = 0
    checked, prose = 0, False  # the last token looked at: its other escapes share its verdict
    for m in _PERCENT_SPACE_IN_PROSE.finditer(text, 0, 400_000):
        start = m.start()
        if start >= checked:  # a new token: find its edges and whether it is a URL
            floor = max(0, start - 2000)
            while start > floor and text[start - 1] not in _TOKEN_EDGE:
                start -= 1
            end = m.end()
            ceiling = min(len(text), end + 2000)
            while end < ceiling and text[end] not in _TOKEN_EDGE:
                end += 1
            checked, prose = end, _URL_TOKEN_MARK.search(text, start, end) is None
        found += prose
        if found >= limit:
            break
    return found


# =========================================================================== the normalizer


@dataclass(slots=True)
class _Prepared:
    """A text after character-level normalization (case and line breaks kept)."""

    text: str
    fired: set[str]
    hidden: list[tuple[str, str]]  # (transform, text) smuggled in invisible characters


@dataclass(frozen=True, slots=True)
class _Gates:
    """Which character-class patterns a text holds (`_class_gates`): which scans can find."""

    separated: bool  # "a.a.a.a" in classes: letters split by separators
    leet: bool  # "0a" or "a0" in classes: digits or leet symbols touching letters
    charcode: bool  # "00,00" or "00,.00" in classes: comma-separated numbers
    yaml_keys: int  # "a:" and "A:" in case classes: key-like words before a colon
    base64_seed: bool  # "aA" or "0A" in case classes
    hex_run: bool  # one of `_HEX_NEEDLES` in the hex classes


@dataclass(slots=True)
class _Run:
    """Bookkeeping of one `normalize` call: views, fired transforms, remaining budgets."""

    views: list[View]
    seen: set[str]
    transforms: set[str]
    decode_budget: int
    candidate_budget: int


def _casefold(text: str) -> str:
    return text.lower() if text.isascii() else text.casefold()


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


#: a surrogate code point in `_utf8` bytes (valid UTF-8 never has ED followed by A0-BF)
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")


def well_formed(text: str) -> str:
    """`text` with every surrogate pair joined and every lone surrogate replaced by U+FFFD.

    Text decoded from UTF-8 (every record from the broker) has no surrogates, but a caller of
    the library can pass any `str`; the engines downstream match UTF-8 bytes.
    """
    if text.isascii() or _SURROGATE_UTF8.search(_utf8(text)) is None:
        return text
    return _join_surrogates(text)


def _join_surrogates(text: str) -> str:
    # UTF-16 pairs adjacent surrogates into one character; "replace" makes lone ones U+FFFD
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


#: whitespace of `str.split` that `bytes.split` keeps (ASCII file, group, record, unit separators)
_STR_ONLY_SPACES = (b"\x1c", b"\x1d", b"\x1e", b"\x1f")


def _canonical(prepared: str) -> str:
    """`" ".join(_casefold(prepared).split())`, through bytes when that is the same and faster."""
    if prepared.isascii():
        raw = prepared.encode("ascii")
        if not any(space in raw for space in _STR_ONLY_SPACES):
            return b" ".join(raw.lower().split()).decode("ascii")
    return " ".join(_casefold(prepared).split())


def _non_ascii(text: str) -> str:
    """The non-ASCII characters of `text`, in order (a short string to gate regex scans)."""
    return _utf8(text).translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")


#: the transform a prompt gets when its deepest decoded view decodes once more (`max_depth`)
DEPTH_LIMIT = "depth_limit"
#: the most characters NFKC makes of one (U+FDFA, ARABIC LIGATURE SALLALLAHOU ALAYHE WASALLAM)
_NFKC_MAX_GROWTH = 18


@lru_cache(maxsize=4096)
def _nfkc_char_length(char: str) -> int:
    return len(unicodedata.normalize("NFKC", char))


def _nfkc_length(text: str) -> int:
    """len(NFKC(text)) estimated character by character, without normalizing the text.

    Composition across characters only shortens the text ("e" + U+0301 is one letter); a
    mark that canonical ordering moves may leave a few more letters than estimated.
    """
    # ASCII characters are their own NFKC: count the others alone
    rest = _non_ascii(text)
    return len(text) - len(rest) + sum(n * _nfkc_char_length(c) for c, n in Counter(rest).items())


def _found(pattern: re.Pattern[str], text: str, times: int) -> bool:
    """Whether `pattern` matches `text` at least `times` times (stops there)."""
    for n, _ in enumerate(pattern.finditer(text), 1):
        if n >= times:
            return True
    return False


def _head_and_tail(text: str, max_chars: int) -> str:
    """At most `max_chars` of `text` (plus a line break): attacks hide at both ends."""
    half = max_chars // 2
    return text[:half] + "\n" + text[len(text) - (max_chars - half) :]


class Normalizer:
    """Turns a prompt into its canonical text and bounded de-obfuscated views."""

    def __init__(
        self,
        *,
        max_chars: int = 200_000,
        max_depth: int = 3,
        max_views: int = 16,
        max_view_chars: int = 20_000,
        max_candidates: int = 24,
        max_decoded_chars: int = 200_000,
        min_base64_chars: int = 12,
        min_hex_bytes: int = 8,
        common_words: Iterable[str] | None = None,
    ) -> None:
        for name, value in (
            ("max_chars", max_chars),
            ("max_views", max_views),
            ("max_view_chars", max_view_chars),
            ("max_candidates", max_candidates),
            ("max_decoded_chars", max_decoded_chars),
            ("min_base64_chars", min_base64_chars),
            ("min_hex_bytes", min_hex_bytes),
        ):
            if value < 1:
                raise ConfigError(f"Normalizer {name} must be >= 1, got {value}")
        if max_depth < 0:
            raise ConfigError(f"Normalizer max_depth must be >= 0, got {max_depth}")
        self.max_chars = max_chars
        self.max_depth = max_depth
        self.max_views = max_views
        self.max_view_chars = max_view_chars
        self.max_candidates = max_candidates
        self.max_decoded_chars = max_decoded_chars
        self.min_base64_chars = min_base64_chars
        self.min_hex_bytes = min_hex_bytes
        self.words: frozenset[str] = (
            load_common_words() if common_words is None else frozenset(common_words)
        )
        self._bigrams = _letter_bigrams(self.words)
        # tokens that are not words but decode to one (rot13 / reversed), as hash tables
        # for the numba gate of `_short_rot13_or_reversed` (`_letter_gates`)
        self._decodable = (
            _token_hashes({w.translate(_ROT13) for w in self.words} - self.words),
            _token_hashes({w[::-1] for w in self.words} - self.words),
        )
        self._bloom = _bloom(*self._decodable, _MARKER_HASHES)
        self._rot13_gates = _rot13_gates_kernel()
        self._base64_runs = _KERNELS()[1]
        self._base64_runs(b"aAbcdefgh", b"bbbbbbbbb", np.zeros(2, np.int64))
        self._class_gates = _KERNELS()[2]
        self._sep_regions = _KERNELS()[3]
        self._sep_regions(b"a b c", 32, np.zeros(4, np.int64))
        self._leet_tokens = _KERNELS()[4]
        self._leet_tokens(b"a0a", b"ttt", b"a0a", _LEET_BYTES, np.zeros(2, np.int64))
        self._gates(b"a", b"a", b"a")
        self._rot13_gates(
            b"warm up", 7, self._bloom, *self._decodable, _MARKER_HASHES, np.zeros(4, np.int64)
        )

    # ----------------------------------------------------------------- entry point

    def normalize(self, text: str) -> NormalizedText:
        """Normalize one prompt: canonical text, extra views, fired transforms."""
        truncated = len(text) > self.max_chars
        if truncated:
            text = _head_and_tail(text, self.max_chars)
        if len(text) * _NFKC_MAX_GROWTH > self.max_chars and not text.isascii():
            # NFKC can make a text 18 times longer (U+FDFA is 18 letters), and is slow on
            # what it expands: bound its output, not only what arrived (a review measured
            # 0.5 s for 199k U+FDFA, 66 times an ASCII prompt of that length)
            grown = _nfkc_length(text)
            while grown > self.max_chars:
                truncated = True
                text = _head_and_tail(text, max(1, len(text) * self.max_chars // grown - 1))
                grown = _nfkc_length(text)
        prepared = self._prepare(text)
        canonical = _canonical(prepared.text)
        run = _Run(
            views=[View(canonical, ())],
            seen={canonical},
            transforms=prepared.fired,
            decode_budget=self.max_decoded_chars,
            candidate_budget=self.max_candidates * (self.max_depth + 1),
        )
        for kind, hidden in prepared.hidden:
            self._emit(run, kind, hidden, (), 0)
        self._expand(run, prepared.text, canonical, (), 0, letters=True)
        return NormalizedText(canonical, tuple(run.views), frozenset(run.transforms), truncated)

    # ----------------------------------------------------------------- character level

    def _prepare(self, text: str) -> _Prepared:
        """NFKC, invisible characters, look-alike letters; keeps case and line breaks."""
        fired: set[str] = set()
        hidden: list[tuple[str, str]] = []
        if text.isascii():
            raw = text.encode("ascii")
            controls = len(raw) - len(raw.translate(None, _ASCII_CONTROL_BYTES))
            if controls:
                text = _ASCII_CONTROL.sub("", text)
                if controls >= _EVIDENCE_FROM:
                    fired.add("control")
            return _Prepared(text, fired, hidden)
        # regex scans over long non-ASCII strings are slow: look at the non-ASCII characters
        # alone (deleting ASCII bytes from UTF-8 leaves valid UTF-8) and skip what is absent
        raw = _utf8(text)
        if _SURROGATE_UTF8.search(raw) is not None:  # `well_formed`, on the bytes at hand
            text = _join_surrogates(text)
            raw = _utf8(text)
        rest = raw.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
        if _SPECIAL.search(rest) is None:
            controls = len(raw) - len(raw.translate(None, _ASCII_CONTROL_BYTES))
            if controls:
                if controls >= _EVIDENCE_FROM:
                    fired.add("control")
                text = _C0_CONTROL.sub("", text)
            return _Prepared(unicodedata.normalize("NFKC", text), fired, hidden)
        if _FULLWIDTH_RUN.search(rest) and _FULLWIDTH_RUN.search(text):
            fired.add("fullwidth")
        # a styled word, or styled letters sprinkled over several words ("T\u02b0e ca\u1d57")
        styled = (
            _STYLED_RUN.search(rest) is not None and _STYLED_RUN.search(text) is not None
        ) or len(_STYLED_CHAR.findall(rest)) >= 6
        if styled:
            fired.add("styled")
        # C0 controls are ASCII: counted in the UTF-8 bytes, where no other character has them
        controls = len(raw) - len(raw.translate(None, _ASCII_CONTROL_BYTES))
        if _INVISIBLE.search(rest):
            # a run in the text's scanned head is a run in the same head of `rest`
            head = min(len(text), self.max_view_chars * 2)
            if _TAG_RUN.search(rest, 0, head) or _VS_RUN.search(rest, 0, head):
                self._smuggled(text, hidden)
            # two disjoint matches hold two zero-width characters at least
            if _found(_ZW_CHAR, rest, _EVIDENCE_FROM) and _found(
                _ZW_BETWEEN_LETTERS, text, _EVIDENCE_FROM
            ):
                fired.add("zero_width")
            if _BIDI_CONTROL.search(rest) and _BIDI_SUSPICIOUS.search(text):
                fired.add("bidi")
            if controls >= _EVIDENCE_FROM:
                fired.add("control")
            text = _INVISIBLE.sub("", text)
        elif controls:
            if controls >= _EVIDENCE_FROM:
                fired.add("control")
            text = _C0_CONTROL.sub("", text)
        if _COMBINING.search(rest):
            text = self._strip_marks(text, fired)
        text = unicodedata.normalize("NFKC", text)
        # NFKC turns some modifier letters into small capitals, folded like typed ones
        if styled or _SCRIPT_GATE.search(rest):
            rest = _non_ascii(text)
            if _ALWAYS_GATE.search(rest):
                text = text.translate(_ALWAYS_MAP)
                fired.add("styled")
                rest = _non_ascii(text)
            text, folded = self._fold_homoglyphs(text, rest)
            if folded:
                fired.add("homoglyph")
        return _Prepared(text, fired, hidden)

    @staticmethod
    def _strip_marks(text: str, fired: set[str]) -> str:
        """Remove strike-through and "zalgo" marks; keep the accents of ordinary prose."""
        marks = len(_COMBINING.findall(text))
        # before NFKC composes them: NFC prose has almost no separate marks, NFD prose (macOS
        # file names) a few per word; overlays (U+0334-0338), stacks or a mark on most
        # letters are decoration
        if not (
            _OVERLAY_MARK.search(text)
            or len(_STACKED_MARKS.findall(text)) >= 3
            or marks >= 0.3 * max(1, len(_ASCII_LETTER.findall(text)))
        ):
            # marks NFKC cannot compose are dropped silently
            return _COMBINING.sub("", unicodedata.normalize("NFKC", text))
        if marks >= 3:
            fired.add("combining")
        return _COMBINING.sub("", text)

    def _smuggled(self, text: str, hidden: list[tuple[str, str]]) -> None:
        """Decode ASCII smuggled in Unicode tag characters or variation selectors."""
        end = min(len(text), self.max_view_chars * 2)
        for m in _TAG_RUN.finditer(text, 0, end):
            if m.start() > 0 and text[m.start() - 1] == "\U0001f3f4":
                continue  # an emoji subdivision flag, not a message
            decoded = "".join(chr(ord(c) - 0xE0000) for c in m.group())
            if looks_like_language(decoded, self.words):
                hidden.append(("unicode_tags", decoded))
            if len(hidden) >= 4:
                return
        for m in _VS_RUN.finditer(text, 0, end):
            data = bytes(
                ord(c) - 0xFE00 if ord(c) < 0xFE10 else ord(c) - 0xE0100 + 16 for c in m.group()
            )
            decoded = data.decode("utf-8", "replace")
            if looks_like_language(decoded, self.words):
                hidden.append(("variation_selectors", decoded))
            if len(hidden) >= 4:
                return

    def _fold_homoglyphs(self, text: str, rest: str) -> tuple[str, bool]:
        """Fold look-alike letters without rewriting genuine Cyrillic, Greek or Armenian prose.

        `rest` holds the non-ASCII characters of `text`: the look-alikes and the letters of
        those scripts are found there, and a mixed pair not before the first look-alike.
        """
        folded = False
        present = [c for c in _STRICT if c in rest]
        if not present:
            return text, folded
        first = max(0, min(text.find(c) for c in present) - 1)
        if _MIXED_ADJACENT.search(text, first) is None:
            return text, folded
        if _NONCONFUSABLE_SCRIPT.search(rest) is None:
            # Latin text sprinkled with look-alikes and no genuine letter of those scripts
            return text.translate(_FULL_MAP), True
        pieces: list[str] = []
        last = 0
        for count, m in enumerate(_MIXED_ADJACENT.finditer(text, first)):
            if count >= 4096:
                break
            if m.start() < last:
                continue
            start = m.start()
            while start > last and m.start() - start < 64 and text[start - 1].isalpha():
                start -= 1
            tail = _WORD_TAIL.match(text, m.end())
            end = tail.end() if tail else m.end()
            word = text[start:end].translate(_STRICT_MAP)
            if _NON_LATIN_LETTER.search(word) is None:
                pieces.append(text[last:start])
                pieces.append(word)
                last = end
                folded = True
        if last:
            pieces.append(text[last:])
            text = "".join(pieces)
        return text, folded

    # ----------------------------------------------------------------- views

    def _add_view(self, run: _Run, text: str, path: tuple[str, ...]) -> None:
        if text and text not in run.seen and len(run.views) < self.max_views:
            run.seen.add(text)
            run.views.append(View(text, path))

    def _emit(self, run: _Run, kind: str, raw: str, path: tuple[str, ...], depth: int) -> None:
        """Record a de-obfuscated text as a view and rescan it while depth allows."""
        run.transforms.add(kind)
        prepared = self._prepare(raw[: self.max_view_chars])
        run.transforms.update(prepared.fired)
        canonical = _canonical(prepared.text)
        new_path = (*path, kind)
        self._add_view(run, canonical, new_path)
        if depth + 1 < self.max_depth and len(run.views) < self.max_views:
            for hidden_kind, hidden in prepared.hidden:
                self._emit(run, hidden_kind, hidden, new_path, depth + 1)
            self._expand(run, prepared.text, canonical, new_path, depth + 1, letters=False)
        elif depth + 1 >= self.max_depth and self._still_encoded(run, prepared.text, canonical):
            # the deepest view decodes once more: what it hides was not seen (fail closed)
            run.transforms.add(DEPTH_LIMIT)

    def _still_encoded(self, run: _Run, prepared: str, canonical: str) -> bool:
        """Whether a text at the depth limit holds another decodable layer."""
        raw = _utf8(prepared)
        classes = _utf8(canonical).translate(_CLASSES)
        case_classes = raw.translate(_CASE_CLASSES)
        gates = self._gates(classes, case_classes, raw)
        return bool(self._decoded(run, prepared, raw, classes, case_classes, gates))

    def _gates(self, classes: bytes, case_classes: bytes, raw: bytes) -> _Gates:
        """The substring tests that decide which scans run, in one compiled pass."""
        out = np.zeros(6, dtype=np.int64)
        self._class_gates(classes, case_classes, raw, _HEX_TABLE, out)
        separated, leet, charcode, yaml_keys, base64_seed, hex_run = out.tolist()
        return _Gates(
            bool(separated),
            bool(leet),
            bool(charcode),
            yaml_keys,
            bool(base64_seed),
            bool(hex_run),
        )

    def _expand(
        self,
        run: _Run,
        prepared: str,
        canonical: str,
        path: tuple[str, ...],
        depth: int,
        *,
        letters: bool,
    ) -> None:
        """Find letter-level obfuscation, carriers and encodings in one prepared text."""
        raw = _utf8(prepared)
        canonical_raw = _utf8(canonical)
        classes = canonical_raw.translate(_CLASSES)
        case_classes = raw.translate(_CASE_CLASSES)
        gates = self._gates(classes, case_classes, raw)
        if letters:
            self._letter_views(run, prepared, canonical_raw, classes, path, gates)
        found: list[tuple[str, str]] = []
        if b"<" in raw:
            found.extend(self._html_carriers(prepared))
        if b"](" in raw:
            found.extend(self._markdown_carriers(prepared))
        if b'"' in raw and (b"{" in raw or b"[" in raw):
            found.extend(self._json_carriers(prepared))
        if gates.yaml_keys >= 3 and b"n" in case_classes:
            found.extend(self._yaml_carriers(prepared))
        if b"&#" in raw or b"\\" in raw:
            found.extend(self._entity_and_escape_carriers(prepared, raw))
        found.extend(self._decoded(run, prepared, raw, classes, case_classes, gates))
        found.extend(self._rot13_or_reversed(canonical, canonical_raw))
        for kind, text in found:
            if len(run.views) >= self.max_views:
                run.transforms.add(kind)
                continue
            self._emit(run, kind, text, path, depth)

    # ----------------------------------------------------------------- letter level

    def _letter_views(
        self,
        run: _Run,
        prepared: str,
        canonical_raw: bytes,
        classes: bytes,
        path: tuple[str, ...],
        gates: _Gates,
    ) -> None:
        if gates.separated:
            separated = self._join_separated(_casefold(prepared))
            if separated is not None:
                run.transforms.add("separators")
                self._add_view(run, separated, (*path, "separators"))
                separated_raw = _utf8(separated)
                rewritten = self._deleet(separated_raw, separated_raw.translate(_CLASSES))
                if rewritten is not None:
                    run.transforms.add("leet")
                    self._add_view(run, rewritten, (*path, "separators", "leet"))
        if gates.leet:
            rewritten = self._deleet(canonical_raw, classes)
            if rewritten is not None:
                run.transforms.add("leet")
                self._add_view(run, rewritten, (*path, "leet"))

    def _join_separated(self, lowered: str) -> str | None:
        """Join letters split by one separator ("i g n o r e", "i.g.n.o.r.e", ...)."""
        seps = self._separators(lowered, min(len(lowered), 400_000))
        text = lowered
        changed = False
        for sep in sorted(seps):
            runs: list[tuple[int, int, list[str]]] = []
            proven = False
            for m in self._sep_runs(text, sep):
                words = [w.replace(sep, "") for w in _SEP_GAPS[sep].split(m.group())]
                if max(map(len, words)) < 3:
                    continue
                if len(words) == 1 and words[0] not in self.words:
                    # no gaps between words ("i g n o r e a l l"): split a long run into
                    # known words; a short one is one word ("d e g e n e r a t e")
                    joined, known = self._segment(words[0])
                    if known and len(words[0]) >= 12 and joined.count(" ") >= 2:
                        words = joined.split()
                    else:
                        known = False
                else:
                    known = any(len(w) >= 3 and w in self.words for w in words)
                runs.append((m.start(), m.end(), words))
                proven = proven or known
            # acronyms ("u.s.s.r.", "e-e-a-t") and maths ("a c b c c") spell no known word;
            # once one run does, every run of that separator is rewritten
            if not proven:
                continue
            pieces: list[str] = []
            last = 0
            for start, end, words in runs:
                pieces.append(text[last:start])
                pieces.append(" ".join(words))
                last = end
            pieces.append(text[last:])
            text = "".join(pieces)
            changed = True
        return " ".join(text.split()) if changed else None

    @staticmethod
    def _separators(lowered: str, end: int) -> set[str]:
        """The separators of `_SEP_GATE.finditer(lowered, 0, end)` matches, in one byte scan.

        A match is "letter sep letter sep letter sep letter" in character classes, so it is
        tried only where those classes are (one byte per character: non-ASCII becomes "?").
        """
        classes = lowered[:end].encode("ascii", "replace").translate(_SEP_CLASSES)
        seps: set[str] = set()
        pos = classes.find(b"a.a.a.a")
        for _ in range(64):
            if pos < 0 or len(seps) == len(_SEP_RUNS):
                return seps
            m = _SEP_GATE.match(lowered, pos, end)
            if m is None:
                pos = classes.find(b"a.a.a.a", pos + 1)
            else:
                seps.add(m.group(1))
                pos = classes.find(b"a.a.a.a", m.end())
        if pos < 0 or len(seps) == len(_SEP_RUNS):
            return seps
        # many candidates (a long run of separated letters): no match starts before `pos`,
        # so the regex scan goes on from there
        for m in _SEP_GATE.finditer(lowered, pos, end):
            seps.add(m.group(1))
            if len(seps) == len(_SEP_RUNS):
                break
        return seps

    def _sep_runs(self, text: str, sep: str) -> Iterator[re.Match[str]]:
        """The first 20,000 `_SEP_RUNS[sep]` matches, or at least all that spell 3 letters.

        Below 40,000 characters there are fewer matches than that, and a match lies inside
        one span free of characters it cannot hold; only spans holding three standalone
        letters joined by `sep` are scanned (one byte per character, non-ASCII as "?").
        """
        pattern = _SEP_RUNS[sep]
        if len(text) >= 40_000:
            for count, m in enumerate(pattern.finditer(text)):
                if count >= 20_000:
                    return
                yield m
            return
        data = text.encode("ascii", "replace")
        regions = np.zeros(2 * (len(data) // 5 + 1), dtype=np.int64)
        count = self._sep_regions(data, ord(sep), regions)
        for start, end in regions[: 2 * count].reshape(-1, 2).tolist():
            yield from pattern.finditer(text, start, end)

    def _segment(self, letters: str) -> tuple[str, bool]:
        """Split letters into known words ("ignoreall" -> "ignore all"); False if impossible."""
        if letters in self.words:
            return letters, True
        if len(letters) < 6 or len(letters) > 240:
            return letters, False
        n = len(letters)
        # best[i] = (fewest words covering letters[:i], where the last word starts)
        best: list[tuple[int, int] | None] = [None] * (n + 1)
        best[0] = (0, 0)
        for end in range(1, n + 1):
            for start in range(max(0, end - 20), end):
                prev = best[start]
                if prev is None:
                    continue
                piece = letters[start:end]
                if piece not in self.words or (len(piece) == 1 and piece not in "ai"):
                    continue
                current = best[end]
                if current is None or prev[0] + 1 < current[0]:
                    best[end] = (prev[0] + 1, start)
        if best[n] is None:
            return letters, False
        words: list[str] = []
        end = n
        while end > 0:
            cut = best[end]
            assert cut is not None
            words.append(letters[cut[1] : end])
            end = cut[1]
        return " ".join(reversed(words)), True

    def _deleet(self, raw: bytes, classes: bytes) -> str | None:
        """Rewrite leetspeak tokens ("1gn0r3" -> "ignore") when they spell known words."""
        # the candidate tokens come from a compiled scan (`_leet_tokens`), in order
        spans = np.zeros(2 * 4096, dtype=np.int64)
        count = self._leet_tokens(
            classes, raw.translate(_LEET_TOKEN_CLASSES), raw, _LEET_BYTES, spans
        )
        replacements: list[tuple[int, int, str]] = []
        hits: set[str] = set()
        for start, end in spans[: 2 * count].reshape(-1, 2).tolist():
            token = raw[start:end].decode("ascii", "replace")
            if _NUMBER_WITH_SUFFIX.match(token):
                continue  # "80th", "10am", "3d": a number with a unit or an ordinal
            plain = token.translate(_LEET_PRIMARY)
            if not plain.isalpha():
                continue
            if plain in self.words:
                hits.add(plain)
            else:
                other = token.translate(_LEET_ALTERNATE)
                if other in self.words:
                    plain = other
                    hits.add(plain)
            # every candidate is rewritten once known words prove the text is leetspeak
            replacements.append((start, end, plain))
        if not (len(hits) >= 2 or any(len(h) >= 4 for h in hits)):
            return None
        pieces: list[bytes] = []
        last = 0
        for start, end, plain in replacements:
            pieces.append(raw[last:start])
            pieces.append(plain.encode())
            last = end
        pieces.append(raw[last:])
        return b"".join(pieces).decode("utf-8", "surrogatepass")

    # ----------------------------------------------------------------- carriers

    def _substantive(self, text: str) -> bool:
        """Whether carried text is worth a view: a few words, not a label or a number."""
        # casefolding is per character, so a head holds no more letter runs than the whole
        if len(text) > 64 and len(_LETTER_RUN.findall(text[:64].casefold())) >= 3:
            return True
        tokens = _LETTER_RUN.findall(text.casefold())
        if len(tokens) >= 3:
            return True
        return len(tokens) == 2 and all(t in self.words for t in tokens)

    def _collect(self, kind: str, items: Iterable[str]) -> list[tuple[str, str]]:
        kept: list[str] = []
        size = 0
        for item in items:
            item = item.strip()
            if item and self._substantive(item):
                kept.append(item)
                size += len(item)
                if size >= self.max_view_chars or len(kept) >= 64:
                    break
        if not kept:
            return []
        out = [(kind, "\n".join(kept))]
        # a payload carried next to a few labels ("Weekly status", "ops-team") also gets a view
        # of its own, so a short attack is not diluted by the document around it
        longest = max(kept, key=len)
        if len(kept) > 1 and len(longest) >= 0.5 * size:
            out.append((kind, longest))
        return out

    def _html_carriers(self, text: str) -> list[tuple[str, str]]:
        out = self._collect("html_comment", (html.unescape(c) for c in self._html_comments(text)))
        attributes: list[str] = []
        hidden: list[str] = []
        lowered: str | None = None
        # scan tags first (literal "<" prefix: fast), then attributes inside each tag only
        for count, tag in enumerate(_HTML_TAG.finditer(text)):
            if count >= 512:
                break
            attrs = tag.group(2)
            if "=" in attrs:
                attributes.extend(
                    html.unescape(m.group(1) or m.group(2) or "")
                    for m in _HTML_ATTRIBUTE.finditer(attrs)
                )
            if _HIDDEN_STYLE.search(attrs):
                lowered = text.lower() if lowered is None else lowered
                name = "</" + tag.group(1).lower()
                close = lowered.find(name, tag.end(), tag.end() + self.max_view_chars)
                inner = text[tag.end() : close if close >= 0 else tag.end() + 2000]
                hidden.append(html.unescape(_HTML_ANY_TAG.sub(" ", inner)))
        out.extend(self._collect("html_attribute", attributes))
        out.extend(self._collect("hidden_span", hidden))
        return out

    def _html_comments(self, text: str) -> Iterator[str]:
        # str.find rather than a lazy regex: an unclosed "<!--" ends the scan, never rescans
        start = text.find("<!--")
        for _ in range(64):
            if start < 0:
                return
            end = text.find("-->", start + 4)
            if end < 0:
                yield text[start + 4 : start + 4 + self.max_view_chars]
                return
            yield text[start + 4 : end]
            start = text.find("<!--", end + 3)

    def _markdown_carriers(self, text: str) -> list[tuple[str, str]]:
        items: list[str] = []
        for count, m in enumerate(_markdown_links(text)):
            if count >= 256:
                break
            # alt text and titles are hidden once rendered; link text is visible, so only a
            # sentence-long link text counts
            if m.group(1) or len(_LETTER_RUN.findall(m.group(2))) >= 5:
                items.append(_MARKDOWN_ESCAPE.sub(r"\1", m.group(2)))
            items.extend(g for g in (m.group(4), m.group(5)) if g)
        return self._collect("markdown", items)

    def _json_carriers(self, text: str) -> list[tuple[str, str]]:
        strings: list[str] = []
        stripped = text.strip()
        if stripped[:1] not in "{[" or stripped[-1:] not in "}]":
            # a document inside prose: from the first opening to the last closing brace
            start, end = stripped.find("{"), stripped.rfind("}")
            stripped = stripped[start : end + 1] if 0 <= start < end else ""
        if stripped:
            try:
                strings = _json_strings(json.loads(stripped))
            except (ValueError, RecursionError):
                strings = []
        if not strings and ":" in text:
            for count, m in enumerate(_JSON_PAIR.finditer(text)):
                if count >= 256:
                    break
                try:
                    strings.append(str(json.loads('"' + m.group(1) + '"')))
                except ValueError:
                    strings.append(m.group(1))
        return self._collect("json_string", strings)

    def _yaml_carriers(self, text: str) -> list[tuple[str, str]]:
        every_line = text.splitlines()[:5000]
        lines: list[str] = []
        # most texts fail the structure test below early: stop once the lines that are not
        # YAML are too many for it to pass, whatever the lines not yet read (for integers,
        # structural < 0.7 * n is 10 * structural < 7 * n)
        loose = 0
        keys: list[str] = []
        for at, line in enumerate(every_line):
            if not line.strip():
                continue
            lines.append(line)
            key = _YAML_MAPPING_KEY.match(line)
            if key is not None:
                keys.append(key.group(1))  # a mapping key line is a structural line too
            elif not _YAML_STRUCTURE.match(line):
                loose += 1
                if 10 * loose > 3 * (len(lines) + len(every_line) - at - 1):
                    return []
        if len(lines) < 3:
            return []
        structural = len(lines) - loose
        # a YAML mapping has distinct keys; "Q: ... A: ..." dialogues and markdown lists
        # of "- Label: text" are not documents
        distinct = len(set(keys))
        if distinct < 3 or distinct < 0.7 * len(keys) or structural < 0.7 * len(lines):
            return []
        values: list[str] = []
        block: list[str] | None = None
        block_indent = 0
        for line in lines:
            indent = len(line) - len(line.lstrip())
            if block is not None:
                if indent > block_indent:
                    block.append(line.strip())
                    continue
                values.append(" ".join(block))
                block = None
            m = _YAML_KEY_LINE.match(line)
            if m is None:
                continue
            value = (m.group(1) or "").strip()
            if value in ("|", ">", "|-", ">-", "|+", ">+"):
                block, block_indent = [], indent
            elif value:
                values.append(_yaml_scalar(value))
        if block:
            values.append(" ".join(block))
        return self._collect("yaml_string", values)

    def _entity_and_escape_carriers(self, text: str, raw: bytes) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        window = text[: self.max_view_chars * 4]
        if b"&#" in raw and len(_NUMERIC_ENTITY.findall(window)) >= 3:
            decoded = html.unescape(window)
            if looks_like_language(decoded, self.words):
                out.append(("html_entity", decoded))
        # a run starts with "\\u" or "\\x": search from the first one (a slow scan otherwise)
        escape = min((i for i in (window.find("\\u"), window.find("\\x")) if i >= 0), default=-1)
        if b"\\" in raw and escape >= 0 and _ESCAPE_RUN.search(window, escape):
            hex_only = True

            def unescape(m: re.Match[str]) -> str:
                nonlocal hex_only
                chunk = m.group()
                if "\\u" not in chunk:  # \x escapes are bytes: UTF-8, not Latin-1
                    return bytes.fromhex(chunk.replace("\\x", "")).decode("utf-8", "replace")
                hex_only = False
                try:
                    return str(json.loads('"' + chunk.replace("\\x", "\\u00") + '"'))
                except ValueError:
                    return chunk

            decoded = _ESCAPE_RUN.sub(unescape, window, count=256)
            if looks_like_language(decoded, self.words):
                out.append(("hex" if hex_only else "escape", decoded))
        return out

    # ----------------------------------------------------------------- decoders

    def _decoded(
        self, run: _Run, text: str, raw: bytes, classes: bytes, case_classes: bytes, gates: _Gates
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        # base64 of text has an upper-case letter right after a lower-case letter or a digit
        if gates.base64_seed:
            for candidate, before, after in self._base64_candidates(raw, case_classes):
                if run.candidate_budget <= 0 or run.decode_budget <= 0:
                    return out
                decoded = self._try_base64(run, candidate, before, after)
                if decoded is not None:
                    out.append(("base64", decoded))
        if gates.hex_run:
            for m in _HEX_RUN.finditer(text):
                if run.candidate_budget <= 0 or run.decode_budget <= 0:
                    return out
                if _isolated(text, m.start(), m.end()):
                    decoded = self._try_hex(run, m.group())
                    if decoded is not None:
                        out.append(("hex", decoded))
        if b"%" in raw and _PERCENT_ESCAPE.search(text):
            decoded = self._try_url(run, text)
            if decoded is not None:
                out.append(("url", decoded))
        if gates.charcode:
            for m in _CHARCODE_RUN.finditer(text):
                if run.candidate_budget <= 0 or run.decode_budget <= 0:
                    return out
                if m.start() > 0 and text[m.start() - 1] in "0123456789.":
                    continue
                decoded = self._try_charcodes(run, m.group())
                if decoded is not None:
                    out.append(("charcode", decoded))
        return out

    def _base64_candidates(
        self, raw: bytes, case_classes: bytes
    ) -> Iterator[tuple[str, bytes, bytes]]:
        """Runs of base64 characters around each lower-upper seed, with their neighbours."""
        # the runs around the seeds come from a compiled scan (`_base64_runs`), seeds in order
        runs = np.zeros(2 * 512, dtype=np.int64)
        count = self._base64_runs(case_classes, raw.translate(_BASE64_CLASSES), runs)
        for start, end in runs[: 2 * count].reshape(-1, 2).tolist():
            padding = 0
            while padding < 2 and raw[end + padding : end + padding + 1] == b"=":
                padding += 1
            candidate = raw[start : end + padding].decode("ascii")
            yield candidate, raw[start - 1 : start], raw[end + padding : end + padding + 1]

    def _try_base64(self, run: _Run, candidate: str, before: bytes, after: bytes) -> str | None:
        body = candidate.rstrip("=")
        # base64 of text mixes cases inside the run; words, slugs and identifiers mostly don't
        if body[1:].islower() or body.isupper() or body.isdigit():
            return None
        if len(body) < self.min_base64_chars:
            # short runs only when padded or carrying digits: "cm0gLXJmIC8=", "d2hvYW1p"
            short_ok = len(candidate) > len(body) or any(c.isdigit() for c in body)
            if len(body) < 8 or not short_ok:
                return None
        if body.startswith("eyJ") and b"." in (before, after):
            return None  # a JWT segment: JSON headers and claims, not a message
        urlsafe = "-" in body or "_" in body
        if urlsafe and ("+" in body or "/" in body):
            return None
        run.candidate_budget -= 1
        limit = min(run.decode_budget * 4 // 3, self.max_view_chars * 4 // 3)
        if len(body) > limit:
            body = body[: limit - limit % 4]
        if len(body) % 4 == 1:
            body = body[:-1]
        altchars = b"-_" if urlsafe else None
        try:
            # a short prefix first: attachments (images, archives) fail here cheaply
            head = body[:64]
            if not _printable(base64.b64decode(head + "=" * (-len(head) % 4), altchars)):
                return None
            data = base64.b64decode(body + "=" * (-len(body) % 4), altchars, validate=True)
        except (binascii.Error, ValueError):
            return None
        return self._accept_bytes(run, data)

    def _try_hex(self, run: _Run, candidate: str) -> str | None:
        digits = _HEX_NOT_DIGIT.sub("", candidate[: self.max_view_chars * 3])
        if len(digits) < 2 * self.min_hex_bytes:
            return None
        run.candidate_budget -= 1
        data = bytes.fromhex(digits[: len(digits) - len(digits) % 2])
        if not _printable(data[:48]):
            return None
        return self._accept_bytes(run, data)

    def _try_url(self, run: _Run, text: str) -> str | None:
        # benign URLs never percent-encode letters or digits (RFC 3986 unreserved), so runs
        # of escapes that hide letters are a payload; a lone "%30" is Turkish for 30 percent
        alnum = 0
        for count, m in enumerate(_PERCENT_RUN.finditer(text, 0, 400_000)):
            alnum += len(_PERCENT_ALNUM.findall(m.group()))
            if alnum >= 3 or count >= 256:
                break
        if alnum < 3 and _spaces_in_prose(text) < 2:
            return None
        run.candidate_budget -= 1
        decoded = unquote(text[: self.max_view_chars * 3], errors="replace")
        run.decode_budget -= len(decoded)
        return decoded if _decodes_to_language(decoded, self.words) else None

    def _try_charcodes(self, run: _Run, candidate: str) -> str | None:
        """Decimal character codes ("119,104,111,97,109,105" -> "whoami")."""
        codes = [int(c) for c in _NUMBER.findall(candidate, 0, self.max_view_chars * 4)]
        if not all(32 <= c < 0xD800 or 0xE000 <= c < 0x110000 or c in (9, 10, 13) for c in codes):
            return None
        run.candidate_budget -= 1
        run.decode_budget -= len(codes)
        decoded = "".join(map(chr, codes))
        return decoded if _decodes_to_language(decoded, self.words) else None

    def _accept_bytes(self, run: _Run, data: bytes) -> str | None:
        run.decode_budget -= len(data)
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return decoded if _decodes_to_language(decoded, self.words) else None

    def _rot13_or_reversed(self, canonical: str, raw: bytes) -> list[tuple[str, str]]:
        """rot13 or reversed text: only when decoding turns unknown tokens into common words."""
        out: list[tuple[str, str]] = []
        gates = self._letter_gates(canonical, raw)
        # a marker's hash is confirmed on the bytes; a collision falls back to the set test
        if gates[2] < 0:
            marked = False
        elif raw[gates[2] : gates[3]] in _MARKER_BYTES:
            marked = True
        else:
            marked = not _ROT13_OR_REVERSED_MARKERS.isdisjoint(canonical.split())
        if marked:
            head = raw if len(canonical) <= 400_000 else _utf8(canonical[:400_000])
            unknown = _ascii_words3(head) - self.words
            if len(unknown) >= 3:
                probe = " ".join(unknown)
                rot13 = len(self.words.intersection(probe.translate(_ROT13).split()))
                if rot13 >= 3 and rot13 >= 0.3 * len(unknown):
                    out.append(("rot13", canonical[: self.max_view_chars].translate(_ROT13)))
                reverse = len(self.words.intersection(probe[::-1].split()))
                if reverse >= 3 and reverse >= 0.3 * len(unknown):
                    out.append(("reversed", canonical[-self.max_view_chars :][::-1]))
        if len(out) < 2:
            found = {kind for kind, _ in out}
            out.extend(self._short_rot13_or_reversed(canonical, found, gates[:2]))
        return out

    def _letter_gates(self, canonical: str, raw: bytes) -> npt.NDArray[np.int64]:
        """`_rot13_gates` of the canonical text (`raw`, its UTF-8): the decodable letters of
        its first `_BIGRAM_WINDOW` characters, and where a token hashed like a marker is.

        One compiled pass; its tokens are the space-separated runs of the canonical text.
        """
        window = min(len(raw), _BIGRAM_WINDOW)
        if len(raw) != len(canonical):
            window = len(_utf8(canonical[:_BIGRAM_WINDOW]))
        gates = np.zeros(4, dtype=np.int64)
        self._rot13_gates(raw, window, self._bloom, *self._decodable, _MARKER_HASHES, gates)
        return gates

    def _short_rot13_or_reversed(
        self, canonical: str, found: set[str], decodable: npt.NDArray[np.int64]
    ) -> list[tuple[str, str]]:
        """A short rot13/reversed payload, maybe after a plain lead: bigram gain and words."""
        window = canonical[:_BIGRAM_WINDOW]
        # exact early exit: the gate below needs, for a kind, unknown tokens that decode to
        # words with >= _DECODED_LETTERS letters; `decodable` (`_letter_gates`) over-counts
        # those letters (every occurrence, hash matches), so a kind it rules out is ruled out
        # by the gate too
        if (decodable[0] < _DECODED_LETTERS or "rot13" in found) and (
            decodable[1] < _DECODED_LETTERS or "reversed" in found
        ):
            return []
        unknown = set(_ASCII_WORD3.findall(window)) - self.words
        if not unknown:
            return []
        # cheap gate (set operations in C): the unknown tokens of the window must decode to
        # enough letters of known words; the same test then runs on the best span alone
        probe = " ".join(unknown)
        candidates = {
            "rot13": self.words.intersection(probe.translate(_ROT13).split()),
            "reversed": self.words.intersection(probe[::-1].split()),
        }
        wanted = [
            kind
            for kind, hits in candidates.items()
            if kind not in found and sum(map(len, hits)) >= _DECODED_LETTERS
        ]
        if not wanted:
            return []
        raw = _utf8(window)
        codes = np.frombuffer(raw.translate(_LETTER_INDEX), dtype=np.uint8).astype(np.intp)
        if len(codes) < 8:
            return []
        first, second = codes[:-1], codes[1:]
        plain = self._bigrams[first, second]
        out: list[tuple[str, str]] = []
        for kind in wanted:
            if kind == "rot13":
                decoded = self._bigrams[_ROT13_INDEX[first], _ROT13_INDEX[second]]
            else:
                decoded = self._bigrams[second, first]
            gain, start, end = _best_gain(decoded - plain)
            letters = int(np.count_nonzero(first[start:end] | second[start:end]))
            if gain < _BIGRAM_GAIN_TWO_WORDS or gain < _BIGRAM_MEAN_GAIN * letters:
                continue
            # widen the span to whole tokens: a payload is cut at whitespace
            left = raw.rfind(b" ", 0, start) + 1
            right = raw.find(b" ", end + 1)
            right = len(raw) if right < 0 else right
            # and over neighbouring tokens too short to score ("| sh')", "-rf /")
            for _ in range(8):
                after = raw.find(b" ", right + 1)
                after = len(raw) if after < 0 else after
                if right >= len(raw) or _ASCII_WORD3_BYTES.search(raw, right, after):
                    break
                right = after
            span = raw[left:right].decode("utf-8", "ignore")
            span_tokens = set(_ASCII_WORD3.findall(span))
            hits = [t for t in span_tokens - self.words if _DECODERS[kind](t) in self.words]
            hit_letters = sum(map(len, hits))
            known_letters = sum(len(t) for t in span_tokens if t in self.words)
            # "formats (png, jpg, svg)" rot13s to "(cat, wct, fit)": short words are cheap
            if hit_letters < _DECODED_LETTERS or hit_letters <= known_letters:
                continue
            if len(hits) < _DECODED_WORD_SHARE * len(span_tokens):
                continue
            if len(hits) >= 2 or gain >= _BIGRAM_GAIN_ONE_WORD:
                out.append((kind, span.translate(_ROT13) if kind == "rot13" else span[::-1]))
        return out


# =========================================================================== helpers

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def _token_hash(token: bytes) -> int:
    """64-bit FNV-1a of a token's bytes (the same function as `_rot13_gates`'s)."""
    h = _FNV_OFFSET
    for byte in token:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def _token_hashes(tokens: Iterable[str]) -> npt.NDArray[np.uint64]:
    """Sorted hashes of the tokens that can be `[a-z]{3,}` runs (others never match one)."""
    runs = (t for t in tokens if len(t) >= 3 and t.isascii() and t.isalpha() and t.islower())
    return np.unique(np.array([_token_hash(t.encode()) for t in runs], dtype=np.uint64))


def _rot13_gates(data, window, bloom, rot13_hashes, reversed_hashes, marker_hashes, out):
    # out[0] / out[1]: for each maximal run of a-z bytes of 3 or more in data[:window] (the
    # tokens of _ASCII_WORD3 in the UTF-8 text: other characters are bytes outside a-z), its
    # length added when its hash is in the sorted table of rot13 / reversed decodable tokens;
    # out[2] / out[3]: start and end of the first space-separated token of data whose hash is
    # in the sorted marker table (-1 if none). bloom has a bit per top _BLOOM_BITS bits of
    # every hash of the three tables: a clear bit rules a token out without a binary search
    i = 0
    while i < window:
        if data[i] < 97 or data[i] > 122:
            i += 1
            continue
        h = np.uint64(0xCBF29CE484222325)
        j = i
        while j < window and 97 <= data[j] <= 122:
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
            j += 1
        if j - i >= 3:
            bit = np.intp(h >> np.uint64(64 - 18))
            if bloom[bit >> 3] & (1 << (bit & 7)):
                for table, slot in ((rot13_hashes, 0), (reversed_hashes, 1)):
                    at = np.searchsorted(table, h)
                    if at < len(table) and table[at] == h:
                        out[slot] += j - i
        i = j
    out[2] = -1
    out[3] = -1
    n = len(data)
    i = 0
    while i < n:
        if data[i] == 32:
            i += 1
            continue
        h = np.uint64(0xCBF29CE484222325)
        j = i
        while j < n and data[j] != 32:
            h = (h ^ np.uint64(data[j])) * np.uint64(0x100000001B3)
            j += 1
        bit = np.intp(h >> np.uint64(64 - 18))
        if bloom[bit >> 3] & (1 << (bit & 7)):
            at = np.searchsorted(marker_hashes, h)
            if at < len(marker_hashes) and marker_hashes[at] == h:
                out[2] = i
                out[3] = j
                return
        i = j


#: the bloom filter of `_rot13_gates` has 2**_BLOOM_BITS bits (32 KB)
_BLOOM_BITS = 18


def _bloom(*tables: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """A bit per value of the top `_BLOOM_BITS` bits of every hash in `tables`."""
    bloom = np.zeros(1 << (_BLOOM_BITS - 3), dtype=np.uint8)
    for table in tables:
        bits = (table >> np.uint64(64 - _BLOOM_BITS)).astype(np.intp)
        np.bitwise_or.at(bloom, bits >> 3, (1 << (bits & 7)).astype(np.uint8))
    return bloom


_MARKER_BYTES = frozenset(w.encode() for w in _ROT13_OR_REVERSED_MARKERS)
# every marker, hashed whole: tokens are hashed whole too (not only their a-z runs)
_MARKER_HASHES = np.unique(np.array([_token_hash(w) for w in _MARKER_BYTES], dtype=np.uint64))


def _build_kernels() -> tuple[Any, ...]:
    global _ascii_letter, _maybe_letter, _blocks_run  # the helpers inline into _sep_regions
    _ascii_letter = njit(_ascii_letter, inline=True)
    _maybe_letter = njit(_maybe_letter, inline=True)
    _blocks_run = njit(_blocks_run, inline=True)
    return (
        njit(_rot13_gates),
        njit(_base64_runs),
        njit(_class_gates),
        njit(_sep_regions),
        njit(_leet_tokens),
    )


_KERNELS = LazyKernels(_build_kernels)


def _rot13_gates_kernel() -> Any:
    """`_rot13_gates` compiled with numba (once per process, cached on disk)."""
    return _KERNELS()[0]


def _base64_runs(case_classes, alphabet, out):
    # the first 256 seeds of each kind ("aA" and "0A" in case classes: the upper-case letter
    # is the seed), in order; for each seed past the previous run, the run of base64 classes
    # ("b" in alphabet) around it; runs of 8 bytes or more go to out as (start, end) pairs.
    # Returns the number of pairs
    n = len(case_classes)
    lower_seeds = 0
    digit_seeds = 0
    last_end = -1
    count = 0
    for seed in range(1, n):
        if case_classes[seed] != 65:  # "A"
            continue
        before = case_classes[seed - 1]
        if before == 97:  # "a"
            if lower_seeds >= 256:
                continue
            lower_seeds += 1
        elif before == 48:  # "0"
            if digit_seeds >= 256:
                continue
            digit_seeds += 1
        else:
            continue
        if seed < last_end:
            continue
        start = seed
        while start > 0 and alphabet[start - 1] != 35:  # "#"
            start -= 1
        end = seed
        while end < n and alphabet[end] != 35:
            end += 1
        last_end = end
        if end - start < 8:
            continue  # "ChatGPT", "OpenAI": too short to be a payload
        out[2 * count] = start
        out[2 * count + 1] = end
        count += 1
    return count


def _class_gates(classes, case_classes, raw, hex_table, out):
    # the substring tests of `_Gates` (bytes.find is slow on runs of one class); out holds
    # separated, leet, charcode, yaml_keys, base64_seed, hex_run
    n = len(classes)
    for i in range(n - 1):
        c = classes[i]
        d = classes[i + 1]
        if c == 97:  # "a"
            if d == 48:  # "a0"
                out[1] = 1
            elif (
                d == 46  # "a.a.a.a"
                and i + 6 < n
                and classes[i + 2] == 97
                and classes[i + 3] == 46
                and classes[i + 4] == 97
                and classes[i + 5] == 46
                and classes[i + 6] == 97
            ):
                out[0] = 1
        elif c == 48:  # "0"
            if d == 97:  # "0a"
                out[1] = 1
            elif d == 48 and i + 4 < n and classes[i + 2] == 44:  # "00,00" or "00,.00"
                if classes[i + 3] == 48 and classes[i + 4] == 48:
                    out[2] = 1
                elif i + 5 < n and classes[i + 3] == 46 and classes[i + 4] == 48:
                    if classes[i + 5] == 48:
                        out[2] = 1
    m = len(case_classes)
    for i in range(m - 1):
        c = case_classes[i]
        d = case_classes[i + 1]
        if d == 58:  # ":"
            if c == 97 or c == 65:
                out[3] += 1
        elif d == 65 and (c == 97 or c == 48):  # "aA" or "0A"
            out[4] = 1
    # hex classes: 16 "h" in a row, or "hh.hh.hh.hh.hh"
    m = len(raw)
    streak = 0
    for i in range(m):
        if hex_table[raw[i]] == 104:  # "h"
            streak += 1
            if streak >= 16:
                out[5] = 1
                return
            if streak >= 2 and i + 12 < m:
                ok = True
                for k in range(4):
                    at = i + 1 + 3 * k
                    if (
                        hex_table[raw[at]] != 46
                        or hex_table[raw[at + 1]] != 104
                        or hex_table[raw[at + 2]] != 104
                    ):
                        ok = False
                        break
                if ok:
                    out[5] = 1
                    return
        else:
            streak = 0


_HEX_TABLE = np.frombuffer(_HEX_CLASSES, dtype=np.uint8)


#: the bytes of `_LEET_CHARS`, for `_leet_tokens`
_LEET_BYTES = np.zeros(256, dtype=np.bool_)
_LEET_BYTES[[ord(c) for c in _LEET_CHARS]] = True


def _leet_tokens(classes, token_classes, raw, leet_bytes, out):
    # the first 2048 seeds of each kind ("a0" and "0a" in classes, at the first byte), in
    # order; for each seed past the previous token, the token of leet classes ("t") around
    # it within 48 bytes before and 50 from the seed, sigils trimmed ("$table", "@entity",
    # "user${x}" are code and mentions); tokens of 3 bytes or more, not all digits, holding
    # a leet character (`leet_bytes`) go to out as (start, end) pairs. Returns the number of
    # pairs
    n = len(classes)
    size = len(raw)
    letter_seeds = 0
    digit_seeds = 0
    last_end = -1
    count = 0
    for seed in range(n - 1):
        c = classes[seed]
        d = classes[seed + 1]
        if c == 97 and d == 48:  # "a0"
            if letter_seeds >= 2048:
                continue
            letter_seeds += 1
        elif c == 48 and d == 97:  # "0a"
            if digit_seeds >= 2048:
                continue
            digit_seeds += 1
        else:
            continue
        if seed < last_end:
            continue
        low = max(0, seed - 48)
        start = seed
        while start > low and token_classes[start - 1] != 35:  # "#"
            start -= 1
        high = min(size, seed + 50)
        end = seed
        while end < high and token_classes[end] != 35:
            end += 1
        last_end = end
        while start < end and (
            raw[start] == 33 or raw[start] == 124 or raw[start] == 36 or raw[start] == 64
        ):  # "!|$@"
            start += 1
        while end > start and (
            raw[end - 1] == 33
            or raw[end - 1] == 124
            or (raw[end - 1] == 36 and end < size and raw[end] == 123)  # "${"
        ):
            end -= 1
        if end - start < 3:
            continue
        digits = True
        leet = False
        for k in range(start, end):
            b = raw[k]
            if b < 48 or b > 57:
                digits = False
            if leet_bytes[b]:
                leet = True
        if digits or not leet:
            continue
        out[2 * count] = start
        out[2 * count + 1] = end
        count += 1
    return count


def _sep_regions(data, sep, out):
    # data: a text with one byte per character (non-ASCII as "?", maybe a letter). Spans of
    # characters a `_SEP_RUNS[sep]` match can hold (letters, "?", sep, spaces; tabs and line
    # breaks for sep " ") that hold "letter sep letter sep letter" with no letter just
    # before or after; their (start, end) pairs go to out in order. Returns the count
    n = len(data)
    count = 0
    last_end = 0
    i = 0
    while i + 4 < n:
        if (
            data[i + 1] == sep
            and data[i + 3] == sep
            and _maybe_letter(data[i])
            and _maybe_letter(data[i + 2])
            and _maybe_letter(data[i + 4])
            and (i == 0 or not _ascii_letter(data[i - 1]))
            and (i + 5 >= n or not _ascii_letter(data[i + 5]))
        ):
            start = i
            while start > last_end and not _blocks_run(data[start - 1], sep):
                start -= 1
            end = i + 5
            while end < n and not _blocks_run(data[end], sep):
                end += 1
            out[2 * count] = start
            out[2 * count + 1] = end
            count += 1
            last_end = end
            i = end
        else:
            i += 1
    return count


def _ascii_letter(c):
    return 65 <= c <= 90 or 97 <= c <= 122


def _maybe_letter(c):
    return 65 <= c <= 90 or 97 <= c <= 122 or c == 63  # "?": a non-ASCII character


def _blocks_run(c, sep):
    # a character no `_SEP_RUNS[sep]` match holds
    if _maybe_letter(c) or c == sep or c == 32:
        return False
    return not (sep == 32 and (c == 9 or c == 10))


def _markdown_links(text: str) -> Iterator[re.Match[str]]:
    """`_MARKDOWN_LINK.finditer(text)`, trying only where a match can start.

    A match holds "](" and starts at "[" or "![" on that line (its bracketed text holds no
    line break), so only those positions of the lines holding "](" are tried, in order;
    a line with many of them goes back to the regex scan.
    """
    pos = 0
    while True:
        found = text.find("](", pos)
        if found < 0:
            return
        line_start = max(pos, text.rfind("\n", pos, found) + 1)
        line_end = text.find("\n", found)
        line_end = len(text) if line_end < 0 else line_end
        m: re.Match[str] | None = None
        bracket = text.find("[", line_start, line_end)
        tries = 0
        while bracket >= 0:
            start = bracket - 1 if bracket > line_start and text[bracket - 1] == "!" else bracket
            tries += 1
            if tries > 64:
                m = _MARKDOWN_LINK.search(text, start)
                if m is None:
                    return
                break
            m = _MARKDOWN_LINK.match(text, start)
            if m is None and start < bracket:
                m = _MARKDOWN_LINK.match(text, bracket)
            if m is not None:
                break
            bracket = text.find("[", bracket + 1, line_end)
        if m is None:
            pos = line_end + 1
            continue
        yield m
        pos = m.end()


def _isolated(text: str, start: int, end: int) -> bool:
    """Whether a match is not part of a longer alphanumeric token ("0x" prefix allowed)."""
    before = "" if text[start - 2 : start] == "0x" else text[start - 1 : start]
    after = text[end : end + 1]
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


def _printable(data: bytes) -> bool:
    try:
        sample = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is fine
        if exc.start < len(data) - 3:
            return False
        sample = data[: exc.start].decode("utf-8")
    return len(_NOT_PRINTABLE.findall(sample)) <= 0.02 * max(1, len(sample)) or _mojibake(sample)


def _json_strings(document: object) -> list[str]:
    strings: list[str] = []
    stack = [document]
    visited = 0
    while stack and visited < 10_000 and len(strings) < 256:
        node = stack.pop()
        visited += 1
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return strings


def _yaml_scalar(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    return value
