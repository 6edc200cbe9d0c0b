"""Properties of the rule engine: no input crashes the loader or evaluation, and NaN never fires."""

from __future__ import annotations

import datetime
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk_service.domain.declaration import (
    AeoStatus,
    Declaration,
    DeclarationType,
    GoodsItem,
    Party,
    TransportMode,
)
from risk_service.domain.rules import (
    DEFAULT_RULES_PATH,
    RuleSet,
    RuleSetError,
    context_schema,
    item_contexts,
    load_rule_set,
)

FEATURES = ("unit_value_ratio", "log_value_per_kg", "importer_prior_filings", "importer_days_known", "hs_digits")
SCHEMA = context_schema(FEATURES)
DAY = datetime.date(2026, 6, 1)
LISTS = {"words": ["fak", "general cargo"], "pairs": ["CN 8517", "VN 6403"], "numbers": [1, 2.5]}

_TOKENS = [
    *SCHEMA,
    "lists.words",
    "lists.pairs",
    "lists.numbers",
    "lists.nope",
    "item",
    "__import__",
    "__class__",
    *("len", "lower", "startswith", "contains", "contains_any", "abs", "is_missing", "pair_listed", "eval"),
    *("and", "or", "not", "in", "not in", "is", "if", "else", "lambda", "for"),
    *("==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "**", "%", "//", "|", "&", "~"),
    *("(", ")", "[", "]", "{", "}", ",", ".", ":", ";", "="),
    *("0", "1", "0.25", "-3", "1e308", "1e999", "'CN'", "'8517'", "''", "True", "False", "None"),
]
_conditions = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=14).map(" ".join),
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _load(workdir: Path, conditions: list[str]) -> RuleSet:
    document = {
        "version": "p1",
        "lists": LISTS,
        "rules": [
            {"id": f"R{i}", "description": "hit {item.hs_code}", "condition": c, "weight": 0.1}
            for i, c in enumerate(conditions)
        ],
    }
    path = workdir / "rules.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return load_rule_set(path, FEATURES)


def _declaration() -> Declaration:
    item = GoodsItem(1, "8517130000", "General cargo", 1.0, "NAR", 1.0, 1.0, 1.0, "CN")
    return Declaration(
        "D1", 1, DeclarationType.IMPORT, None, "GB000060", Party("A"), Party("B"), Party("C"), AeoStatus.NONE,
        "CN", "CN", "GB", TransportMode.SEA, "T1", (), "FOB", "USD", 1.0, (item, item),
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=_conditions)
def test_random_conditions_either_load_or_raise_rule_set_error(workdir: Path, condition: str) -> None:
    try:
        rule_set = _load(workdir, [condition])
    except RuleSetError as exc:
        assert exc.errors
        assert all(e.rule_id == "R0" and e.line > 0 for e in exc.errors), exc.errors
        return
    # Whatever loaded also evaluates without raising, on a real context.
    rule_set.evaluate(item_contexts(_declaration(), FEATURES, None), on=DAY)


_DEFAULT_BYTES = DEFAULT_RULES_PATH.read_bytes()
_YAML_PIECES = [b"[", b"]", b"{", b"}", b"- ", b": ", b"\n", b"  ", b"&a ", b"*a", b"!!python/object ", b"'", b'"']


@st.composite
def _damaged_rule_files(draw: st.DrawFn) -> bytes:
    """The default rule file with random spans cut, replaced by YAML syntax or by arbitrary bytes."""
    data = _DEFAULT_BYTES
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(data)))
        end = draw(st.integers(start, min(len(data), start + 40)))
        junk = draw(
            st.one_of(st.binary(max_size=12), st.lists(st.sampled_from(_YAML_PIECES), max_size=30).map(b"".join))
        )
        data = data[:start] + junk + data[end:]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(_damaged_rule_files(), st.binary(max_size=200)))
def test_any_damaged_rule_file_loads_or_raises_rule_set_error(workdir: Path, data: bytes) -> None:
    path = workdir / "damaged.yaml"
    path.write_bytes(data)
    try:
        load_rule_set(path, FEATURES)
    except RuleSetError as exc:
        assert exc.errors
        assert all(e.file and e.line >= 0 and e.message for e in exc.errors), exc.errors


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
_contexts = st.lists(
    st.dictionaries(st.sampled_from(sorted(SCHEMA)), _values, max_size=len(SCHEMA)),
    min_size=0,
    max_size=3,
)


@pytest.fixture(scope="module")
def default_rules() -> RuleSet:
    return load_rule_set(DEFAULT_RULES_PATH, FEATURES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(contexts=_contexts)
def test_random_contexts_never_crash_evaluation(default_rules: RuleSet, contexts: list[dict[str, object]]) -> None:
    hits = default_rules.evaluate(contexts, on=DAY)
    assert all(-1 <= h.weight <= 1 for h in hits)


def _typed_value(kind: type) -> st.SearchStrategy[object]:
    if kind is str:
        return st.text(max_size=20)
    if kind is int:
        return st.integers(min_value=-(10**6), max_value=10**6)
    return st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_well_typed_contexts_never_raise_in_default_rules(default_rules: RuleSet, data: st.DataObject) -> None:
    (base,) = item_contexts(_declaration(), FEATURES, None)[:1]
    context = {name: data.draw(_typed_value(SCHEMA[name]), label=name) if name in base else None for name in base}
    before = default_rules.runtime_error_count
    default_rules.evaluate([context], on=DAY)
    assert default_rules.runtime_error_count == before


_OPS = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
_leaf = st.builds(
    lambda name, op, number: f"features.{name} {op} {number}",
    st.sampled_from(FEATURES),
    _OPS,
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
) | st.builds(
    lambda name, numbers, negate: f"features.{name} {'not in' if negate else 'in'} {numbers}",
    st.sampled_from(FEATURES),
    st.lists(st.integers(-5, 5), min_size=1, max_size=3),
    st.booleans(),
)
_feature_conditions = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        inner.map(lambda c: f"not ({c})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}) and ({p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]}) or ({p[1]})"),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(condition=_feature_conditions)
def test_conditions_over_missing_features_never_fire(workdir: Path, condition: str) -> None:
    rule_set = _load(workdir, [condition])
    declaration = _declaration()
    rows = np.full((len(declaration.items), len(FEATURES)), math.nan)
    assert rule_set.evaluate(item_contexts(declaration, FEATURES, rows), on=DAY) == ()
    assert rule_set.runtime_error_count == 0
