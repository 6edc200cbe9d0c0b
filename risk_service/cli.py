"""The `risk` command. Heavy libraries are imported inside each subcommand so --help stays fast."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    from risk_service.settings import PlaintextToken, Settings

    try:
        settings = Settings()
    except Exception as err:  # pydantic names the variable and what is wrong with it
        print(f"risk: invalid settings: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.run(args, settings)
    except PlaintextToken as err:
        print(f"risk: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`risk permits report ... | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risk", description="Customs risk screening service.")
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the gRPC scoring service")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="train and register a demo champion first if none is registered or its features are outdated",
    )
    serve.add_argument("--port", type=int, help="gRPC port (overrides RISK_SERVER__PORT)")
    serve.set_defaults(run=_serve)

    score = sub.add_parser("score", help="score a declaration or cargo report JSON file against a running service")
    score.add_argument(
        "file",
        type=Path,
        help='a risk.v1.Declaration or CargoReport in proto JSON, or {"declarations": [...]} / {"cargoReports": [...]}',
    )
    score.add_argument("--address", help="host:port of the service (default from settings)")
    score.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    score.set_defaults(run=_score)

    rules = sub.add_parser("rules", help="rule-set tools").add_subparsers(title="rules commands")
    check = rules.add_parser("check", help="load a rule set and report every error with file and line")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_rules_check)
    backtest = rules.add_parser(
        "backtest",
        help="what a rule set would have done on labelled history: channels and precision per rule",
    )
    backtest.add_argument("rules", type=Path, help="the rule set YAML")
    backtest.add_argument("history", type=Path, nargs="+", help="history files (CSV or Parquet), in time order")
    backtest.add_argument("--mapping", help="a shipped mapping name (kcs) or a mapping file")
    backtest.add_argument("--on", type=_day, help="judge every declaration as if lodged on this day (default: its own)")
    backtest.add_argument(
        "--include-unsupported",
        action="store_true",
        help="also evaluate rules that read fields a history does not carry (e.g. goods descriptions)",
    )
    backtest.add_argument("--format", choices=("table", "json"), default="table")
    backtest.set_defaults(run=_rules_backtest)
    stats = rules.add_parser(
        "stats",
        help="per-rule effectiveness from officers' results on a running service: hits, inspected, findings, "
        "finding rate and revenue per inspection",
    )
    stats.add_argument(
        "--from", dest="start", type=_day, required=True, metavar="DAY", help="first lodgement day (UTC)"
    )
    stats.add_argument("--until", type=_day, required=True, metavar="DAY", help="end lodgement day (UTC), exclusive")
    stats.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _service_args(stats, timeout=60.0)
    stats.set_defaults(run=_rules_stats)

    _review_parser(sub)

    permits = sub.add_parser("permits", help="permit registry tools for agencies").add_subparsers(
        title="permits commands"
    )
    feed = permits.add_parser("import", help="feed a permit file (CSV or JSON lines) to a running service")
    feed.add_argument("file", type=Path, help="permits as .csv (one row per goods line) or JSON lines")
    feed.add_argument("--strict", action="store_true", help="refuse the whole file if any line is bad")
    feed.add_argument("--actor", default="bulk-import", help="who is feeding the permits (kept in their history)")
    feed.add_argument("--address", help="host:port of the service (default from settings)")
    feed.add_argument("--timeout", type=float, default=600.0, help="deadline in seconds")
    feed.set_defaults(run=_permits_import)
    report = permits.add_parser("report", help="reconciliation: authorised, drawn and remaining per permit")
    report.add_argument("--agency", required=True, help="issuing agency code")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--address", help="host:port of the service (default from settings)")
    report.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds per page")
    report.set_defaults(run=_permits_report)

    table = permits.add_parser(
        "check-table", help="load a controlled goods table (YAML or CSV) and report every error with file and line"
    )
    table.add_argument("file", type=Path)
    table.set_defaults(run=_permits_check_table)

    auth = sub.add_parser("auth", help="API credentials").add_subparsers(title="auth commands")
    token = auth.add_parser(
        "token", help="make an API token: prints the token once and its entry for RISK_AUTH__TOKENS (a hash only)"
    )
    token.add_argument("--name", required=True, help="who the caller is; recorded as the actor of its changes")
    token.add_argument(
        "--role",
        action="append",
        required=True,
        choices=("clearance", "agency", "officer", "analyst"),
        help="a role the token grants (repeat for several)",
    )
    token.add_argument("--agency", help="the issuing agency an agency token acts for")
    token.set_defaults(run=_auth_token)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(title="audit commands")
    verify = audit.add_parser(
        "verify", help="check the audit chain and that every audited record is as it was stored (exit 1 if not)"
    )
    verify.set_defaults(run=_audit_verify)

    db = sub.add_parser("db", help="database migrations").add_subparsers(title="db commands")
    up = db.add_parser("upgrade", help="migrate the database to the newest schema")
    up.set_defaults(run=_db_upgrade)

    model = sub.add_parser("model", help="model tools").add_subparsers(title="model commands")
    demo = model.add_parser(
        "demo",
        help="train and register a demo champion on synthetic history if none exists or its features are outdated",
    )
    demo.set_defaults(run=_model_demo)

    train = sub.add_parser(
        "train",
        help="train a model on history files split by dates; tracked in MLflow and registered (no alias moves)",
    )
    train.add_argument("history", type=Path, nargs="+", help="history files (CSV or Parquet), in time order")
    train.add_argument("--mapping", help="mapping of the files to the canonical schema: a shipped name (kcs) or a file")
    train.add_argument("--valid-from", type=_day, required=True, help="first day of the validation window")
    train.add_argument("--test-from", type=_day, help="first day of the test window (scored once, never tuned on)")
    train.add_argument("--until", type=_day, help="end of the last window, exclusive (default: all rows)")
    train.add_argument("--tune", type=int, default=0, metavar="N", help="random search of N settings on validation")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--model-name", help="registered model name (default from settings, per --kind)")
    _kind_arg(train)
    train.add_argument("--experiment", default="risk-training", help="MLflow experiment")
    train.add_argument("--no-register", action="store_true", help="train and report only; log nothing to MLflow")
    train.set_defaults(run=_train)

    evaluate = sub.add_parser("evaluate", help="score labelled history with a registered model: AUC, top-n%% figures")
    evaluate.add_argument("model", help="NAME@ALIAS, NAME/VERSION, @ALIAS or VERSION (of the settings' model name)")
    evaluate.add_argument("history", type=Path, nargs="+", help="history files (CSV or Parquet), in time order")
    evaluate.add_argument("--mapping", help="a shipped mapping name (kcs) or a mapping file")
    evaluate.add_argument("--from", dest="start", type=_day, help="first day to evaluate")
    evaluate.add_argument("--until", type=_day, help="end day, exclusive")
    evaluate.add_argument("--no-log", action="store_true", help="print only; log no MLflow run")
    _kind_arg(evaluate, "whose model a bare @ALIAS or VERSION names; the history is read as the model's kind")
    evaluate.set_defaults(run=_evaluate)

    data = sub.add_parser("data", help="history data tools").add_subparsers(title="data commands")
    generate = data.add_parser(
        "generate",
        help="write seeded synthetic history with planted fraud, drift and label bias: declarations, "
        "cargo reports (canonical cargo history) and the permits the declarations cite",
    )
    generate.add_argument("out", type=Path, help="the declaration history to write, .csv or .parquet")
    generate.add_argument("--cargo", type=Path, help="the cargo history to write (default: OUT's name + '-cargo')")
    generate.add_argument(
        "--permits", type=Path, help="the permit file to write, JSON lines (default: OUT's name + '-permits.jsonl')"
    )
    generate.add_argument("--declarations", type=int, default=20_000)
    generate.add_argument("--reports", type=int, help="cargo reports (default: a quarter of --declarations)")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--start", type=_day, default="2025-01-01", help="first day (default 2025-01-01)")
    generate.add_argument("--days", type=int, default=365)
    generate.add_argument("--drift", type=float, default=1.0, help="how much the fraud mix changes over time (0: none)")
    generate.set_defaults(run=_data_generate)
    export = data.add_parser(
        "export", help="write the service's stored filings as canonical history (newest version of each declaration)"
    )
    export.add_argument("out", type=Path, help="the CSV file to write")
    export.add_argument("--from", dest="start", type=_day, help="first lodgement day")
    export.add_argument("--until", type=_day, help="end lodgement day, exclusive")
    export.set_defaults(run=_data_export)

    promote = sub.add_parser(
        "promote",
        help="make a version champion only if it beats the champion on the same window (champion/challenger)",
    )
    promote.add_argument("version", help="the candidate version (of --model-name)")
    promote.add_argument("history", type=Path, nargs="+", help="labelled history files to judge on, in time order")
    promote.add_argument("--mapping", help="a shipped mapping name (kcs) or a mapping file")
    promote.add_argument("--from", dest="start", type=_day, help="first day of the evaluation window")
    promote.add_argument("--until", type=_day, help="end day, exclusive")
    promote.add_argument("--model-name", help="registered model name (default from settings)")
    promote.add_argument(
        "--rate", type=float, help="target inspection rate (default RISK_MODEL__TARGET_INSPECTION_RATE)"
    )
    promote.add_argument("--margin", type=float, help="required precision gain (default from settings)")
    _kind_arg(promote)
    promote.set_defaults(run=_promote)

    rollback = sub.add_parser("rollback", help="point the champion alias back to the previous champion")
    rollback.add_argument("--to", help="a version to roll back to (default: the champion before the current one)")
    rollback.add_argument("--model-name", help="registered model name (default from settings)")
    _kind_arg(rollback)
    rollback.set_defaults(run=_rollback)
    return parser


def _service_args(parser: argparse.ArgumentParser, timeout: float) -> None:
    parser.add_argument("--address", help="host:port of the service (default from settings)")
    parser.add_argument("--timeout", type=float, default=timeout, help="deadline in seconds per call")


_CHANNELS = ("green", "blue", "yellow", "red")
_OFFICER_HELP = (
    "who acts (default: $RISK_OFFICER or your login name); a server with credentials takes the token's name instead"
)


def _review_parser(sub: Any) -> None:
    review = sub.add_parser(
        "review", help="officers' review of flagged declarations (cases) on a running service"
    ).add_subparsers(title="review commands")

    listing = review.add_parser("list", help="cases matching the filters, riskiest first")
    listing.add_argument(
        "--channel", action="append", type=str.lower, choices=_CHANNELS, help="assessed channel (repeat for several)"
    )
    listing.add_argument(
        "--status",
        action="append",
        type=str.lower,
        choices=("open", "claimed", "closed"),
        help="case status (repeat for several)",
    )
    listing.add_argument("--office", help="customs office of lodgement")
    listing.add_argument(
        "--from", dest="start", type=_day, metavar="DAY", help="cases opened on or after this day (UTC)"
    )
    listing.add_argument("--until", type=_day, metavar="DAY", help="cases opened before this day (UTC), exclusive")
    listing.add_argument("--min-score", type=float, metavar="SCORE", help="cases with at least this risk score (0-1)")
    holder = listing.add_mutually_exclusive_group()
    holder.add_argument("--officer", metavar="NAME", help="cases held by this officer")
    holder.add_argument("--mine", action="store_true", help="cases held by you ($RISK_OFFICER or your login name)")
    listing.add_argument("--limit", type=_positive, default=50, metavar="N", help="most cases to show (default 50)")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _service_args(listing, timeout=30.0)
    listing.set_defaults(run=_review_list)

    show = review.add_parser(
        "show",
        help="everything behind a case: declaration, assessments, permits, cargo reports, why the model flagged it, "
        "importer history and events",
    )
    show.add_argument("case", help="the case id (the declaration id)")
    show.add_argument("--format", choices=("text", "json"), default="text")
    _service_args(show, timeout=30.0)
    show.set_defaults(run=_review_show)

    claim = review.add_parser("claim", help="claim an open case: only you act on it until you release or close it")
    _case_action_args(claim)
    release = review.add_parser("release", help="give a case you hold back to the queue")
    _case_action_args(release)
    result = review.add_parser("result", help="record (or replace) the inspection result of a case you hold")
    _case_action_args(result)
    result.add_argument(
        "--outcome", required=True, choices=("no-discrepancy", "discrepancy", "seizure"), help="what was found"
    )
    result.add_argument(
        "--finding",
        action="append",
        default=[],
        metavar="CODE",
        help="a finding code from RISK_REVIEW__FINDING_CODES (repeat for several; none for no-discrepancy)",
    )
    result.add_argument(
        "--revenue",
        type=_revenue,
        metavar="AMOUNT",
        help="duties and taxes recovered, e.g. 1250000 or 1234.56 (default 0)",
    )
    result.add_argument(
        "--currency",
        type=str.upper,
        metavar="CODE",
        help="ISO 4217 currency of --revenue (default RISK_REVIEW__CURRENCY)",
    )
    result.add_argument(
        "--item", action="append", type=int, default=[], metavar="N", help="a goods item concerned (default: all)"
    )
    result.add_argument("--notes", default="", help="your notes")
    override = review.add_parser("override", help="handle a case you hold in another channel, saying why")
    _case_action_args(override)
    override.add_argument("--channel", required=True, type=str.lower, choices=_CHANNELS, help="the channel to set")
    override.add_argument(
        "--reason", required=True, metavar="CODE", help="a reason code from RISK_REVIEW__OVERRIDE_REASONS"
    )
    override.add_argument("--text", required=True, help="why, in your words")
    close = review.add_parser("close", help="close a case you hold: it needs a result, or an override to green, first")
    _case_action_args(close)
    for action, parser in (
        ("claim", claim), ("release", release), ("result", result), ("override", override), ("close", close),
    ):  # fmt: skip
        parser.set_defaults(run=_review_action, action=action)


def _case_action_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("case", help="the case id (the declaration id)")
    parser.add_argument(
        "--version",
        type=_positive,
        metavar="N",
        help="the case version you read: pass the version `risk review show` printed to be refused (ABORTED) if "
        "the case changed since you looked; default: the current version, read just before acting",
    )
    parser.add_argument("--officer", metavar="NAME", help=_OFFICER_HELP)
    _service_args(parser, timeout=30.0)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of 1 or more")
    return value


def _revenue(text: str) -> tuple[int, int]:
    """An amount as google.type.Money units and nanos, exactly (no float on the way)."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not an amount (digits with an optional decimal point)") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite amount of zero or more")
    units = int(value)
    nanos = (value - units).scaleb(9)
    if nanos != nanos.to_integral_value():
        raise argparse.ArgumentTypeError(f"'{text}' has more than 9 decimal places")
    if units >= 2**63:
        raise argparse.ArgumentTypeError(f"'{text}' is too large")
    return units, int(nanos)


def _audit_verify(args: argparse.Namespace, settings: Any) -> int:
    import sqlalchemy as sa

    from risk_service.store import audit, migrations
    from risk_service.store.db import create_engine

    url = settings.resolved_database_url
    shown = sa.make_url(url).render_as_string(hide_password=True)
    # Read-only: a check never migrates (and may run as a role that can only read).
    try:
        revision = migrations.current_revision(url)
    except sa.exc.OperationalError as err:
        print(
            f"risk: cannot open the database {shown}: {err.orig}; set RISK_DATA_DIR or RISK_DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    if (revision or "") < "0006":
        print(f"risk: {shown} has no audit trail yet; run: risk db upgrade", file=sys.stderr)
        return 2
    engine = create_engine(url)
    try:
        report = audit.verify(engine)
    finally:
        engine.dispose()
    if report.intact:
        span = f" from {report.first.isoformat()} to {report.last.isoformat()}" if report.first and report.last else ""
        print(f"audit trail intact: {report.entries} entries{span}")
        return 0
    for problem in report.problems:
        print(f"risk: audit trail: {problem}", file=sys.stderr)
    print(f"risk: the audit trail shows tampering (checked {report.entries} entries)", file=sys.stderr)
    return 1


def _auth_token(args: argparse.Namespace, settings: Any) -> int:
    import json
    import secrets

    from pydantic import ValidationError

    from risk_service.grpc.auth import token_digest
    from risk_service.settings import ApiToken

    token = secrets.token_urlsafe(32)
    try:
        entry = ApiToken(name=args.name, sha256=token_digest(token), roles=args.role, agency=args.agency)
    except ValidationError as err:
        print(f"risk: {err.errors()[0]['msg']}", file=sys.stderr)
        return 2
    print(f"token (shown once; give it to {entry.name}, keep it out of configuration): {token}")
    print("add to RISK_AUTH__TOKENS (a JSON list):")
    print(json.dumps(entry.model_dump(mode="json", exclude_none=True)))
    return 0


def _kind_arg(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument(
        "--kind",
        choices=("declaration", "container"),
        default="declaration",
        help="declaration goods items (canonical history) or cargo containers (canonical cargo history)"
        + (f"; {what}" if what else ""),
    )


def _model_of(args: argparse.Namespace, settings: Any) -> tuple[str, str]:
    """(registered name, serving alias) of the kind's model; --model-name overrides the name."""
    if args.kind == "container":
        return args.model_name or settings.cargo.model_name, settings.cargo.model_alias
    return args.model_name or settings.model.name, settings.model.alias


def _data_generate(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.synthetic_permits import generate_permits, write_permits
    from training.cargo_history import CARGO_SCHEMA
    from training.history import write_history
    from training.synthetic import generate_history
    from training.synthetic_cargo import generate_cargo_history

    out: Path = args.out
    reports = args.reports if args.reports is not None else max(1, args.declarations // 4)
    if not (
        args.declarations >= 1
        and reports >= 1
        and args.seed >= 0
        and 1 <= args.days <= 36_500
        and 0 <= args.drift <= 10
    ):
        print(
            "risk: need --declarations >= 1, --reports >= 1, --seed >= 0, --days from 1 to 36500 "
            "and --drift from 0 to 10",
            file=sys.stderr,
        )
        return 2
    cargo_out: Path = args.cargo or out.with_name(f"{out.stem}-cargo{out.suffix}")
    permits_out: Path = args.permits or out.with_name(f"{out.stem}-permits.jsonl")
    for path in (out, cargo_out):
        if path.suffix.lower() not in (".csv", ".parquet"):
            print(f"risk: {path}: use a .csv or .parquet file name", file=sys.stderr)
            return 2
    if len({out.resolve(), cargo_out.resolve(), permits_out.resolve()}) < 3:
        print("risk: the declaration, cargo and permit files must be three different files", file=sys.stderr)
        return 2
    frame = generate_history(args.declarations, seed=args.seed, start=args.start, days=args.days, drift=args.drift)
    cargo = generate_cargo_history(reports, seed=args.seed, start=args.start, days=args.days, drift=args.drift)
    permits = generate_permits(frame, seed=args.seed)
    try:
        rows = write_history(frame, out)
        containers = write_history(cargo, cargo_out, CARGO_SCHEMA)
        written = write_permits(permits, permits_out)
    except OSError as err:
        print(f"risk: cannot write {err.filename or out}: {err.strerror or err}", file=sys.stderr)
        return 2
    for what, f in (("goods items", frame), ("containers", cargo)):
        inspected = f["inspected"].astype(bool)
        print(
            f"{what}: {f['inspected'].mean():.1%} inspected, findings on {f['finding'].mean():.2%} of all "
            f"({f.loc[inspected, 'finding'].mean():.1%} of inspected), {f['random_control'].mean():.1%} random controls"
        )
    print(f"wrote {rows} goods items of {args.declarations} declarations to {out}")
    print(f"wrote {containers} containers of {reports} cargo reports to {cargo_out}")
    print(f"wrote {written} permits to {permits_out} (feed them with: risk permits import {permits_out})")
    return 0


def _data_export(args: argparse.Namespace, settings: Any) -> int:
    from datetime import UTC, datetime, time

    from risk_service.history_export import export_history
    from risk_service.store import migrations
    from risk_service.store.case_store import SqlCaseStore

    if args.out.suffix.lower() != ".csv":
        print(f"risk: {args.out}: the export is written as CSV; name it .csv", file=sys.stderr)
        return 2

    def moment(day: Any) -> datetime | None:
        return None if day is None else datetime.combine(day, time(), tzinfo=UTC)

    url = settings.resolved_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(url)
    store = SqlCaseStore(url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        rows = export_history(store.labelled_filings(since=moment(args.start), until=moment(args.until)), args.out)
    except OSError as err:
        print(f"risk: cannot write {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"wrote {rows.rows} goods items to {args.out}: {rows.inspected} inspected, {rows.findings} with findings")
    return 0


def _promote(args: argparse.Namespace, settings: Any) -> int:
    from training.promotion import PromotionRefused, promote
    from training.run import EvaluationWindow

    name, alias = _model_of(args, settings)
    rate = args.rate if args.rate is not None else settings.model.target_inspection_rate
    margin = args.margin if args.margin is not None else settings.model.promotion_margin
    if not 0.0 < rate <= 1.0 or not 0.0 <= margin <= 1.0:
        print(f"risk: --rate must be in (0, 1] and --margin in [0, 1]; got {rate} and {margin}", file=sys.stderr)
        return 2
    try:
        decision = promote(
            tracking_uri=settings.resolved_tracking_uri,
            model_name=name,
            candidate=args.version,
            window=EvaluationWindow(
                tuple(args.history), args.start, args.until, _mapping_arg(args.mapping), kind=args.kind
            ),
            rate=rate,
            margin=margin,
            alias=alias,
        )
    except PromotionRefused as err:
        print(f"risk: {err}", file=sys.stderr)
        return 2
    except _training_errors() as err:
        return _report_training_error(err)
    _print_evaluation(f"candidate {name} version {decision.candidate}", decision.candidate_evaluation)
    if decision.champion_evaluation is not None:
        _print_evaluation(f"{alias} {name} version {decision.champion}", decision.champion_evaluation)
    verdict = "promoted" if decision.promoted else "not promoted"
    print(f"{verdict}: {decision.reason} (recorded in run {decision.run_id})")
    return 0 if decision.promoted else 1


def _rollback(args: argparse.Namespace, settings: Any) -> int:
    from training.promotion import PromotionRefused, rollback

    name, alias = _model_of(args, settings)
    try:
        before, after = rollback(
            tracking_uri=settings.resolved_tracking_uri, model_name=name, to=args.to, alias=alias, kind=args.kind
        )
    except PromotionRefused as err:
        print(f"risk: {err}", file=sys.stderr)
        return 2
    print(f"{name}@{alias}: version {before} -> {after}")
    return 0


def _day(text: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _print_evaluation(title: str, evaluation: Any) -> None:
    report = evaluation.overall
    print(
        f"{title}: {report.n_rows} rows, {report.n_findings} findings, AUC {report.auc:.3f}, "
        f"average precision {report.average_precision:.3f}"
    )
    print(f"  {'top':>5} {'rows':>7} {'precision':>10} {'recall':>8} {'revenue':>8}")
    for r in report.at_rates:
        revenue = "-" if r.revenue_captured != r.revenue_captured else f"{r.revenue_captured:.3f}"
        print(f"  {r.rate:>5.0%} {r.n_selected:>7} {r.precision:>10.3f} {r.recall:>8.3f} {revenue:>8}")
    if evaluation.random_control is not None:
        rc = evaluation.random_control
        print(f"  random controls: {rc.n_rows} rows, AUC {rc.auc:.3f}, precision at 5% {rc.at(0.05).precision:.3f}")


def _training_errors() -> tuple[type[Exception], ...]:
    from training.history import HistoryError
    from training.run import TrainingDataError, WindowError

    return HistoryError, WindowError, TrainingDataError


def _report_training_error(err: Exception) -> int:
    from training.history import HistoryError

    if isinstance(err, HistoryError):
        for problem in err.problems:
            print(f"risk: {problem}", file=sys.stderr)
        print(f"risk: {len(err.problems)} problems; nothing was done", file=sys.stderr)
    else:
        print(f"risk: {err}", file=sys.stderr)
    return 2


def _mapping_arg(value: str | None) -> Path | None:
    from training.mapping import mapping_path

    return mapping_path(value) if value else None


def _train(args: argparse.Namespace, settings: Any) -> int:
    from tqdm import tqdm

    from training.run import TrainingRequest, run_training

    request = TrainingRequest(
        histories=tuple(args.history),
        valid_from=args.valid_from,
        mapping=_mapping_arg(args.mapping),
        test_from=args.test_from,
        until=args.until,
        seed=args.seed,
        tune_trials=args.tune,
        kind=args.kind,
    )
    name, _ = _model_of(args, settings)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, leave=False)
        bar.update(done - bar.n)

    try:
        if not args.no_register:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        result = run_training(
            request,
            model_name=name,
            tracking_uri=None if args.no_register else settings.resolved_tracking_uri,
            experiment=args.experiment,
            progress=progress,
        )
    except _training_errors() as err:
        return _report_training_error(err)
    finally:
        for bar in bars.values():
            bar.close()
    rows = result.rows
    print(f"windows: train {rows['train']} rows, validation {rows['valid']}, test {rows['test']}")
    _print_evaluation("validation", result.validation)
    if result.test is not None:
        _print_evaluation("test", result.test)
    if result.version is not None:
        print(f"registered {name} version {result.version} (run {result.run_id}); no alias was moved")
    return 0


def _evaluate(args: argparse.Namespace, settings: Any) -> int:
    from models import registry
    from models.risk_model import ModelSchemaError
    from training.run import EvaluationWindow, run_evaluation

    uri = settings.resolved_tracking_uri
    name, _, rest = args.model.rpartition("@") if "@" in args.model else args.model.rpartition("/")
    name = name or (settings.cargo.model_name if args.kind == "container" else settings.model.name)
    version = registry.resolve_alias(uri, name, rest) if "@" in args.model else rest
    if not version:
        print(f"risk: {name} has no version with alias '{rest}'", file=sys.stderr)
        return 2
    try:
        model = registry.load_version(uri, name, version, expected_feature_names=None)
        model.check_schema(model.kind.feature_names)  # of its own kind: declaration or container
    except ModelSchemaError as err:
        print(f"risk: {name} version {version} cannot score here: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # MLflow's own errors: unknown model or version
        print(f"risk: cannot load {name} version {version}: {err}", file=sys.stderr)
        return 2
    try:
        window = EvaluationWindow(tuple(args.history), args.start, args.until, _mapping_arg(args.mapping))
        result = run_evaluation(model, window, tracking_uri=None if args.no_log else uri)
    except _training_errors() as err:
        return _report_training_error(err)
    _print_evaluation(f"{name} version {version}", result.evaluation)
    if result.run_id is not None:
        print(f"logged evaluation run {result.run_id}")
    return 0


def _serve(args: argparse.Namespace, settings: Any) -> int:
    import asyncio

    from risk_service.bootstrap import check_exposure, ensure_demo_model, serve

    if args.port is not None:
        from risk_service.settings import ServerSettings

        try:
            settings.server = ServerSettings.model_validate({**settings.server.model_dump(), "port": args.port})
        except ValueError as err:
            print(f"risk: invalid --port: {err}", file=sys.stderr)
            return 2
    try:
        check_exposure(settings)
    except ValueError as err:
        print(f"risk: {err}", file=sys.stderr)
        return 2
    if args.demo:
        _print_demo_champions(settings, ensure_demo_model(settings))

    def ready(port: int) -> None:
        print(f"risk service ready on {settings.server.host}:{port}", flush=True)

    asyncio.run(serve(settings, on_ready=ready, own_process=True))
    return 0


# The scoring RPC each kind of file goes to, by the request message it parses into.
_SCORE_CALLS = {
    "ScoreDeclarationRequest": "ScoreDeclaration",
    "ScoreDeclarationsRequest": "ScoreDeclarations",
    "ScoreCargoReportRequest": "ScoreCargoReport",
    "ScoreCargoReportsRequest": "ScoreCargoReports",
}


def _read_request(path: Path) -> Any:
    """Parses the file into a declaration or cargo report request, unary or batch; errors name the file and line.

    A cargo report is told from a declaration by its reportId (or a cargoReport / cargoReports wrapper).
    """
    from google.protobuf import json_format

    from protos.risk.v1 import cargo_pb2, declaration_pb2
    from protos.risk.v1 import risk_scoring_service_pb2 as pb

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SystemExit(f"{path}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    if not isinstance(document, dict):
        raise SystemExit(f"{path}: expected a JSON object (a declaration or a cargo report)")
    cargo = "reportId" in document or "report_id" in document or "cargoReport" in document
    what = "cargo report" if cargo or "cargoReports" in document else "declaration"
    try:
        if "declarations" in document:
            return json_format.ParseDict(document, pb.ScoreDeclarationsRequest())
        if "cargoReports" in document or "cargo_reports" in document:
            return json_format.ParseDict(document, pb.ScoreCargoReportsRequest())
        if cargo:
            body = document.get("cargoReport", document)
            return pb.ScoreCargoReportRequest(cargo_report=json_format.ParseDict(body, cargo_pb2.CargoReport()))
        body = document.get("declaration", document)
        return pb.ScoreDeclarationRequest(declaration=json_format.ParseDict(body, declaration_pb2.Declaration()))
    except json_format.ParseError as err:
        raise SystemExit(f"{path}: not a risk.v1 {what}: {err}") from None


def _score(args: argparse.Namespace, settings: Any) -> int:
    import grpc
    from google.protobuf import json_format

    from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel

    request = _read_request(args.file)
    address = args.address or f"{settings.server.host}:{settings.server.port}"
    with open_channel(address, settings.client) as channel:
        stub = pb_grpc.RiskScoringServiceStub(channel)
        call = getattr(stub, _SCORE_CALLS[type(request).__name__])
        try:
            response = call(request, timeout=args.timeout)
        except grpc.RpcError as err:
            _print_rpc_error(err)
            return 1
    print(json_format.MessageToJson(response, indent=2))
    return 0


def _print_rpc_error(err: Any, prefix: str = "risk") -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    print(f"{prefix}: {err.code().name}: {err.details()}", file=sys.stderr)
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            for v in bad.field_violations:
                print(f"  {v.field}: {v.description}", file=sys.stderr)


def _permits_import(args: argparse.Namespace, settings: Any) -> int:
    import hashlib

    import grpc
    from google.rpc import error_details_pb2
    from tqdm import tqdm

    from protos.risk.v1 import permit_service_pb2 as pb
    from protos.risk.v1 import permit_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel
    from risk_service.permit_feed import FeedError, read_feed

    path: Path = args.file
    try:
        entries = list(read_feed(path))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FeedError as err:
        print(f"{path}: {err}" if not str(err).startswith(str(path)) else str(err), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{path}: cannot read: {err.strerror}", file=sys.stderr)
        return 1
    bad = [e for e in entries if e.error]
    for entry in bad:
        print(f"{path}:{entry.line_number}: {entry.error}", file=sys.stderr)
    if args.strict and bad:
        print(f"{path}: refused in strict mode: {len(bad)} bad lines; nothing was sent", file=sys.stderr)
        return 1
    good = [e for e in entries if e.permit is not None]

    actor_tag = hashlib.sha256(args.actor.encode()).hexdigest()[:8]

    def requests() -> Any:
        # The request id ties a row to this file's content and feeder, so feeding it again is a no-op.
        for entry in tqdm(good, desc=f"importing {path.name}", unit="permit", disable=None):
            yield pb.ImportPermitsRequest(
                line_number=entry.line_number,
                request_id=f"{digest}:{actor_tag}:{entry.line_number}",
                actor=args.actor,
                permit=entry.permit,
                strict=args.strict,
            )

    address = args.address or f"{settings.server.host}:{settings.server.port}"
    # One line-level error per bad row comes back in the response, which can pass gRPC's 4 MiB default.
    with open_channel(address, settings.client, _LARGE_MESSAGES) as channel:
        try:
            response = pb_grpc.PermitServiceStub(channel).ImportPermits(requests(), timeout=args.timeout)
        except grpc.RpcError as err:
            _print_rpc_error(err)
            return 1
    for row in response.errors:
        print(f"{path}:{row.line_number}: {row.status.message}", file=sys.stderr)
        for detail in row.status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                violations = error_details_pb2.BadRequest()
                detail.Unpack(violations)
                for v in violations.field_violations:
                    print(f"  {v.field}: {v.description}", file=sys.stderr)
    failed = len(bad) + len(response.errors)
    if not response.applied:
        print(
            f"{path}: refused in strict mode: {len(response.errors)} rows were refused; nothing was stored",
            file=sys.stderr,
        )
        return 1
    print(
        f"{path}: {response.created} created, {response.amended} amended, {response.unchanged} unchanged, "
        f"{failed} skipped"
    )
    return 1 if failed else 0


def _permits_report(args: argparse.Namespace, settings: Any) -> int:
    import csv

    import grpc
    from google.protobuf import json_format

    from protos.risk.v1 import permit_service_pb2 as pb
    from protos.risk.v1 import permit_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel

    address = args.address or f"{settings.server.host}:{settings.server.port}"
    usages: list[Any] = []
    with open_channel(address, settings.client, _LARGE_MESSAGES) as channel:
        stub = pb_grpc.PermitServiceStub(channel)
        token = ""
        while True:
            try:
                page = stub.ReportPermitUsage(
                    pb.ReportPermitUsageRequest(issuing_agency=args.agency, page_size=50, page_token=token),
                    timeout=args.timeout,
                )
            except grpc.RpcError as err:
                _print_rpc_error(err)
                return 1
            usages.extend(page.permits)
            token = page.next_page_token
            if not token:
                break
    if args.format == "json":
        for usage in usages:
            # Zeros too: a line nothing was drawn from says drawn_quantity 0 rather than leave it out.
            print(
                json_format.MessageToJson(
                    usage, indent=None, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
                )
            )
        return 0
    rows = [_report_row(usage, balance) for usage in usages for balance in usage.permit.balances]
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(_REPORT_COLUMNS)
        writer.writerows(rows)
        return 0
    print(f"permits of {args.agency}: {len(usages)}")
    widths = [max(len(str(c)) for c in column) for column in zip(_REPORT_COLUMNS, *rows, strict=False)]
    for row in [_REPORT_COLUMNS, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


_REPORT_COLUMNS = (
    "permit_id", "status", "holder_id", "line", "unit", "authorised", "drawn", "remaining",
    "authorised_value", "drawn_value", "remaining_value", "declarations",
)  # fmt: skip


def _report_row(usage: Any, balance: Any) -> tuple[object, ...]:
    from protos.risk.v1 import permit_pb2

    def amount(message: Any, field: str) -> str:
        return _figure(getattr(message, field)) if message.HasField(field) else "-"

    permit = usage.permit.permit
    draws = sorted(
        {f"{d.declaration_id}/v{d.declaration_version}" for d in usage.draws if d.line_number == balance.line_number}
    )
    return (
        permit.permit_id,
        permit_pb2.PermitStatus.Name(permit.status).removeprefix("PERMIT_STATUS_"),
        permit.holder_id,
        balance.line_number,
        balance.unit or "-",
        amount(balance, "authorised_quantity"),
        _figure(balance.drawn_quantity),
        amount(balance, "remaining_quantity"),
        amount(balance, "authorised_value"),
        _figure(balance.drawn_value),
        amount(balance, "remaining_value"),
        " ".join(draws) or "-",
    )


# A report page bounds permits, not draws; a busy permit's draws can pass gRPC's 4 MiB default.
_LARGE_MESSAGES = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def _figure(value: float) -> str:
    """Quantities and money in full (no exponent), without a trailing .0."""
    return f"{value:.15g}" if abs(value) < 1e15 else f"{value:.0f}"


def _address(args: argparse.Namespace, settings: Any) -> str:
    return args.address or f"{settings.server.host}:{settings.server.port}"


def _default_officer() -> str:
    import getpass

    try:
        return os.environ.get("RISK_OFFICER") or getpass.getuser()
    except OSError:  # no login name (a container without a passwd entry): the server asks for one
        return ""


def _midnight(day: Any) -> Any:
    """Start of a day in UTC, as a protobuf Timestamp."""
    from datetime import UTC, datetime, time

    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.combine(day, time(), tzinfo=UTC))
    return stamp


def _proto_json(message: Any, indent: int | None) -> str:
    from google.protobuf import json_format

    # Zeros too (version 0, no findings): a reader sees every field rather than guess at absent ones.
    return json_format.MessageToJson(
        message, indent=indent, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _review_list(args: argparse.Namespace, settings: Any) -> int:
    import csv

    import grpc

    from protos.risk.v1 import assessment_pb2, review_pb2
    from protos.risk.v1 import review_service_pb2 as pb
    from protos.risk.v1 import review_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel
    from risk_service.review_tables import LIST_COLUMNS, aligned, case_row

    request = pb.ListCasesRequest(
        channels=[assessment_pb2.Channel.Value(f"CHANNEL_{c.upper()}") for c in args.channel or ()],
        statuses=[review_pb2.CaseStatus.Value(f"CASE_STATUS_{s.upper()}") for s in args.status or ()],
        customs_office=args.office or "",
        assigned_officer=_default_officer() if args.mine else args.officer or "",
    )
    if args.start is not None:
        request.opened_after.CopyFrom(_midnight(args.start))
    if args.until is not None:
        request.opened_before.CopyFrom(_midnight(args.until))
    if args.min_score is not None:
        request.min_risk_score = args.min_score
    cases: list[Any] = []
    more = False
    with open_channel(_address(args, settings), settings.client) as channel:
        stub = pb_grpc.ReviewServiceStub(channel)
        while True:
            request.page_size = min(args.limit - len(cases), _MAX_CASE_PAGE)
            try:
                page = stub.ListCases(request, timeout=args.timeout)
            except grpc.RpcError as err:
                _print_rpc_error(err)
                return 1
            cases.extend(page.cases)
            request.page_token = page.next_page_token
            if not request.page_token or len(cases) >= args.limit:
                more = bool(request.page_token)
                break
    cases = cases[: args.limit]
    if args.format == "json":
        for case in cases:
            print(_proto_json(case, indent=None))
    elif args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(LIST_COLUMNS)
        writer.writerows(case_row(case, table=False) for case in cases)
    else:
        print(f"cases: {len(cases)}{' (more match)' if more else ''}")
        for line in aligned(LIST_COLUMNS, [case_row(case, table=True) for case in cases]):
            print(line)
    if more:
        print(f"risk: showing the first {len(cases)} cases; more match (raise --limit)", file=sys.stderr)
    return 0


# ListCases refuses pages larger than this.
_MAX_CASE_PAGE = 500


def _review_show(args: argparse.Namespace, settings: Any) -> int:
    import grpc

    from protos.risk.v1 import review_service_pb2 as pb
    from protos.risk.v1 import review_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel
    from risk_service.review_tables import case_report

    with open_channel(_address(args, settings), settings.client, _LARGE_MESSAGES) as channel:
        try:
            response = pb_grpc.ReviewServiceStub(channel).GetCase(
                pb.GetCaseRequest(case_id=args.case), timeout=args.timeout
            )
        except grpc.RpcError as err:
            _print_rpc_error(err)
            return 1
    if args.format == "json":
        print(_proto_json(response.detail, indent=2))
    else:
        print(case_report(response.detail), end="")
    return 0


# Each officer's action: the RPC it calls and the field carrying its payload (result or override).
_CASE_ACTIONS = {
    "claim": ("ClaimCase", "ClaimCaseRequest", None),
    "release": ("ReleaseCase", "ReleaseCaseRequest", None),
    "result": ("RecordInspectionResult", "RecordInspectionResultRequest", "result"),
    "override": ("OverrideChannel", "OverrideChannelRequest", "override"),
    "close": ("CloseCase", "CloseCaseRequest", None),
}


def _review_action(args: argparse.Namespace, settings: Any) -> int:
    """claim, release, result, override or close: one call naming the case version the officer saw."""
    import grpc

    from protos.risk.v1 import review_service_pb2 as pb
    from protos.risk.v1 import review_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel

    method, request_type, field = _CASE_ACTIONS[args.action]
    payload = {}
    if field is not None:
        try:
            payload[field] = _review_payload(args, settings)
        except ValueError as err:
            print(f"risk: {err}", file=sys.stderr)
            return 2
    case_id: str = args.case
    version: int | None = args.version
    with open_channel(_address(args, settings), settings.client, _LARGE_MESSAGES) as channel:
        stub = pb_grpc.ReviewServiceStub(channel)
        try:
            if version is None:
                version = stub.GetCase(pb.GetCaseRequest(case_id=case_id), timeout=args.timeout).detail.case.version
            request = getattr(pb, request_type)(
                case_id=case_id, expected_version=version, officer=args.officer or _default_officer(), **payload
            )
            case = getattr(stub, method)(request, timeout=args.timeout).case
        except grpc.RpcError as err:
            _print_rpc_error(err)
            if err.code() == grpc.StatusCode.ABORTED:
                print(
                    f"risk: case {case_id} changed since version {version}; reload it with "
                    f"`risk review show {case_id}` and act on what it shows now",
                    file=sys.stderr,
                )
            return 1
    print(f"{_what_happened(args.action, case)} (version {case.version})")
    return 0


def _review_payload(args: argparse.Namespace, settings: Any) -> Any:
    """The inspection result or channel override the command line describes."""
    from google.type import money_pb2

    from protos.risk.v1 import assessment_pb2, review_pb2

    if args.action == "override":
        return review_pb2.ChannelOverride(
            channel=assessment_pb2.Channel.Value(f"CHANNEL_{args.channel.upper()}"),
            reason_code=args.reason,
            reason_text=args.text,
        )
    if args.currency is not None and args.revenue is None:
        raise ValueError("--currency goes with --revenue")
    result = review_pb2.InspectionResult(
        outcome=review_pb2.InspectionOutcome.Value(f"INSPECTION_OUTCOME_{args.outcome.upper().replace('-', '_')}"),
        finding_codes=args.finding,
        notes=args.notes,
        item_numbers=args.item,
    )
    if args.revenue is not None:
        units, nanos = args.revenue
        currency = args.currency or settings.review.currency
        result.revenue_recovered.CopyFrom(money_pb2.Money(currency_code=currency, units=units, nanos=nanos))
    return result


def _what_happened(action: str, case: Any) -> str:
    from protos.risk.v1 import assessment_pb2
    from risk_service.review_tables import describe_result, name

    if action == "claim":
        return f"case {case.case_id} claimed by {case.assigned_officer}"
    if action == "release":
        return f"case {case.case_id} released to the queue"
    if action == "result":
        return f"case {case.case_id}: result {describe_result(case.result)}, recorded by {case.result.officer}"
    if action == "override":
        return (
            f"case {case.case_id}: channel {name(assessment_pb2.Channel, case.channel)} overridden to "
            f"{name(assessment_pb2.Channel, case.override.channel)} ({case.override.reason_code}) "
            f"by {case.override.officer}"
        )
    return f"case {case.case_id} closed by {case.assigned_officer}"


def _rules_stats(args: argparse.Namespace, settings: Any) -> int:
    import csv

    import grpc

    from protos.risk.v1 import review_service_pb2 as pb
    from protos.risk.v1 import review_service_pb2_grpc as pb_grpc
    from risk_service.grpc.client import open_channel
    from risk_service.review_tables import STATS_COLUMNS, aligned, rule_stat_row

    request = pb.GetRuleStatsRequest(since=_midnight(args.start), until=_midnight(args.until))
    with open_channel(_address(args, settings), settings.client) as channel:
        try:
            response = pb_grpc.ReviewServiceStub(channel).GetRuleStats(request, timeout=args.timeout)
        except grpc.RpcError as err:
            _print_rpc_error(err)
            return 1
    if args.format == "json":
        print(_proto_json(response, indent=2))
        return 0
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(STATS_COLUMNS)
        writer.writerows(rule_stat_row(s, response.currency, table=False) for s in response.stats)
        return 0
    print(
        f"declarations lodged {args.start} to {args.until} (exclusive): {response.declarations}, "
        f"inspected {response.inspected}; {len(response.stats)} rules hit"
    )
    rows = [rule_stat_row(s, response.currency, table=True) for s in response.stats]
    for line in aligned(STATS_COLUMNS[:-1], rows):
        print(line)
    return 0


def _permits_check_table(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.domain.permits.controlled_goods import ControlledGoodsError, load_controlled_goods

    try:
        table = load_controlled_goods(args.file)
    except ControlledGoodsError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.file}: controlled goods table {table.version} is valid: {len(table.entries)} entries")
    return 0


def _rules_check(args: argparse.Namespace, settings: Any) -> int:
    import features
    from risk_service.domain.rules import RuleSetError, load_rule_set

    try:
        rule_set = load_rule_set(args.file, features.FEATURE_NAMES)
    except RuleSetError as err:
        print(err, file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{args.file}: cannot read: {err.strerror}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: rule set {rule_set.version} is valid: {len(rule_set.rules)} rules, {len(rule_set.lists)} lists"
    )
    return 0


def _rules_backtest(args: argparse.Namespace, settings: Any) -> int:
    import features
    from risk_service.bootstrap import policy_from_settings
    from risk_service.domain.rules import RuleSetError, load_rule_set
    from risk_service.domain.rules.backtest import backtest_to_dict, format_backtest
    from risk_service.history_declarations import backtest_history
    from training.history import read_histories
    from training.mapping import load_mapping

    try:
        rule_set = load_rule_set(args.rules, features.FEATURE_NAMES)
    except RuleSetError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        mapping_file = _mapping_arg(args.mapping)
        frame = read_histories(args.history, load_mapping(mapping_file) if mapping_file else None)
    except _training_errors() as err:
        return _report_training_error(err)
    report = backtest_history(
        rule_set, frame, policy=policy_from_settings(settings), on=args.on, skip_missing=not args.include_unsupported
    )
    if args.format == "json":
        print(json.dumps(backtest_to_dict(report), indent=2, allow_nan=False))
    else:
        print(format_backtest(report), end="")
    return 0


def _db_upgrade(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.store import migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.resolved_database_url)
    print(f"database at revision {migrations.current_revision(settings.resolved_database_url)}")
    return 0


def _model_demo(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.bootstrap import ensure_demo_model

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _print_demo_champions(settings, ensure_demo_model(settings))
    return 0


def _print_demo_champions(settings: Any, versions: tuple[str, str]) -> None:
    print(f"champion model {settings.model.name} version {versions[0]} is registered", flush=True)
    print(f"champion container model {settings.cargo.model_name} version {versions[1]} is registered", flush=True)


if __name__ == "__main__":
    sys.exit(main())
