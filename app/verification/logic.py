"""Three-valued (strong Kleene) and two-valued evaluation of policy conditions.

`eval3` decides a condition over *partial* facts: `True`/`False` when the known facts settle it
for every value of the unknown ones, `None` (unknown) otherwise. It is the Python twin of
`Expr.eval3` in the Lean model (`lean/AimdsPolicy/Model.lean`): same connectives, same rule that
a comparison with an unknown operand is unknown, and no use of fact domains, so both always
agree. It is *sound* (a definite answer holds in every completion) but not complete: it answers
unknown for `x and not x` or for `scores.s <= 1` although both are settled; the Z3 prover
settles those cases. It is exact (unknown only when both outcomes are reachable) when every
unknown fact occurs at most once and each comparison with an unknown fact can go both ways
within that fact's domain (see docs/verification.md).

`three_valued_decision` is the decision rule of the Lean model: BLOCK when a block policy
definitely fires, else ESCALATE when any policy fires or may fire, else ALLOW.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.records import Action
from app.verification.facts import Value
from app.verification.policy import And, Cmp, Const, Expr, Not, Op, Or, Policy, Ref

Facts = Mapping[str, Value | None]


def _operand(node: Ref | Const, facts: Facts) -> Value | None:
    if isinstance(node, Const):
        return node.value
    return facts.get(node.name)


def compare(op: Op, left: Value, right: Value) -> bool:
    """Apply a comparison to two definite values of compatible types."""
    if op is Op.EQ:
        return left == right
    if op is Op.NE:
        return left != right
    # the type checker admits ordering only between numbers; int/float compare exactly
    if not isinstance(left, int | float) or not isinstance(right, int | float):
        raise TypeError(f"cannot order {left!r} and {right!r}")
    if op is Op.LT:
        return left < right
    if op is Op.LE:
        return left <= right
    if op is Op.GT:
        return left > right
    return left >= right


def eval3(node: Expr, facts: Facts) -> bool | None:
    """Strong Kleene evaluation over partial facts: True, False or None (unknown)."""
    if isinstance(node, Cmp):
        left = _operand(node.left, facts)
        right = _operand(node.right, facts)
        if left is None or right is None:
            return None
        return compare(node.op, left, right)
    if isinstance(node, And):
        result: bool | None = True
        for arg in node.args:
            value = eval3(arg, facts)
            if value is False:
                return False
            if value is None:
                result = None
        return result
    if isinstance(node, Or):
        result = False
        for arg in node.args:
            value = eval3(arg, facts)
            if value is True:
                return True
            if value is None:
                result = None
        return result
    if isinstance(node, Not):
        value = eval3(node.arg, facts)
        return None if value is None else not value
    if isinstance(node, Ref):
        fact = facts.get(node.name)
        return None if fact is None else bool(fact)
    return bool(node.value)


def eval2(node: Expr, env: Mapping[str, Value]) -> bool:
    """Two-valued evaluation over total facts (every referenced fact has a value)."""
    result = eval3(node, env)
    if result is None:
        missing = sorted({n for n, v in env.items() if v is None})
        raise KeyError(
            f"eval2 needs total facts; unknown: {', '.join(missing) or 'a referenced fact'}"
        )
    return result


def three_valued_decision(policies: Iterable[Policy], facts: Facts) -> Action:
    """The Lean model's decision rule over partial facts (BLOCK > ESCALATE > ALLOW)."""
    maybe = False
    for policy in policies:
        status = eval3(policy.when, facts)
        if status is True and policy.action is Action.BLOCK:
            return Action.BLOCK
        if status is not False:
            maybe = True
    return Action.ESCALATE if maybe else Action.ALLOW
