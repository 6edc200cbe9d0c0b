"""The `risk` command. Heavy libraries are imported inside each subcommand so --help stays fast."""

from __future__ import annotations

import argparse
import json
import logging
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
    from risk_service.settings import Settings

    try:
        settings = Settings()
    except Exception as err:  # pydantic names the variable and what is wrong with it
        print(f"risk: invalid settings: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code: int = args.run(args, settings)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="risk", description="Customs risk screening service.")
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the gRPC scoring service")
    serve.add_argument(
        "--demo", action="store_true", help="train and register a demo champion model first if none is registered"
    )
    serve.add_argument("--port", type=int, help="gRPC port (overrides RISK_SERVER__PORT)")
    serve.set_defaults(run=_serve)

    score = sub.add_parser("score", help="score a declaration JSON file against a running service")
    score.add_argument("file", type=Path, help='a risk.v1.Declaration in proto JSON, or {"declarations": [...]}')
    score.add_argument("--address", help="host:port of the service (default from settings)")
    score.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    score.set_defaults(run=_score)

    rules = sub.add_parser("rules", help="rule-set tools").add_subparsers(title="rules commands")
    check = rules.add_parser("check", help="load a rule set and report every error with file and line")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_rules_check)

    db = sub.add_parser("db", help="database migrations").add_subparsers(title="db commands")
    up = db.add_parser("upgrade", help="migrate the database to the newest schema")
    up.set_defaults(run=_db_upgrade)

    model = sub.add_parser("model", help="model tools").add_subparsers(title="model commands")
    demo = model.add_parser("demo", help="train and register a demo champion on synthetic history if none exists")
    demo.set_defaults(run=_model_demo)
    return parser


def _serve(args: argparse.Namespace, settings: Any) -> int:
    import asyncio

    from risk_service.bootstrap import ensure_demo_model, serve

    if args.port is not None:
        from risk_service.settings import ServerSettings

        try:
            settings.server = ServerSettings.model_validate({**settings.server.model_dump(), "port": args.port})
        except ValueError as err:
            print(f"risk: invalid --port: {err}", file=sys.stderr)
            return 2
    if args.demo:
        version = ensure_demo_model(settings)
        print(f"champion model {settings.model.name} version {version} is registered", flush=True)

    def ready(port: int) -> None:
        print(f"risk service ready on {settings.server.host}:{port}", flush=True)

    asyncio.run(serve(settings, on_ready=ready))
    return 0


def _read_request(path: Path) -> tuple[str, Any]:
    """Parses the file into a unary or batch request; errors name the file and line."""
    from google.protobuf import json_format

    from protos.risk.v1 import declaration_pb2
    from protos.risk.v1 import risk_scoring_service_pb2 as pb

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SystemExit(f"{path}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    try:
        if isinstance(document, dict) and "declarations" in document:
            return "batch", json_format.ParseDict(document, pb.ScoreDeclarationsRequest())
        body = document.get("declaration", document) if isinstance(document, dict) else document
        return "unary", pb.ScoreDeclarationRequest(
            declaration=json_format.ParseDict(body, declaration_pb2.Declaration())
        )
    except json_format.ParseError as err:
        raise SystemExit(f"{path}: not a risk.v1 declaration: {err}") from None


def _score(args: argparse.Namespace, settings: Any) -> int:
    import grpc
    from google.protobuf import json_format
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc

    kind, request = _read_request(args.file)
    address = args.address or f"{settings.server.host}:{settings.server.port}"
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.RiskScoringServiceStub(channel)
        call = stub.ScoreDeclaration if kind == "unary" else stub.ScoreDeclarations
        try:
            response = call(request, timeout=args.timeout)
        except grpc.RpcError as err:
            print(f"risk: {err.code().name}: {err.details()}", file=sys.stderr)
            status = rpc_status.from_call(err)
            for detail in status.details if status else []:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    for v in bad.field_violations:
                        print(f"  {v.field}: {v.description}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response, indent=2))
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


def _db_upgrade(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.store import migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.resolved_database_url)
    print(f"database at revision {migrations.current_revision(settings.resolved_database_url)}")
    return 0


def _model_demo(args: argparse.Namespace, settings: Any) -> int:
    from risk_service.bootstrap import ensure_demo_model

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    version = ensure_demo_model(settings)
    print(f"champion model {settings.model.name} version {version} is registered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
