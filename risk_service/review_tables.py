"""Officers' review as text: case rows, the case report and rule statistics of `risk review` / `risk rules stats`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC
from decimal import Decimal
from typing import Any

from google.protobuf import timestamp_pb2
from google.type import money_pb2

from protos.risk.v1 import assessment_pb2, cargo_pb2, declaration_pb2, permit_pb2, review_pb2

LIST_COLUMNS = (
    "case_id", "status", "version", "channel", "risk_score", "revenue_at_stake", "office", "importer", "officer",
    "opened", "outcome",
)  # fmt: skip

STATS_COLUMNS = ("rule_id", "hits", "inspected", "findings", "finding_rate", "revenue_per_inspection", "currency")


def aligned(header: Sequence[object], rows: Iterable[Sequence[object]], indent: str = "") -> list[str]:
    """Rows under a header, each column as wide as its widest cell."""
    table = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]


def name(enum: Any, value: int) -> str:
    """An enum value without its type prefix (CHANNEL_RED -> RED); '-' when unspecified."""
    if not value:
        return "-"
    full: str = enum.Name(value) if value in enum.values() else str(value)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return full.removeprefix(prefix)


def when(ts: timestamp_pb2.Timestamp) -> str:
    """A timestamp to the minute, in UTC."""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%MZ")


def day(ts: timestamp_pb2.Timestamp) -> str:
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d")


def amount(value: float) -> str:
    """Money and quantities with thousands separators; cents only when there are any."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def money(message: money_pb2.Money) -> str:
    """A google.type.Money exactly as sent (units and nanos), with its currency."""
    value = Decimal(message.units) + Decimal(message.nanos).scaleb(-9)
    text = f"{value.normalize():,f}" if value else "0"
    return f"{text} {message.currency_code}".rstrip()


def describe_result(result: review_pb2.InspectionResult) -> str:
    findings = f" ({', '.join(result.finding_codes)})" if result.finding_codes else ""
    revenue = (
        f", revenue recovered {money(result.revenue_recovered)}"
        if result.revenue_recovered.units or result.revenue_recovered.nanos
        else ""
    )
    items = f", items {', '.join(map(str, result.item_numbers))}" if result.item_numbers else ""
    return f"{name(review_pb2.InspectionOutcome, result.outcome)}{findings}{items}{revenue}"


def outcome(case: review_pb2.Case) -> str:
    """What officers decided: the result and the override, briefly; '-' when nothing yet."""
    parts = []
    if case.HasField("result"):
        result = case.result
        codes = f" {'/'.join(result.finding_codes)}" if result.finding_codes else ""
        parts.append(f"{name(review_pb2.InspectionOutcome, result.outcome)}{codes}")
    if case.HasField("override"):
        parts.append(f"-> {name(assessment_pb2.Channel, case.override.channel)} ({case.override.reason_code})")
    return "; ".join(parts) or "-"


def case_row(case: review_pb2.Case, *, table: bool) -> tuple[object, ...]:
    """One case under LIST_COLUMNS: rounded for reading, or in full for CSV."""
    return (
        case.case_id,
        name(review_pb2.CaseStatus, case.status),
        case.version,
        name(assessment_pb2.Channel, case.channel),
        f"{case.risk_score:.3f}" if table else case.risk_score,
        amount(case.revenue_at_stake) if table else f"{case.revenue_at_stake:.15g}",
        case.customs_office or "-",
        case.importer_id or "-",
        case.assigned_officer or "-",
        when(case.open_time) if table else case.open_time.ToJsonString(),
        outcome(case),
    )


def rule_stat_row(stat: review_pb2.RuleStat, currency: str, *, table: bool) -> tuple[object, ...]:
    """One rule under STATS_COLUMNS: the rate in percent and revenue with its currency for reading."""
    rate: object = ""
    revenue: object = ""
    if stat.HasField("finding_rate"):
        rate = f"{stat.finding_rate:.1%}" if table else f"{stat.finding_rate:.15g}"
    if stat.HasField("revenue_per_inspection"):
        revenue = amount(stat.revenue_per_inspection) if table else f"{stat.revenue_per_inspection:.15g}"
    if table:
        return (
            stat.rule_id,
            stat.hits,
            stat.inspected_hits,
            stat.findings,
            rate or "-",
            f"{revenue} {currency}" if revenue else "-",
        )
    return (stat.rule_id, stat.hits, stat.inspected_hits, stat.findings, rate, revenue, currency)


# -- the case report ---------------------------------------------------------------------------------


def case_report(detail: review_pb2.CaseDetail) -> str:
    """Everything behind a case, section by section, for an officer at a terminal."""
    sections = [
        _header(detail.case),
        _declaration(detail.declaration_versions),
        _assessments(detail.assessments),
        _hits("permit checks", detail.permit_checks),
        _draws(detail.permit_draws),
        _hits("consistency findings", detail.consistency_findings),
        _cargo_reports(detail.cargo_reports),
        _explanations(detail.explanations),
        _importer(detail.importer_history),
        _events(detail.events),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections) + "\n"


def _header(case: review_pb2.Case) -> list[str]:
    control = ", random control" if case.random_control else ""
    lines = [
        f"case {case.case_id}: {name(review_pb2.CaseStatus, case.status)}, version {case.version}",
        f"  channel {name(assessment_pb2.Channel, case.channel)}, risk score {case.risk_score:.3f}, "
        f"revenue at stake {amount(case.revenue_at_stake)}{control}",
        f"  declaration {case.declaration_id} version {case.declaration_version}, office {case.customs_office or '-'}, "
        f"importer {case.importer_id or '-'}",
        f"  officer {case.assigned_officer or '-'}, opened {when(case.open_time)}, updated {when(case.update_time)}"
        + (f", closed {when(case.close_time)}" if case.HasField("close_time") else ""),
    ]
    if case.HasField("result"):
        r = case.result
        lines.append(f"  result: {describe_result(r)}; by {r.officer} at {when(r.record_time)}")
        if r.notes:
            lines.append(f"    notes: {r.notes}")
    if case.HasField("override"):
        o = case.override
        lines.append(
            f"  override: {name(assessment_pb2.Channel, case.channel)} -> {name(assessment_pb2.Channel, o.channel)} "
            f"({o.reason_code}) by {o.officer} at {when(o.override_time)}: {o.reason_text}"
        )
    return lines


def _party(party: declaration_pb2.Party) -> str:
    return " ".join(p for p in (party.id, party.name) if p) or "-"


def _declaration(versions: Sequence[declaration_pb2.Declaration]) -> list[str]:
    if not versions:
        return ["declaration", "  none stored"]
    d = versions[-1]
    lines = [
        f"declaration {d.declaration_id} version {d.version} (newest of {len(versions)}): "
        f"{name(declaration_pb2.DeclarationType, d.type)}, lodged {when(d.lodgement_time)}, office {d.customs_office}",
        f"  declarant {_party(d.declarant)}; importer {_party(d.importer)}; exporter {_party(d.exporter)}; "
        f"AEO {name(declaration_pb2.AeoStatus, d.aeo_status)}",
        f"  from {d.export_country or '-'} (origin {d.origin_country or '-'}) to {d.destination_country or '-'} by "
        f"{name(declaration_pb2.TransportMode, d.transport_mode)}, document {d.transport_document_number or '-'}, "
        f"containers {', '.join(d.container_numbers) or '-'}",
        f"  invoice {amount(d.invoice_amount)} {d.invoice_currency} {d.incoterm}".rstrip(),
        f"  items ({len(d.items)}):",
    ]
    rows = [
        (
            i.item_number,
            i.hs_code,
            _shorten(i.description, 40),
            f"{amount(i.quantity)} {i.quantity_unit}".rstrip(),
            amount(i.net_mass_kg),
            amount(i.gross_mass_kg),
            amount(i.customs_value),
            i.origin_country or "-",
            amount(sum(t.amount for t in i.duties_and_taxes)),
            ", ".join(i.permit_references) or "-",
        )
        for i in d.items
    ]
    header = (
        "item",
        "hs_code",
        "description",
        "quantity",
        "net_kg",
        "gross_kg",
        "value",
        "origin",
        "duties",
        "permits",
    )
    return [*lines, *aligned(header, rows, indent="    ")]


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _hit_lines(hits: Sequence[assessment_pb2.RuleHit], indent: str) -> list[str]:
    lines = []
    for h in hits:
        floor = f" [at least {name(assessment_pb2.Channel, h.min_channel)}]" if h.min_channel else ""
        items = f" (items {', '.join(map(str, h.item_numbers))})" if h.item_numbers else ""
        lines.append(f"{indent}{h.rule_id}{floor}{items}: {h.message}")
    return lines


def _assessments(assessments: Sequence[assessment_pb2.Assessment]) -> list[str]:
    lines = [f"assessments ({len(assessments)}, oldest first)"]
    for a in assessments:
        model = (
            f"model {a.model_score:.3f} ({a.model_name} v{a.model_version})"
            if a.HasField("model_score")
            else f"model {name(assessment_pb2.ModelStatus, a.model_status).lower()}"
        )
        lines.append(
            f"  {when(a.assessment_time)}  declaration v{a.declaration_version}  "
            f"{name(assessment_pb2.Channel, a.channel)}  score {a.risk_score:.3f}  {model}  rules {a.rule_set_version}"
            + ("  random control" if a.random_control else "")
        )
        lines.extend(_hit_lines(a.rule_hits, "    ") or ["    no rule hit"])
    return lines if assessments else [*lines, "  none"]


def _hits(title: str, hits: Sequence[assessment_pb2.RuleHit]) -> list[str]:
    return [title, *(_hit_lines(hits, "  ") or ["  none"])]


def _draws(draws: Sequence[permit_pb2.PermitDraw]) -> list[str]:
    rows = [
        (d.permit_id, d.line_number, d.item_number, d.declaration_version, amount(d.quantity), amount(d.value))
        for d in draws
    ]
    if not rows:
        return ["permit draws", "  none"]
    return ["permit draws", *aligned(("permit", "line", "item", "declaration_v", "quantity", "value"), rows, "  ")]


def _cargo_reports(linked: Sequence[review_pb2.LinkedCargoReport]) -> list[str]:
    lines = ["linked cargo reports"]
    for link in linked:
        r, a = link.report, link.assessment
        lines.append(
            f"  {r.report_id} v{r.version} {name(cargo_pb2.FilingType, r.filing_type)}: "
            f"{r.master_transport_document_number or r.house_transport_document_number or '-'} "
            f"{r.port_of_loading or '-'} -> {r.port_of_discharge or '-'}, filer {_party(r.filer)}, "
            f"consignee {_party(r.consignee)}"
        )
        for c in r.containers:
            lines.append(
                f"    container {c.container_number}: {amount(c.gross_mass_kg)} kg, {c.packages} packages, "
                f"seals {', '.join(c.seal_numbers) or 'none'}"
            )
        if a.assessment_id:
            s = a.summary
            lines.append(
                f"    assessed {when(a.assessment_time)}: score {a.risk_score:.3f}; containers: "
                f"{s.no_action} no action, {s.scan} scan, {s.physical_examination} physical examination"
            )
            lines.extend(_hit_lines(a.rule_hits, "      "))
    return lines if linked else [*lines, "  none"]


def _explanations(explanations: Sequence[review_pb2.Explanation]) -> list[str]:
    lines = ["why the model flagged it"]
    for e in explanations:
        lines.append(f"  item {e.item_number} ({e.contribution:+.2f}): {e.text}")
    return lines if explanations else [*lines, "  no model contributions (the model did not score it)"]


def _importer(h: review_pb2.ImporterHistory) -> list[str]:
    first = f", first filing {day(h.first_filing_time)}" if h.HasField("first_filing_time") else ""
    lines = [
        f"importer {h.importer_id or '-'}",
        f"  other filings: {h.filings}, of which inspected {h.inspections}, with findings {h.findings}{first}",
    ]
    rows = [
        (
            f.declaration_id,
            f.declaration_version,
            when(f.lodgement_time) if f.HasField("lodgement_time") else "-",
            name(assessment_pb2.Channel, f.channel),
            name(review_pb2.InspectionOutcome, f.outcome),
        )
        for f in h.recent
    ]
    if not rows:
        return [*lines, "  no other filings"]
    return [
        *lines,
        "  recent filings:",
        *aligned(("declaration", "version", "lodged", "channel", "outcome"), rows, "    "),
    ]


def _events(events: Sequence[review_pb2.CaseEvent]) -> list[str]:
    lines = ["events"]
    for e in events:
        lines.append(
            f"  v{e.case_version}  {when(e.event_time)}  {name(review_pb2.CaseAction, e.action)}  {e.actor}: {e.detail}"
        )
    return lines if events else [*lines, "  none"]
