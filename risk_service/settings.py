"""The one settings object: read from RISK_* environment variables, validated at start-up."""

from __future__ import annotations

import enum
import ipaddress
import ssl
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from risk_service.domain.declaration import TransportMode


class ServerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    max_batch_size: int = Field(
        1000, ge=1, le=100_000, description="Most declarations one ScoreDeclarations call may carry."
    )
    max_message_mb: int = Field(64, ge=1, le=1024, description="Largest gRPC message accepted, in MiB.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; unset to disable."
    )
    reload_interval_s: float = Field(
        10.0, gt=0, description="How often the rule file and the champion alias are checked for changes."
    )
    grace_s: float = Field(5.0, ge=0, description="How long in-flight calls may finish on shutdown.")


class ValidationSettings(BaseModel):
    max_items: int = Field(999, ge=1, le=10_000, description="Most goods items one declaration may carry.")
    max_string_length: int = Field(512, ge=16, description="Longest free-text field (descriptions, names).")
    # The store's id columns hold 64 characters; a longer limit would fail at insert time.
    max_id_length: int = Field(64, ge=8, le=64, description="Longest identifier (declaration, party, permit ids).")
    max_permit_references: int = Field(20, ge=0, description="Most permit references per goods item.")
    max_containers: int = Field(500, ge=0, description="Most container numbers per declaration.")
    max_lodgement_age_days: int = Field(3650, ge=1, description="Oldest lodgement time accepted, in days before now.")
    max_items_per_call: int = Field(
        50_000, ge=1, description="Most goods items one call may carry over all its declarations."
    )


class PolicySettings(BaseModel):
    red_threshold: float = Field(0.65, ge=0, le=1, description="Risk score at or above which a declaration goes RED.")
    yellow_threshold: float = Field(0.45, ge=0, le=1, description="Risk score at or above which it goes YELLOW.")
    blue_threshold: float = Field(0.3, ge=0, le=1, description="Risk score at or above which it goes BLUE.")
    random_control_rate: float = Field(
        0.01, ge=0, le=1, description="Share of declarations drawn for random control inspection."
    )
    random_control_channel: str = Field("RED", description="Channel a random control selection is raised to at least.")
    random_control_salt: str = Field(
        "risk-control-v1", description="Salt of the deterministic random draw; change it to redraw."
    )
    top_contributions: int = Field(
        5, ge=0, le=50, description="Feature contributions returned for non-GREEN assessments."
    )

    @model_validator(mode="after")
    def _ordered(self) -> PolicySettings:
        if not (self.blue_threshold <= self.yellow_threshold <= self.red_threshold):
            raise ValueError("thresholds must satisfy blue <= yellow <= red")
        if self.random_control_channel not in {"GREEN", "BLUE", "YELLOW", "RED"}:
            raise ValueError("random_control_channel must be GREEN, BLUE, YELLOW or RED")
        return self


class ModelSettings(BaseModel):
    name: str = Field("declaration-risk", description="Registered model name in the MLflow registry.")
    alias: str = Field("champion", description="Alias of the model version that scores.")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; defaults to a local store under data_dir.")
    target_inspection_rate: float = Field(
        0.05, gt=0, le=1, description="Inspection rate at which `risk promote` compares precision (0.05: top 5%)."
    )
    promotion_margin: float = Field(
        0.01, ge=0, le=1, description="Precision a candidate must gain over the champion at that rate to be promoted."
    )


class CheckSetting(BaseModel):
    min_channel: str | None = Field(None, description="Channel a hit raises the declaration to at least; unset: none.")
    weight: float = Field(0.0, ge=-1, le=1, description="Score weight of a hit, as for rules.")

    @model_validator(mode="after")
    def _known_channel(self) -> CheckSetting:
        if self.min_channel is not None and self.min_channel not in {"GREEN", "BLUE", "YELLOW", "RED"}:
            raise ValueError("min_channel must be GREEN, BLUE, YELLOW or RED")
        return self


class PermitSettings(BaseModel):
    enabled: bool = Field(True, description="Cross-check declarations against the permit registry.")
    controlled_goods_path: Path | None = Field(
        None, description="Controlled goods table (YAML or CSV); defaults to the shipped table."
    )
    checks: dict[str, CheckSetting] = Field(
        default_factory=dict,
        description="Overrides of a permit check's channel and weight by reason code, e.g. "
        'RISK_PERMITS__CHECKS=\'{"PERMIT_MISSING": {"min_channel": "RED", "weight": 0.5}}\'.',
    )
    cache_max_entries: int = Field(200_000, ge=100, description="Most permits kept in memory for scoring.")
    warm_entries: int = Field(
        50_000, ge=0, description="Active permits read into memory at start-up, most recently changed first."
    )
    max_import_rows: int = Field(200_000, ge=1, description="Most permits one ImportPermits call may carry.")


class ConsistencySettings(BaseModel):
    """Cross-checks between a declaration and the cargo report of the same transport document or container."""

    enabled: bool = Field(True, description="Compare declarations with cargo reports and re-assess the earlier one.")
    mass_tolerance: float = Field(
        0.05, ge=0, lt=1, description="Share by which declared and reported gross masses may differ."
    )
    link_window_days: float = Field(
        60.0,
        gt=0,
        description="Days between a declaration's lodgement and a report's planned arrival within which they link "
        "(containers and bills are reused).",
    )
    checks: dict[str, CheckSetting] = Field(
        default_factory=dict,
        description="Overrides of a consistency check's channel and weight by reason code, e.g. "
        'RISK_CONSISTENCY__CHECKS=\'{"CONSISTENCY_GROSS_MASS": {"min_channel": "RED", "weight": 0.5}}\'.',
    )


class CargoSettings(BaseModel):
    """Advance cargo information: how scores and rule hits become pre-loading and on-arrival outcomes."""

    rules_path: Path | None = Field(None, description="Cargo rule set YAML; defaults to the shipped cargo rule set.")
    model_name: str = Field("container-risk", description="Registered name of the container-targeting model.")
    model_alias: str = Field("champion", description="Alias of the container model version that scores.")
    red_threshold: float = Field(0.65, ge=0, le=1, description="Container risk at or above which it is opened.")
    yellow_threshold: float = Field(0.45, ge=0, le=1, description="Container risk at or above which it is scanned.")
    blue_threshold: float = Field(0.3, ge=0, le=1, description="Container risk at or above which it is noted.")
    random_scan_rate: float = Field(
        0.01, ge=0, le=1, description="Share of containers of pre-arrival reports drawn for a random scan."
    )
    random_scan_salt: str = Field("cargo-control-v1", description="Salt of the deterministic random scan draw.")
    filing_deadline_hours: dict[str, float] = Field(
        default_factory=lambda: {"SEA": 24.0, "AIR": 4.0, "ROAD": 1.0, "RAIL": 2.0, "INLAND_WATERWAY": 2.0},
        description="Hours before loading a report is due, by transport mode (the 24-hour rule for sea).",
    )
    do_not_load_rules: list[str] = Field(
        default_factory=lambda: [
            "CARGO-WATCHLIST-CONSIGNOR",
            "CARGO-WATCHLIST-CONSIGNEE",
            "CARGO-WATCHLIST-NOTIFY-PARTY",
            "CARGO-WATCHLIST-CONTAINER",
            "CARGO-WATCHLIST-TRANSPORT-DOCUMENT",
        ],
        description="Rules whose hit on a pre-loading report means an imminent threat: DO_NOT_LOAD.",
    )
    do_not_load_score: float = Field(
        0.95,
        ge=0,
        le=1,
        description="Rule score of a container from which its pre-loading report gets DO_NOT_LOAD.",
    )

    @model_validator(mode="after")
    def _valid(self) -> CargoSettings:
        if not (self.blue_threshold <= self.yellow_threshold <= self.red_threshold):
            raise ValueError("thresholds must satisfy blue <= yellow <= red")
        modes = {m.name for m in TransportMode if m != TransportMode.UNSPECIFIED}
        unknown = sorted(set(self.filing_deadline_hours) - modes)
        if unknown:
            raise ValueError(f"filing_deadline_hours: unknown transport modes {unknown}; use {sorted(modes)}")
        if any(not (h >= 0) for h in self.filing_deadline_hours.values()):
            raise ValueError("filing_deadline_hours must be hours of zero or more")
        return self


class ReviewSettings(BaseModel):
    """Officers' review: the lists results and overrides are checked against."""

    finding_codes: list[str] = Field(
        default_factory=lambda: [
            "UNDERVALUATION",
            "MISCLASSIFICATION",
            "ORIGIN_MISDECLARED",
            "QUANTITY_MISDECLARED",
            "PROHIBITED_GOODS",
            "RESTRICTED_GOODS_WITHOUT_PERMIT",
            "IPR_INFRINGEMENT",
            "CONCEALMENT",
            "DOCUMENTS_FALSE",
            "OTHER",
        ],
        min_length=1,
        description="Finding codes an inspection result may name.",
    )
    override_reasons: list[str] = Field(
        default_factory=lambda: [
            "INTELLIGENCE",
            "KNOWN_TRADER",
            "DOCUMENTS_VERIFIED",
            "SUPERVISOR_INSTRUCTION",
            "RESOURCE_CONSTRAINT",
            "OTHER",
        ],
        min_length=1,
        description="Reason codes a channel override may give.",
    )
    currency: str = Field(
        "KRW", pattern="^[A-Z]{3}$", description="ISO 4217 currency revenue is recorded in (the national currency)."
    )

    @model_validator(mode="after")
    def _known_currency(self) -> ReviewSettings:
        import pycountry

        if pycountry.currencies.get(alpha_3=self.currency) is None:
            raise ValueError(f"currency {self.currency!r} is not an ISO 4217 code")
        for name in ("finding_codes", "override_reasons"):
            values = getattr(self, name)
            if len(values) != len(set(values)) or not all(v.strip() and len(v) <= 64 for v in values):
                raise ValueError(f"{name} must be distinct non-empty codes of at most 64 characters")
        return self


def is_loopback(host: str) -> bool:
    """127.0.0.1, ::1 (with or without brackets) or localhost: reachable from this machine only."""
    name = host.strip().removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


class Role(enum.StrEnum):
    """What a caller may do; each RPC names the roles it admits (risk_service/grpc/auth.py)."""

    CLEARANCE = "clearance"  # the clearance system: scores declarations and cargo reports
    AGENCY = "agency"  # an issuing agency: its own permits only
    OFFICER = "officer"  # reviews cases, reads permits
    ANALYST = "analyst"  # rules and models, reads permits and reports


class ApiToken(BaseModel):
    """One caller's credential, kept as the SHA-256 of the token only (`risk auth token` makes both)."""

    name: str = Field(min_length=1, max_length=64, description="Who the caller is; recorded as the actor.")
    sha256: str = Field(
        pattern="^[0-9a-f]{64}$", description="Hex SHA-256 of the token; the token itself is never kept."
    )
    roles: list[Role] = Field(min_length=1)
    agency: str | None = Field(None, min_length=1, description="The issuing agency an agency token acts for.")

    @model_validator(mode="after")
    def _agency_for_agency_role(self) -> ApiToken:
        if (Role.AGENCY in self.roles) != (self.agency is not None):
            raise ValueError("an agency token names its agency, and only an agency token does")
        return self


class AuthSettings(BaseModel):
    tokens: list[ApiToken] = Field(
        default_factory=list, description="Callers and their roles; empty: no credential asked (loopback only)."
    )
    allow_anonymous: bool = Field(
        False, description="Serve without tokens on a non-loopback address (behind an authenticating proxy only)."
    )

    @model_validator(mode="after")
    def _unique(self) -> AuthSettings:
        for field in ("name", "sha256"):
            values = [getattr(t, field) for t in self.tokens]
            if len(values) != len(set(values)):
                raise ValueError(f"two tokens share a {field}")
        return self


class TlsSettings(BaseModel):
    cert_file: Path | None = Field(None, description="Server certificate chain (PEM); set with key_file to serve TLS.")
    key_file: Path | None = Field(None, description="Server private key (PEM).")
    client_ca_file: Path | None = Field(
        None, description="CA bundle of client certificates (PEM): set for mutual TLS, every client must present one."
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file (mutual TLS) needs cert_file and key_file")
        for path in (self.cert_file, self.key_file, self.client_ca_file):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        # Checked here, so a bad file stops the start with its name instead of a bind error later.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (ssl.SSLError, OSError) as err:
                raise ValueError(
                    f"{self.cert_file} and {self.key_file} are not a PEM certificate and key: {err}"
                ) from None
        if self.client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (ssl.SSLError, OSError) as err:
                raise ValueError(f"{self.client_ca_file} is not a PEM CA bundle: {err}") from None
        return self


class PlaintextToken(ValueError):
    """A client call would send its API token over the network unencrypted."""


class ClientSettings(BaseModel):
    """How the `risk` command's client calls (score, permits import/report) reach a server."""

    @model_validator(mode="after")
    def _complete(self) -> ClientSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("a client certificate (mutual TLS) needs ca_file too")
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    token: SecretStr | None = Field(None, description="API token sent as 'authorization: Bearer <token>'.")
    ca_file: Path | None = Field(None, description="CA bundle (PEM) to trust the server's certificate; set for TLS.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    key_file: Path | None = Field(None, description="Client private key (PEM) for mutual TLS.")


class Settings(BaseSettings):
    """Service configuration; every field can be set as RISK_<FIELD> or RISK_<GROUP>__<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="RISK_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(Path("risk-data"), description="Folder for the embedded SQLite database and MLflow store.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; defaults to SQLite in data_dir. PostgreSQL: postgresql+psycopg://..."
    )
    sqlite_synchronous: str = Field(
        "FULL", pattern="^(FULL|NORMAL|EXTRA)$", description="SQLite synchronous mode; FULL survives power loss."
    )
    rules_path: Path | None = Field(None, description="Rule set YAML; defaults to the shipped default rule set.")
    log_level: str = Field("INFO", description="Python logging level.")
    server: ServerSettings = Field(default_factory=ServerSettings)  # type: ignore[arg-type]
    validation: ValidationSettings = Field(default_factory=ValidationSettings)  # type: ignore[arg-type]
    policy: PolicySettings = Field(default_factory=PolicySettings)  # type: ignore[arg-type]
    model: ModelSettings = Field(default_factory=ModelSettings)  # type: ignore[arg-type]
    permits: PermitSettings = Field(default_factory=PermitSettings)  # type: ignore[arg-type]
    cargo: CargoSettings = Field(default_factory=CargoSettings)  # type: ignore[arg-type]
    consistency: ConsistencySettings = Field(default_factory=ConsistencySettings)  # type: ignore[arg-type]
    review: ReviewSettings = Field(default_factory=ReviewSettings)  # type: ignore[arg-type]
    auth: AuthSettings = Field(default_factory=AuthSettings)  # type: ignore[arg-type]
    tls: TlsSettings = Field(default_factory=TlsSettings)  # type: ignore[arg-type]
    client: ClientSettings = Field(default_factory=ClientSettings)  # type: ignore[arg-type]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'risk.db').resolve()}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.model.tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"
