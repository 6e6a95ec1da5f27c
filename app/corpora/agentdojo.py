"""The `agentdojo_injections` and `agentdojo_benign` sources: AgentDojo's attack templates
filled with its injection goals and placed in its suites' carrier documents, and the
user tasks and documents with benign content."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.corpora._rows import (
    AGENTDOJO_BENIGN_SOURCE,
    AGENTDOJO_INJECTIONS_SOURCE,
    CorpusRow,
    _rng,
    normalized_text,
)
from app.corpora._wheels import _Module, _NotLiteral, _Wheel

AGENTDOJO_INJECTION_LIMIT = 600
AGENTDOJO_BARE_LIMIT = 180
AGENTDOJO_BENIGN_LIMIT = 800


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
