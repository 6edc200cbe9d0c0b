"""Rule sets at run time: which rules apply on a date, and their hits on a filing's rows (declaration items)."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from risk_service.domain.assessment import Channel, RuleHit
from risk_service.domain.rules.conditions import CompiledCondition
from risk_service.domain.rules.context import DECLARATION_SUBJECT, HITS_WEAK_COUNT, RuleSubject
from risk_service.domain.rules.messages import MessageTemplate

logger = logging.getLogger(__name__)

#: A first-pass hit with 0 < weight < WEAK_HIT_WEIGHT is a weak signal; `hits.weak_count` in
#: the second pass counts them, so several weak signals together can lift a declaration.
WEAK_HIT_WEIGHT: Final = 0.2


@dataclass(frozen=True, slots=True)
class Rule:
    """One loaded rule. `condition` holds the source text and the compiled closure."""

    id: str
    description: str
    condition: CompiledCondition
    message: MessageTemplate
    weight: float
    min_channel: Channel | None = None
    valid_from: datetime.date | None = None
    valid_to: datetime.date | None = None  # exclusive: the rule stops applying on this day
    enabled: bool = True
    line: int = 0
    #: What the rule screens: decides which names are per row, the field paths and the row numbers.
    subject: RuleSubject = field(default=DECLARATION_SUBJECT, repr=False)
    item_level: bool = field(init=False)  # per row (goods item): the condition uses a row-level name
    accumulation: bool = field(init=False)
    _fields_cache: dict[tuple[Hashable, ...], tuple[str, ...]] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        names = self.condition.names
        object.__setattr__(self, "item_level", any(self.subject.is_row_level(n) for n in names))
        object.__setattr__(self, "accumulation", any(n.startswith("hits.") for n in names))

    def applies_on(self, day: datetime.date) -> bool:
        if not self.enabled:
            return False
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day < self.valid_to

    def fields(self, locations: Sequence[Hashable]) -> tuple[str, ...]:
        """Field paths of the condition's names, for each matching row location.

        A location is the row's 0-based position among the contexts, or the value of the
        subject's `row_location` key (a declaration item's position; a cargo row's container and item).
        """
        key = tuple(locations)
        cached = self._fields_cache.get(key)
        if cached is not None:
            return cached
        paths: dict[str, None] = {}
        field_paths = self.subject.field_paths
        for location in key:
            for name in self.condition.names:
                for path in field_paths(name, location):
                    paths.setdefault(path, None)
        if len(self._fields_cache) > 256:
            self._fields_cache.clear()
        self._fields_cache[key] = fields = tuple(paths)
        return fields


_FIRST_ONLY: Final = (0,)


@dataclass(frozen=True, slots=True)
class _ActiveRules:
    """The rules that apply on one day, split into the first pass and the accumulation pass."""

    first_pass: tuple[Rule, ...]
    second_pass: tuple[Rule, ...]
    second_pass_item_level: bool


class RuleSet:
    """An immutable, loaded rule set; safe to share between threads."""

    def __init__(
        self,
        version: str,
        rules: Sequence[Rule],
        lists: Mapping[str, Sequence[object]],
        path: Path | None = None,
        sources: Sequence[Path] = (),
        subject: RuleSubject = DECLARATION_SUBJECT,
    ) -> None:
        self.version = version
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.lists: Mapping[str, tuple[object, ...]] = MappingProxyType({k: tuple(v) for k, v in lists.items()})
        self.path = path
        self.sources = tuple(sources)  # every file the set was read from, for change detection
        self.subject = subject  # what the set screens: the contexts `evaluate` expects
        self._active: dict[datetime.date, _ActiveRules] = {}
        self._errors_lock = threading.Lock()
        self._runtime_errors: dict[str, int] = {}
        self._runtime_error_total = 0

    @property
    def runtime_error_count(self) -> int:
        """Conditions that raised while evaluating (each counted as not matched); O(1), lock-free."""
        # A plain int, not a sum over the dict: a health check may read it while requests count.
        return self._runtime_error_total

    @property
    def runtime_errors_by_rule(self) -> Mapping[str, int]:
        with self._errors_lock:
            return dict(self._runtime_errors)

    def evaluate(self, contexts: Sequence[Mapping[str, object]], on: datetime.date) -> tuple[RuleHit, ...]:
        """Hits of the rules that apply on `on`, one per rule, over every item context."""
        if not contexts:
            return ()
        active = self._rules_on(on)
        hits: list[RuleHit] = []
        self._pass(active.first_pass, contexts, hits)
        if active.second_pass:
            weak_count = sum(1 for h in hits if 0.0 < h.weight < WEAK_HIT_WEIGHT)
            # Accumulation rules read hits.* and usually nothing per item: copy only the contexts they read.
            copied = contexts if active.second_pass_item_level else contexts[:1]
            with_hits = [{**c, HITS_WEAK_COUNT: weak_count} for c in copied]
            self._pass(active.second_pass, with_hits, hits)
        return tuple(hits)

    def _rules_on(self, day: datetime.date) -> _ActiveRules:
        cached = self._active.get(day)
        if cached is None:
            active = [r for r in self.rules if r.applies_on(day)]
            second_pass = tuple(r for r in active if r.accumulation)
            cached = _ActiveRules(
                first_pass=tuple(r for r in active if not r.accumulation),
                second_pass=second_pass,
                second_pass_item_level=any(r.item_level for r in second_pass),
            )
            if len(self._active) > 64:
                self._active.clear()
            self._active[day] = cached
        return cached

    def _pass(self, rules: Sequence[Rule], contexts: Sequence[Mapping[str, object]], hits: list[RuleHit]) -> None:
        # The hot path: most rules match nothing, so a declaration-level miss costs one condition call.
        first = contexts[0]
        for rule in rules:
            test = rule.condition.test
            if not rule.item_level:
                # A declaration-level condition has the same value on every item: evaluate it once.
                try:
                    result = test(first)
                    if result is None or not result:
                        continue
                except Exception as exc:
                    self._count_error(rule, exc)
                    continue
                hit = self._hit(rule, contexts, _FIRST_ONLY)
            else:
                matched: list[int] = []
                for position, context in enumerate(contexts):
                    try:
                        result = test(context)
                        if result is not None and result:
                            matched.append(position)
                    except Exception as exc:
                        self._count_error(rule, exc)
                if not matched:
                    continue
                hit = self._hit(rule, contexts, matched)
            if hit is not None:
                hits.append(hit)

    def _hit(self, rule: Rule, contexts: Sequence[Mapping[str, object]], matched: Sequence[int]) -> RuleHit | None:
        try:
            first = contexts[matched[0]]
            subject = rule.subject
            item_numbers = (
                tuple(_row_number(contexts[p], subject.row_number) for p in matched) if rule.item_level else ()
            )
            location = subject.row_location
            locations = matched if location is None else [_location(contexts[p], location) for p in matched]
            return RuleHit(
                rule_id=rule.id,
                message=rule.message.format(first),
                fields=rule.fields(locations),
                weight=rule.weight,
                min_channel=rule.min_channel,
                item_numbers=item_numbers,
            )
        except Exception as exc:
            self._count_error(rule, exc)
            return None

    def _count_error(self, rule: Rule, exc: Exception) -> None:
        with self._errors_lock:
            count = self._runtime_errors.get(rule.id, 0)
            self._runtime_errors[rule.id] = count + 1
            self._runtime_error_total += 1
        if count == 0:
            logger.warning(
                "rule %s (rule set %s) raised %s; treated as not matched", rule.id, self.version, type(exc).__name__
            )


def _row_number(context: Mapping[str, object], key: str) -> int:
    number = context[key]
    if not isinstance(number, int):
        raise TypeError(f"{key} is not an int")
    return number


def _location(context: Mapping[str, object], key: str) -> Hashable:
    location = context[key]
    if not isinstance(location, Hashable):
        raise TypeError(f"{key} is not hashable")
    return location
