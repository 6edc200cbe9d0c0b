"""Composition root: builds the service from settings and runs the server with its reload loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import features
from features.cargo import CONTAINER_FEATURE_NAMES
from risk_service.domain.assessment import Assessment, Channel
from risk_service.domain.cargo.rules import CARGO_SUBJECT, DEFAULT_CARGO_RULES_PATH
from risk_service.domain.cargo.screening import CargoPolicy, CargoScreener
from risk_service.domain.cargo.service import CargoScoringService
from risk_service.domain.cargo.validation import CargoLimits
from risk_service.domain.consistency import ConsistencyConfig
from risk_service.domain.cross_check import CrossCheck
from risk_service.domain.declaration import TransportMode
from risk_service.domain.entity_history import ContainerEntities, EntityHistory
from risk_service.domain.model_handle import ModelHandle, ModelSource, ScoringModel
from risk_service.domain.permits.cache import PermitCache
from risk_service.domain.permits.checks import PermitCheckConfig, flag_refusals
from risk_service.domain.permits.controlled_goods import DEFAULT_CONTROLLED_GOODS_PATH, ControlledGoodsHolder
from risk_service.domain.permits.ledger import DrawRefusal
from risk_service.domain.permits.screen import PermitScreen
from risk_service.domain.permits.service import PermitService
from risk_service.domain.policy import SelectionPolicy
from risk_service.domain.ports import AssessmentRecord
from risk_service.domain.review.cases import ReviewPolicy
from risk_service.domain.review.service import ReviewService
from risk_service.domain.rules import DEFAULT_RULES_PATH, RuleSetHolder
from risk_service.domain.screening import Screener
from risk_service.domain.service import ScoringService
from risk_service.domain.validation import ValidationLimits
from risk_service.grpc.server import RunningServer, start_server
from risk_service.metrics import PrometheusObserver, publish_versions
from risk_service.settings import Settings, is_loopback
from risk_service.store import SqlAssessmentStore, SqlPermitStore, migrations
from risk_service.store.cargo_store import SqlCargoStore
from risk_service.store.case_store import SqlCaseStore

log = logging.getLogger(__name__)


class RegistryModelSource:
    """The MLflow registry: the serving alias names the version; loading checks the feature schema."""

    def __init__(
        self, tracking_uri: str, name: str, alias: str, feature_names: Sequence[str] = features.FEATURE_NAMES
    ) -> None:
        self.name = name
        self._tracking_uri = tracking_uri
        self._alias = alias
        self._feature_names = tuple(feature_names)  # a declaration or a container model

    def resolve(self) -> str | None:
        from models import registry

        return registry.resolve_alias(self._tracking_uri, self.name, self._alias)

    def load(self, version: str) -> ScoringModel:
        from models import registry

        model = registry.load_version(self._tracking_uri, self.name, version, expected_feature_names=None)
        model.check_schema(self._feature_names)
        return model  # type: ignore[no-any-return]


@dataclass
class App:
    settings: Settings
    store: SqlAssessmentStore
    rules: RuleSetHolder
    models: ModelHandle
    history: EntityHistory
    service: ScoringService
    permit_store: SqlPermitStore
    permits: PermitService | None  # None when permit checks are disabled
    permit_screen: PermitScreen | None
    controlled_goods: ControlledGoodsHolder | None
    cargo_store: SqlCargoStore
    cargo_rules: RuleSetHolder
    cargo: CargoScoringService
    cargo_models: ModelHandle
    case_store: SqlCaseStore
    review: ReviewService

    def reload(self) -> None:
        """Picks up edited rule and controlled goods files and permits changed by other processes."""
        self.rules.reload_if_changed()
        self.cargo_rules.reload_if_changed()
        if self.controlled_goods is not None:
            self.controlled_goods.reload_if_changed()
        if self.permit_screen is not None:
            try:
                self.permit_screen.cache.poll()
            except Exception:  # the store ping that follows reports an outage; the cache keeps what it has
                log.warning("polling permit changes failed", exc_info=True)

    def publish_versions(self) -> None:
        loaded = self.models.current
        publish_versions(
            self.settings.model.name,
            loaded.version if loaded else None,
            self.rules.current.version,
            rules_reload_failed=self.rules.last_error is not None,
            rule_runtime_errors=self.rules.current.runtime_error_count,
            controlled_goods_version=self.controlled_goods.current.version if self.controlled_goods else "",
            controlled_goods_reload_failed=bool(self.controlled_goods and self.controlled_goods.last_error),
            cargo_model_name=self.settings.cargo.model_name,
            cargo_model_version=cargo.version if (cargo := self.cargo_models.current) else None,
            cargo_rule_set_version=self.cargo_rules.current.version,
        )

    def close(self) -> None:
        self.service.close()
        self.cargo.close()
        self.store.close()
        self.cargo_store.close()
        self.permit_store.close()
        self.case_store.close()


def policy_from_settings(settings: Settings) -> SelectionPolicy:
    p = settings.policy
    return SelectionPolicy(
        red_threshold=p.red_threshold,
        yellow_threshold=p.yellow_threshold,
        blue_threshold=p.blue_threshold,
        random_control_rate=p.random_control_rate,
        random_control_channel=Channel[p.random_control_channel],
        random_control_salt=p.random_control_salt,
    )


def permit_check_config(settings: Settings) -> PermitCheckConfig:
    """The default channel and weight of every permit check, with the settings' overrides."""
    return PermitCheckConfig(
        {
            reason: (Channel[s.min_channel] if s.min_channel else None, s.weight)
            for reason, s in settings.permits.checks.items()
        }
    )


def build_app(
    settings: Settings, model_source: ModelSource | None = None, cargo_model_source: ModelSource | None = None
) -> App:
    """Migrates the database, loads rules and the champion model (if any) and wires the service."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    migrations.upgrade(url)
    rules = RuleSetHolder(settings.rules_path or DEFAULT_RULES_PATH, features.FEATURE_NAMES)
    source = model_source or RegistryModelSource(
        settings.resolved_tracking_uri, settings.model.name, settings.model.alias
    )
    models = ModelHandle(source)
    if not models.refresh() and models.current is None:
        log.warning("no model in service (%s); scoring with rules alone", models.last_error)
    policy = policy_from_settings(settings)
    v = settings.validation
    limits = ValidationLimits(
        max_items=v.max_items,
        max_string_length=v.max_string_length,
        max_id_length=v.max_id_length,
        max_permit_references=v.max_permit_references,
        max_containers=v.max_containers,
        max_lodgement_age_days=v.max_lodgement_age_days,
    )
    permit_store = SqlPermitStore(url, sqlite_synchronous=settings.sqlite_synchronous)
    permit_screen: PermitScreen | None = None
    controlled_goods: ControlledGoodsHolder | None = None
    permits: PermitService | None = None
    if settings.permits.enabled:
        check_config = permit_check_config(settings)
        cache = PermitCache(permit_store, max_entries=settings.permits.cache_max_entries)
        cache.poll()  # start from the current change number
        warmed = cache.warm(datetime.now(UTC), settings.permits.warm_entries)
        log.info("%d active permits read into memory", warmed)
        controlled_goods = ControlledGoodsHolder(
            settings.permits.controlled_goods_path or DEFAULT_CONTROLLED_GOODS_PATH
        )
        permit_screen = PermitScreen(cache, controlled_goods, check_config)
        permits = PermitService(permit_store, cache, limits, max_import_rows=settings.permits.max_import_rows)

        def settle(record: AssessmentRecord, refusals: Sequence[DrawRefusal]) -> Assessment:
            return flag_refusals(record.assessment, record.declaration, refusals, check_config, policy)

        store = SqlAssessmentStore(
            url, sqlite_synchronous=settings.sqlite_synchronous, settle=settle, on_balances=cache.apply_balances
        )
    else:
        store = SqlAssessmentStore(url, sqlite_synchronous=settings.sqlite_synchronous)
    history = EntityHistory(store.entity_history())
    screener = Screener(
        rules=rules,
        models=models,
        policy=policy,
        history=history,
        permits=permit_screen,
        top_contributions=settings.policy.top_contributions,
    )
    cargo_store, cargo_rules, cargo_screener = build_cargo(settings, url, cargo_model_source)
    cross_checks = (
        CrossCheck(
            consistency_config(settings),
            cargo_store.linked_reports,
            store.linked_declarations,
            screener,
            cargo_screener,
        )
        if settings.consistency.enabled
        else None
    )
    service = ScoringService(
        screener,
        store,
        history,
        limits,
        max_batch_size=settings.server.max_batch_size,
        max_items_per_call=v.max_items_per_call,
        observer=PrometheusObserver(),
        cross_checks=cross_checks,
    )
    cargo = CargoScoringService(
        cargo_screener,
        cargo_store,
        cargo_limits(settings),
        max_batch_size=settings.server.max_batch_size,
        observer=PrometheusObserver(),
        cross_checks=cross_checks,
    )
    case_store = SqlCaseStore(url, sqlite_synchronous=settings.sqlite_synchronous)
    review = ReviewService(
        case_store,
        review_policy(settings),
        linked_reports=cross_checks.reports_of if cross_checks is not None else None,
        observer=PrometheusObserver(),
    )
    app = App(
        settings,
        store,
        rules,
        models,
        history,
        service,
        permit_store,
        permits,
        permit_screen,
        controlled_goods,
        cargo_store,
        cargo_rules,
        cargo,
        cargo_screener.models,
        case_store,
        review,
    )
    app.publish_versions()
    return app


def cargo_policy_from_settings(settings: Settings) -> CargoPolicy:
    c = settings.cargo
    return CargoPolicy(
        selection=SelectionPolicy(
            red_threshold=c.red_threshold,
            yellow_threshold=c.yellow_threshold,
            blue_threshold=c.blue_threshold,
            random_control_rate=c.random_scan_rate,
            random_control_channel=Channel.YELLOW,  # a random pick is scanned, not opened
            random_control_salt=c.random_scan_salt,
        ),
        filing_deadline_hours={TransportMode[mode]: hours for mode, hours in c.filing_deadline_hours.items()},
        do_not_load_rules=frozenset(c.do_not_load_rules),
        do_not_load_score=c.do_not_load_score,
    )


def build_cargo(
    settings: Settings, url: str, model_source: ModelSource | None = None
) -> tuple[SqlCargoStore, RuleSetHolder, CargoScreener]:
    """The cargo report store, the cargo rule set (hot-reloaded like the declaration rules), the
    container model (its own registered name and alias; rules alone without it) and the screener."""
    rules = RuleSetHolder(settings.cargo.rules_path or DEFAULT_CARGO_RULES_PATH, (), subject=CARGO_SUBJECT)
    unknown = set(settings.cargo.do_not_load_rules) - {r.id for r in rules.current.rules}
    if unknown:  # a typo here would silently never hold anything back
        log.warning("cargo.do_not_load_rules names rules the cargo rule set lacks: %s", ", ".join(sorted(unknown)))
    store = SqlCargoStore(url, sqlite_synchronous=settings.sqlite_synchronous)
    source = model_source or RegistryModelSource(
        settings.resolved_tracking_uri, settings.cargo.model_name, settings.cargo.model_alias, CONTAINER_FEATURE_NAMES
    )
    models = ModelHandle(source)
    if not models.refresh() and models.current is None:
        log.warning("no container model in service (%s); cargo scored with rules alone", models.last_error)
    screener = CargoScreener(
        rules,
        cargo_policy_from_settings(settings),
        models=models,
        entities=ContainerEntities(store.entity_history()),
        top_contributions=settings.policy.top_contributions,
    )
    return store, rules, screener


def cargo_limits(settings: Settings) -> CargoLimits:
    v = settings.validation
    return CargoLimits(
        max_containers=v.max_containers,
        max_string_length=v.max_string_length,
        max_id_length=v.max_id_length,
        max_rows_per_call=v.max_items_per_call,
    )


def consistency_config(settings: Settings) -> ConsistencyConfig:
    c = settings.consistency
    return ConsistencyConfig(
        {code: (Channel[s.min_channel] if s.min_channel else None, s.weight) for code, s in c.checks.items()},
        mass_tolerance=c.mass_tolerance,
        link_window_days=c.link_window_days,
    )


def ensure_demo_model(settings: Settings) -> tuple[str, str]:
    """Trains and registers demo champions (declarations, containers) on synthetic history unless
    their aliases name versions with current features; returns both versions."""
    from training.demo import ensure_demo_champion

    artifacts = (settings.data_dir / "mlartifacts").resolve().as_uri()
    declaration = ensure_demo_champion(
        tracking_uri=settings.resolved_tracking_uri,
        artifact_location=artifacts,
        model_name=settings.model.name,
        alias=settings.model.alias,
    )
    container = ensure_demo_champion(
        tracking_uri=settings.resolved_tracking_uri,
        artifact_location=artifacts,
        model_name=settings.cargo.model_name,
        alias=settings.cargo.model_alias,
        kind="container",
    )
    return declaration, container


def review_policy(settings: Settings) -> ReviewPolicy:
    r = settings.review
    return ReviewPolicy(frozenset(r.finding_codes), frozenset(r.override_reasons), r.currency)


def check_exposure(settings: Settings) -> None:
    """No open door: without tokens the server binds loopback only (or says a proxy authenticates)."""
    if settings.auth.tokens or settings.auth.allow_anonymous:
        return
    host = settings.server.host
    if not is_loopback(host):
        raise ValueError(
            f"RISK_SERVER__HOST is {host} but RISK_AUTH__TOKENS is empty: anyone who reaches the port could "
            "score and change permits. Configure tokens (risk auth token), bind 127.0.0.1, or set "
            "RISK_AUTH__ALLOW_ANONYMOUS=true when a proxy in front authenticates callers"
        )
    log.warning("no API tokens configured: every caller on this host is trusted (RISK_AUTH__TOKENS)")


# Container allocations between young collections (Python's default is 700). Every call allocates
# tens of thousands of short-lived objects; at 700 the collector runs hundreds of times per batch and
# promotes whatever is alive mid-call into older generations, whose collections then scan the heap.
GC_YOUNG_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Freezes what start-up built and makes collections rarer; for a process that only serves.

    The models, libraries, rule sets, entity history and permits read at start-up live as long as
    the process, yet every full collection walked them all again (hundreds of thousands of objects,
    a good part of the CPU spent per declaration in batches). Frozen objects are still freed by
    reference counting; only cycles among them are never collected, and start-up's own garbage is
    collected just before the freeze.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    log.info("garbage collector tuned for serving: %d start-up objects frozen", gc.get_freeze_count())


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    model_source: ModelSource | None = None,
    own_process: bool = False,
) -> None:
    """Runs until `stop` is set or SIGINT/SIGTERM arrives; health is SERVING only while ready.

    Refuses (ValueError) to serve without credentials on an address other hosts can reach, unless
    settings.auth.allow_anonymous says a proxy in front authenticates. `own_process`: the process
    is the server's alone (`risk serve`), so its garbage collector is tuned for serving.
    """
    check_exposure(settings)
    app = await asyncio.to_thread(build_app, settings, model_source)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests)
            loop.add_signal_handler(sig, stop.set)
    if settings.server.metrics_port is not None:
        from prometheus_client import start_http_server

        metrics_server, _ = start_http_server(settings.server.metrics_port, addr=settings.server.host)
        log.info("metrics on http://%s:%d/metrics", settings.server.host, metrics_server.server_port)
    running = await start_server(
        app.service,
        settings.server,
        app.permits,
        cargo=app.cargo,
        review=app.review,
        max_import_rows=settings.permits.max_import_rows,
        auth=settings.auth,
        tls=settings.tls,
    )
    if own_process:
        tune_gc_for_serving()
    try:
        await running.set_model_available(app.models.current is not None)
        await running.set_ready(True)
        if on_ready:
            on_ready(running.port)
        await _reload_until(stop, app, running, settings.server.reload_interval_s)
    finally:
        await running.set_ready(False)
        await running.stop(settings.server.grace_s)
        app.close()


async def _reload_until(stop: asyncio.Event, app: App, running: RunningServer, interval: float) -> None:
    """Polls the rule file, the champion alias and the store; a bad new version never replaces a good one.

    Nothing here may end the loop: a failure is logged and the service keeps what it has.
    """
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(app.reload)
            await asyncio.to_thread(app.models.refresh)
            await asyncio.to_thread(app.cargo_models.refresh)
            # Both writers must run: a dead cargo writer would fail every cargo call.
            store_ok = await asyncio.to_thread(app.store.ping) and await asyncio.to_thread(app.cargo_store.ping)
            await running.set_ready(store_ok)
            await running.set_model_available(app.models.current is not None)
            app.publish_versions()
        except Exception:
            log.exception("periodic reload failed; serving with what is loaded")
