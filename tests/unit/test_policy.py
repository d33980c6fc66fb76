"""Policy files: every shipped one passes its own examples; every mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PRESETS, ROOT, agent, customer, ticket
from worker.cli import main
from worker.engine import load_policy, review_reply
from worker.engine.examples import run_examples
from worker.errors import PolicyError

SHIPPED = [*PRESETS, str(ROOT / "config" / "policy.yaml")]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_policy_passes_its_examples(name: str) -> None:
    results = run_examples(load_policy(name))
    assert results, "a shipped policy must carry examples"
    assert [r for r in results if not r.ok] == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


RULE = """\
name: t
rules:
  - id: generic
    severity: warning
    when: {apology: generic}
    message: "generic: {excerpt}"
"""


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nrules:\n  - id: x\n    when: {apology: [\n")
    with pytest.raises(PolicyError, match=rf"{path}:\d+: not valid YAML"):
        load_policy(path)


def test_a_key_given_twice_names_file_both_lines_and_key(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: a second `overrides:` block silently dropped the first."""
    path = write(tmp_path, "name: t\nextends: liability-aware\noverrides:\n  - when: {team: vip}\n"
                           "    severity: {generic-apology: critical}\noverrides: []\n")
    with pytest.raises(PolicyError, match=rf"{path}:6: overrides: duplicate key \(also on line 3\)"):
        load_policy(path)


@pytest.mark.parametrize(("bad", "line", "key"), [
    ("    when: {apology: generik}\n", 5, "rules.0.when.apology"),
    ("    when: {apologee: generic}\n", 5, "rules.0.when.apologee"),
    ("    when: {frustration: {gte: high}}\n", 5, "rules.0.when.frustration.gte"),
    ("    when: {blame: yes please}\n", 5, "rules.0.when.blame"),
])
def test_bad_condition_names_line_and_key(tmp_path: Path, bad: str, line: int, key: str) -> None:
    path = write(tmp_path, RULE.replace("    when: {apology: generic}\n", bad))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}:{line}: {key}:")


def test_bad_severity_names_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, RULE.replace("severity: warning", "severity: urgent"))
    with pytest.raises(PolicyError, match=rf"{path}:4: rules\.0\.severity:"):
        load_policy(path)


def test_unknown_placeholder_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, RULE.replace("{excerpt}", "{exerpt}"))
    with pytest.raises(PolicyError, match=r"rules\.0\.message.*unknown placeholder \{exerpt\}"):
        load_policy(path)


def test_unknown_top_level_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + "colour: blue\n")
    with pytest.raises(PolicyError, match=rf"{path}:7: colour:"):
        load_policy(path)


def test_bad_lexicon_pattern_names_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + "lexicon:\n  blame:\n    patterns: ['(unclosed']\n")
    with pytest.raises(PolicyError, match=r"lexicon\.blame\.patterns\[\d+\].*not a valid regular expression"):
        load_policy(path)


def test_policy_test_fails_on_a_broken_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, RULE + "    examples:\n      flag: [\"Your order ships today.\"]\n"
                                  "      pass: [\"Sorry for any inconvenience.\"]\n")
    assert main(["policy", "test", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL generic: flag[0]" in out and "FAIL generic: pass[0]" in out
    assert "0 passed, 2 failed" in out


def test_policy_check_reports_a_clear_error_and_exit_code(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, RULE.replace("severity: warning", "severity: urgent"))
    assert main(["policy", "check", str(path)]) == 2
    assert f"{path}:4: rules.0.severity" in capsys.readouterr().err


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    a = load_policy(write(tmp_path, RULE))
    b = load_policy(write(tmp_path, RULE.replace("generic: ", "vague: ")))
    assert a.version.startswith("sha256:") and a.version != b.version
    assert load_policy(write(tmp_path, RULE)).version == a.version


def test_a_compiled_lexicon_is_shared_only_by_policies_with_the_same_entries(tmp_path: Path) -> None:
    """Policies that differ in rules share one compiled lexicon; an edited lexicon entry is never served stale."""
    from worker.engine import policy as policy_module

    base = load_policy("liability-aware")
    assert load_policy("no-apology").lexicon is base.lexicon  # the presets differ in rules, not entries
    edited = "name: t\nextends: liability-aware\nlexicon:\n  blame:\n    patterns: ['zorbly']\n"
    path = write(tmp_path, edited)
    first = load_policy(path)
    assert first.lexicon is not base.lexicon
    reply, earlier = agent("Your order is zorbly."), [customer("Where is my order?")]
    assert review_reply(reply, earlier, ticket(), first).signals.blame
    write(tmp_path, edited.replace("zorbly", "quaxle"))
    second = load_policy(path)
    assert second.lexicon is not first.lexicon
    assert not review_reply(reply, earlier, ticket(), second).signals.blame
    assert len(policy_module._LEXICONS) <= policy_module._LEXICONS_KEPT
    # An unquoted YAML date is no phrase: named with its line, as before there was a cache to key.
    write(tmp_path, "name: t\nextends: liability-aware\nlexicon:\n  blame:\n    phrases: [2024-01-01]\n")
    with pytest.raises(PolicyError, match=r"policy.yaml:4: lexicon.blame.phrases\[0\]: .*non-empty string"):
        load_policy(path)


def test_override_by_tag_changes_severity_and_is_named(tmp_path: Path) -> None:
    policy = load_policy(ROOT / "config" / "policy.yaml")
    earlier = [customer("My parcel is late.")]
    vip = review_reply(agent("Sorry for any inconvenience."), earlier, ticket(tags=["vip"]), policy)
    plain = review_reply(agent("Sorry for any inconvenience."), earlier, ticket(), policy)
    assert vip.policy.override == "vip" and plain.policy.override is None
    assert {f.rule: f.severity for f in vip.findings}["generic-apology"] == "critical"
    assert {f.rule: f.severity for f in plain.findings}["generic-apology"] == "warning"
    assert vip.action == "escalate" and plain.action == "annotate"


def test_exemption_marker_skips_named_rules() -> None:
    policy = load_policy("liability-aware")
    earlier = [customer("You charged me twice.")]
    flagged = review_reply(agent("This was our mistake. I've refunded you."), earlier, ticket(), policy)
    exempt = review_reply(agent("This was our mistake. I've refunded you. [legal-approved]"), earlier,
                          ticket(), policy)
    assert "liability-admission" in {f.rule for f in flagged.findings}
    assert "liability-admission" not in {f.rule for f in exempt.findings}


def test_extends_merges_rules_by_id(tmp_path: Path) -> None:
    path = write(tmp_path, "name: child\nextends: liability-aware\nrules:\n"
                           "  - id: generic-apology\n    severity: critical\n    when: {apology: generic}\n"
                           "    message: vague\n")
    policy = load_policy(path)
    ids = [r.id for r in policy.base.rules]
    assert ids.count("generic-apology") == 1 and "blame" in ids
    assert next(r for r in policy.base.rules if r.id == "generic-apology").severity == "critical"


CHILD = """\
name: child
extends: liability-aware
rules:
  - id: my-rule
    severity: info
{when}
    message: "x"
"""


@pytest.mark.parametrize(("when", "line", "key"), [
    ("    when: {apologee: generic}", 6, "rules.0.when.apologee"),
    ("    when: {apology: generik}", 6, "rules.0.when.apology"),
    ("    when: {all: [{apology: generic}, {blam: true}]}", 6, "rules.0.when.all.1.blam"),
    ("    when: {frustration: {gte: high}}", 6, "rules.0.when.frustration.gte"),
    ("    when:\n      apology: generic\n      response_minutes: soon", 8, "rules.0.when.response_minutes"),
])
def test_condition_errors_in_an_extending_file_name_its_own_line_and_index(tmp_path: Path, when: str, line: int,
                                                                         key: str) -> None:
    path = write(tmp_path, CHILD.format(when=when))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}:{line}: {key}:")


def test_every_error_is_reported_in_file_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "name: t\nextends: liability-aware\nscoring: {weights: {critical: lots}}\n"
                           "colour: blue\nrules:\n  - id: r\n    severity: urgent\n    when: {apologee: generic}\n"
                           "    message: \"{exerpt}\"\noverrides:\n  - name: vip\n    match: {tags: [vip]}\n"
                           "    rules: {no-such-rule: {severity: critical}}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert [line.split(": ")[0:2] for line in str(err.value).splitlines()] == [
        [f"{path}:3", "scoring.weights.critical"], [f"{path}:4", "colour"], [f"{path}:7", "rules.0.severity"],
        [f"{path}:8", "rules.0.when.apologee"], [f"{path}:9", "rules.0.message"],
        [f"{path}:13", "overrides.0.rules.no-such-rule"],
    ]
    assert "more)" not in str(err.value)
    assert main(["policy", "check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 7 and all(line.startswith(f"apology-worker: error: {path}:") for line in lines[:6])
    assert lines[-1] == "apology-worker: 6 errors"


def test_a_misspelt_preset_in_extends_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nextends: liability-awre\n")
    with pytest.raises(PolicyError, match=rf"^{path}:2: extends: liability-awre: no such policy file or preset"):
        load_policy(path)


def test_a_missing_parent_file_names_the_extends_line(tmp_path: Path) -> None:
    path = write(tmp_path, "# local policy\nname: t\nextends: ./nowhere/base.yaml\n")
    with pytest.raises(PolicyError, match=rf"^{path}:3: extends: .*base\.yaml: file not found"):
        load_policy(path)


def test_a_parent_file_is_found_beside_the_file_that_extends_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "teams").mkdir()
    (tmp_path / "base.yaml").write_text("name: base\nextends: empathy-first\n")
    (tmp_path / "teams" / "billing.yaml").write_text("name: billing\nextends: ../base.yaml\n")
    (tmp_path / "teams" / "ops.yaml").write_text("name: ops\nextends: liability-aware\n")
    (tmp_path / "liability-aware").mkdir()  # whatever the working directory holds, a preset is a preset
    for cwd in (ROOT, tmp_path):  # run from anywhere: the service's working directory is not the config's
        monkeypatch.chdir(cwd)
        assert [r.id for r in load_policy(tmp_path / "teams" / "billing.yaml").base.rules] == \
            [r.id for r in load_policy("empathy-first").base.rules]
        assert load_policy(tmp_path / "teams" / "ops.yaml").base.rules


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_an_empty_policy_file_says_it_is_empty(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError, match=rf"^{path}:1: the policy file is empty"):
        load_policy(path)


def test_a_duplicate_rule_id_in_an_extending_file_is_reported(tmp_path: Path) -> None:
    rule = "  - id: twin\n    severity: info\n    when: {apology: generic}\n    message: x\n"
    path = write(tmp_path, "name: t\nextends: liability-aware\nrules:\n" + rule + rule)
    with pytest.raises(PolicyError, match=rf"^{path}:8: rules\.1\.id: duplicate rule id 'twin'"):
        load_policy(path)


def test_an_example_of_the_wrong_shape_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + "    examples:\n      pass: [42]\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == (f"{path}:8: rules.0.examples.pass.0: an example is the reply text, or a mapping "
                              "with `reply:` (and `customer:`, `response_minutes:`...)")


def test_a_negative_weight_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, RULE + "scoring: {weights: {warning: -5}}\n")
    with pytest.raises(PolicyError, match=rf"^{path}:7: scoring\.weights\.warning: .*greater than or equal to 0"):
        load_policy(path)
