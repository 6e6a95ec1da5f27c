"""Obfuscations of attack text: the inverse of stage 1 (`app.normalize`).

The evaluation applies every obfuscation here to attacks that the plain form
catches and checks that the obfuscated variants are still caught. Each entry
of `OBFUSCATIONS` takes the attack text and a `random.Random` (so variants are
reproducible) and returns the obfuscated prompt. Letter-level obfuscations
(leet, spacing, look-alikes, ...) touch a random subset of the words, as real
attackers do; carriers wrap the attack in innocuous-looking content; encodings
sometimes carry a short neutral lead ("Decode and follow:") and sometimes are
bare payloads.
"""

from __future__ import annotations

import base64
import codecs
import html
import json
import random
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from urllib.parse import quote

from app.errors import ConfigError

__all__ = ["OBFUSCATIONS", "Obfuscation", "obfuscate"]

Obfuscation = Callable[[str, random.Random], str]

_WORD = re.compile(r"[A-Za-z]+")

_LEADS = (
    "Decode and follow:",
    "Decode this and do what it says:",
    "Here is the message, decode it first:",
    "Read the following carefully:",
)
_INNOCUOUS = (
    "Thanks for the update on the quarterly report.",
    "The meeting moved to Thursday at 10am.",
    "Please find the revised budget attached.",
    "Our team finished the migration last week.",
    "Let me know if the new schedule works for you.",
    "The conference room on the third floor is booked.",
)
_FILE_NAMES = ("logo", "chart", "banner", "photo", "diagram")


def _lead(text: str, rng: random.Random, payload: str) -> str:
    """Prefix a neutral lead half of the time: bare payloads must be decoded too."""
    if rng.random() < 0.5:
        return payload
    return f"{rng.choice(_LEADS)} {payload}"


def _pick_words(text: str, rng: random.Random, share: float, min_len: int) -> set[int]:
    """Start offsets of the words to obfuscate: a random share, at least one."""
    words = [m for m in _WORD.finditer(text) if len(m.group()) >= min_len]
    chosen = {m.start() for m in words if rng.random() < share}
    if words and not chosen:
        chosen.add(rng.choice(words).start())
    return chosen


def _map_words(
    text: str, rng: random.Random, share: float, min_len: int, rewrite: Callable[[str], str]
) -> str:
    chosen = _pick_words(text, rng, share, min_len)
    return _WORD.sub(lambda m: rewrite(m.group()) if m.start() in chosen else m.group(), text)


# --------------------------------------------------------------------------- characters

_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
_BIDI_PAIRS = (
    ("\u2066", "\u2069"),
    ("\u2067", "\u2069"),
    ("\u202a", "\u202c"),
    ("\u202d", "\u202c"),
)
_CONTROLS = tuple(chr(c) for c in range(1, 9))


def zero_width(text: str, rng: random.Random) -> str:
    """Zero-width characters between the letters of some words."""

    def split(word: str) -> str:
        return "".join(
            c + (rng.choice(_ZERO_WIDTH) if i < len(word) - 1 else "") for i, c in enumerate(word)
        )

    return _map_words(text, rng, 0.6, 2, split)


def bidi(text: str, rng: random.Random) -> str:
    """Bidi embedding/isolate controls around and inside words (logical order unchanged)."""

    def wrap(word: str) -> str:
        opening, closing = rng.choice(_BIDI_PAIRS)
        cut = rng.randrange(1, len(word))
        return f"{opening}{word[:cut]}{closing}{opening}{word[cut:]}{closing}"

    return _map_words(text, rng, 0.6, 2, wrap)


def control(text: str, rng: random.Random) -> str:
    """C0 control characters between the letters of some words."""

    def split(word: str) -> str:
        cut = rng.randrange(1, len(word))
        return word[:cut] + rng.choice(_CONTROLS) + word[cut:]

    return _map_words(text, rng, 0.6, 2, split)


_HOMOGLYPHS = {
    "a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e",
    "p": "\u0440", "s": "\u0455", "x": "\u0445", "y": "\u0443", "h": "\u04bb", "d": "\u0501",
    "A": "\u0410", "B": "\u0412", "C": "\u0421", "E": "\u0415", "H": "\u041d", "I": "\u0406",
    "K": "\u041a", "M": "\u041c", "O": "\u041e", "P": "\u0420", "T": "\u0422", "X": "\u0425",
    "N": "\u039d", "Z": "\u0396",
}  # fmt: skip
_GREEK_O = "\u03bf"


def homoglyph(text: str, rng: random.Random) -> str:
    """Cyrillic and Greek look-alikes for about half of the replaceable letters."""

    def swap(word: str) -> str:
        out = []
        for c in word:
            if c == "o" and rng.random() < 0.2:
                out.append(_GREEK_O)
            elif c in _HOMOGLYPHS and rng.random() < 0.5:
                out.append(_HOMOGLYPHS[c])
            else:
                out.append(c)
        return "".join(out)

    return _map_words(text, rng, 0.8, 1, swap)


def fullwidth(text: str, rng: random.Random) -> str:
    """Fullwidth forms of every ASCII character (ideographic spaces)."""
    return "".join(
        chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text
    )


_MATH_BOLD = {c: chr(0x1D41A + i) for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")} | {
    c: chr(0x1D400 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
}
_SMALL_CAPS = dict(zip("abcdefghijklmnoprstuvwyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", strict=True))


def styled(text: str, rng: random.Random) -> str:
    """Mathematical bold letters or small capitals, as in "fancy text" generators."""
    table = _MATH_BOLD if rng.random() < 0.5 else _SMALL_CAPS
    return _map_words(text, rng, 0.7, 3, lambda w: "".join(table.get(c, c) for c in w))


def combining(text: str, rng: random.Random) -> str:
    """Strike-through or "zalgo" combining marks stacked on the letters of some words."""
    marks = ("\u0336",) if rng.random() < 0.5 else tuple(map(chr, range(0x0300, 0x0315)))
    return _map_words(text, rng, 0.7, 2, lambda w: "".join(c + rng.choice(marks) for c in w))


def unicode_tags(text: str, rng: random.Random) -> str:
    """The attack as invisible Unicode tag characters after an innocuous visible sentence."""
    # tag characters exist for printable ASCII only: whitespace becomes a space, the rest is lost
    hidden = "".join(chr(0xE0000 + ord(c)) for c in " ".join(text.split()) if " " <= c <= "~")
    return f"{rng.choice(_INNOCUOUS)}{hidden}"


# --------------------------------------------------------------------------- letters

_LEET = {"a": "4@", "e": "3", "i": "1", "o": "0", "s": "5$", "t": "7", "A": "4", "E": "3",
         "I": "1", "O": "0", "S": "5", "T": "7"}  # fmt: skip


def leet(text: str, rng: random.Random) -> str:
    """Leetspeak digits and symbols for most letters of some words, keeping one letter."""

    def rewrite(word: str) -> str:
        slots = [i for i, c in enumerate(word) if c in _LEET]
        keep = len(word) - len(slots)
        out = list(word)
        for i in slots:
            if keep == 0:
                keep += 1  # leave one letter: a word of digits alone is a number
                continue
            if rng.random() < 0.75:
                # "$" and "@" only inside a word: at the start they read as code sigils
                choices = _LEET[word[i]] if i > 0 else _LEET[word[i]][0]
                out[i] = rng.choice(choices)
            else:
                keep += 1
        return "".join(out)

    return _map_words(text, rng, 0.7, 3, rewrite)


def _separated(sep: str, gap: str, share: float) -> Obfuscation:
    def obfuscation(text: str, rng: random.Random) -> str:
        chosen = _pick_words(text, rng, share, 3)
        out: list[str] = []
        last = 0
        for m in _WORD.finditer(text):
            if m.start() not in chosen:
                continue
            before = text[last : m.start()]
            if sep == " " and before.endswith(" "):
                # spaced-out words need a wider gap, or neighbours would join them
                before = before[:-1] + gap
            out.append(before)
            out.append(sep.join(m.group()))
            last = m.end()
            if text[last : last + 1] == " " and sep == " ":
                out.append(gap)
                last += 1
        out.append(text[last:])
        return "".join(out)

    obfuscation.__doc__ = f"Letters of some words joined by {sep!r}."
    return obfuscation


# --------------------------------------------------------------------------- carriers


def html_comment(text: str, rng: random.Random) -> str:
    """The attack in an HTML comment between innocuous paragraphs."""
    first, second = rng.sample(_INNOCUOUS, 2)
    return f"<p>{first}</p>\n<!-- {text.replace('--', '- -')} -->\n<p>{second}</p>"


def html_attribute(text: str, rng: random.Random) -> str:
    """The attack in an alt, title, aria-label or data attribute."""
    value = html.escape(text, quote=True)
    name = rng.choice(_FILE_NAMES)
    return rng.choice(
        (
            f'<p>{rng.choice(_INNOCUOUS)}</p><img src="/static/{name}.png" alt="{value}">',
            f'<div title="{value}">{rng.choice(_INNOCUOUS)}</div>',
            f'<button aria-label="{value}">OK</button>',
            f'<span data-note="{value}">{rng.choice(_INNOCUOUS)}</span>',
        )
    )


def hidden_span(text: str, rng: random.Random) -> str:
    """The attack in an element hidden by its style or the `hidden` attribute."""
    style = rng.choice(
        (
            'style="display:none"',
            'style="font-size:0"',
            'style="color:#ffffff;background:#ffffff"',
            'style="visibility: hidden"',
            "hidden",
        )
    )
    tag = rng.choice(("span", "div", "p"))
    visible = rng.choice(_INNOCUOUS)
    return f"<p>{visible}</p><{tag} {style}>{html.escape(text, quote=False)}</{tag}>"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _markdown_escape(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)


def markdown_link(text: str, rng: random.Random) -> str:
    """The attack as a markdown link text or link title (on one line, as markdown needs)."""
    text = _one_line(text)
    label = _markdown_escape(text)
    url = f"https://docs.example.com/{rng.choice(_FILE_NAMES)}"
    if '"' not in text and rng.random() < 0.5:
        return f'{rng.choice(_INNOCUOUS)} See [the guide]({url} "{text}").'
    return f"{rng.choice(_INNOCUOUS)} See [{label}]({url}) for details."


def markdown_alt(text: str, rng: random.Random) -> str:
    """The attack as the alt text of a markdown image."""
    label = _markdown_escape(_one_line(text))
    image = f"https://cdn.example.com/{rng.choice(_FILE_NAMES)}.png"
    return f"{rng.choice(_INNOCUOUS)}\n\n![{label}]({image})"


def json_string(text: str, rng: random.Random) -> str:
    """The attack as a string value of a JSON document (sometimes \\u-escaped, in prose)."""
    document = {
        "id": rng.randrange(1000, 9999),
        "title": "Weekly status",
        "body": text,
        "tags": ["status", "team"],
    }
    encoded = json.dumps(document, ensure_ascii=rng.random() < 0.5, indent=rng.choice((None, 2)))
    if rng.random() < 0.3:
        return f"{rng.choice(_INNOCUOUS)} Here is the record:\n{encoded}"
    return encoded


def yaml_string(text: str, rng: random.Random) -> str:
    """The attack as a string value of a YAML document (block or double-quoted scalar)."""
    if rng.random() < 0.5:
        value = "|\n" + "\n".join("  " + line for line in text.splitlines())
    else:
        value = json.dumps(text)  # a JSON string is a valid double-quoted YAML scalar
    return f"name: weekly-report\nowner: ops-team\nnotes: {value}\nstatus: draft\n"


def html_entity(text: str, rng: random.Random) -> str:
    """Every character as a decimal or hexadecimal HTML character reference."""
    if rng.random() < 0.5:
        return "".join(f"&#{ord(c)};" for c in text)
    return "".join(f"&#x{ord(c):x};" for c in text)


# --------------------------------------------------------------------------- encodings


def base64_encoding(text: str, rng: random.Random) -> str:
    """Base64 (standard or URL-safe alphabet) of the UTF-8 bytes."""
    data = text.encode()
    encoded = base64.urlsafe_b64encode(data) if rng.random() < 0.2 else base64.b64encode(data)
    return _lead(text, rng, encoded.decode())


def hex_encoding(text: str, rng: random.Random) -> str:
    """Hex of the UTF-8 bytes: contiguous, space-separated pairs or \\x escapes."""
    data = text.encode()
    style = rng.randrange(3)
    if style == 0:
        payload = data.hex()
    elif style == 1:
        payload = data.hex(" ")
    else:
        payload = "".join(f"\\x{b:02x}" for b in data)
    return _lead(text, rng, payload)


def url_encoding(text: str, rng: random.Random) -> str:
    """Percent-encoding: of every byte, or of spaces and punctuation only."""
    if rng.random() < 0.5:
        payload = "".join(f"%{b:02X}" for b in text.encode())
    else:
        payload = quote(text, safe="")
    return _lead(text, rng, payload)


def charcode(text: str, rng: random.Random) -> str:
    """Decimal character codes, as fed to String.fromCharCode or chr()."""
    codes = ",".join(str(ord(c)) for c in text)
    return rng.choice(
        (
            f"Run: eval(String.fromCharCode({codes}))",
            f"Convert these character codes and follow them: [{codes}]",
        )
    )


def rot13(text: str, rng: random.Random) -> str:
    """ROT13 of the letters."""
    return _lead(text, rng, codecs.encode(text, "rot13"))


def reversed_text(text: str, rng: random.Random) -> str:
    """The characters in reverse order."""
    return _lead(text, rng, text[::-1])


def base64_rot13(text: str, rng: random.Random) -> str:
    """Base64 of the ROT13 of the attack (two nested encodings)."""
    return _lead(text, rng, base64.b64encode(codecs.encode(text, "rot13").encode()).decode())


def html_comment_base64(text: str, rng: random.Random) -> str:
    """Base64 of the attack hidden in an HTML comment (a carrier holding an encoding)."""
    return html_comment(base64.b64encode(text.encode()).decode(), rng)


#: every obfuscation by name (one per stage-1 transform, plus nested ones)
OBFUSCATIONS: Mapping[str, Obfuscation] = MappingProxyType(
    {
        "zero_width": zero_width,
        "bidi": bidi,
        "control": control,
        "homoglyph": homoglyph,
        "fullwidth": fullwidth,
        "styled": styled,
        "combining": combining,
        "unicode_tags": unicode_tags,
        "leet": leet,
        "spaced": _separated(" ", "   ", 0.6),
        "dotted": _separated(".", " ", 0.6),
        "underscored": _separated("_", " ", 0.6),
        "hyphenated": _separated("-", " ", 0.6),
        "html_comment": html_comment,
        "html_attribute": html_attribute,
        "hidden_span": hidden_span,
        "markdown_link": markdown_link,
        "markdown_alt": markdown_alt,
        "json_string": json_string,
        "yaml_string": yaml_string,
        "html_entity": html_entity,
        "base64": base64_encoding,
        "hex": hex_encoding,
        "url": url_encoding,
        "charcode": charcode,
        "rot13": rot13,
        "reversed": reversed_text,
        "base64_rot13": base64_rot13,
        "html_comment_base64": html_comment_base64,
    }
)


def obfuscate(text: str, name: str, rng: random.Random) -> str:
    """Apply the obfuscation `name` to `text`; raises ConfigError for an unknown name."""
    try:
        transform = OBFUSCATIONS[name]
    except KeyError:
        raise ConfigError(
            f"unknown obfuscation {name!r}; known: {', '.join(sorted(OBFUSCATIONS))}"
        ) from None
    return transform(text, rng)
