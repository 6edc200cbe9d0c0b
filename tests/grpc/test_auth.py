"""Identity, roles and TLS through the real server: API tokens in metadata, a role per RPC, agencies
confined to their own permits, TLS and mutual TLS with certificates generated here."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.risk.v1 import permit_pb2
from protos.risk.v1 import permit_service_pb2 as ppb
from protos.risk.v1 import permit_service_pb2_grpc as ppb_grpc
from protos.risk.v1 import risk_scoring_service_pb2 as pb
from protos.risk.v1 import risk_scoring_service_pb2_grpc as pb_grpc
from risk_service.bootstrap import check_exposure
from risk_service.cli import main
from risk_service.grpc.auth import token_digest
from risk_service.settings import ApiToken, AuthSettings, ClientSettings, Role, Settings, TlsSettings
from tests.builders import declaration_pb
from tests.grpc.permits.helpers import permit_pb, unique
from tests.serving import ServerThread, make_settings

TOKENS = {
    "clearance": ("clearance-system", [Role.CLEARANCE], None),
    "nfqs": ("nfqs-feed", [Role.AGENCY], "NFQS"),
    "mfds": ("mfds-feed", [Role.AGENCY], "MFDS"),
    "officer": ("officer-kim", [Role.OFFICER], None),
}


def secret(who: str) -> str:
    return f"test-token-of-{who}-0123456789abcdef"


def auth_settings() -> AuthSettings:
    return AuthSettings(
        tokens=[
            ApiToken(name=name, sha256=token_digest(secret(who)), roles=roles, agency=agency)
            for who, (name, roles, agency) in TOKENS.items()
        ]
    )


def as_(who: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret(who)}")]


def code_of(call, request, metadata) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as raised:
        call(request, metadata=metadata, timeout=15)
    return raised.value.code()  # type: ignore[no-any-return]


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(tmp_path, database_url=database_url, tracking_uri=f"sqlite:///{tmp_path / 'ml.db'}")
    settings.auth = auth_settings()
    with ServerThread(settings) as running:
        yield running


def test_every_rpc_needs_a_credential_with_its_role(server: ServerThread) -> None:
    with server.channel() as channel:
        scoring = pb_grpc.RiskScoringServiceStub(channel)
        permits = ppb_grpc.PermitServiceStub(channel)
        score = scoring.ScoreDeclaration
        request = pb.ScoreDeclarationRequest(declaration=declaration_pb())
        assert code_of(score, request, None) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(score, request, [("authorization", "Bearer not-a-token")]) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(score, request, [("authorization", secret("clearance"))]) == grpc.StatusCode.UNAUTHENTICATED
        assert code_of(score, request, as_("nfqs")) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(score, request, as_("officer")) == grpc.StatusCode.PERMISSION_DENIED
        assert score(request, metadata=as_("clearance"), timeout=15).assessment.channel
        submit = ppb.SubmitPermitRequest(permit=permit_pb(agency="NFQS"), request_id=unique("R"), actor="x")
        with pytest.raises(grpc.RpcError) as denied:
            permits.SubmitPermit(submit, metadata=as_("clearance"), timeout=15)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "clearance-system may not call /risk.v1.PermitService/SubmitPermit" in (denied.value.details() or "")
        # a load balancer's health probe carries no token
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_an_agency_changes_and_reads_its_own_permits_only(server: ServerThread) -> None:
    with server.channel() as channel:
        permits = ppb_grpc.PermitServiceStub(channel)
        own = permit_pb(unique("NFQS-P"), agency="NFQS")
        change = permits.SubmitPermit(
            ppb.SubmitPermitRequest(permit=own, request_id=unique("R"), actor="inspector 12"),
            metadata=as_("nfqs"),
            timeout=15,
        ).change
        assert change.actor == "nfqs-feed (inspector 12)"  # who, from the credential

        other = permit_pb(unique("MFDS-P"), agency="MFDS")
        forged = ppb.SubmitPermitRequest(permit=other, request_id=unique("R"), actor="x")
        assert code_of(permits.SubmitPermit, forged, as_("nfqs")) == grpc.StatusCode.PERMISSION_DENIED
        get = ppb.GetPermitRequest(permit_id=other.permit_id)
        assert code_of(permits.GetPermit, get, as_("officer")) == grpc.StatusCode.NOT_FOUND  # nothing was stored

        revoke = ppb.RevokePermitRequest(permit_id=own.permit_id, request_id=unique("R"), actor="x", reason="r")
        assert code_of(permits.RevokePermit, revoke, as_("mfds")) == grpc.StatusCode.PERMISSION_DENIED
        read = ppb.GetPermitRequest(permit_id=own.permit_id)
        assert code_of(permits.GetPermit, read, as_("mfds")) == grpc.StatusCode.PERMISSION_DENIED
        record = permits.GetPermit(read, metadata=as_("officer"), timeout=15).permit
        assert record.permit.status == permit_pb2.PERMIT_STATUS_ACTIVE  # the refused revocation changed nothing

        listed = permits.ListPermits(ppb.ListPermitsRequest(), metadata=as_("mfds"), timeout=15).permits
        assert all(p.permit.issuing_agency == "MFDS" for p in listed)
        mine = permits.ListPermits(ppb.ListPermitsRequest(), metadata=as_("nfqs"), timeout=15).permits
        assert own.permit_id in {p.permit.permit_id for p in mine}
        usage = ppb.ReportPermitUsageRequest(issuing_agency="NFQS")
        assert code_of(permits.ReportPermitUsage, usage, as_("mfds")) == grpc.StatusCode.PERMISSION_DENIED
        assert permits.ReportPermitUsage(usage, metadata=as_("nfqs"), timeout=15).permits

        # the owner may
        permits.RevokePermit(revoke, metadata=as_("nfqs"), timeout=15)
        record = permits.GetPermit(read, metadata=as_("officer"), timeout=15).permit
        assert record.permit.status == permit_pb2.PERMIT_STATUS_REVOKED


# -- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a server certificate for 127.0.0.1 and localhost, and a client certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = _write_key(folder / "ca.key")
    ca_cert = (
        _certificate("risk test CA", ca_key, None, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths = {}
    for who, names in (("server", ["localhost"]), ("client", [])):
        key = _write_key(folder / f"{who}.key")
        builder = _certificate(f"risk test {who}", key, ca_cert.subject, ca_key)
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        (folder / f"{who}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[who] = (folder / f"{who}.pem", folder / f"{who}.key")
    return Pki(folder / "ca.pem", *paths["server"], *paths["client"])


def _tls_server(tmp_path: Path, pki: Pki, *, mutual: bool) -> ServerThread:
    settings = make_settings(tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'ml.db'}")
    settings.tls = TlsSettings(
        cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.ca if mutual else None
    )
    settings.auth = auth_settings()
    return ServerThread(settings)


def _secure(address: str, pki: Pki, *, with_client_cert: bool) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes() if with_client_cert else None,
        certificate_chain=pki.client_cert.read_bytes() if with_client_cert else None,
    )
    return grpc.secure_channel(address, credentials)


def _scores(channel: grpc.Channel) -> bool:
    request = pb.ScoreDeclarationRequest(declaration=declaration_pb())
    try:
        pb_grpc.RiskScoringServiceStub(channel).ScoreDeclaration(request, metadata=as_("clearance"), timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err  # the handshake failed, nothing was served
        return False
    return True


def test_tls_serves_only_tls_clients(tmp_path: Path, pki: Pki) -> None:
    with _tls_server(tmp_path, pki, mutual=False) as server:
        with grpc.insecure_channel(server.address) as plaintext:
            assert not _scores(plaintext)
        with _secure(server.address, pki, with_client_cert=False) as channel:
            assert _scores(channel)


def test_mutual_tls_refuses_clients_without_a_certificate(tmp_path: Path, pki: Pki) -> None:
    with _tls_server(tmp_path, pki, mutual=True) as server:
        with _secure(server.address, pki, with_client_cert=False) as channel:
            assert not _scores(channel)
        with _secure(server.address, pki, with_client_cert=True) as channel:
            assert _scores(channel)


def test_the_cli_sends_its_token_over_mutual_tls(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).parents[1] / "data" / "declaration_sample.json"
    with _tls_server(tmp_path, pki, mutual=True) as server:
        monkeypatch.setenv("RISK_CLIENT__CA_FILE", str(pki.ca))
        monkeypatch.setenv("RISK_CLIENT__CERT_FILE", str(pki.client_cert))
        monkeypatch.setenv("RISK_CLIENT__KEY_FILE", str(pki.client_key))
        assert main(["score", str(sample), "--address", server.address]) == 1
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        monkeypatch.setenv("RISK_CLIENT__TOKEN", secret("clearance"))
        assert main(["score", str(sample), "--address", server.address]) == 0
        assert '"channel"' in capsys.readouterr().out


# -- configuration --------------------------------------------------------------------------------


def test_an_open_port_beyond_loopback_is_refused_without_tokens(tmp_path: Path) -> None:
    def settings(host: str, **auth: object) -> Settings:
        s = make_settings(tmp_path)
        s.server.host = host
        s.auth = AuthSettings(**auth)  # type: ignore[arg-type]
        return s

    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        check_exposure(settings(host))
    with pytest.raises(ValueError, match="RISK_AUTH__TOKENS is empty"):
        check_exposure(settings("0.0.0.0"))
    check_exposure(settings("0.0.0.0", allow_anonymous=True))
    check_exposure(settings("0.0.0.0", tokens=auth_settings().tokens))


def test_token_settings_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="agency token names its agency"):
        ApiToken(name="a", sha256="0" * 64, roles=[Role.AGENCY])
    with pytest.raises(ValueError, match="share a name"):
        AuthSettings(tokens=[ApiToken(name="a", sha256=c * 64, roles=[Role.OFFICER]) for c in "01"])
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        TlsSettings(cert_file=Path(__file__))
    assert main(["auth", "token", "--name", "nfqs-feed", "--role", "agency", "--agency", "NFQS"]) == 0
    out = capsys.readouterr().out
    token = out.split(": ")[1].splitlines()[0]
    assert token_digest(token) in out and token not in out.splitlines()[-1]  # the entry holds the hash only
    assert ClientSettings(token=token).token is not None


def test_streams_are_checked_like_unary_calls(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with server.channel() as channel:
        stream = pb_grpc.RiskScoringServiceStub(channel).StreamScoreDeclarations
        requests = [pb.StreamScoreDeclarationsRequest(declaration=declaration_pb())]
        with pytest.raises(grpc.RpcError) as raised:
            list(stream(iter(requests), timeout=15))
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answers = list(stream(iter(requests), metadata=as_("clearance"), timeout=15))
        assert len(answers) == 1 and answers[0].assessment.channel

    # ImportPermits (a client stream) through the CLI: the README's feed holds an NFQS and an MFDS permit
    feed = Path(__file__).parents[1] / "data" / "permits" / "beef_permits.csv"
    monkeypatch.setenv("RISK_CLIENT__TOKEN", secret("nfqs"))
    assert main(["permits", "import", str(feed), "--address", server.address]) == 1
    err = capsys.readouterr().err
    assert "PERMISSION_DENIED" in err and "nfqs-feed acts for NFQS, not for MFDS" in err and "line 3" in err
    monkeypatch.setenv("RISK_CLIENT__TOKEN", secret("officer"))
    assert main(["permits", "report", "--agency", "NFQS", "--address", server.address]) == 0


def test_bad_certificates_and_unencrypted_tokens_are_refused_with_their_names(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="are not a PEM certificate and key"):
        TlsSettings(cert_file=pki.server_cert, key_file=pki.client_key)  # a key of another certificate
    with pytest.raises(ValueError, match="is not a PEM CA bundle"):
        TlsSettings(cert_file=pki.server_cert, key_file=pki.server_key, client_ca_file=pki.server_key)
    with pytest.raises(ValueError, match="needs ca_file"):
        ClientSettings(cert_file=pki.client_cert, key_file=pki.client_key)
    sample = Path(__file__).parents[1] / "data" / "declaration_sample.json"
    monkeypatch.setenv("RISK_CLIENT__TOKEN", secret("clearance"))
    assert main(["score", str(sample), "--address", "203.0.113.7:50051"]) == 2
    assert "would travel unencrypted to 203.0.113.7:50051" in capsys.readouterr().err
