"""Rule engine: analyst-written YAML rule sets, a typed condition language, and hot reload.

A rule set file looks like this (see README.md in this package for the full reference)::

    version: "2026.11.1"              # reported in every assessment
    lists:                            # named lists, used as lists.<name> in conditions
      watchlisted_parties: ["GB123456789000"]
    list_files:                       # or lists in files of their own, relative to this file:
      high_risk_pairs: high_risk_pairs.yaml   # a YAML sequence; any other suffix: one entry a line
    rules:
      - id: UV-LOW                    # unique; letters, digits, '.', '_' or '-'
        description: "Unit value {features.unit_value_ratio:.2f}x the HS reference band"
        condition: "features.unit_value_ratio < 0.25"
        weight: 0.3                   # in [-1, 1]; negative is a credit
        min_channel: YELLOW           # optional: GREEN | BLUE | YELLOW | RED
        valid_from: 2026-01-01        # optional, inclusive
        valid_to: 2027-01-01          # optional, exclusive
        enabled: true                 # optional, default true

Conditions are Python-like expressions over dotted context names (see `context.CONTEXT_SCHEMA`):
`and or not`, comparisons (chained too), `in` / `not in` a named or literal list, `+ - * /`,
literals, and the functions len, lower, startswith, contains, contains_any, abs, is_missing
and pair_listed. They are parsed, never executed: see `conditions`.

Rule sets screen goods declarations by default. Another kind of filing brings its own names as
a `RuleSubject` (`load_rule_set(path, feature_names, subject=...)`): cargo reports use
`risk_service.domain.cargo.rules`.
"""

from __future__ import annotations

from pathlib import Path

from risk_service.domain.rules.context import (
    CONTEXT_SCHEMA,
    DECLARATION_SUBJECT,
    RuleSubject,
    context_schema,
    item_contexts,
)
from risk_service.domain.rules.engine import WEAK_HIT_WEIGHT, Rule, RuleSet
from risk_service.domain.rules.errors import RuleLoadError, RuleSetError
from risk_service.domain.rules.holder import RuleSetHolder
from risk_service.domain.rules.loader import load_rule_set

#: The shipped default rule set.
DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

__all__ = [
    "CONTEXT_SCHEMA",
    "DECLARATION_SUBJECT",
    "DEFAULT_RULES_PATH",
    "WEAK_HIT_WEIGHT",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "RuleSetError",
    "RuleSetHolder",
    "RuleSubject",
    "context_schema",
    "item_contexts",
    "load_rule_set",
]
