"""The policy language: expression syntax tree, parser, type checker and YAML policy loader.

A policy file is YAML:

    version: 1
    thresholds: {similar: 0.85}
    policies:
      - id: exfil.system_prompt
        description: asks for the system prompt and looks like a known attack
        severity: high            # info | low | medium | high | critical
        action: block             # block | escalate: what happens when the policy fires
        when: facts.system_prompt_request and scores.pattern_similarity >= thresholds.similar

`when` is the *violation* condition: the policy holds when it is false. Expressions are parsed by
the small recursive-descent parser below (never `eval`) and type-checked against the fact
catalog; every error is a `PolicyError` carrying the file and the YAML line.

Grammar (precedence low to high, like Python):

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                       | ["not"] "in" "[" string ("," string)* [","] "]" ]
    operand := NAME | NUMBER | STRING | "true" | "false" | "(" expr ")"
    NAME    := facts.x | scores.x | session.x | categories.x | thresholds.x
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from app.errors import PolicyError
from app.records import Action
from app.verification.facts import CATALOG, FactSpec, FactType, Value

MAX_EXPR_CHARS = 4000
MAX_DEPTH = 48
_ID = re.compile(r"[a-z][a-z0-9_]*(?:[.-][a-z0-9_]+)*")


class Op(enum.StrEnum):
    """A comparison operator."""

    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Severity(enum.StrEnum):
    """How bad a policy violation is (for the audit trail and ordering of reasons)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to a catalog fact."""

    name: str
    spec: FactSpec


@dataclass(frozen=True, slots=True)
class Const:
    """A literal (or a resolved threshold): bool, int, real or an enum member string."""

    value: Value
    type: FactType
    label: str | None = None  # the threshold name it came from, for printing


@dataclass(frozen=True, slots=True)
class Cmp:
    """A comparison of two operands (at least one a fact)."""

    op: Op
    left: Ref | Const
    right: Ref | Const


@dataclass(frozen=True, slots=True)
class Not:
    """Negation."""

    arg: Expr


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more expressions."""

    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more expressions."""

    args: tuple[Expr, ...]


Expr = Ref | Const | Cmp | Not | And | Or
Operand = Ref | Const


def type_of(node: Expr) -> FactType:
    """The type of an expression node."""
    if isinstance(node, Ref):
        return node.spec.type
    if isinstance(node, Const):
        return node.type
    return FactType.BOOL


def refs(node: Expr) -> Iterator[Ref]:
    """Every fact reference in an expression, in order (with repeats)."""
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Cmp):
        for side in (node.left, node.right):
            if isinstance(side, Ref):
                yield side
    elif isinstance(node, Not):
        yield from refs(node.arg)
    elif isinstance(node, And | Or):
        for arg in node.args:
            yield from refs(arg)


def _const_text(const: Const) -> str:
    if const.type is FactType.BOOL:
        return "true" if const.value else "false"
    if const.type is FactType.ENUM:
        return '"' + str(const.value) + '"'
    return repr(const.value)


def render(node: Expr) -> str:
    """Canonical, fully parenthesized text of an expression (thresholds resolved)."""
    if isinstance(node, Ref):
        return node.name
    if isinstance(node, Const):
        return _const_text(node)
    if isinstance(node, Cmp):
        return f"{render(node.left)} {node.op.value} {render(node.right)}"
    if isinstance(node, Not):
        return f"not ({render(node.arg)})"
    joiner = " and " if isinstance(node, And) else " or "
    return "(" + joiner.join(render(arg) for arg in node.args) + ")"


# ---------------------------------------------------------------------------------------------
# expression parser and type checker
# ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<num>\d{1,18}(?:\.\d{1,18})?(?:[eE][+-]?\d{1,3})?)|"
    r"(?P<str>\"[^\"\\\n]{0,200}\"|'[^'\\\n]{0,200}')|"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,3})|"
    r"(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)"
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | str | name | op | kw | end
    text: str
    pos: int


class ExprError(ValueError):
    """A syntax or type error at a character position of an expression."""

    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.pos = pos


def _tokenize(source: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExprError(f"unexpected character {source[pos]!r}", pos)
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind != "ws":
            if kind == "name" and text in _KEYWORDS:
                kind = "kw"
            toks.append(_Tok(kind, text, pos))
        pos = match.end()
    toks.append(_Tok("end", "", len(source)))
    return toks


class _Parser:
    def __init__(self, source: str, thresholds: Mapping[str, int | float]):
        self.source = source
        self.toks = _tokenize(source)
        self.i = 0
        self.depth = 0
        self.thresholds = thresholds

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (text is None or tok.text == text)

    def _expect(self, kind: str, text: str) -> _Tok:
        if not self._is(kind, text):
            raise ExprError(f"expected {text!r}, found {self._describe(self.tok)}", self.tok.pos)
        return self._take()

    @staticmethod
    def _describe(tok: _Tok) -> str:
        return "end of expression" if tok.kind == "end" else repr(tok.text)

    def parse(self) -> Expr:
        node = self._or()
        if self.tok.kind != "end":
            raise ExprError(f"unexpected {self._describe(self.tok)}", self.tok.pos)
        if type_of(node) is not FactType.BOOL:
            raise ExprError(f"a policy condition must be bool, not {type_of(node).value}", 0)
        if isinstance(node, Const):
            raise ExprError("a policy condition must reference at least one fact", 0)
        return node

    def _nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH}", self.tok.pos)

    def _bool_operand(self, node: Expr, pos: int, what: str) -> Expr:
        if type_of(node) is not FactType.BOOL:
            raise ExprError(f"operand of '{what}' must be bool, not {type_of(node).value}", pos)
        return node

    def _or(self) -> Expr:
        self._nested()
        pos = self.tok.pos
        args = [self._and()]
        while self._is("kw", "or"):
            self._take()
            args.append(self._bool_operand(self._and(), self.tok.pos, "or"))
        self.depth -= 1
        if len(args) == 1:
            return args[0]
        self._bool_operand(args[0], pos, "or")
        flat: list[Expr] = []
        for arg in args:
            flat.extend(arg.args if isinstance(arg, Or) else (arg,))
        return Or(tuple(flat))

    def _and(self) -> Expr:
        pos = self.tok.pos
        args = [self._not()]
        while self._is("kw", "and"):
            self._take()
            args.append(self._bool_operand(self._not(), self.tok.pos, "and"))
        if len(args) == 1:
            return args[0]
        self._bool_operand(args[0], pos, "and")
        flat: list[Expr] = []
        for arg in args:
            flat.extend(arg.args if isinstance(arg, And) else (arg,))
        return And(tuple(flat))

    def _not(self) -> Expr:
        if self._is("kw", "not"):
            pos = self._take().pos
            self._nested()
            arg = self._bool_operand(self._not(), pos, "not")
            self.depth -= 1
            return Not(arg)
        return self._cmp()

    def _cmp(self) -> Expr:
        left_pos = self.tok.pos
        left = self._operand()
        if self._is("op") and self.tok.text in {op.value for op in Op}:
            op_tok = self._take()
            right = self._operand()
            if self._is("op") and self.tok.text in {op.value for op in Op}:
                raise ExprError("chained comparisons are not supported", self.tok.pos)
            return self._check_cmp(Op(op_tok.text), left, right, op_tok.pos)
        negate = self._is("kw", "not") and self.toks[self.i + 1].text == "in"
        if negate:
            self._take()
        if self._is("kw", "in"):
            in_pos = self._take().pos
            members = self._string_list()
            node = self._check_in(left, members, in_pos)
            return Not(node) if negate else node
        if isinstance(left, Ref | Const) and type_of(left) is not FactType.BOOL:
            raise ExprError(
                f"{self._label(left)} is {type_of(left).value}: compare it to get a bool", left_pos
            )
        return left

    @staticmethod
    def _label(node: Operand) -> str:
        if isinstance(node, Ref):
            return node.name
        return node.label or _const_text(node)

    def _string_list(self) -> list[tuple[str, int]]:
        self._expect("op", "[")
        items: list[tuple[str, int]] = []
        while True:
            tok = self.tok
            if tok.kind != "str":
                raise ExprError(f"expected a string, found {self._describe(tok)}", tok.pos)
            self._take()
            items.append((tok.text[1:-1], tok.pos))
            if self._is("op", ","):
                self._take()
                if self._is("op", "]"):
                    break
                continue
            break
        self._expect("op", "]")
        return items

    def _operand(self) -> Expr:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self._take()
            node = self._or()
            self._expect("op", ")")
            return node
        self._take()
        if tok.kind == "num":
            if re.fullmatch(r"\d+", tok.text):
                return Const(int(tok.text), FactType.INT)
            return Const(float(tok.text), FactType.REAL)
        if tok.kind == "str":
            return Const(tok.text[1:-1], FactType.ENUM)
        if tok.kind == "kw" and tok.text in ("true", "false"):
            return Const(tok.text == "true", FactType.BOOL)
        if tok.kind == "name":
            return self._name(tok)
        raise ExprError(f"expected a fact, a number or '(', found {self._describe(tok)}", tok.pos)

    def _name(self, tok: _Tok) -> Operand:
        name = tok.text
        if name.startswith("thresholds."):
            key = name.removeprefix("thresholds.")
            if key not in self.thresholds:
                known = ", ".join(sorted(self.thresholds)) or "none defined"
                raise ExprError(f"unknown threshold {name!r} (known: {known})", tok.pos)
            value = self.thresholds[key]
            kind = FactType.INT if isinstance(value, int) else FactType.REAL
            return Const(value, kind, label=name)
        spec = CATALOG.get(name)
        if spec is None:
            raise ExprError(f"unknown fact {name!r}{_suggest(name)}", tok.pos)
        return Ref(name, spec)

    def _check_cmp(self, op: Op, left: Expr, right: Expr, pos: int) -> Cmp:
        if not isinstance(left, Ref | Const) or not isinstance(right, Ref | Const):
            raise ExprError("comparison operands must be facts or literals", pos)
        if isinstance(left, Const) and isinstance(right, Const):
            raise ExprError("comparison of two constants", pos)
        lt, rt = type_of(left), type_of(right)
        numeric = (FactType.INT, FactType.REAL)
        if lt in numeric and rt in numeric:
            return Cmp(op, left, right)
        if op not in (Op.EQ, Op.NE):
            raise ExprError(
                f"'{op.value}' needs numbers, got {lt.value} and {rt.value} "
                f"({self._label(left)} {op.value} {self._label(right)})",
                pos,
            )
        if lt is FactType.BOOL and rt is FactType.BOOL:
            return Cmp(op, left, right)
        if lt is FactType.ENUM and rt is FactType.ENUM:
            self._check_members(left, right, pos)
            return Cmp(op, left, right)
        raise ExprError(
            f"type mismatch: {self._label(left)} is {lt.value}, {self._label(right)} is {rt.value}",
            pos,
        )

    def _check_members(self, left: Operand, right: Operand, pos: int) -> None:
        if isinstance(left, Ref) and isinstance(right, Ref):
            if left.spec.values != right.spec.values:
                raise ExprError(f"{left.name} and {right.name} are different enums", pos)
            return
        ref, const = (left, right) if isinstance(left, Ref) else (right, left)
        assert isinstance(ref, Ref) and isinstance(const, Const)
        if const.value not in ref.spec.values:
            raise ExprError(
                f"{const.value!r} is not a value of {ref.name} ({', '.join(ref.spec.values)})", pos
            )

    def _check_in(self, left: Expr, members: list[tuple[str, int]], pos: int) -> Expr:
        if not isinstance(left, Ref) or left.spec.type is not FactType.ENUM:
            raise ExprError("'in' needs an enum fact on its left", pos)
        cmps: list[Expr] = []
        seen: set[str] = set()
        for value, vpos in members:
            if value not in left.spec.values:
                raise ExprError(
                    f"{value!r} is not a value of {left.name} ({', '.join(left.spec.values)})",
                    vpos,
                )
            if value not in seen:
                seen.add(value)
                cmps.append(Cmp(Op.EQ, left, Const(value, FactType.ENUM)))
        return cmps[0] if len(cmps) == 1 else Or(tuple(cmps))


def _suggest(name: str) -> str:
    tail = name.rsplit(".", 1)[-1]
    close = [n for n in CATALOG if n.rsplit(".", 1)[-1] == tail]
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_expr(source: str, thresholds: Mapping[str, int | float] | None = None) -> Expr:
    """Parse and type-check one policy condition; raises `ExprError` with a position."""
    if len(source) > MAX_EXPR_CHARS:
        raise ExprError(f"expression longer than {MAX_EXPR_CHARS} characters", 0)
    return _Parser(source, thresholds or {}).parse()


# ---------------------------------------------------------------------------------------------
# policies and the YAML loader
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy: when `when` is true for the facts, the policy is violated."""

    id: str
    description: str
    severity: Severity
    action: Action  # BLOCK or ESCALATE: the decision when the policy fires
    when: Expr
    source: str  # the condition as written
    line: int  # YAML line of the policy entry (1-based)
    family: str | None = None


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A loaded, type-checked set of policies with its thresholds and content digest."""

    policies: tuple[Policy, ...]
    thresholds: Mapping[str, int | float]
    file: str
    digest: str

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def get(self, policy_id: str) -> Policy | None:
        """The policy with this id, or None."""
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        return None

    def facts(self) -> tuple[str, ...]:
        """Sorted names of every fact some policy references."""
        return tuple(sorted({ref.name for p in self.policies for ref in refs(p.when)}))


def policy_digest(policies: tuple[Policy, ...], thresholds: Mapping[str, int | float]) -> str:
    """Content hash of a policy set: ids, actions, severities and canonical conditions."""
    body = {
        "policies": [[p.id, p.action.value, p.severity.value, render(p.when)] for p in policies],
        "thresholds": dict(sorted(thresholds.items())),
    }
    return hashlib.sha256(orjson.dumps(body)).hexdigest()


def make_policy_set(
    policies: tuple[Policy, ...],
    thresholds: Mapping[str, int | float] | None = None,
    file: str = "<memory>",
) -> PolicySet:
    """Build a `PolicySet` from already-built policies (tests, generated sets)."""
    thresholds = dict(thresholds or {})
    return PolicySet(policies, thresholds, file, policy_digest(policies, thresholds))


_POLICY_KEYS = {"id", "description", "severity", "action", "when", "family"}
_TOP_KEYS = {"version", "thresholds", "policies"}


class _Doc:
    """Walks a composed YAML node tree, constructing scalars and keeping line numbers."""

    def __init__(self, loader: yaml.SafeLoader, file: str, text: str):
        self.loader = loader
        self.file = file
        self.text = text

    def error(self, message: str, node: yaml.Node | None) -> PolicyError:
        line = node.start_mark.line + 1 if node is not None else None
        return PolicyError(message, file=self.file, line=line)

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping", node)
        out: list[tuple[str, yaml.Node, yaml.Node]] = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise self.error(f"{what}: keys must be strings, got {key!r}", key_node)
            if key in seen:
                raise self.error(f"{what}: duplicate key {key!r}", key_node)
            seen.add(key)
            out.append((key, key_node, value_node))
        return out

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error("expected a single value, not a list or mapping", node)
        return self.loader.construct_object(node, deep=True)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{what} must be a non-empty string", node)
        return value.strip()


def _expr_line(doc_text: str, node: yaml.Node, pos: int) -> int:
    """The file line of character `pos` of a (possibly multi-line, folded) scalar's value."""
    first: int = node.start_mark.line + 1
    raw_lines = doc_text[node.start_mark.index : node.end_mark.index].split("\n")
    offset = 0
    if getattr(node, "style", None) in ("|", ">"):
        raw_lines, offset = raw_lines[1:], 1  # the indicator line holds no content
    consumed = 0
    for i, raw in enumerate(raw_lines):
        content = raw.strip().strip("\"'")
        if not content:
            continue
        consumed += len(content) + 1  # folded or literal: one separator per line
        if pos < consumed:
            return first + offset + i
    return first + offset + max(len(raw_lines) - 1, 0)


def parse_policy_text(text: str, *, file: str = "<string>") -> PolicySet:
    """Parse and type-check a policy YAML document; raises `PolicyError(file, line)`."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            message = f"invalid YAML: {exc.problem or exc}"
            if exc.context_mark is not None and exc.context:
                message += f" ({exc.context} at line {exc.context_mark.line + 1})"
            raise PolicyError(message, file=file, line=line) from exc
        except yaml.YAMLError as exc:
            raise PolicyError(f"invalid YAML: {exc}", file=file) from exc
        if root is None:
            raise PolicyError("empty policy file", file=file)
        return _build(_Doc(loader, file, text), root)
    finally:
        loader.dispose()


def _build(doc: _Doc, root: yaml.Node) -> PolicySet:
    top = doc.mapping(root, "policy file")
    sections = {key: (key_node, value) for key, key_node, value in top}
    for key, key_node, _ in top:
        if key not in _TOP_KEYS:
            raise doc.error(
                f"unknown top-level key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})", key_node
            )
    if "version" in sections:
        version = doc.scalar(sections["version"][1])
        if version != 1:
            raise doc.error(
                f"unsupported policy file version {version!r} (expected 1)", sections["version"][1]
            )
    thresholds: dict[str, int | float] = {}
    if "thresholds" in sections:
        for key, key_node, value_node in doc.mapping(sections["thresholds"][1], "thresholds"):
            value = doc.scalar(value_node)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise doc.error(f"threshold {key!r} must be a non-negative number", value_node)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
                raise doc.error(f"threshold name {key!r} is not an identifier", key_node)
            thresholds[key] = value
    if "policies" not in sections:
        raise doc.error("no 'policies' list", root)
    seq = sections["policies"][1]
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise doc.error("'policies' must be a non-empty list", seq)
    policies: list[Policy] = []
    ids: dict[str, int] = {}
    for item in seq.value:
        policy = _build_policy(doc, item, thresholds)
        if policy.id in ids:
            raise doc.error(
                f"duplicate policy id {policy.id!r} (first at line {ids[policy.id]})", item
            )
        ids[policy.id] = policy.line
        policies.append(policy)
    frozen = tuple(policies)
    return PolicySet(frozen, thresholds, doc.file, policy_digest(frozen, thresholds))


def _build_policy(doc: _Doc, node: yaml.Node, thresholds: Mapping[str, int | float]) -> Policy:
    entries = doc.mapping(node, "policy")
    fields = {key: value for key, _, value in entries}
    for key, key_node, _ in entries:
        if key not in _POLICY_KEYS:
            raise doc.error(
                f"unknown policy key {key!r} (known: {', '.join(sorted(_POLICY_KEYS))})", key_node
            )
    for required in ("id", "description", "severity", "action", "when"):
        if required not in fields:
            raise doc.error(f"policy misses {required!r}", node)
    policy_id = doc.string(fields["id"], "id")
    if not _ID.fullmatch(policy_id):
        raise doc.error(
            f"policy id {policy_id!r}: use lower-case words joined by '.', '_' or '-'", fields["id"]
        )
    severity_text = doc.string(fields["severity"], "severity").lower()
    try:
        severity = Severity(severity_text)
    except ValueError:
        raise doc.error(
            f"severity {severity_text!r} is not one of {', '.join(s.value for s in Severity)}",
            fields["severity"],
        ) from None
    action_text = doc.string(fields["action"], "action").lower()
    if action_text not in ("block", "escalate"):
        raise doc.error(f"action {action_text!r} must be 'block' or 'escalate'", fields["action"])
    source = doc.string(fields["when"], "when")
    try:
        expr = parse_expr(source, thresholds)
    except ExprError as exc:
        line = _expr_line(doc.text, fields["when"], exc.pos)
        raise PolicyError(
            f"policy {policy_id!r}: when: {exc} (column {exc.pos + 1})", file=doc.file, line=line
        ) from None
    family = doc.string(fields["family"], "family") if "family" in fields else None
    return Policy(
        id=policy_id,
        description=doc.string(fields["description"], "description"),
        severity=severity,
        action=Action.BLOCK if action_text == "block" else Action.ESCALATE,
        when=expr,
        source=" ".join(source.split()),
        line=node.start_mark.line + 1,
        family=family,
    )


DEFAULT_POLICY_FILE = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"


def read_policy_file(path: str | Path | None = None) -> PolicySet:
    """Read and type-check a policy file (None = the packaged default set), no static analysis."""
    target = Path(path) if path is not None else DEFAULT_POLICY_FILE
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read policy file: {exc}", file=str(target)) from exc
    return parse_policy_text(text, file=str(target))
