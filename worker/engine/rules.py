"""Rules as data: conditions over signals and context, evaluated to findings, a score and an action.

A condition is a YAML mapping, read like a prose linter's rule:
    when: {apology: generic}                          # equals
    when: {incident: {in: [defect, delay]}}           # membership
    when: {frustration: {gte: 0.7}, empathy: false}   # several keys: all must hold
    when: {any: [{blame: true}, {apology_count: {gte: 3}}]}
    when: {not: {apology: none}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.models import ACTION_RANK, SEVERITY_RANK, Action

# The fields a condition can test, with the values each may take (None: any number, or bool).
ENUMS: dict[str, tuple[Any, ...]] = {
    "apology": ("none", "generic", "specific"),
    "apology_stance": (None, "empathy", "responsibility"),
    "incident": ("defect", "delay", "misinformation", "staff_conduct", "billing", "beyond_control",
                 "other", "none"),
}
BOOLS = frozenset({"liability_admission", "blame", "empathy", "solution", "prevention", "legal_risk",
                   "sla_breached", "first_reply"})
NUMBERS = frozenset({"apology_count", "frustration", "response_minutes", "reply_words"})
STRINGS = frozenset({"channel", "team", "tags", "language", "customer_language"})
FIELDS = frozenset(ENUMS) | BOOLS | NUMBERS | STRINGS

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: (bool(set(a) & set(b)) if isinstance(a, list) else a in b),
    "not_in": lambda a, b: (not set(a) & set(b) if isinstance(a, list) else a not in b),
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "contains": lambda a, b: isinstance(a, list) and b in a,
}

Facts = Mapping[str, Any]
Condition = Callable[[Facts], bool]


class ConditionError(ValueError):
    """A condition that cannot be evaluated; `path` locates the offending key inside `when`."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def compile_condition(spec: Any, path: tuple[str | int, ...] = ()) -> Condition:
    """Turn a `when:` mapping into a predicate over facts, checking every field and value."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(path, "a condition must be a non-empty mapping such as {apology: generic}")
    parts: list[Condition] = []
    for key, value in spec.items():
        here = (*path, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(here, f"`{key}` takes a non-empty list of conditions")
            subs = [compile_condition(v, (*here, i)) for i, v in enumerate(value)]
            parts.append(_all(subs) if key == "all" else _any(subs))
        elif key == "not":
            parts.append(_not(compile_condition(value, here)))
        elif key in FIELDS:
            parts.append(_compare(str(key), value, here))
        else:
            raise ConditionError(here, f"unknown field `{key}`; known: {', '.join(sorted(FIELDS))}, "
                                       "all, any, not")
    return parts[0] if len(parts) == 1 else _all(parts)


# Conditions run for every rule on every reply, so they are plain loops and direct comparisons rather
# than generators and operator lookups.


def _not(inner: Condition) -> Condition:
    return lambda facts: not inner(facts)


def _all(subs: list[Condition]) -> Condition:
    def all_hold(facts: Facts) -> bool:
        for sub in subs:  # noqa: SIM110 (a loop, not all() over a generator: see above)
            if not sub(facts):
                return False
        return True

    return all_hold


def _any(subs: list[Condition]) -> Condition:
    def any_holds(facts: Facts) -> bool:
        for sub in subs:  # noqa: SIM110
            if sub(facts):
                return True
        return False

    return any_holds


def _compare(field: str, value: Any, path: tuple[str | int, ...]) -> Condition:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ConditionError(path, "a comparison takes exactly one operator, e.g. {gte: 0.7}")
        op, operand = next(iter(value.items()))
        if op not in _OPS:
            raise ConditionError((*path, op), f"unknown operator `{op}`; known: {', '.join(_OPS)}")
    else:
        op, operand = "eq", value
    _check_operand(field, str(op), operand, (*path, op) if isinstance(value, Mapping) else path)
    fn = _OPS[str(op)]
    if field == "tags" and op == "eq":
        fn = _OPS["contains"]
    elif op == "eq":  # the common case; facts hold plain values, whose == gives a bool
        return lambda facts: bool(facts.get(field) == operand)
    return lambda facts: bool(fn(facts.get(field), operand))


def _check_operand(field: str, op: str, operand: Any, path: tuple[str | int, ...]) -> None:
    values = operand if op in ("in", "not_in") else [operand]
    if op in ("in", "not_in") and not isinstance(operand, list):
        raise ConditionError(path, f"`{op}` takes a list")
    for v in values:
        if field in ENUMS and v not in ENUMS[field]:
            allowed = ", ".join("null" if x is None else str(x) for x in ENUMS[field])
            raise ConditionError(path, f"`{field}` cannot be {v!r}; it is one of: {allowed}")
        if field in BOOLS and not isinstance(v, bool):
            raise ConditionError(path, f"`{field}` is true or false, not {v!r}")
        if field in NUMBERS and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ConditionError(path, f"`{field}` is a number, not {v!r}")
        if field in STRINGS and not isinstance(v, str):
            raise ConditionError(path, f"`{field}` is compared with text, not {v!r}")
    if op in ("gt", "gte", "lt", "lte") and field not in NUMBERS:
        raise ConditionError(path, f"`{op}` compares numbers; `{field}` is not a number")


@dataclass(frozen=True, slots=True)
class Outcome:
    score: int
    action: Action


def score_and_action(severities: list[str], weights: Mapping[str, int], escalate_at: str | None,
                     escalate_below: int | None, annotate_at: str | None,
                     annotate_below: int | None) -> Outcome:
    """Score = 100 minus each finding's weight; the action is the highest threshold crossed."""
    score = max(0, 100 - sum(weights.get(s, 0) for s in severities))
    worst = max((SEVERITY_RANK[s] for s in severities), default=0)

    def crossed(at: str | None, below: int | None) -> bool:
        return (at is not None and worst >= SEVERITY_RANK[at]) or (below is not None and score < below)

    action: Action = "none"
    if crossed(annotate_at, annotate_below):
        action = "annotate"
    if crossed(escalate_at, escalate_below):
        action = "escalate"
    assert action in ACTION_RANK
    return Outcome(score, action)
