"""Rule engine: condition language, evaluation, load errors and hot reload."""

from __future__ import annotations

import datetime
import logging
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from risk_service.domain.assessment import Channel
from risk_service.domain.declaration import (
    Declaration,
    DutyTax,
    Party,
)
from risk_service.domain.rules import (
    CONTEXT_SCHEMA,
    WEAK_HIT_WEIGHT,
    RuleLoadError,
    RuleSet,
    RuleSetError,
    RuleSetHolder,
    item_contexts,
    load_rule_set,
)
from risk_service.domain.rules import holder as holder_module
from risk_service.domain.rules import loader as loader_module
from tests.builders import rule_declaration, rule_item

FEATURES = ("unit_value_ratio", "log_value_per_kg", "importer_prior_filings", "importer_days_known", "hs_digits")
DAY = datetime.date(2026, 6, 1)


_item = rule_item
_declaration = rule_declaration


def _write(directory: Path, text: str, name: str = "rules.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _rule_set(directory: Path, *rules: str, lists: str = "") -> RuleSet:
    body = 'version: "t1"\n'
    if lists:
        body += "lists:\n" + textwrap.indent(textwrap.dedent(lists).strip(), "  ") + "\n"
    body += "rules:\n" + "".join(textwrap.indent(textwrap.dedent(r).strip(), "  ") + "\n" for r in rules)
    return load_rule_set(_write(directory, body), FEATURES)


def _rule(rule_id: str, condition: str, weight: float = 0.3, extra: str = "", description: str = "hit") -> str:
    rule = f"- id: {rule_id!r}\n  description: {description!r}\n  condition: {condition!r}\n  weight: {weight}\n"
    return rule + textwrap.indent(textwrap.dedent(extra).strip(), "  ") + "\n" if extra else rule


def _fires(tmp_path: Path, condition: str, declaration: Declaration, rows: np.ndarray | None = None, **kw: str) -> bool:
    rule_set = _rule_set(tmp_path, _rule("R1", condition), **kw)
    return bool(rule_set.evaluate(item_contexts(declaration, FEATURES, rows), on=DAY))


def _rows(declaration: Declaration, **values: float) -> np.ndarray:
    rows = np.full((len(declaration.items), len(FEATURES)), np.nan)
    for name, value in values.items():
        rows[:, FEATURES.index(name)] = value
    return rows


# --- the context ---------------------------------------------------------------------------------


def test_item_contexts_flatten_declaration_item_and_features() -> None:
    declaration = _declaration(
        _item(1, duties_and_taxes=(DutyTax("A00", 10.0), DutyTax("B00", 5.5)), permit_references=("P1", "P2")),
        _item(2),
    )
    rows = np.arange(10, dtype=float).reshape(2, 5)
    contexts = item_contexts(declaration, FEATURES, rows)
    assert len(contexts) == 2
    first = contexts[0]
    assert first["declaration.type"] == "IMPORT"
    assert first["declaration.aeo_status"] == "NONE"
    assert first["declaration.transport_mode"] == "SEA"
    assert first["declaration.importer_id"] == "GB222222222000"
    assert first["declaration.item_count"] == 2
    assert first["declaration.container_count"] == 1
    assert first["item.duties_and_taxes"] == 15.5
    assert first["item.permit_count"] == 2
    assert contexts[1]["features.log_value_per_kg"] == 6.0
    fixed = {k for k in CONTEXT_SCHEMA if not k.startswith("hits.")}
    assert set(first) == fixed | {f"features.{n}" for n in FEATURES}
    for name, value in first.items():
        expected = CONTEXT_SCHEMA.get(name, float)
        assert type(value) is expected, name


def test_item_contexts_without_feature_rows_have_nan_features() -> None:
    contexts = item_contexts(_declaration(), FEATURES, None)
    assert all(math.isnan(contexts[0][f"features.{n}"]) for n in FEATURES)  # type: ignore[arg-type]


def test_item_contexts_reject_feature_rows_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        item_contexts(_declaration(), FEATURES, np.zeros((2, 5)))


# --- evaluation ----------------------------------------------------------------------------------


def test_rule_matching_several_items_gives_one_hit_with_every_item(tmp_path: Path) -> None:
    rule_set = _rule_set(
        tmp_path,
        _rule("HS-85", "startswith(item.hs_code, '85')", description="HS {item.hs_code} item {item.item_number}"),
    )
    declaration = _declaration(_item(1, hs_code="8517130000"), _item(2, hs_code="6403990000"), _item(5, hs_code="8541"))
    (hit,) = rule_set.evaluate(item_contexts(declaration, FEATURES, None), on=DAY)
    assert hit.rule_id == "HS-85"
    assert hit.item_numbers == (1, 5)
    assert hit.message == "HS 8517130000 item 1"
    assert hit.fields == ("declaration.items[0].hs_code", "declaration.items[2].hs_code")
    assert hit.weight == 0.3
    assert hit.min_channel is None


def test_declaration_level_rule_hits_once_without_item_numbers(tmp_path: Path) -> None:
    rule_set = _rule_set(
        tmp_path,
        _rule(
            "IMP",
            "declaration.importer_id == 'GB222222222000' and declaration.item_count > 1",
            extra="min_channel: RED",
        ),
    )
    (hit,) = rule_set.evaluate(item_contexts(_declaration(_item(1), _item(2)), FEATURES, None), on=DAY)
    assert hit.item_numbers == ()
    assert hit.fields == ("declaration.importer.id", "declaration.items")
    assert hit.min_channel is Channel.RED


def test_message_placeholders_are_formatted_with_their_spec(tmp_path: Path) -> None:
    rule_set = _rule_set(
        tmp_path,
        _rule(
            "UV",
            "features.unit_value_ratio < 0.25",
            description="Unit value {features.unit_value_ratio:.2f}x for HS {item.hs_code}, {{literal}}",
        ),
    )
    declaration = _declaration()
    (hit,) = rule_set.evaluate(item_contexts(declaration, FEATURES, _rows(declaration, unit_value_ratio=0.1234)), DAY)
    assert hit.message == "Unit value 0.12x for HS 8517130000, {literal}"
    assert hit.fields == ("features.unit_value_ratio",)


@pytest.mark.parametrize(
    "condition",
    [
        "features.unit_value_ratio < 0.25",
        "features.unit_value_ratio >= 0.25",
        "features.unit_value_ratio != 1",
        "not (features.unit_value_ratio < 0.25)",
        "not features.unit_value_ratio == 1",
        "features.unit_value_ratio in [1, 2]",
        "features.unit_value_ratio not in [1, 2]",
        "abs(features.unit_value_ratio - 1) > 0",
        "features.unit_value_ratio * 2 != features.importer_days_known",
        "0 < features.unit_value_ratio or not (features.unit_value_ratio > 0)",
        "not (features.unit_value_ratio < 0.25 and item.hs_code == '8517130000')",
    ],
)
def test_missing_feature_never_fires_a_rule(tmp_path: Path, condition: str) -> None:
    assert not _fires(tmp_path, condition, _declaration(), None)


def test_is_missing_detects_nan_features_and_blank_strings(tmp_path: Path) -> None:
    assert _fires(tmp_path, "is_missing(features.unit_value_ratio)", _declaration(), None)
    assert _fires(tmp_path, "is_missing(item.preference_claimed)", _declaration(_item(preference_claimed="  ")))
    assert not _fires(tmp_path, "is_missing(item.hs_code)", _declaration())


def test_kleene_or_is_true_when_any_side_is_true_even_with_nan(tmp_path: Path) -> None:
    assert _fires(tmp_path, "features.unit_value_ratio < 0.25 or item.hs_code == '8517130000'", _declaration())


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("contains(item.description, 'model')", True),
        ("contains(item.description, 'MODEL x200')", True),
        ("contains(item.description, 'mode')", False),
        ("contains_any(item.description, ['tablet', '128 gb'])", True),
        ("contains_any(item.description, ['smart'])", False),
        ("startswith(item.hs_code, ['6403', '8517'])", True),
        ("startswith(item.hs_code, '85171')", True),
        ("startswith(item.hs_code, lower(declaration.exporter_name))", False),
        ("lower(declaration.exporter_name) == 'exporter co'", True),
        ("len(item.hs_code) == 10", True),
        ("1 < item.quantity <= 100 < item.customs_value", True),
        ("item.customs_value / item.quantity == 250", True),
        ("item.customs_value / 0 > 0", False),
        ("-item.quantity + 1 < -98", True),
        ("item.origin_country in ('KR', 'JP')", True),
        ("item.origin_country not in ['KR']", False),
        ("declaration.container_count == 1 and declaration.version >= 1", True),
        ("contains(item.description, declaration.incoterm)", False),
        ("True", True),
        ("False or not True", False),
    ],
)
def test_condition_language_functions_and_operators(tmp_path: Path, condition: str, expected: bool) -> None:
    assert _fires(tmp_path, condition, _declaration()) is expected


def test_pair_listed_matches_origin_and_hs_prefix(tmp_path: Path) -> None:
    lists = "pairs: ['CN 8517', 'VN 6403']"
    condition = "pair_listed(lists.pairs, item.origin_country, item.hs_code)"
    assert _fires(tmp_path, condition, _declaration(_item(origin_country="CN")), lists=lists)
    assert _fires(tmp_path, condition, _declaration(_item(origin_country="VN", hs_code="640399")), lists=lists)
    assert not _fires(tmp_path, condition, _declaration(_item(origin_country="VN")), lists=lists)
    assert not _fires(tmp_path, condition, _declaration(_item(origin_country="KR")), lists=lists)


def test_disabled_rule_never_fires(tmp_path: Path) -> None:
    rule_set = _rule_set(tmp_path, _rule("OFF", "True", extra="enabled: false"))
    assert rule_set.evaluate(item_contexts(_declaration(), FEATURES, None), on=DAY) == ()


@pytest.mark.parametrize(
    ("day", "fires"),
    [
        (datetime.date(2025, 12, 31), False),
        (datetime.date(2026, 1, 1), True),
        (datetime.date(2026, 12, 31), True),
        (datetime.date(2027, 1, 1), False),
    ],
)
def test_validity_dates_include_valid_from_and_exclude_valid_to(
    tmp_path: Path, day: datetime.date, fires: bool
) -> None:
    rule_set = _rule_set(tmp_path, _rule("DATED", "True", extra="valid_from: 2026-01-01\nvalid_to: '2027-01-01'"))
    assert bool(rule_set.evaluate(item_contexts(_declaration(), FEATURES, None), on=day)) is fires


def test_accumulation_rule_counts_distinct_weak_first_pass_hits(tmp_path: Path) -> None:
    assert WEAK_HIT_WEIGHT == 0.2
    rule_set = _rule_set(
        tmp_path,
        _rule("W1", "True", weight=0.1),
        _rule("W2", "item.item_number > 0", weight=0.15),  # fires on both items: still one hit
        _rule("STRONG", "True", weight=0.2),  # not weak: weight is not below 0.2
        _rule("CREDIT", "True", weight=-0.1),  # not weak: a credit
        _rule(
            "ACC2",
            "hits.weak_count >= 2",
            weight=0.1,
            extra="min_channel: YELLOW",
            description="{hits.weak_count} weak",
        ),
        _rule("ACC3", "hits.weak_count >= 3", weight=0.1),
    )
    hits = rule_set.evaluate(item_contexts(_declaration(_item(1), _item(2)), FEATURES, None), on=DAY)
    by_id = {h.rule_id: h for h in hits}
    assert set(by_id) == {"W1", "W2", "STRONG", "CREDIT", "ACC2"}
    assert by_id["ACC2"].message == "2 weak"
    assert by_id["ACC2"].min_channel is Channel.YELLOW
    assert by_id["ACC2"].item_numbers == ()
    assert [h.rule_id for h in hits][-1] == "ACC2"  # accumulation hits come after the first pass


def test_runtime_error_counts_as_not_matched_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rule_set = _rule_set(tmp_path, _rule("BAD", "item.quantity > 1"), _rule("GOOD", "True"))
    broken: list[dict[str, object]] = [
        {**c, "item.quantity": "lots"} for c in item_contexts(_declaration(), FEATURES, None)
    ]
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            hits = rule_set.evaluate(broken, on=DAY)
            assert [h.rule_id for h in hits] == ["GOOD"]
    assert rule_set.runtime_error_count == 3
    assert rule_set.runtime_errors_by_rule == {"BAD": 3}
    assert len([r for r in caplog.records if "BAD" in r.getMessage()]) == 1


def test_empty_context_list_gives_no_hits(tmp_path: Path) -> None:
    rule_set = _rule_set(tmp_path, _rule("ANY", "True"), _rule("ACC", "hits.weak_count >= 0"))
    assert rule_set.evaluate([], on=DAY) == ()


# --- load errors ---------------------------------------------------------------------------------

_GOOD_RULE = """\
  - id: OK-1
    description: fine
    condition: "item.quantity > 1"
    weight: 0.1
"""


@pytest.mark.parametrize(
    ("rule_yaml", "line", "rule_id", "message"),
    [
        ("  - id: OK-1\n    description: x\n    condition: 'True'\n    weight: 0.1\n", 7, "OK-1", "duplicate rule id"),
        ("  - id: W\n    description: x\n    condition: 'True'\n    weight: 1.5\n", 10, "W", "outside [-1, 1]"),
        ("  - id: W\n    description: x\n    condition: 'True'\n    weight: yes\n", 10, "W", "weight must be a number"),
        (
            "  - id: C\n    description: x\n    condition: 'True'\n    weight: 0.1\n    min_channel: ORANGE\n",
            11,
            "C",
            "unknown channel",
        ),
        (
            "  - id: N\n    description: x\n    condition: 'features.foo < 1'\n    weight: 0.1\n",
            9,
            "N",
            "unknown name 'features.foo'",
        ),
        (
            "  - id: L\n    description: x\n    condition: 'item.hs_code in lists.nope'\n    weight: 0.1\n",
            9,
            "L",
            "unknown list 'lists.nope'",
        ),
        (
            "  - id: F\n    description: x\n    condition: 'upper(item.hs_code) == \"X\"'\n    weight: 0.1\n",
            9,
            "F",
            "unknown function 'upper'",
        ),
        (
            "  - id: A\n    description: x\n    condition: 'len(item.hs_code, 2) > 1'\n    weight: 0.1\n",
            9,
            "A",
            "takes 1 argument",
        ),
        ("  - id: S\n    description: x\n    condition: 'item.quantity >'\n    weight: 0.1\n", 9, "S", "syntax error"),
        (
            "  - id: T\n    description: x\n    condition: 'item.hs_code > 5'\n    weight: 0.1\n",
            9,
            "T",
            "cannot compare str with int",
        ),
        (
            "  - id: T\n    description: x\n    condition: 'item.quantity + 1'\n    weight: 0.1\n",
            9,
            "T",
            "must be true/false",
        ),
        (
            "  - id: T\n    description: x\n    condition: 'item.hs_code and True'\n    weight: 0.1\n",
            9,
            "T",
            "'and' needs",
        ),
        (
            "  - id: D\n    description: x\n    condition: 'True'\n    weight: 0.1\n"
            "    valid_from: 2026-02-01\n    valid_to: 2026-01-01\n",
            12,
            "D",
            "valid_to 2026-01-01 must be after valid_from",
        ),
        (
            "  - id: D\n    description: x\n    condition: 'True'\n    weight: 0.1\n    valid_from: someday\n",
            11,
            "D",
            "valid_from must be a date",
        ),
        (
            "  - id: P\n    description: 'value {features.foo}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "unknown name 'features.foo' in description",
        ),
        (
            "  - id: P\n    description: 'value {item.hs_code.__class__}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "unknown name",
        ),
        (
            "  - id: P\n    description: 'value {item.hs_code!r}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "conversions are not allowed",
        ),
        (
            "  - id: P\n    description: 'value {item.quantity:.2d}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "placeholder",
        ),
        (
            "  - id: P\n    description: 'value {item.quantity:99999999}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "unsupported format spec",
        ),
        (
            "  - id: P\n    description: 'value {item.quantity'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "bad placeholder",
        ),
        (
            "  - id: P\n    description: 'n={hits.weak_count}'\n    condition: 'True'\n    weight: 0.1\n",
            8,
            "P",
            "needs a condition that uses hits",
        ),
        (
            "  - id: K\n    description: x\n    condition: 'True'\n    weight: 0.1\n    min_chanel: RED\n",
            11,
            "K",
            "unknown key 'min_chanel'",
        ),
        ("  - id: M\n    description: x\n    weight: 0.1\n", 7, "M", "missing 'condition'"),
        (
            "  - id: E\n    description: x\n    condition: 'True'\n    weight: 0.1\n    enabled: maybe\n",
            11,
            "E",
            "enabled must be true or false",
        ),
        ("  - id: 'bad id!'\n    description: x\n    condition: 'True'\n    weight: 0.1\n", 7, None, "rule id"),
    ],
)
def test_every_load_error_kind_names_file_line_and_rule(
    tmp_path: Path, rule_yaml: str, line: int, rule_id: str | None, message: str
) -> None:
    path = _write(tmp_path, 'version: "t1"\nrules:\n' + _GOOD_RULE + rule_yaml)
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    errors = caught.value.errors
    assert len(errors) == 1, errors
    (error,) = errors
    assert error.file == str(path)
    assert error.line == line
    assert error.rule_id == rule_id
    assert message in error.message


def test_every_error_in_a_file_is_reported_one_line_each(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        version: "t1"
        rules:
          - id: UV-LOW
            description: "Unit value"
            condition: "features.foo < 0.25 and lists.x == 1"
            weight: 2
          - id: UV-LOW
            description: "again"
            condition: "item.hs_code == 1"
            weight: 0.1
            min_channel: PURPLE
        """,
    )
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}:5: rule UV-LOW: unknown name 'features.foo'",
        f"{path}:5: rule UV-LOW: unknown list 'lists.x'",
        f"{path}:6: rule UV-LOW: weight 2 is outside [-1, 1]",
        f"{path}:7: rule UV-LOW: duplicate rule id (first defined at line 3)",
        f"{path}:9: rule UV-LOW: cannot compare str with int",
        f"{path}:11: rule UV-LOW: unknown channel 'PURPLE' (expected one of GREEN, BLUE, YELLOW, RED)",
    ]
    assert all(isinstance(e, RuleLoadError) for e in caught.value.errors)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 't1'\nrules: [\n", 3, "invalid YAML"),
        ("", 0, "file is empty"),
        ("- just\n- a list\n", 1, "the rule set must be a mapping"),
        ("version: 2026.11\nrules: []\n", 1, "version must be a non-empty quoted string"),
        ("version: 't1'\nrules: []\nextra: 1\n", 3, "unknown key 'extra'"),
        ("version: 't1'\nversion: 't2'\nrules: []\n", 2, "duplicate key 'version'"),
        ("version: 't1'\n", 1, "missing 'rules'"),
        ("version: 't1'\nlists:\n  x: [a, true]\nrules: []\n", 3, "entries must be strings or numbers"),
        ("version: 't1'\nlists:\n  x: [a]\nlist_files:\n  x: x.txt\nrules: []\n", 5, "defined twice"),
        ("version: 't1'\nlist_files:\n  x: missing.yaml\nrules: []\n", 0, "cannot read file"),
        (
            "version: 't1'\nlists:\n  p: ['CN']\nrules:\n  - {id: R, description: x, weight: 0.1,\n"
            "     condition: 'pair_listed(lists.p, item.origin_country, item.hs_code)'}\n",
            6,
            "must be two words",
        ),
    ],
)
def test_file_level_load_errors_have_lines(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    assert any(e.line == line and message in e.message for e in caught.value.errors), caught.value.errors


def test_missing_file_is_a_rule_set_error(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="cannot read file"):
        load_rule_set(tmp_path / "nope.yaml", FEATURES)


def test_deeply_nested_yaml_is_a_load_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = _write(tmp_path, 'version: "t1"\nrules: ' + "[" * 5000 + "\n")
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert (error.file, error.line) == (str(path), 2)
    assert "nested more than" in error.message


def test_yaml_nested_within_the_limit_still_loads_its_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, 'version: "t1"\nlists:\n  x: ' + "[" * 20 + "]" * 20 + "\nrules: []\n")
    with pytest.raises(RuleSetError, match="entries must be strings or numbers"):
        load_rule_set(path, FEATURES)


def test_non_utf8_rule_file_is_a_load_error_with_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b'version: "t1"\nrules: []\n# caf\xe9\n')
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert (error.file, error.line) == (str(path), 3)
    assert "not UTF-8 text (byte 0xe9 at line 3)" in error.message


def test_binary_rule_file_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(bytes(range(256)) * 4)  # the first byte that is not UTF-8, 0x80, follows one \n
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    assert [(e.line, e.message) for e in caught.value.errors] == [(2, "file is not UTF-8 text (byte 0x80 at line 2)")]


def test_control_character_in_yaml_is_a_load_error_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'version: "t1"\nrules: []\n# bell \x07\n')
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert error.line == 3
    assert "invalid YAML: special characters are not allowed (0x7)" in error.message


def test_rule_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"#" * (loader_module.MAX_FILE_BYTES + 1))
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert error.message == "file is larger than the 5 MB limit"


def test_list_file_over_the_size_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_module, "MAX_FILE_BYTES", 100)
    _write(tmp_path, "GB0000000001\n" * 10, name="parties.txt")
    path = _write(tmp_path, 'version: "t1"\nlist_files: {parties: parties.txt}\nrules: []\n')
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert (error.file, error.line) == (str(tmp_path / "parties.txt"), 0)
    assert error.message == "list 'parties' is larger than the 100 bytes limit"


@pytest.mark.parametrize("target", [".", "/dev/zero"])
def test_list_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str) -> None:
    path = _write(tmp_path, f'version: "t1"\nlist_files: {{parties: "{target}"}}\nrules: []\n')
    with pytest.raises(RuleSetError, match="cannot read list 'parties': not a regular file"):
        load_rule_set(path, FEATURES)


@pytest.mark.parametrize("target", ['"a\\0b"', '""', "12"])
def test_list_file_path_must_be_a_usable_path_string(tmp_path: Path, target: str) -> None:
    path = _write(tmp_path, f'version: "t1"\nlist_files:\n  parties: {target}\nrules: []\n')
    with pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert error.line == 3
    assert error.message == "list file of 'parties' must be a path string"


def test_unexpected_failure_while_loading_becomes_a_rule_set_error_at_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_compiler(*args: object) -> object:
        raise RuntimeError("a bug in the condition compiler")

    monkeypatch.setattr(loader_module, "compile_condition", broken_compiler)
    path = _write(tmp_path, 'version: "t1"\nrules:\n' + _GOOD_RULE)
    with caplog.at_level(logging.ERROR), pytest.raises(RuleSetError) as caught:
        load_rule_set(path, FEATURES)
    (error,) = caught.value.errors
    assert (error.file, error.line) == (str(path), 3)
    assert error.message == "cannot load rule set: unexpected RuntimeError"
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.sources == (path,)
    assert any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    "condition",
    [
        "__import__('os').system('echo pwned') == 0",
        "item.__class__ == 'x'",
        "item.hs_code.__class__.__name__ == 'str'",
        "item.hs_code.upper() == 'X'",
        "(lambda: True)()",
        "[x for x in lists.watch] == []",
        "any(x for x in [1])",
        "item.hs_code[0] == '8'",
        "item.hs_code[0:2] == '85'",
        "{'a': 1} == {}",
        "f'{item.hs_code}' == 'x'",
        "(x := 1) == 1",
        "True if True else False",
        "eval('1') == 1",
        "exec('import os') is None",
        "getattr(item, 'hs_code') == 'x'",
        "open('/etc/passwd') == 'x'",
        "'8' in item.hs_code",
        "item.hs_code ** 2 == 1",
        "item == 1",
        "None == None",
        "b'x' == b'x'",
        "1j == 1j",
        "len(item.hs_code, key=1) == 1",
        "().__class__.__bases__[0].__subclasses__() == []",
        "import os",
        "True; import os",
    ],
)
def test_code_injection_attempts_are_refused_at_load_time(tmp_path: Path, condition: str) -> None:
    with pytest.raises(RuleSetError) as caught:
        _rule_set(tmp_path, _rule("ATTACK", condition), lists="watch: ['X']")
    assert all(e.rule_id == "ATTACK" for e in caught.value.errors)


def test_list_files_load_relative_to_the_rule_file(tmp_path: Path) -> None:
    _write(tmp_path, "# parties\nGB1  # first\n\nGB2\n", name="parties.txt")
    _write(tmp_path, "- 'CN 8517'\n", name="pairs.yaml")
    path = _write(
        tmp_path,
        """
        version: "t1"
        list_files:
          parties: parties.txt
          pairs: pairs.yaml
        rules:
          - id: P
            description: x
            condition: "declaration.importer_id in lists.parties"
            weight: 0.5
        """,
    )
    rule_set = load_rule_set(path, FEATURES)
    assert rule_set.lists == {"parties": ("GB1", "GB2"), "pairs": ("CN 8517",)}
    assert rule_set.sources == (path, tmp_path / "parties.txt", tmp_path / "pairs.yaml")
    hit = rule_set.evaluate(item_contexts(_declaration(importer=Party("GB2")), FEATURES, None), on=DAY)
    assert [h.rule_id for h in hit] == ["P"]


# --- reload --------------------------------------------------------------------------------------


def _bump(path: Path, text: str | bytes) -> None:
    """Rewrites a file and moves its mtime on, so the change is seen even within one clock tick."""
    stat = path.stat()
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


_SET_V1 = 'version: "v1"\nrules:\n  - {id: A, description: a, condition: "True", weight: 0.1}\n'
_SET_V2 = 'version: "v2"\nrules:\n  - {id: B, description: b, condition: "True", weight: 0.2}\n'


def test_holder_swaps_in_a_good_changed_file(tmp_path: Path) -> None:
    path = _write(tmp_path, _SET_V1)
    holder = RuleSetHolder(path, FEATURES)
    assert holder.current.version == "v1"
    assert holder.reload_if_changed() is False
    _bump(path, _SET_V2)
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"
    assert holder.last_error is None


def test_broken_reload_keeps_previous_rule_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, _SET_V1)
    holder = RuleSetHolder(path, FEATURES)
    previous = holder.current
    _bump(path, 'version: "v2"\nrules:\n  - {id: B, description: b, condition: "nope", weight: 3}\n')
    with caplog.at_level(logging.ERROR):
        assert holder.reload_if_changed() is False
    assert holder.current is previous
    assert holder.last_error is not None
    assert len(holder.last_error.errors) == 2
    assert sum("rule B" in r.getMessage() for r in caplog.records) == 2
    caplog.clear()
    assert holder.reload_if_changed() is False  # the same broken file is not reloaded or logged again
    assert not caplog.records
    _bump(path, _SET_V2)
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"
    assert holder.last_error is None


@pytest.mark.parametrize(
    ("broken", "line", "message"),
    [
        ('version: "v2"\nrules: ' + "[" * 5000 + "\n", 2, "nested more than"),
        (b'version: "v2"\nrules: []\n\xff\xfe\x00\x80binary', 3, "not UTF-8 text"),
        ('version: "v2"\nlist_files: {parties: missing.txt}\nrules: []\n', 0, "cannot read list 'parties'"),
    ],
    ids=["deeply-nested-yaml", "binary", "missing-list-file"],
)
def test_broken_file_never_escapes_a_reload_and_keeps_the_previous_set(
    tmp_path: Path, broken: str | bytes, line: int, message: str
) -> None:
    path = _write(tmp_path, _SET_V1)
    holder = RuleSetHolder(path, FEATURES)
    previous = holder.current
    _bump(path, broken)
    assert holder.reload_if_changed() is False
    assert holder.current is previous
    assert holder.last_error is not None
    (error,) = holder.last_error.errors
    assert error.line == line and message in error.message
    assert holder.reload() is False  # a forced reload does not raise either
    assert holder.current is previous
    _bump(path, _SET_V2)
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"
    assert holder.last_error is None


@pytest.mark.parametrize("failure", [RecursionError, MemoryError, KeyError])
def test_holder_survives_a_loader_that_raises_something_unexpected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    path = _write(tmp_path, _SET_V1)
    holder = RuleSetHolder(path, FEATURES)
    previous = holder.current

    def broken_loader(*args: object) -> RuleSet:
        raise failure("boom")

    monkeypatch.setattr(holder_module, "load_rule_set", broken_loader)
    _bump(path, _SET_V2)
    assert holder.reload_if_changed() is False
    assert holder.current is previous
    assert holder.last_error is not None
    assert str(holder.last_error) == f"{path}:1: cannot load rule set: unexpected {failure.__name__}"


def test_holder_reports_health_facts(tmp_path: Path) -> None:
    holder = RuleSetHolder(_write(tmp_path, _SET_V1), FEATURES)
    assert holder.last_error is None
    assert holder.current.runtime_error_count == 0


def test_holder_reloads_when_a_list_file_changes(tmp_path: Path) -> None:
    parties = _write(tmp_path, "GB1\n", name="parties.txt")
    path = _write(
        tmp_path,
        'version: "v1"\nlist_files: {parties: parties.txt}\n'
        "rules:\n  - {id: W, description: w, condition: 'declaration.importer_id in lists.parties', weight: 0.5}\n",
    )
    holder = RuleSetHolder(path, FEATURES)
    first = holder.current
    assert first.lists["parties"] == ("GB1",)
    _bump(parties, "GB1\nGB2\n")
    assert holder.reload_if_changed() is True
    assert holder.current is not first
    assert holder.current.lists["parties"] == ("GB1", "GB2")


def test_holder_notices_a_fix_to_a_list_file_the_broken_set_named(tmp_path: Path) -> None:
    path = _write(tmp_path, _SET_V1)
    holder = RuleSetHolder(path, FEATURES)
    _bump(path, 'version: "v2"\nlist_files: {parties: parties.txt}\nrules: []\n')
    assert holder.reload_if_changed() is False
    _write(tmp_path, "GB1\n", name="parties.txt")
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"


def test_forced_reload_reloads_an_unchanged_file(tmp_path: Path) -> None:
    holder = RuleSetHolder(_write(tmp_path, _SET_V1), FEATURES)
    previous = holder.current
    assert holder.reload() is True
    assert holder.current is not previous


def test_holder_first_load_error_is_raised(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError):
        RuleSetHolder(_write(tmp_path, "version: 1\n"), FEATURES)


def test_item_number_in_hit_follows_context_not_position(tmp_path: Path) -> None:
    rule_set = _rule_set(tmp_path, _rule("Q", "item.quantity > 50"))
    declaration = _declaration(_item(7, quantity=10.0), _item(9))
    (hit,) = rule_set.evaluate(item_contexts(declaration, FEATURES, None), on=DAY)
    assert hit.item_numbers == (9,)
    assert hit.fields == ("declaration.items[1].quantity",)
