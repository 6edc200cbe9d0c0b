"""Durable storage of assessments (SQLite or PostgreSQL via SQLAlchemy Core) and its migrations."""

from risk_service.domain.ports import AssessmentRecord, SaveResult
from risk_service.store import migrations
from risk_service.store.assessment_store import SqlAssessmentStore

__all__ = ["AssessmentRecord", "SaveResult", "SqlAssessmentStore", "migrations"]
