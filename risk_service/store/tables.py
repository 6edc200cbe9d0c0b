"""SQLAlchemy Core tables of the assessment store: the only module that knows table and column names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    }
)

# JSONB on PostgreSQL: smaller, and queryable by operators if an investigation ever needs it.
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# For optional documents: Python None is SQL NULL (not JSON null), so IS NULL finds them.
OptionalJsonDocument = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Stores instants as UTC and hands them back tz-aware, also on SQLite (which keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; the store keeps tz-aware instants only")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


assessments = sa.Table(
    "assessments",
    metadata,
    sa.Column("assessment_id", sa.String(36), primary_key=True),
    sa.Column("declaration_id", sa.String(64), nullable=False),
    sa.Column("declaration_version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("channel", sa.SmallInteger, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=False),
    sa.Column("model_score", sa.Double, nullable=True),
    sa.Column("random_control", sa.Boolean, nullable=False),
    sa.Column("model_status", sa.SmallInteger, nullable=False),
    sa.Column("model_name", sa.String, nullable=False),
    sa.Column("model_version", sa.String, nullable=False),
    sa.Column("rule_set_version", sa.String, nullable=False),
    sa.Column("assessed_at", UtcDateTime, nullable=False),
    # The declaration's lodgement time: the history export and filing_entities go by it, as training does.
    sa.Column("lodged_at", UtcDateTime, nullable=True),
    sa.Column("importer_id", sa.String(64), nullable=False),
    sa.Column("customs_office", sa.String, nullable=False),
    sa.Column("declaration", JsonDocument, nullable=False),
    sa.Column("assessment", JsonDocument, nullable=False),
    sa.UniqueConstraint("declaration_id", "declaration_version"),
    # A trader's filings in lodgement order (an officer's view of the importer); leads with
    # importer_id, so it also serves lookups by importer alone.
    sa.Index("ix_assessments_importer_id_lodged_at", "importer_id", "lodged_at"),
    sa.Index("ix_assessments_assessed_at", "assessed_at"),
)


# One row per filing and entity it names, whatever its versions: declarations (features.ENTITY_KINDS:
# importer, declarant, HS6 by origin, office by importer) and cargo reports (features.cargo.
# CONTAINER_KINDS: consignee, consignor, filer, lane; declaration_id then holds the report id).
# Serving's entity history (filings and first filing per entity) is read from it at start-up,
# counted as training counts it.
filing_entities = sa.Table(
    "filing_entities",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("entity_key", sa.String, primary_key=True),  # ids joined by features.entity_keys
    sa.Column("declaration_id", sa.String(64), primary_key=True),
    sa.Column("lodged_at", UtcDateTime, nullable=False),
)


# -- cargo reports (advance cargo information) ----------------------------------------------------

cargo_assessments = sa.Table(
    "cargo_assessments",
    metadata,
    sa.Column("assessment_id", sa.String(36), primary_key=True),
    sa.Column("report_id", sa.String(64), nullable=False),
    sa.Column("report_version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("filing_type", sa.SmallInteger, nullable=False),
    sa.Column("pre_loading_outcome", sa.SmallInteger, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=False),
    sa.Column("master_document", sa.String(64), nullable=False),
    sa.Column("house_document", sa.String(64), nullable=False),
    sa.Column("filed_at", UtcDateTime, nullable=True),
    sa.Column("assessed_at", UtcDateTime, nullable=False),
    sa.Column("report", JsonDocument, nullable=False),
    sa.Column("assessment", JsonDocument, nullable=False),
    sa.UniqueConstraint("report_id", "report_version"),
    # Declarations and the other filings for one consignment find a report by its transport document.
    sa.Index("ix_cargo_assessments_master_document", "master_document"),
)


# -- links between declarations and cargo reports ------------------------------------------------

# One row per filing version and transport document or container it names: a new filing finds the
# other kind's filings for the same consignment by these keys (the primary key leads with them).
document_links = sa.Table(
    "document_links",
    metadata,
    sa.Column("link_type", sa.String(16), primary_key=True),  # "document" or "container"
    sa.Column("link_key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # "declaration" or "cargo_report"
    sa.Column("filing_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    # When the consignment moves: lodgement for a declaration, planned arrival for a report. Links
    # are sought only near it, since containers and bills are reused for years.
    sa.Column("linked_at", UtcDateTime, nullable=False),
)

# Later assessments of a stored filing version, made when a linked document arrived; a filing's
# history is its assessments and these, in time order. The original assessment is never changed.
reassessments = sa.Table(
    "reassessments",
    metadata,
    sa.Column("assessment_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "declaration" or "cargo_report"
    sa.Column("filing_id", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("trigger", sa.String, nullable=False),  # what caused it, e.g. "cargo_report CR-1 v2"
    sa.Column("assessed_at", UtcDateTime, nullable=False),
    sa.Column("assessment", JsonDocument, nullable=False),
    sa.Index("ix_reassessments_kind_filing_id", "kind", "filing_id"),
)


# -- permits (single window) --------------------------------------------------------------------
# The permit document (JSON) is the record of truth; the scalar columns copy what lookups filter on.

permits = sa.Table(
    "permits",
    metadata,
    sa.Column("permit_id", sa.String(64), primary_key=True),
    sa.Column("issuing_agency", sa.String(64), nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("holder_id", sa.String(64), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("single_use", sa.Boolean, nullable=False),
    sa.Column("valid_from", UtcDateTime, nullable=True),
    sa.Column("valid_to", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("permit", JsonDocument, nullable=False),
    # Listings filter by holder or agency and page by permit_id: one index each serves both.
    sa.Index("ix_permits_holder_id_permit_id", "holder_id", "permit_id"),
    sa.Index("ix_permits_issuing_agency_permit_id", "issuing_agency", "permit_id"),
)

permit_lines = sa.Table(
    "permit_lines",
    metadata,
    sa.Column("permit_id", sa.String(64), sa.ForeignKey("permits.permit_id"), primary_key=True),
    sa.Column("line_number", sa.Integer, primary_key=True),
    sa.Column("hs_prefix", sa.String(10), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("authorised_quantity", sa.Double, nullable=True),  # None: not limited
    sa.Column("authorised_value", sa.Double, nullable=True),
    # Running totals of permit_draws, kept by the ledger under the permit's lock.
    sa.Column("drawn_quantity", sa.Double, nullable=False, server_default=sa.text("0")),
    sa.Column("drawn_value", sa.Double, nullable=False, server_default=sa.text("0")),
    # Listing by HS code looks up every prefix of the code with IN; permit_id makes it index-only.
    sa.Index("ix_permit_lines_hs_prefix_permit_id", "hs_prefix", "permit_id"),
    # Free space on each page: the ledger's total updates then stay on the page (migration 0008).
    postgresql_with={"fillfactor": 50},
)

permit_changes = sa.Table(
    "permit_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("permit_id", sa.String(64), sa.ForeignKey("permits.permit_id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.SmallInteger, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("reason", sa.String, nullable=False),
    sa.Column("changed_at", UtcDateTime, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("permit", JsonDocument, nullable=False),
    sa.Index("ix_permit_changes_permit_id_seq", "permit_id", "seq"),  # history, oldest first
)

permit_draws = sa.Table(
    "permit_draws",
    metadata,
    # Leads with declaration_id: releasing a declaration's draws (amendment, cancellation) reads by it.
    sa.Column("declaration_id", sa.String(64), primary_key=True),
    sa.Column("permit_id", sa.String(64), primary_key=True),
    sa.Column("line_number", sa.Integer, primary_key=True),
    sa.Column("item_number", sa.Integer, primary_key=True),
    sa.Column("declaration_version", sa.Integer, nullable=False),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("drawn_at", UtcDateTime, nullable=False),
    # A line with draws cannot be deleted: the database backs the rule the permit transition enforces.
    sa.ForeignKeyConstraint(["permit_id", "line_number"], ["permit_lines.permit_id", "permit_lines.line_number"]),
    sa.Index("ix_permit_draws_permit_id", "permit_id"),  # the reconciliation report, per permit
)

permit_uses = sa.Table(
    "permit_uses",
    metadata,
    sa.Column("permit_id", sa.String(64), sa.ForeignKey("permits.permit_id"), primary_key=True),
    sa.Column("declaration_id", sa.String(64), primary_key=True),
    sa.Column("declaration_version", sa.Integer, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=False),
    sa.Index("ix_permit_uses_declaration_id", "declaration_id"),
)

declaration_cancellations = sa.Table(
    "declaration_cancellations",
    metadata,
    sa.Column("declaration_id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("reason", sa.String, nullable=False),
    sa.Column("cancelled_at", UtcDateTime, nullable=False),
    sa.Column("released", JsonDocument, nullable=False),  # the draws given back, as they were
)


# -- audit trail ----------------------------------------------------------------------------------

# Append-only (migration 0006 adds triggers refusing UPDATE and DELETE): assessments, re-assessments,
# cargo assessments and permit changes, each entry chained to the one before by a hash
# (store.audit), so `risk audit verify` shows a changed, removed or inserted entry, and a stored
# record that no longer matches the hash its entry took of it.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),  # store.audit.AuditKind
    sa.Column("subject", sa.String(64), nullable=False),  # the record's id: assessment id, permit change request id
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("payload_sha256", sa.String(64), nullable=False),  # of the record as stored, canonical JSON
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
)


# -- officers' review -----------------------------------------------------------------------------

# One case per declaration with a non-GREEN assessment, over all its versions (case_id is the
# declaration id). The writers open and refresh cases in the transaction that stores the assessment;
# officers change them under an optimistic version (store.case_store). Result and override are the
# current ones; every action is also a case_events row, which the audit trail vouches for.
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("declaration_version", sa.Integer, nullable=False),
    sa.Column("assessment_id", sa.String(36), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("channel", sa.SmallInteger, nullable=False),
    sa.Column("risk_score", sa.Double, nullable=False),
    sa.Column("revenue_at_stake", sa.Double, nullable=False),
    sa.Column("random_control", sa.Boolean, nullable=False),
    sa.Column("customs_office", sa.String, nullable=False),
    sa.Column("importer_id", sa.String(64), nullable=False),
    sa.Column("assigned_officer", sa.String(64), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("result", OptionalJsonDocument, nullable=True),
    sa.Column("override", OptionalJsonDocument, nullable=True),
    # The work queue: riskiest first, then revenue at stake (ListCases pages along this index).
    sa.Index("ix_cases_risk_score_revenue_at_stake_case_id", "risk_score", "revenue_at_stake", "case_id"),
    sa.Index("ix_cases_importer_id", "importer_id"),
)

case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id"), nullable=False),
    sa.Column("case_version", sa.Integer, nullable=False),
    sa.Column("action", sa.SmallInteger, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("detail", sa.String, nullable=False),
    sa.Column("case_state", JsonDocument, nullable=False),  # the case as the action left it
    sa.UniqueConstraint("case_id", "case_version"),
)
