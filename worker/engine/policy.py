"""The apology policy: a YAML file people edit, validated so every mistake names file, line and key.

A policy holds rules (conditions over signals, with severity, message, suggestion and examples), action
thresholds, score weights, a response-time SLA, exemption markers for approved macros, per-team /
channel / tag overrides, and additions to the shipped detection lexicon. Presets live in
`config/presets/`; a policy can `extends:` one and change only what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from worker.engine.lexicon import Lexicon, LexiconError, compile_lexicon, merge
from worker.engine.rules import Condition, ConditionError, compile_condition
from worker.errors import PolicyError
from worker.models import Severity

CONFIG_DIR = Path(os.environ.get("APOLOGY_CONFIG_DIR", Path(__file__).resolve().parents[2] / "config"))
PRESETS_DIR = CONFIG_DIR / "presets"
LEXICON_FILE = CONFIG_DIR / "lexicon.yaml"
DEFAULT_PRESET = "liability-aware"

PLACEHOLDERS = frozenset({"excerpt", "incident", "problem", "frustration", "apology_count",
                          "response_minutes", "sla_minutes", "subject", "customer_name"})
HIGHLIGHTS = frozenset({"apology", "generic_apology", "liability_admission", "blame", "empathy",
                        "solution", "prevention", "reply"})

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Example(_Strict):
    """A reply the rule must flag (or pass), with the customer message it answers."""

    reply: str
    customer: str | None = None
    format: Literal["text", "html"] = "text"
    response_minutes: float | None = None
    team: str | None = None
    channel: str | None = None
    tags: list[str] = Field(default_factory=list)


ExampleItem = Example | str


class Examples(_Strict):
    flag: list[ExampleItem] = Field(default_factory=list)
    pass_: list[ExampleItem] = Field(default_factory=list, alias="pass")


class RuleSpec(_Strict):
    id: RuleId
    description: str | None = None
    severity: Severity
    when: dict[str, Any]
    highlight: str = "reply"
    message: str = Field(min_length=1)
    suggestion: str | None = None
    enabled: bool = True
    examples: Examples | None = None

    @field_validator("highlight")
    @classmethod
    def _known_highlight(cls, value: str) -> str:
        if value not in HIGHLIGHTS:
            raise ValueError(f"highlight must be one of {', '.join(sorted(HIGHLIGHTS))}")
        return value

    @field_validator("message", "suggestion")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        _check_placeholders(value or "")
        return value


class RulePatch(_Strict):
    severity: Severity | None = None
    enabled: bool | None = None
    message: str | None = None
    suggestion: str | None = None


class Threshold(_Strict):
    min_severity: Severity | None = None
    score_below: int | None = Field(default=None, ge=0, le=101)


class Actions(_Strict):
    annotate: Threshold = Threshold(min_severity="warning")
    escalate: Threshold = Threshold(min_severity="critical")


def _default_weights() -> dict[Severity, int]:
    return {"info": 3, "warning": 12, "critical": 35}


class Scoring(_Strict):
    weights: dict[Severity, int] = Field(default_factory=_default_weights)


class Sla(_Strict):
    response_minutes: float | None = Field(default=None, gt=0)


class Exemption(_Strict):
    marker: str = Field(min_length=3)
    rules: list[str] | Literal["all"] = "all"


class OverrideMatch(_Strict):
    teams: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> OverrideMatch:
        if not (self.teams or self.channels or self.tags):
            raise ValueError("an override must match at least one of teams, channels, tags")
        return self


class Override(_Strict):
    name: str
    match: OverrideMatch
    rules: dict[str, RulePatch] = Field(default_factory=dict)
    add_rules: list[RuleSpec] = Field(default_factory=list)
    actions: Actions | None = None
    sla: Sla | None = None


class PolicyFile(_Strict):
    """The policy file as people write it (JSON Schema: `apology-worker schema policy`)."""

    name: str = Field(min_length=1)
    description: str | None = None
    extends: str | None = None
    review_private_notes: bool = False
    lexicon: dict[str, Any] = Field(default_factory=dict)
    sla: Sla = Sla()
    scoring: Scoring = Scoring()
    actions: Actions = Actions()
    exemptions: list[Exemption] = Field(default_factory=list)
    rules: list[RuleSpec] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)


def _check_placeholders(text: str) -> None:
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}; known: {', '.join(sorted(PLACEHOLDERS))}")


# ---- compiled form ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: str
    condition: Condition
    highlight: str
    message: str
    suggestion: str | None
    examples: Examples | None


@dataclass(frozen=True, slots=True)
class Profile:
    """The rules, thresholds and SLA in force for one ticket (the base policy or an override)."""

    override: str | None
    rules: tuple[Rule, ...]
    actions: Actions
    sla: Sla


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    source: str
    lexicon: Lexicon
    base: Profile
    overrides: tuple[tuple[OverrideMatch, Profile], ...]
    weights: Mapping[str, int]
    exemptions: tuple[Exemption, ...]
    review_private_notes: bool
    spec: PolicyFile

    def profile_for(self, team: str | None, channel: str | None, tags: list[str]) -> Profile:
        """The first override whose match fits the ticket, else the base policy."""
        for match, profile in self.overrides:
            if ((team and team in match.teams) or (channel and channel in match.channels)
                    or set(tags) & set(match.tags)):
                return profile
        return self.base

    def exempt_rules(self, body: str) -> frozenset[str] | Literal["all"]:
        lowered = body.lower()
        exempt: set[str] = set()
        for ex in self.exemptions:
            if ex.marker.lower() in lowered:
                if ex.rules == "all":
                    return "all"
                exempt.update(ex.rules)
        return frozenset(exempt)


# ---- loading ------------------------------------------------------------------------------------


def resolve_path(name_or_path: str | os.PathLike[str] | None) -> Path:
    """A preset name (`empathy-first`) or a path to a policy file."""
    if name_or_path is None or str(name_or_path) == "":
        name_or_path = DEFAULT_PRESET
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or os.sep in str(name_or_path):
        return candidate
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if not preset.exists():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise PolicyError(f"{name_or_path}: no such policy file or preset (presets: {known})")
    return preset


def load_policy(name_or_path: str | os.PathLike[str] | None = None) -> Policy:
    """Load, validate and compile a policy; raises PolicyError naming file, line and key."""
    path = resolve_path(name_or_path)
    data, lines = _read_yaml(path)
    chain = [(path, data, lines)]
    seen = {path.resolve()}
    while isinstance(chain[-1][1].get("extends"), str):
        parent = resolve_path(chain[-1][1]["extends"])
        if parent.resolve() in seen:
            raise PolicyError(f"{chain[-1][0]}:{chain[-1][2].get(('extends',), 1)}: extends: cycle via {parent}")
        seen.add(parent.resolve())
        pdata, plines = _read_yaml(parent)
        chain.append((parent, pdata, plines))
    specs = [_validate(p, d, ln) for p, d, ln in chain]
    merged = specs[-1]
    for child in reversed(specs[:-1]):
        merged = _extend(merged, child)
    base_lexicon, _ = _read_yaml(LEXICON_FILE)
    lexicon_data = merge(base_lexicon, merged.lexicon)
    own_model = isinstance(merged.lexicon.get("incident"), Mapping) and "model" in merged.lexicon["incident"]
    incident = lexicon_data.get("incident")
    model_data, model_hash = _read_model(incident.get("model") if isinstance(incident, Mapping) else None,
                                         ("lexicon", "incident", "model"), "incident model", path, lines,
                                         path.parent if own_model else CONFIG_DIR)
    reply_data, reply_hash = _read_model(lexicon_data.get("reply_model"), ("lexicon", "reply_model"),
                                         "reply model", path, lines,
                                         path.parent if "reply_model" in merged.lexicon else CONFIG_DIR)
    try:
        lexicon = compile_lexicon(lexicon_data, model_data, reply_data)
    except LexiconError as exc:
        raise PolicyError(_where(path, lines, ("lexicon", *exc.path.split(".")), str(exc))) from exc
    rules = _compile_rules(merged.rules, path, lines, ("rules",))
    overrides = []
    for i, ov in enumerate(merged.overrides):
        overrides.append((ov.match, _override_profile(ov, merged, rules, path, lines, i)))
    canonical = json.dumps({"policy": merged.model_dump(mode="json", by_alias=True), "lexicon": lexicon_data,
                            **({"incident_model": model_hash} if model_hash else {}),
                            **({"reply_model": reply_hash} if reply_hash else {})},
                           sort_keys=True, separators=(",", ":"))
    version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return Policy(
        name=merged.name, version=version, source=str(path), lexicon=lexicon,
        base=Profile(None, rules, merged.actions, merged.sla), overrides=tuple(overrides),
        weights={str(k): v for k, v in merged.scoring.weights.items()}, exemptions=tuple(merged.exemptions),
        review_private_notes=merged.review_private_notes, spec=merged,
    )


def _extend(parent: PolicyFile, child: PolicyFile) -> PolicyFile:
    """Child keys replace the parent's; rules are merged by id; lexicon additions are merged."""
    fields = child.model_fields_set
    out = parent.model_copy(update={k: getattr(child, k) for k in fields if k not in ("rules", "lexicon")})
    by_id = {r.id: r for r in parent.rules}
    for rule in child.rules:
        by_id[rule.id] = rule
    return out.model_copy(update={"rules": list(by_id.values()), "lexicon": merge(parent.lexicon, child.lexicon),
                                  "extends": None})


def _compile_rules(specs: list[RuleSpec], path: Path, lines: Mapping[tuple[Any, ...], int],
                   where: tuple[Any, ...]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.id in seen:
            raise PolicyError(_where(path, lines, (*where, i, "id"), f"duplicate rule id {spec.id!r}"))
        seen.add(spec.id)
        try:
            condition = compile_condition(spec.when)
        except ConditionError as exc:
            raise PolicyError(_where(path, lines, (*where, i, "when", *exc.path), str(exc))) from exc
        if spec.enabled:
            out.append(Rule(spec.id, spec.severity, condition, spec.highlight, spec.message, spec.suggestion,
                            spec.examples))
    return tuple(out)


def _override_profile(ov: Override, policy: PolicyFile, base_rules: tuple[Rule, ...], path: Path,
                      lines: Mapping[tuple[Any, ...], int], index: int) -> Profile:
    known = {r.id for r in policy.rules}
    rules: list[Rule] = []
    for rid in ov.rules:
        if rid not in known:
            raise PolicyError(_where(path, lines, ("overrides", index, "rules", rid),
                                     f"override names unknown rule {rid!r}"))
    for rule in base_rules:
        patch = ov.rules.get(rule.id)
        if patch is None:
            rules.append(rule)
        elif patch.enabled is not False:
            rules.append(Rule(rule.id, patch.severity or rule.severity, rule.condition, rule.highlight,
                              patch.message or rule.message, patch.suggestion or rule.suggestion, rule.examples))
    for rid, patch in ov.rules.items():  # re-enable a rule the base disabled
        if patch.enabled and rid not in {r.id for r in rules}:
            spec = next(s for s in policy.rules if s.id == rid)
            rules.extend(_compile_rules([spec.model_copy(update={"enabled": True})], path, lines, ("rules",)))
    rules.extend(_compile_rules(ov.add_rules, path, lines, ("overrides", index, "add_rules")))
    return Profile(ov.name, tuple(rules), ov.actions or policy.actions, ov.sla or policy.sla)


def _validate(path: Path, data: Any, lines: Mapping[tuple[Any, ...], int]) -> PolicyFile:
    if not isinstance(data, dict):
        raise PolicyError(f"{path}:1: the policy file must be a YAML mapping (name:, rules:, ...)")
    try:
        return PolicyFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not _is_type_tag(p))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyError(_where(path, lines, loc, err["msg"]) + more) from None


def _is_type_tag(part: Any) -> bool:
    """Pydantic puts union member names ("Example", "str") into error locations; YAML has no such key."""
    return isinstance(part, str) and (part == "str" or part[:1].isupper() or "[" in part)


def _where(path: Path, lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...], message: str) -> str:
    """`file:line: key.path: message`, using the deepest key of `loc` the YAML file actually has."""
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = 1
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            line = lines[loc[:n]]
            break
    return f"{path}:{line}: {key}: {message}"


def _read_model(name: Any, where: tuple[str, ...], what: str, path: Path,
                lines: Mapping[tuple[Any, ...], int], base: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A model file the lexicon names (JSON, relative to `base`: the policy's folder when the policy names
    it, the config folder for the shipped lexicon's), and the hash of its bytes for the policy version;
    (None, None) when it names none (`null`)."""
    if name is None:
        return None, None
    if not isinstance(name, str) or not name:
        raise PolicyError(_where(path, lines, where, "must be the name of a JSON model file, or null"))
    file = Path(name) if Path(name).is_absolute() else base / name
    try:
        raw = file.read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise PolicyError(_where(path, lines, where, f"{file}: cannot read the {what}: {exc}")) from None
    if not isinstance(data, dict):
        raise PolicyError(_where(path, lines, where, f"{file}: the {what} must be a JSON object"))
    return data, "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise PolicyError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[tuple[Any, ...], int] = {}
    return (_to_python(node, (), lines) if node is not None else {}), lines


def _to_python(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            out[key] = _to_python(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1  # the key's line, not its value's
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
