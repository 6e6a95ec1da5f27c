"""Differential tests: the three-valued evaluator and the decision rules against Z3 (hypothesis).

Semantics checked (strong Kleene, see docs/verification.md):
- soundness, always: a definite answer of `eval3` holds in every completion of the unknown facts
  within their domains (Z3 finds no completion with the other value);
- exactness, on the fragment where every unknown fact occurs at most once and every comparison
  that involves an unknown fact can go both ways within the domains: when `eval3` says unknown,
  Z3 finds both a completion that makes the condition true and one that makes it false;
- the three-valued decision rule is sound (BLOCK/ALLOW hold in every completion), and the Z3
  prover's decisions and counterexamples mean what they say.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import z3
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.records import Action
from app.verification.facts import CATALOG, FactType
from app.verification.logic import eval3, three_valued_decision
from app.verification.policy import (
    Cmp,
    Expr,
    Policy,
    Ref,
    Severity,
    make_policy_set,
    parse_expr,
    refs,
)
from app.verification.z3prover import Z3Encoder, Z3Prover

BOOLS = ["facts.private_key", "facts.url_payload", "facts.tool_directive", "facts.obfuscated"]
INTS = ["facts.email_count", "session.probing", "facts.url_count"]
REALS = ["scores.screen_score", "scores.pattern_similarity", "session.prompts_1m"]
ENUMS = ["facts.role"]
GRID = [0.0, 0.25, 0.5, 0.75, 1.0]
OPS = ["==", "!=", "<", "<=", ">", ">="]


def _atom() -> st.SearchStrategy[str]:
    bool_ref = st.sampled_from(BOOLS)
    bool_cmp = st.builds(
        lambda f, op, v: f"{f} {op} {v}",
        st.sampled_from(BOOLS),
        st.sampled_from(["==", "!="]),
        st.sampled_from(["true", "false"]),
    )
    int_cmp = st.builds(
        lambda f, op, v: f"{f} {op} {v}",
        st.sampled_from(INTS),
        st.sampled_from(OPS),
        st.one_of(st.integers(0, 6).map(str), st.sampled_from(["0.5", "2.5"])),
    )
    real_cmp = st.builds(
        lambda f, op, v: f"{f} {op} {v}",
        st.sampled_from(REALS),
        st.sampled_from(OPS),
        st.sampled_from(["0", "0.25", "0.5", "0.8", "1"]),
    )
    ref_cmp = st.builds(
        lambda a, op, b: f"{a} {op} {b}",
        st.sampled_from(REALS + INTS),
        st.sampled_from(OPS),
        st.sampled_from(REALS + INTS),
    )
    enum_cmp = st.builds(
        lambda op, v: f'facts.role {op} "{v}"',
        st.sampled_from(["==", "!="]),
        st.sampled_from(CATALOG["facts.role"].values),
    )

    def in_list(negate: bool, members: list[str]) -> str:
        quoted = ", ".join(f'"{m}"' for m in members)
        return f"facts.role {'not in' if negate else 'in'} [{quoted}]"

    enum_in = st.builds(
        in_list,
        st.booleans(),
        st.lists(
            st.sampled_from(CATALOG["facts.role"].values), min_size=1, max_size=3, unique=True
        ),
    )
    return st.one_of(bool_ref, bool_cmp, int_cmp, real_cmp, ref_cmp, enum_cmp, enum_in)


def _expr_source() -> st.SearchStrategy[str]:
    return st.recursive(
        _atom(),
        lambda inner: st.one_of(
            inner.map(lambda e: f"not ({e})"),
            st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) and ({ab[1]})"),
            st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) or ({ab[1]})"),
        ),
        max_leaves=6,
    )


def _value(name: str) -> st.SearchStrategy[Any]:
    spec = CATALOG[name]
    if spec.type is FactType.BOOL:
        return st.booleans()
    if spec.type is FactType.INT:
        return st.integers(0, 7)
    if spec.type is FactType.REAL:
        return st.one_of(st.sampled_from(GRID + [0.8, 0.3]), st.floats(0.0, 1.0, allow_nan=False))
    return st.sampled_from(spec.values)


UNIVERSE = BOOLS + INTS + REALS + ENUMS


@st.composite
def _partial_facts(draw: st.DrawFn) -> dict[str, Any]:
    return {name: draw(st.one_of(st.none(), _value(name))) for name in UNIVERSE}


def _solver(enc: Z3Encoder, facts: dict[str, Any], names: set[str]) -> Any:
    solver = z3.Solver(ctx=enc.ctx)
    for name in names:
        spec = CATALOG[name]
        if facts.get(name) is None:
            domain = enc.domain(spec)
            if domain is not None:
                solver.add(domain)
        else:
            solver.add(enc.equals(spec, facts[name]))
    return solver


def _sat(solver: Any, formula: Any) -> bool:
    solver.push()
    solver.add(formula)
    result = solver.check()
    solver.pop()
    assert result != z3.unknown
    return bool(result == z3.sat)


def _two_sided(enc: Z3Encoder, facts: dict[str, Any], atom: Expr) -> bool:
    names = {r.name for r in refs(atom)}
    solver = _solver(enc, facts, names)
    formula = enc.encode(atom)
    return _sat(solver, formula) and _sat(solver, z3.Not(formula))


def _atoms(node: Expr) -> list[Expr]:
    if isinstance(node, Cmp | Ref):
        return [node]
    if hasattr(node, "args"):
        return [a for arg in node.args for a in _atoms(arg)]
    if hasattr(node, "arg"):
        return _atoms(node.arg)
    return []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=_expr_source(), facts=_partial_facts())
def test_eval3_agrees_with_z3(source: str, facts: dict[str, Any]) -> None:
    expr = parse_expr(source)
    enc = Z3Encoder(z3.Context())
    names = {r.name for r in refs(expr)}
    solver = _solver(enc, facts, names)
    formula = enc.encode(expr)
    can_be_true = _sat(solver, formula)
    can_be_false = _sat(solver, z3.Not(formula))
    assert can_be_true or can_be_false
    verdict = eval3(expr, facts)
    event(f"eval3={verdict}")
    if verdict is True:
        assert not can_be_false, source
    elif verdict is False:
        assert not can_be_true, source
    else:
        unknown_uses = Counter(r.name for r in refs(expr) if facts.get(r.name) is None)
        assert unknown_uses, "unknown verdict needs an unknown fact"
        single = all(n == 1 for n in unknown_uses.values())
        # `x in [a, b]` repeats x: exact as long as the list is a proper subset of the enum
        atoms_ok = all(
            _two_sided(enc, facts, atom)
            for atom in _atoms(expr)
            if any(facts.get(r.name) is None for r in refs(atom))
        )
        if single and atoms_ok:
            event("unknown: exact fragment checked")
            assert can_be_true and can_be_false, source


def _policy(i: int, source: str, block: bool) -> Policy:
    return Policy(
        id=f"p{i}",
        description="random",
        severity=Severity.MEDIUM,
        action=Action.BLOCK if block else Action.ESCALATE,
        when=parse_expr(source),
        source=source,
        line=i + 1,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(st.tuples(_expr_source(), st.booleans()), min_size=1, max_size=4),
    facts=_partial_facts(),
)
def test_decisions_mean_what_they_say(
    sources: list[tuple[str, bool]], facts: dict[str, Any]
) -> None:
    policy_set = make_policy_set(tuple(_policy(i, s, b) for i, (s, b) in enumerate(sources)))
    enc = Z3Encoder(z3.Context())
    names = {r.name for p in policy_set for r in refs(p.when)}
    solver = _solver(enc, facts, names)
    block_any = z3.Or(
        *[enc.encode(p.when) for p in policy_set if p.action is Action.BLOCK]
        or [z3.BoolVal(False, enc.ctx)]
    )
    fire_any = z3.Or(*[enc.encode(p.when) for p in policy_set])

    # the three-valued rule (the Lean model's decideObligation) is sound
    rule = three_valued_decision(policy_set, facts)
    event(f"rule={rule.value}")
    if rule is Action.BLOCK:
        assert not _sat(solver, z3.Not(block_any))
    if rule is Action.ALLOW:
        assert not _sat(solver, fire_any)

    # the Z3 prover decides what the three-valued rule leaves open, with witnesses
    statuses = [(p, eval3(p.when, facts)) for p in policy_set]
    undecided = [p for p, s in statuses if s is None]
    fired = [p for p, s in statuses if s is True]
    if not undecided or any(p.action is Action.BLOCK for p in fired):
        return
    result = Z3Prover(policy_set).decide(facts, undecided, fired, timeout_ms=5000)
    event(f"z3={result.action.value}{'+witness' if result.counterexample else ''}")
    if result.action is Action.ALLOW:
        assert not fired and not _sat(solver, fire_any)
    elif result.action is Action.BLOCK:
        assert not _sat(solver, z3.Not(block_any))
    elif result.counterexample is not None:
        completed = {**facts, **result.counterexample["assignment"]}
        fired_there = [p.id for p in policy_set if eval3(p.when, completed) is True]
        assert fired_there == result.counterexample["violated"]
        assert fired_there, "a counterexample violates at least one policy"
        # and ESCALATE (not BLOCK) means some completion escapes every block policy
        assert _sat(solver, z3.Not(block_any))
    else:
        assert fired and not _sat(solver, z3.Or(*[enc.encode(p.when) for p in undecided]))
