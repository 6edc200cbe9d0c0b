"""Permit cross-checks at scoring time: each goods item against the controlled goods table and the permits it cites.

Every problem becomes a RuleHit whose rule_id is a reason code below, one hit per (reason,
permit) listing every item it concerns. Balances and single use are not judged here: the
screener works from a cached snapshot, so it only produces the LedgerClaim, and the store's
ledger transaction decides it under a lock; `flag_refusals` turns what the ledger refused into hits.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from risk_service.domain.assessment import Assessment, Channel, RuleHit
from risk_service.domain.declaration import Declaration, DeclarationType, GoodsItem
from risk_service.domain.permits.controlled_goods import ControlledGoodsTable, Requirement
from risk_service.domain.permits.ledger import DrawRefusal, LedgerClaim, PermitDraw, RefusalKind
from risk_service.domain.permits.model import (
    ItemPermitFacts,
    LineBalance,
    Permit,
    PermitGoodsLine,
    PermitState,
    PermitStatus,
)
from risk_service.domain.permits.units import MASS, convert, dimension
from risk_service.domain.policy import SelectionPolicy, combine_scores
from risk_service.domain.reasons import ReasonConfig

logger = logging.getLogger(__name__)

PERMIT_MISSING: Final = "PERMIT_MISSING"
PERMIT_UNKNOWN: Final = "PERMIT_UNKNOWN"
PERMIT_SUSPENDED: Final = "PERMIT_SUSPENDED"
PERMIT_REVOKED: Final = "PERMIT_REVOKED"
PERMIT_EXPIRED: Final = "PERMIT_EXPIRED"
PERMIT_NOT_YET_VALID: Final = "PERMIT_NOT_YET_VALID"
PERMIT_HOLDER_MISMATCH: Final = "PERMIT_HOLDER_MISMATCH"
PERMIT_GOODS_NOT_COVERED: Final = "PERMIT_GOODS_NOT_COVERED"
PERMIT_ORIGIN_NOT_ALLOWED: Final = "PERMIT_ORIGIN_NOT_ALLOWED"
PERMIT_OFFICE_NOT_ALLOWED: Final = "PERMIT_OFFICE_NOT_ALLOWED"
PERMIT_UNIT_NOT_CONVERTIBLE: Final = "PERMIT_UNIT_NOT_CONVERTIBLE"
PERMIT_BALANCE_EXCEEDED: Final = "PERMIT_BALANCE_EXCEEDED"
PERMIT_ALREADY_USED: Final = "PERMIT_ALREADY_USED"
# The ledger found the permit suspended, revoked or gone under its lock; which one is not known there.
PERMIT_NOT_USABLE: Final = "PERMIT_NOT_USABLE"
# A new version of a cancelled declaration: its permits' balances were given back, so it draws nothing.
PERMIT_DECLARATION_CANCELLED: Final = "PERMIT_DECLARATION_CANCELLED"

#: Default (min_channel, weight) of each reason code; PermitCheckConfig overrides them.
DEFAULTS: Final[Mapping[str, tuple[Channel | None, float]]] = MappingProxyType(
    {
        PERMIT_MISSING: (Channel.YELLOW, 0.35),
        PERMIT_UNKNOWN: (Channel.YELLOW, 0.4),
        PERMIT_SUSPENDED: (Channel.YELLOW, 0.3),
        PERMIT_REVOKED: (Channel.RED, 0.5),
        PERMIT_EXPIRED: (Channel.YELLOW, 0.3),
        PERMIT_NOT_YET_VALID: (Channel.YELLOW, 0.2),
        PERMIT_HOLDER_MISMATCH: (Channel.RED, 0.5),
        PERMIT_GOODS_NOT_COVERED: (Channel.YELLOW, 0.35),
        PERMIT_ORIGIN_NOT_ALLOWED: (Channel.YELLOW, 0.35),
        PERMIT_OFFICE_NOT_ALLOWED: (Channel.YELLOW, 0.2),
        PERMIT_UNIT_NOT_CONVERTIBLE: (Channel.YELLOW, 0.1),
        PERMIT_BALANCE_EXCEEDED: (Channel.RED, 0.4),
        PERMIT_ALREADY_USED: (Channel.RED, 0.5),
        PERMIT_NOT_USABLE: (Channel.YELLOW, 0.3),
        PERMIT_DECLARATION_CANCELLED: (Channel.YELLOW, 0.3),
    }
)
REASON_CODES: Final = frozenset(DEFAULTS)

_REFUSAL_REASONS: Final = {
    RefusalKind.BALANCE: PERMIT_BALANCE_EXCEEDED,
    RefusalKind.ALREADY_USED: PERMIT_ALREADY_USED,
    RefusalKind.NOT_USABLE: PERMIT_NOT_USABLE,
    RefusalKind.DECLARATION_CANCELLED: PERMIT_DECLARATION_CANCELLED,
}
_SHOWN_ENTRIES: Final = 8  # items, prefixes or codes listed in one message before "and N more"


class PermitCheckConfig(ReasonConfig):
    """min_channel and weight of each reason code's hit; codes not given keep their DEFAULTS."""

    what = "permit check"

    def __init__(self, reasons: Mapping[str, tuple[Channel | None, float]] | None = None) -> None:
        super().__init__(DEFAULTS, reasons)


@dataclass(frozen=True, slots=True)
class PermitCheckResult:
    """What the permit checks found on one declaration, and what it asks the ledger for."""

    hits: tuple[RuleHit, ...]
    claim: LedgerClaim
    item_facts: tuple[ItemPermitFacts, ...]  # one per goods item, in item order


def item_quantity(item: GoodsItem, unit: str) -> float | None:
    """The item's quantity in `unit`, or None when it does not convert.

    Every item carries its net mass, so a mass unit is also reached from an item counted in
    pieces or litres: a permit for 1000 KGM of beef draws 180 KGM from an item of 12 cartons.
    """
    quantity = convert(item.quantity, item.quantity_unit, unit)
    if quantity is None and dimension(unit) == MASS and dimension(item.quantity_unit) != MASS:
        quantity = convert(item.net_mass_kg, "KGM", unit)
    return quantity


def check_declaration(
    declaration: Declaration,
    permits: Mapping[str, PermitState | None],
    table: ControlledGoodsTable,
    config: PermitCheckConfig,
    on: datetime | None = None,
) -> PermitCheckResult:
    """Checks every goods item against the permits it must cite and the permits it does cite.

    `permits` maps each cited id to its state (None or absent: the registry does not know it).
    Validity is judged at the declaration's lodgement time, or at `on` when it has none (and at
    the current time when neither is given). A permit that passes every check for an item draws
    from the goods line covering it when that line limits quantity or value; a permit that fails
    any check for an item draws nothing for that item.
    """
    moment = _utc(declaration.lodgement_time or on or datetime.now(UTC))
    findings = _Findings(config)
    draws: list[PermitDraw] = []
    single_use: dict[str, None] = {}
    facts: list[ItemPermitFacts] = []
    exporting = declaration.type == DeclarationType.EXPORT
    party_id = (declaration.exporter if exporting else declaration.importer).id
    office = declaration.customs_office
    for index, item in enumerate(declaration.items):
        references = item.permit_references
        if len(references) == 1:  # the common case
            cited = {references[0]: 0}
        else:  # a permit cited twice on one item counts once, at its first place
            cited = {}
            for position, permit_id in enumerate(references):
                cited.setdefault(permit_id, position)
        states = {permit_id: permits.get(permit_id) for permit_id in cited}
        quantity_in = functools.partial(item_quantity, item)

        requirements = table.requirements(item.hs_code, item.origin_country, declaration.type, quantity_in)
        if requirements:
            held = {(s.permit.type, s.permit.issuing_agency) for s in states.values() if s is not None}
            for requirement in requirements:
                if (requirement.permit_type, requirement.agency) not in held:
                    _missing(findings, requirement, item, f"declaration.items[{index}].permit_references")

        shares: list[float] = []
        days_left: list[float] = []
        for permit_id, position in cited.items():
            state = states[permit_id]
            if state is None:
                path = f"declaration.items[{index}].permit_references[{position}]"
                findings.add(PERMIT_UNKNOWN, permit_id, f"Permit {permit_id} is not in the permit registry", item, path)
                continue
            permit = state.permit
            if permit.valid_to is not None:
                days_left.append((_utc(permit.valid_to) - moment).total_seconds() / 86400.0)
            line = _usable_line(permit, item, party_id, office, moment)
            if line is None:  # the quick check says no: the full check decides, and says what failed
                path = f"declaration.items[{index}].permit_references[{position}]"
                line = _ItemCheck(findings, declaration, item, permit, path, moment).run()
                if line is None:
                    continue
            quantity = 0.0
            if line.authorised_quantity is not None:
                converted = quantity_in(line.unit)
                if converted is None:
                    path = f"declaration.items[{index}].permit_references[{position}]"
                    _ItemCheck(findings, declaration, item, permit, path, moment).fail(
                        PERMIT_UNIT_NOT_CONVERTIBLE,
                        f"{_describe(permit)}: item quantities do not convert to the authorised unit",
                        f"item {item.item_number} has {_number(item.quantity)} {item.quantity_unit or '(no unit)'}, "
                        f"line {line.line_number} is in {line.unit}",
                    )
                    continue
                quantity = converted
            share = _share(line, state.balance(line.line_number))
            if share is not None:
                shares.append(share)
            if line.authorised_quantity is not None or line.authorised_value is not None:
                draws.append(PermitDraw(permit_id, line.line_number, item.item_number, quantity, item.customs_value))
            if permit.single_use:
                single_use[permit_id] = None
        facts.append(
            ItemPermitFacts(
                balance_used=max(shares) if shares else math.nan,
                days_to_expiry=min(days_left) if days_left else math.nan,
            )
        )
    return PermitCheckResult(
        hits=findings.hits(),
        claim=LedgerClaim(draws=tuple(draws), single_use_permits=tuple(single_use)),
        item_facts=tuple(facts),
    )


def _usable_line(
    permit: Permit, item: GoodsItem, party_id: str, office: str, moment: datetime
) -> PermitGoodsLine | None:
    """The line the item draws from when the permit passes every check of _ItemCheck, else None.

    The common case, decided without building a message; _ItemCheck then says what failed.
    """
    if permit.status != PermitStatus.ACTIVE or permit.holder_id != party_id:
        return None
    if permit.valid_from is not None and moment < _utc(permit.valid_from):
        return None
    if permit.valid_to is not None and moment >= _utc(permit.valid_to):
        return None
    allowed = permit.allowed_origin_countries
    if allowed and item.origin_country not in allowed:
        return None
    offices = permit.allowed_customs_offices
    if offices and office not in offices:
        return None
    return permit.covering_line(item.hs_code)


class _ItemCheck:
    """The checks of one cited, known permit against one goods item; records each failure."""

    def __init__(
        self,
        findings: _Findings,
        declaration: Declaration,
        item: GoodsItem,
        permit: Permit,
        path: str,
        moment: datetime,
    ) -> None:
        self.findings = findings
        self.declaration = declaration
        self.item = item
        self.permit = permit
        self.path = path
        self.moment = moment
        self.failed = False

    def fail(self, reason: str, head: str, detail: str = "") -> None:
        self.failed = True
        self.findings.add(reason, self.permit.permit_id, head, self.item, self.path, detail)

    def run(self) -> PermitGoodsLine | None:
        """The goods line the item would draw from, or None when any check failed."""
        permit, item, declaration = self.permit, self.item, self.declaration
        described = _describe(permit)
        if permit.status == PermitStatus.REVOKED:
            self.fail(PERMIT_REVOKED, f"{described} is revoked")
        elif permit.status == PermitStatus.SUSPENDED:
            self.fail(PERMIT_SUSPENDED, f"{described} is suspended")
        elif permit.status != PermitStatus.ACTIVE:  # the registry stores no other status; never drawn from
            self.fail(PERMIT_SUSPENDED, f"{described} is not active (status {_name(permit.status)})")
        if permit.valid_from is not None and self.moment < _utc(permit.valid_from):
            start = _utc(permit.valid_from)
            self.fail(
                PERMIT_NOT_YET_VALID,
                f"{described} is valid from {_day(start, self.moment)}, after lodgement on {_day(self.moment, start)}",
            )
        if permit.valid_to is not None and self.moment >= _utc(permit.valid_to):
            end = _utc(permit.valid_to)
            self.fail(
                PERMIT_EXPIRED,
                f"{described} expired on {_day(end, self.moment)}, before lodgement on {_day(self.moment, end)}",
            )
        exporting = declaration.type == DeclarationType.EXPORT
        party = declaration.exporter if exporting else declaration.importer
        if permit.holder_id != party.id:
            role = "exporter" if exporting else "importer"
            self.fail(
                PERMIT_HOLDER_MISMATCH,
                f"{described} is held by {permit.holder_id}, not the {role} {party.id or '(none)'}",
            )
        line = permit.covering_line(item.hs_code)
        lines = permit.lines_by_prefix
        if line is None:
            self.fail(
                PERMIT_GOODS_NOT_COVERED,
                f"{described} covers HS {_listed(lines)} only" if lines else f"{described} covers no goods",
                f"not HS {item.hs_code or '(none)'} (item {item.item_number})",
            )
        allowed = permit.allowed_origin_countries
        if allowed and item.origin_country not in allowed:
            self.fail(
                PERMIT_ORIGIN_NOT_ALLOWED,
                f"{described} allows origins {_listed(allowed)} only",
                f"not {item.origin_country or '(none)'} (item {item.item_number})",
            )
        offices = permit.allowed_customs_offices
        if offices and declaration.customs_office not in offices:
            self.fail(
                PERMIT_OFFICE_NOT_ALLOWED,
                f"{described} may be used at customs offices {_listed(offices)} only, "
                f"not {declaration.customs_office or '(none)'}",
            )
        return None if self.failed else line


def _missing(findings: _Findings, requirement: Requirement, item: GoodsItem, path: str) -> None:
    findings.add(
        PERMIT_MISSING,
        f"{_name(requirement.permit_type)}/{requirement.agency}",
        f"No {_name(requirement.permit_type)} from {requirement.agency} cited",
        item,
        path,
        f"item {item.item_number}, HS {item.hs_code} ({requirement.description})",
    )


def _share(line: PermitGoodsLine, balance: LineBalance) -> float | None:
    """How much of the line was drawn before this filing: of the quantity, or of the value when only it is limited."""
    if line.authorised_quantity is not None:
        drawn, authorised = balance.drawn_quantity, line.authorised_quantity
    elif line.authorised_value is not None:
        drawn, authorised = balance.drawn_value, line.authorised_value
    else:
        return None
    if authorised > 0:
        return drawn / authorised
    return 1.0  # nothing was authorised, so nothing remains


# -- ledger refusals ----------------------------------------------------------------------------


def flag_refusals(
    assessment: Assessment,
    declaration: Declaration,
    refusals: Sequence[DrawRefusal],
    config: PermitCheckConfig,
    policy: SelectionPolicy,
    permits: Mapping[str, PermitState | None] | None = None,
) -> Assessment:
    """The assessment with a hit per refused permit, its risk score and channel recomputed.

    Called by the store inside the ledger transaction, so it must not raise. `permits`, when
    given, adds each line's authorised quantity or value to the messages. The channel never goes
    below the assessment's, and random_control stays as it was decided.
    """
    if not refusals:
        return assessment
    try:
        findings = _Findings(config)
        for refusal in refusals:
            _refusal(findings, declaration, refusal, permits or {})
        return _rescored(assessment, (*assessment.rule_hits, *findings.hits()), policy)
    except Exception:  # the ledger has refused; the assessment must be flagged whatever went wrong here
        logger.exception("flagging %d ledger refusals of %s failed", len(refusals), assessment.declaration_id)
        fallback = tuple(
            RuleHit(
                rule_id=_REFUSAL_REASONS.get(refusal.kind, PERMIT_NOT_USABLE),
                message=f"Permit {refusal.permit_id}: the permit ledger refused the draw",
                fields=(),
                weight=config.weight(_REFUSAL_REASONS.get(refusal.kind, PERMIT_NOT_USABLE)),
                min_channel=config.min_channel(_REFUSAL_REASONS.get(refusal.kind, PERMIT_NOT_USABLE)),
            )
            for refusal in refusals
        )
        hits = (*assessment.rule_hits, *fallback)
        channel = max([assessment.channel, *(h.min_channel for h in fallback if h.min_channel is not None)])
        return replace(assessment, rule_hits=hits, channel=channel)


def _rescored(assessment: Assessment, hits: tuple[RuleHit, ...], policy: SelectionPolicy) -> Assessment:
    risk = combine_scores(assessment.model_score, [h.weight for h in hits])
    channel, _ = policy.decide(assessment.declaration_id, assessment.declaration_version, risk, hits)
    if assessment.random_control and policy.random_control_channel > channel:
        channel = policy.random_control_channel
    return replace(assessment, rule_hits=hits, risk_score=risk, channel=max(channel, assessment.channel))


def _refusal(
    findings: _Findings,
    declaration: Declaration,
    refusal: DrawRefusal,
    permits: Mapping[str, PermitState | None],
) -> None:
    reason = _REFUSAL_REASONS.get(refusal.kind, PERMIT_NOT_USABLE)
    permit_id = refusal.permit_id
    places = _places(declaration, permit_id, refusal.item_numbers)
    state = permits.get(permit_id)
    described = _describe(state.permit) if state is not None else f"Permit {permit_id}"
    if refusal.kind == RefusalKind.BALANCE:
        line = state.permit.line(refusal.line_number) if state is not None else None
        numbers = [item.item_number for item, _ in places] or list(refusal.item_numbers)
        cited = f" ({'item' if len(numbers) == 1 else 'items'} {_listed(numbers)})" if numbers else ""
        head, detail = f"Permit {permit_id}", f"line {refusal.line_number}: {_balance(refusal, line)}{cited}"
        joiner = " "
    elif refusal.kind == RefusalKind.DECLARATION_CANCELLED:
        head = (
            f"Declaration {declaration.declaration_id} was cancelled and its draws given back; "
            f"version {declaration.version} draws nothing from {described}"
        )
        detail, joiner = "", ""
    elif refusal.kind == RefusalKind.ALREADY_USED:
        used_by = f"declaration {refusal.used_by}" if refusal.used_by else "another declaration"
        head, detail, joiner = f"{described} is single-use and was already used by {used_by}", "", ""
    else:
        head = f"{described} was no longer usable (suspended, revoked or withdrawn) when drawn from"
        detail, joiner = "", ""
    if not places:
        findings.add(reason, permit_id, head, None, "", detail, joiner)
    for item, path in places:
        findings.add(reason, permit_id, head, item, path, detail, joiner)


def _places(declaration: Declaration, permit_id: str, item_numbers: Sequence[int]) -> list[tuple[GoodsItem, str]]:
    """(item, field path of its reference to the permit) for the refused items, or every citing item."""
    wanted = set(item_numbers)
    out: list[tuple[GoodsItem, str]] = []
    for index, item in enumerate(declaration.items):
        cites = permit_id in item.permit_references
        if (item.item_number in wanted) if wanted else cites:
            suffix = f"[{item.permit_references.index(permit_id)}]" if cites else ""
            out.append((item, f"declaration.items[{index}].permit_references{suffix}"))
    return out


def _balance(refusal: DrawRefusal, line: PermitGoodsLine | None) -> str:
    """Both figures of a refused draw: what was asked and what remains (of what was authorised, when known)."""
    quantity_over = refusal.remaining_quantity is not None and refusal.requested_quantity > refusal.remaining_quantity
    value_over = refusal.remaining_value is not None and refusal.requested_value > refusal.remaining_value
    parts: list[str] = []
    if refusal.remaining_quantity is not None and (quantity_over or not value_over):
        unit = f" {refusal.unit}" if refusal.unit else ""
        authorised = refusal.authorised_quantity
        if authorised is None and line is not None:
            authorised = line.authorised_quantity
        of = f" of {_number(authorised)}{unit}" if authorised is not None else ""
        parts.append(
            f"{_number(refusal.requested_quantity)}{unit} requested, "
            f"{_number(refusal.remaining_quantity)}{unit} remain{of}"
        )
    if refusal.remaining_value is not None and (value_over or not quantity_over):
        authorised = refusal.authorised_value
        if authorised is None and line is not None:
            authorised = line.authorised_value
        of = f" of {_money(authorised)}" if authorised is not None else ""
        parts.append(f"value {_money(refusal.requested_value)} requested, {_money(refusal.remaining_value)} remain{of}")
    return "; ".join(parts) or "the balance does not cover the draw"


# -- hits ---------------------------------------------------------------------------------------


@dataclass
class _Group:
    head: str
    joiner: str  # between the head and the details
    item_numbers: dict[int, None] = field(default_factory=dict)
    fields: dict[str, None] = field(default_factory=dict)
    details: dict[str, None] = field(default_factory=dict)


class _Findings:
    """Problems found, grouped into one hit per (reason code, permit) in the order first found."""

    def __init__(self, config: PermitCheckConfig) -> None:
        self.config = config
        self.groups: dict[tuple[str, str], _Group] = {}

    def add(
        self,
        reason: str,
        subject: str,
        head: str,
        item: GoodsItem | None,
        path: str,
        detail: str = "",
        joiner: str = ": ",
    ) -> None:
        group = self.groups.get((reason, subject))
        if group is None:
            group = self.groups[(reason, subject)] = _Group(head, joiner)
        if item is not None:
            group.item_numbers.setdefault(item.item_number, None)
        if path:
            group.fields.setdefault(path, None)
        if detail:
            group.details.setdefault(detail, None)

    def hits(self) -> tuple[RuleHit, ...]:
        out: list[RuleHit] = []
        for (reason, _), group in self.groups.items():
            items = list(group.item_numbers)
            if group.details:
                message = f"{group.head}{group.joiner}{_listed(list(group.details), separator='; ')}"
            elif items:
                message = f"{group.head} (cited on {'item' if len(items) == 1 else 'items'} {_listed(items)})"
            else:
                message = group.head
            out.append(
                RuleHit(
                    rule_id=reason,
                    message=message,
                    fields=tuple(group.fields),
                    weight=self.config.weight(reason),
                    min_channel=self.config.min_channel(reason),
                    item_numbers=tuple(items),
                )
            )
        return tuple(out)


# -- message pieces -----------------------------------------------------------------------------


def _describe(permit: Permit) -> str:
    return f"Permit {permit.permit_id} ({_name(permit.type)}, {permit.issuing_agency})"


def _name(value: object) -> str:
    """An enum member's name; a number a newer registry stored stays a number rather than raise."""
    return str(getattr(value, "name", value))


def _listed(values: Sequence[object] | Mapping[str, object], separator: str = ", ") -> str:
    shown = [str(v) for v in list(values)[:_SHOWN_ENTRIES]]
    more = len(values) - len(shown)
    return separator.join(shown) + (f" and {more} more" if more > 0 else "")


def _day(moment: datetime, other: datetime) -> str:
    """The date; with the time too when `other` falls on the same day, so the order is visible."""
    if moment.date() == other.date():
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"{moment:%Y-%m-%d}"


def _number(value: float) -> str:
    value = float(value)  # an int where a float is declared has no is_integer() before Python 3.12
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _money(value: float) -> str:
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:,.2f}"


def _utc(moment: datetime) -> datetime:
    # A naive time from a careless caller is read as UTC rather than raise on comparison; _day
    # formats in UTC so an officer sees one clock. Times from the store are UTC already.
    if moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
