"""Screening: features, model, rules and selection policy for a batch of validated declarations."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

import features
from risk_service.domain.assessment import Assessment, Channel, FeatureContribution, ModelStatus, RuleHit
from risk_service.domain.consistency import is_consistency_hit
from risk_service.domain.declaration import Declaration
from risk_service.domain.entity_history import EntityHistory
from risk_service.domain.feature_rows import declaration_columns
from risk_service.domain.model_handle import LoadedModel, ModelHandle
from risk_service.domain.permits.ledger import LedgerClaim
from risk_service.domain.permits.screen import PermitScreen, PermitSnapshot
from risk_service.domain.policy import SelectionPolicy, combine_scores
from risk_service.domain.rules import RuleSet, item_contexts


class RuleSetSource(Protocol):
    @property
    def current(self) -> RuleSet: ...


@dataclass
class Screener:
    """Assesses declarations; pure CPU work, no I/O. Each call reads the model and rule set once."""

    rules: RuleSetSource
    models: ModelHandle
    policy: SelectionPolicy
    history: EntityHistory
    permits: PermitScreen | None = None  # None: permits are not checked (no single window)
    top_contributions: int = 5
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    def assess(self, declarations: Sequence[Declaration]) -> list[Assessment]:
        return [s.assessment for s in self.screen(declarations)]

    def screen(
        self,
        declarations: Sequence[Declaration],
        snapshot: PermitSnapshot | None = None,
        extra_hits: Sequence[Sequence[RuleHit]] | None = None,
    ) -> list[Screened]:
        """Assessments, with what each declaration draws from permits (settled by the store).

        `snapshot` holds the permits the declarations cite (PermitScreen.prepare); without one,
        permits are read from memory only. `extra_hits` (one sequence per declaration) are findings
        of other checks, such as cross-document consistency, that count like rule hits.
        """
        if not declarations:
            return []
        loaded = self.models.current
        rule_set = self.rules.current
        now = self.clock()
        permits = self.permits
        checks = None
        if permits is not None:
            snapshot = snapshot if snapshot is not None else permits.cached(declarations)
            checks = [permits.check(d, snapshot, now) for d in declarations]
        state = loaded.model.feature_state if loaded else None
        if not isinstance(state, features.FeatureState):  # the loader admits declaration models only
            state = None
        columns, spans = declaration_columns(
            declarations,
            self.history,
            [c.item_facts for c in checks] if checks is not None else None,
            state.outcomes if state is not None else None,
        )
        matrix = features.build_feature_matrix(columns, state)
        probabilities = loaded.model.predict_proba(matrix) if loaded else None

        drafts: list[_Draft] = []
        for n, (declaration, span) in enumerate(zip(declarations, spans, strict=True)):
            rows = matrix[span]
            hits = rule_set.evaluate(
                item_contexts(declaration, features.FEATURE_NAMES, rows),
                on=(declaration.lodgement_time or now).date(),
            )
            if checks is not None:
                hits = (*hits, *checks[n].hits)
            if extra_hits is not None:
                hits = (*hits, *extra_hits[n])
            model_score: float | None = None
            top_row = span.start
            if probabilities is not None:
                item_scores = probabilities[span]
                top = int(np.argmax(item_scores))
                model_score = float(item_scores[top])
                top_row = span.start + top
            risk = combine_scores(model_score, [h.weight for h in hits])
            channel, control = self.policy.decide(declaration.declaration_id, declaration.version, risk, hits)
            drafts.append(_Draft(declaration, hits, model_score, risk, channel, control, span.start, top_row))

        contributions = self._contributions(loaded, matrix, drafts)
        goods_version = snapshot.table.version if snapshot is not None else ""
        return [
            Screened(
                self._assessment(d, contributions.get(i, ()), loaded, rule_set.version, goods_version, now),
                checks[i].claim if checks is not None else None,
            )
            for i, d in enumerate(drafts)
        ]

    def reassess(self, original: Assessment, extra_hits: Sequence[RuleHit]) -> Assessment:
        """The stored assessment again, with more findings: same model score and draws, new channel and risk.

        For a linked document that arrived later; the model and rules are not run again. The
        original's consistency reasons are dropped: `extra_hits` are all of them, as they stand now.
        """
        kept = [h for h in original.rule_hits if not is_consistency_hit(h)]  # the new ones replace them
        hits = (*kept, *extra_hits)
        risk = combine_scores(original.model_score, [h.weight for h in hits])
        channel, control = self.policy.decide(original.declaration_id, original.declaration_version, risk, hits)
        return replace(
            original,
            assessment_id=self.new_id(),
            channel=channel,
            risk_score=risk,
            rule_hits=hits,
            random_control=control,
            assessment_time=self.clock(),
        )

    def _contributions(
        self, loaded: LoadedModel | None, matrix: np.ndarray, drafts: list[_Draft]
    ) -> dict[int, tuple[FeatureContribution, ...]]:
        """Top contributions of the riskiest item, only where an officer will read them (not GREEN)."""
        if loaded is None or self.top_contributions == 0:
            return {}
        wanted = [i for i, d in enumerate(drafts) if d.channel != Channel.GREEN]
        if not wanted:
            return {}
        rows = np.array([drafts[i].top_row for i in wanted])
        contrib = loaded.model.contributions(matrix[rows])
        names = loaded.model.feature_names
        out: dict[int, tuple[FeatureContribution, ...]] = {}
        for k, i in enumerate(wanted):
            values = contrib[k, : len(names)]  # the last column is the bias
            order = np.argsort(-np.abs(values))[: self.top_contributions]
            item_number = drafts[i].declaration.items[drafts[i].top_row - drafts[i].first_row].item_number
            out[i] = tuple(
                FeatureContribution(
                    feature=names[j],
                    value=float(matrix[rows[k], j]),
                    contribution=float(values[j]),
                    item_number=item_number,
                )
                for j in order
                if values[j] != 0.0
            )
        return out

    def _assessment(
        self,
        draft: _Draft,
        contributions: tuple[FeatureContribution, ...],
        loaded: LoadedModel | None,
        rule_set_version: str,
        controlled_goods_version: str,
        now: datetime,
    ) -> Assessment:
        d = draft.declaration
        return Assessment(
            assessment_id=self.new_id(),
            declaration_id=d.declaration_id,
            declaration_version=d.version,
            channel=draft.channel,
            risk_score=draft.risk,
            model_score=draft.model_score,
            rule_hits=draft.hits,
            contributions=contributions,
            random_control=draft.control,
            model_status=ModelStatus.SCORED if loaded else ModelStatus.UNAVAILABLE,
            model_name=loaded.name if loaded else "",
            model_version=loaded.version if loaded else "",
            rule_set_version=rule_set_version,
            assessment_time=now,
            controlled_goods_version=controlled_goods_version,
        )


@dataclass(frozen=True, slots=True)
class Screened:
    assessment: Assessment
    claim: LedgerClaim | None  # None when permits are not checked


@dataclass(slots=True)
class _Draft:
    declaration: Declaration
    hits: tuple[RuleHit, ...]
    model_score: float | None
    risk: float
    channel: Channel
    control: bool
    first_row: int  # row of the declaration's first item in the batch matrix
    top_row: int  # row of its riskiest item
