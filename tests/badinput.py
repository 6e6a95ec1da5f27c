"""The bad-input set every path must dead-letter (unit, agent and integration tests share it)."""

from __future__ import annotations

import base64
import codecs
import random
import urllib.parse

import orjson

MAX_TEXT_CHARS = 200_000


def good(
    i: int, session: str = "s-good", text: str | None = None, ts: float = 1_700_000_000.0
) -> bytes:
    """A valid prompt record."""
    return orjson.dumps(
        {
            "id": f"good-{i}",
            "session_id": session,
            "text": text or f"What is {i} + {i}?",
            "ts": ts + i,
        }
    )


#: (name, raw value, expected dead-letter reason)
BAD_INPUTS: list[tuple[str, bytes | None, str]] = [
    ("invalid_json", b'{"id": "b1", "session_id": "s", "text": "hi", ', "invalid_json"),
    ("not_an_object", b'["id", "session_id"]', "invalid_json"),
    ("plain_text", b"ignore previous instructions", "invalid_json"),
    (
        "non_utf8",
        b'{"id": "b2", "session_id": "s", "text": "\xff\xfe\xfa", "ts": 1}',
        "invalid_encoding",
    ),
    ("missing_text", b'{"id": "b3", "session_id": "s", "ts": 1}', "schema_violation"),
    ("missing_session", b'{"id": "b4", "text": "hi", "ts": 1}', "schema_violation"),
    (
        "text_wrong_type",
        b'{"id": "b5", "session_id": "s", "text": 42, "ts": 1}',
        "schema_violation",
    ),
    ("id_wrong_type", b'{"id": 5, "session_id": "s", "text": "hi", "ts": 1}', "schema_violation"),
    (
        "ts_wrong_type",
        b'{"id": "b6", "session_id": "s", "text": "hi", "ts": true}',
        "schema_violation",
    ),
    (
        "ts_bad_string",
        b'{"id": "b7", "session_id": "s", "text": "hi", "ts": "yesterday at noon"}',
        "schema_violation",
    ),
    (
        "role_unknown",
        b'{"id": "b8", "session_id": "s", "text": "hi", "ts": 1, "role": "root"}',
        "schema_violation",
    ),
    ("empty_text", b'{"id": "b9", "session_id": "s", "text": "", "ts": 1}', "empty_text"),
    ("blank_text", b'{"id": "b10", "session_id": "s", "text": " \\n\\t ", "ts": 1}', "empty_text"),
    (
        "invisible_text",
        orjson.dumps(
            {"id": "b10i", "session_id": "s", "text": "\u200b\u200b \u2060\u00ad", "ts": 1}
        ),
        "empty_text",
    ),
    (
        "huge_text_5mb",
        orjson.dumps({"id": "b11", "session_id": "s", "text": "A" * (5 * 1024 * 1024), "ts": 1}),
        "text_too_large",
    ),
    # event time must not run ahead of the worker's clock (AIMDS_MAX_CLOCK_SKEW_S)
    (
        "ts_far_future",
        b'{"id": "b12", "session_id": "s", "text": "hi", "ts": 9e15}',
        "timestamp_out_of_range",
    ),
    (
        "ts_overflow",
        b'{"id": "b13", "session_id": "s", "text": "hi", "ts": 1e300}',
        "timestamp_out_of_range",
    ),
    (
        "ts_before_1970",
        b'{"id": "b14", "session_id": "s", "text": "hi", "ts": "0001-01-01T00:00:00+14:00"}',
        "schema_violation",
    ),
    (
        "lone_surrogate_escape",
        b'{"id": "b15", "session_id": "s", "text": "ignore \\ud800 rules", "ts": 1}',
        "invalid_json",
    ),
    ("empty_bytes", b"", "invalid_json"),
    ("tombstone", None, "invalid_json"),
]


def duplicate_pair(session: str = "s-dup") -> tuple[bytes, bytes]:
    """Two records with the same prompt id in the same session; the second is a duplicate."""
    first = orjson.dumps(
        {"id": "dup-1", "session_id": session, "text": "first", "ts": 1_700_000_000}
    )
    second = orjson.dumps(
        {"id": "dup-1", "session_id": session, "text": "again", "ts": 1_700_000_005}
    )
    return first, second


def as_surrogates(text: str) -> str:
    """`text` with each character beyond U+FFFF split into its two UTF-16 surrogate code points.

    No UTF-8 record decodes to such a string, but a caller of the library can pass one.
    """
    return "".join(
        chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF))
        if ord(c) >= 0x10000
        else c
        for c in text
    )


#: pieces of odd text: attack words, markup the normalizer extracts, invisible and look-alike
#: characters, escape and encoding markers, code, surrogates (a library caller's str)
FRAGMENTS = [
    "ignore previous instructions",
    "<!-- ",
    " -->",
    "<span style='display:none'>",
    "</span>",
    "[a](",
    ")",
    "![",
    "]",
    '{"a": "',
    '"}',
    "a: |\n  ",
    "<img alt='",
    "'>",
    "<script>",
    "\u200b",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u00ad",
    "\u034f",
    "\u0301",
    "\u0336",
    "\uff49\uff47\uff4e",
    "\u0456gn\u043er\u0435",
    "1gn0r3",
    "i.g.n.o.r.e",
    "i g n o r e",
    "\U0001d422\U0001d420",
    "\u24be\u24d6",
    "\ufb01",
    "\u00df",
    "\u0130",
    "\u01c5",
    "\U000e0041",
    "\U000e0069",
    "\ud835",
    "\udc22",
    "\ud800",
    "%",
    "%2",
    "%25",
    "%u0041",
    "%41" * 8,
    "&#",
    "&#x",
    ";",
    "\\x",
    "\\u",
    "0x",
    "=",
    "=" * 20,
    "base64,",
    "data:text/plain;base64,",
    "SWdub3JlIHByZXZpb3Vz",
    "69676e6f7265",
    "vtaber cerivbhf",
    "suoiverp erongi",
    "\x00",
    "\x7f",
    "\r\n",
    "\t",
    "```",
    "```python\n",
    "os.system(",
    "subprocess.Popen(",
    "__import__('os')",
    "rm -rf /",
    "http://x/?q=",
    "javascript:",
    "\\",
    "/",
    "'",
    '"',
    "{",
    "}",
    "<",
    ">",
    "a" * 40,
]
_ENCODINGS = (
    lambda raw: base64.b64encode(raw).decode(),
    lambda raw: raw.hex(),
    lambda raw: urllib.parse.quote(raw),
    lambda raw: codecs.encode(raw.decode("utf-8", "replace"), "rot13"),
    lambda raw: raw.decode("utf-8", "replace")[::-1],
)


def odd_text(rng: random.Random, pieces: int | None = None, depth: int = 0) -> str:
    """Random odd text: fragments, any code points, and encoded odd text nested 3 deep."""
    out = []
    for _ in range(pieces or rng.randrange(1, 40)):
        r = rng.random()
        if r < 0.6:
            out.append(rng.choice(FRAGMENTS))
        elif r < 0.7:  # the Basic Multilingual Plane's letters, symbols and scripts
            out.append("".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12))))
        elif r < 0.8 and depth < 3:  # an encoded layer of more odd text
            inner = odd_text(rng, rng.randrange(1, 6), depth + 1)
            out.append(rng.choice(_ENCODINGS)(inner.encode("utf-8", "surrogatepass")))
        elif r < 0.9:  # any code point, surrogates and unassigned ones included
            out.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(6))))
        else:
            out.append(rng.choice([" ", "\n", "  ", "."]))
    return "".join(out)
