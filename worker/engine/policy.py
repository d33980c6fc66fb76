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
import threading
from collections import OrderedDict
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

PLACEHOLDERS = frozenset({"excerpt", "incident", "problem", "next_step", "responsible_team", "frustration",
                          "apology_count", "response_minutes", "sla_minutes", "subject", "customer_name"})
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
    weights: dict[Severity, Annotated[int, Field(ge=0)]] = Field(default_factory=_default_weights)


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
    # The languages the lexicon reads (ISO 639 codes); a reply confidently in another is not judged. Empty:
    # judge every reply as if in the lexicon's language.
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]] = Field(default_factory=lambda: ["en"])
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
    languages: tuple[str, ...] = ("en",)

    def reads(self, language: str | None) -> bool:
        """Whether replies in `language` are judged (None: too short to tell, read as the lexicon's)."""
        return language is None or not self.languages or language in self.languages

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
    if _names_a_file(str(name_or_path)) or candidate.exists():
        return candidate
    return _preset(str(name_or_path))


def _names_a_file(name: str) -> bool:
    return Path(name).suffix in (".yaml", ".yml") or os.sep in name or "/" in name


def _preset(name: str) -> Path:
    preset = PRESETS_DIR / f"{name}.yaml"
    if not preset.exists():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise PolicyError(f"{name}: no such policy file or preset (presets: {known})")
    return preset


def load_policy(name_or_path: str | os.PathLike[str] | None = None) -> Policy:
    """Load, validate and compile a policy; raises PolicyError naming file, line and key of every mistake."""
    path = resolve_path(name_or_path)
    chain, problems = _read_chain(path)
    # Rules merge by id down the chain, so an override may name a rule from any file of it.
    known = None if problems else {r["id"] for _, data, _ in chain for r in _rule_items(data)
                                   if isinstance(r.get("id"), str)}
    specs: list[PolicyFile] = []
    for file, data, lines in chain:
        spec, found = _validate(file, data, lines, known)
        problems.extend(found)
        if spec is not None:
            specs.append(spec)
    if problems:
        raise PolicyError("\n".join(problems))
    merged = specs[-1]
    for child in reversed(specs[:-1]):
        merged = _extend(merged, child)
    base_lexicon, base_lines = _read_yaml(LEXICON_FILE)
    lexicon_data = merge(base_lexicon or {}, merged.lexicon)
    # Each lexicon key is reported against the file that wrote it: a policy of the chain, else the shipped one.
    sources = [(file, lines) for file, _, lines in chain]
    sources.append((LEXICON_FILE, {("lexicon", *key): line for key, line in base_lines.items()}))
    incident = lexicon_data.get("incident")
    model_data, model_hash = _read_model(incident.get("model") if isinstance(incident, Mapping) else None,
                                         ("lexicon", "incident", "model"), "incident model", sources, problems)
    reply_data, reply_hash = _read_model(lexicon_data.get("reply_model"), ("lexicon", "reply_model"),
                                         "reply model", sources, problems)
    try:
        lexicon = _compiled(lexicon_data, model_data, model_hash, reply_data, reply_hash)
    except LexiconError as exc:
        key = ("lexicon", *exc.path.split("."))
        problems.append(_where(*_owner(sources, key[:2]), key, str(exc)))
    if problems:
        raise PolicyError("\n".join(problems))
    rules = _compile_rules(merged.rules)
    overrides = []
    for ov in merged.overrides:
        overrides.append((ov.match, _override_profile(ov, merged, rules)))
    canonical = json.dumps({"policy": merged.model_dump(mode="json", by_alias=True), "lexicon": lexicon_data,
                            **({"incident_model": model_hash} if model_hash else {}),
                            **({"reply_model": reply_hash} if reply_hash else {})},
                           sort_keys=True, separators=(",", ":"))
    version = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return Policy(
        name=merged.name, version=version, source=str(path), lexicon=lexicon,
        base=Profile(None, rules, merged.actions, merged.sla), overrides=tuple(overrides),
        weights={str(k): v for k, v in merged.scoring.weights.items()}, exemptions=tuple(merged.exemptions),
        review_private_notes=merged.review_private_notes, spec=merged, languages=tuple(merged.languages),
    )


# Compiled lexicons by content. Building the RE2 sets and models takes seconds, and policies that differ only
# in rules, thresholds, overrides or languages (a team's file extending a preset, `policy test`, a reload of
# an edited rule) compile the same lexicon. Bounded, so a long-lived process that reloads keeps a few at most.
_LEXICONS: OrderedDict[str, Lexicon] = OrderedDict()
_LEXICONS_KEPT = 4
_LEXICONS_LOCK = threading.Lock()  # a thread pool's tasks may load policies at once; one compiles, the rest wait


def _compiled(data: Mapping[str, Any], model_data: Mapping[str, Any] | None, model_hash: str | None,
              reply_data: Mapping[str, Any] | None, reply_hash: str | None) -> Lexicon:
    """The lexicon compiled, or the one compiled before from the same entries and model files (read-only
    once built, so policies may share it)."""
    # YAML reads some scalars as other types (an unquoted date): tagged with their type, so a date never shares
    # a key with the same text quoted, and compile_lexicon still names the entry that is not a string.
    key = hashlib.sha256(json.dumps([data, model_hash, reply_hash], sort_keys=True, separators=(",", ":"),
                                    default=lambda o: {"!": type(o).__name__, "v": repr(o)}).encode()).hexdigest()
    with _LEXICONS_LOCK:
        lexicon = _LEXICONS.get(key)
        if lexicon is None:
            lexicon = _LEXICONS[key] = compile_lexicon(data, model_data, reply_data)
            if len(_LEXICONS) > _LEXICONS_KEPT:
                _LEXICONS.popitem(last=False)
        _LEXICONS.move_to_end(key)
        return lexicon


def _extend(parent: PolicyFile, child: PolicyFile) -> PolicyFile:
    """Child keys replace the parent's; rules are merged by id; lexicon additions are merged."""
    fields = child.model_fields_set
    out = parent.model_copy(update={k: getattr(child, k) for k in fields if k not in ("rules", "lexicon")})
    by_id = {r.id: r for r in parent.rules}
    for rule in child.rules:
        by_id[rule.id] = rule
    return out.model_copy(update={"rules": list(by_id.values()), "lexicon": merge(parent.lexicon, child.lexicon),
                                  "extends": None})


def _compile_rules(specs: list[RuleSpec]) -> tuple[Rule, ...]:
    """The enabled rules, compiled; their conditions and ids were checked file by file in `_validate`."""
    return tuple(Rule(spec.id, spec.severity, compile_condition(spec.when), spec.highlight, spec.message,
                      spec.suggestion, spec.examples) for spec in specs if spec.enabled)


def _override_profile(ov: Override, policy: PolicyFile, base_rules: tuple[Rule, ...]) -> Profile:
    rules: list[Rule] = []
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
            rules.extend(_compile_rules([spec.model_copy(update={"enabled": True})]))
    rules.extend(_compile_rules(ov.add_rules))
    return Profile(ov.name, tuple(rules), ov.actions or policy.actions, ov.sla or policy.sla)


def _read_chain(path: Path) -> tuple[list[tuple[Path, Any, dict[tuple[Any, ...], int]]], list[str]]:
    """The file and every file it `extends`, child first; a parent that cannot be found is a problem of the
    child's `extends:` line."""
    data, lines = _read_yaml(path)
    chain = [(path, data, lines)]
    seen = {path.resolve()}
    while isinstance(data, dict) and isinstance(data.get("extends"), str):
        child, child_lines = path, lines
        try:
            path = _parent_path(data["extends"], child)
            if not path.is_file():
                raise PolicyError(f"{path}: file not found")
        except PolicyError as exc:
            return chain, [_where(child, child_lines, ("extends",), str(exc))]
        if path.resolve() in seen:
            return chain, [_where(child, child_lines, ("extends",), f"cycle via {path}")]
        seen.add(path.resolve())
        data, lines = _read_yaml(path)
        chain.append((path, data, lines))
    return chain, []


def _parent_path(name: str, child: Path) -> Path:
    """What `extends:` names: a policy file relative to the folder of the file that names it (as a lexicon's
    model files are), so a team's policies extend each other from wherever they are run; else a preset.
    Nothing here depends on the working directory."""
    local = child.parent / Path(name).expanduser()
    if _names_a_file(name) or local.exists():
        return local
    return _preset(name)


def _rule_items(data: Any, key: str = "rules") -> list[dict[Any, Any]]:
    items = data.get(key) if isinstance(data, dict) else None
    return [r for r in items if isinstance(r, dict)] if isinstance(items, list) else []


def _validate(path: Path, data: Any, lines: Mapping[tuple[Any, ...], int],
              known: set[str] | None) -> tuple[PolicyFile | None, list[str]]:
    """The file's spec, and every mistake in it (`file:line: key: message`, in file order). `known` holds the
    rule ids of the whole chain, to check the names overrides use (None: the chain is incomplete)."""
    if data is None:
        return None, [f"{path}:1: the policy file is empty; it needs at least `name:`, and `rules:` or "
                      "`extends:` a preset"]
    if not isinstance(data, dict):
        return None, [f"{path}:1: the policy file must be a YAML mapping (name:, rules:, ...)"]
    found: list[tuple[tuple[Any, ...], str]] = []
    spec = None
    try:
        spec = PolicyFile.model_validate(data)
    except ValidationError as exc:
        found.extend(_pydantic_problems(exc, data))
    found.extend(_rule_problems(_rule_items(data), ("rules",)))
    for i, ov in enumerate(data.get("overrides") or []):
        if not isinstance(ov, dict):
            continue
        found.extend(_rule_problems(_rule_items(ov, "add_rules"), ("overrides", i, "add_rules")))
        patches = ov.get("rules")
        if known is not None and isinstance(patches, dict):
            found.extend((("overrides", i, "rules", rid), f"override names unknown rule {rid!r}")
                         for rid in patches if rid not in known)
    located = [(_line(lines, loc), _where(path, lines, loc, message)) for loc, message in found]
    located.sort(key=lambda item: item[0])  # stable: pydantic's order within a line
    return (spec if not located else None), [text for _, text in located]


def _rule_problems(items: list[dict[Any, Any]], where: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Duplicate ids and conditions that cannot be evaluated, at this file's own rule indices."""
    out: list[tuple[tuple[Any, ...], str]] = []
    seen: set[Any] = set()
    for i, item in enumerate(items):
        rid = item.get("id")
        if isinstance(rid, str) and rid in seen:
            out.append(((*where, i, "id"), f"duplicate rule id {rid!r}"))
        seen.add(rid)
        when = item.get("when")
        if isinstance(when, dict):
            try:
                compile_condition(when)
            except ConditionError as exc:
                out.append(((*where, i, "when", *exc.path), str(exc)))
    return out


_EXAMPLE_SHAPE = "an example is the reply text, or a mapping with `reply:` (and `customer:`, `response_minutes:`...)"


def _pydantic_problems(exc: ValidationError, data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Pydantic's errors as (key path, message). A value that fits no member of a union (an example is text or a
    mapping) is one problem, not one per member."""
    out: list[tuple[tuple[Any, ...], str]] = []
    unions: dict[tuple[Any, ...], list[tuple[str, tuple[Any, ...], str]]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        tag = next((i for i, part in enumerate(loc) if _is_type_tag(part)), None)
        if tag is None:
            out.append((loc, message))
        else:
            unions.setdefault(loc[:tag], []).append((str(loc[tag]), loc[:tag] + tuple(
                p for p in loc[tag + 1:] if not _is_type_tag(p)), message))
    for where, errors in unions.items():
        if isinstance(_at(data, where), dict):  # meant as the mapping form: its own errors are the useful ones
            out.extend((loc, message) for member, loc, message in errors if member[:1].isupper())
        elif len(where) >= 2 and where[-2] in ("flag", "pass"):
            out.append((where, _EXAMPLE_SHAPE))
        else:
            out.append((where, "; or ".join(dict.fromkeys(m for member, _, m in errors if not member[:1].isupper()))))
    return out


def _is_type_tag(part: Any) -> bool:
    """Pydantic puts union member names ("Example", "str") into error locations; YAML has no such key."""
    return isinstance(part, str) and (part == "str" or part[:1].isupper() or "[" in part)


def _at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _where(path: Path, lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...], message: str) -> str:
    """`file:line: key.path: message`, using the deepest key of `loc` the YAML file actually has."""
    key = ".".join(str(p) for p in loc) or "(top level)"
    return f"{path}:{_line(lines, loc)}: {key}: {message}"


def _line(lines: Mapping[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return 1


def _owner(sources: list[tuple[Path, dict[tuple[Any, ...], int]]],
           loc: tuple[Any, ...]) -> tuple[Path, dict[tuple[Any, ...], int]]:
    """The first file (child first, the shipped lexicon last) that writes `loc`; else the last."""
    return next(((file, lines) for file, lines in sources if loc in lines), sources[-1])


def _read_model(name: Any, where: tuple[str, ...], what: str, sources: list[tuple[Path, dict[tuple[Any, ...], int]]],
                problems: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """A model file the lexicon names (JSON, relative to the folder of the file that names it, so the config
    folder for the shipped lexicon's), and the hash of its bytes for the policy version; (None, None) when it
    names none (`null`) or cannot be read (a problem is added, naming the file and line that named it)."""
    if name is None:
        return None, None
    path, lines = _owner(sources, where)
    base = CONFIG_DIR if path == LEXICON_FILE else path.parent
    if not isinstance(name, str) or not name:
        problems.append(_where(path, lines, where, "must be the name of a JSON model file, or null"))
        return None, None
    file = Path(name) if Path(name).is_absolute() else base / name
    try:
        raw = file.read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        problems.append(_where(path, lines, where, f"{file}: cannot read the {what}: {exc}"))
        return None, None
    if not isinstance(data, dict):
        problems.append(_where(path, lines, where, f"{file}: the {what} must be a JSON object"))
        return None, None
    return data, "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


# libyaml's parser when PyYAML was built with it (its wheels are): the lexicon's ~800 lines parse in a
# tenth of the time, and every worker process, backfill chunk worker and `review` run loads it. Its nodes
# carry the same line marks, so errors still name the line.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise PolicyError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[tuple[Any, ...], int] = {}
    try:
        return (_to_python(node, (), lines) if node is not None else None), lines
    except _DuplicateKey as dup:
        key = ".".join(map(str, dup.path))
        raise PolicyError(f"{path}:{dup.line}: {key}: duplicate key (also on line {dup.first}); YAML would keep "
                          "only the last one and silently drop the other") from None


class _DuplicateKey(Exception):
    """A mapping that names one key twice: YAML parsers keep the last, so the first would vanish unseen."""

    def __init__(self, path: tuple[Any, ...], line: int, first: int) -> None:
        super().__init__(path)
        self.path, self.line, self.first = path, line, first


def _to_python(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in out:
                raise _DuplicateKey((*path, key), key_node.start_mark.line + 1, lines[(*path, key)])
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
