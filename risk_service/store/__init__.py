"""Durable storage of assessments (SQLite or PostgreSQL via SQLAlchemy Core) and its migrations."""

from risk_service.domain.ports import AssessmentRecord, SaveResult
from risk_service.store import migrations
from risk_service.store.assessment_store import SqlAssessmentStore
from risk_service.store.permit_store import SqlPermitStore

__all__ = ["AssessmentRecord", "SaveResult", "SqlAssessmentStore", "SqlPermitStore", "migrations"]
