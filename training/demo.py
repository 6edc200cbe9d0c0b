"""The demo champion: trains and registers a model on synthetic history unless the alias names a usable one."""

from __future__ import annotations

import logging
import time
from datetime import date

from features.kinds import feature_kind
from models import registry
from training.synthetic import generate_history
from training.synthetic_cargo import generate_cargo_history
from training.train import train_model

log = logging.getLogger(__name__)

DEMO_EXPERIMENT = "risk-demo"
DEMO_START = date(2024, 1, 1)
DEMO_DAYS = 365


def ensure_demo_champion(
    *,
    tracking_uri: str,
    artifact_location: str | None,
    model_name: str,
    alias: str = "champion",
    seed: int = 7,
    n_declarations: int = 20000,
    kind: str = "declaration",
    n_reports: int = 6000,
) -> str:
    """The version `model_name@alias` names; trains, registers and aliases one first if there is none.

    `kind` "container" trains the container-targeting model on `n_reports` synthetic cargo reports.

    Also trains one when the aliased version takes other features than this code builds (an
    upgrade added some): serving would refuse it and score on rules only. The alias then moves to
    the new version and the old one stays registered. The check reads the version's tags, not the
    model. Idempotent: a second call finds a current alias and returns its version without training.
    """
    existing = registry.resolve_alias(tracking_uri, model_name, alias)
    if existing is not None:
        if registry.has_feature_schema(tracking_uri, model_name, existing, feature_kind(kind).feature_names):
            log.info("%s@%s is version %s; no demo training needed", model_name, alias, existing)
            return existing
        log.warning(
            "%s@%s is version %s, trained on another feature schema; training a new demo champion",
            model_name,
            alias,
            existing,
        )
    started = time.perf_counter()
    if kind == "container":
        log.info("generating %d synthetic cargo reports (seed %d)", n_reports, seed)
        history = generate_cargo_history(n_reports, seed=seed, start=DEMO_START, days=DEMO_DAYS)
        size = {"n_reports": n_reports}
    else:
        log.info("generating %d synthetic declarations (seed %d)", n_declarations, seed)
        history = generate_history(n_declarations, seed=seed, start=DEMO_START, days=DEMO_DAYS)
        size = {"n_declarations": n_declarations}
    log.info("training the demo %s model on %d rows", kind, len(history))
    model, metrics = train_model(history, seed=seed, name=model_name, kind=feature_kind(kind))
    params = {
        **model.params,
        "data": "synthetic",
        "kind": kind,
        **size,
        "data_seed": seed,
        "start": DEMO_START.isoformat(),
        "days": DEMO_DAYS,
    }
    log.info("registering %s in %s", model_name, tracking_uri)
    version = registry.log_and_register(
        model,
        tracking_uri=tracking_uri,
        model_name=model_name,
        experiment=DEMO_EXPERIMENT,
        artifact_location=artifact_location,
        params=params,
        metrics=metrics,
        alias=alias,
    )
    log.info(
        "demo champion %s version %s ready in %.1f s (validation auc %.3f)",
        model_name,
        version,
        time.perf_counter() - started,
        metrics["auc"],
    )
    return version
