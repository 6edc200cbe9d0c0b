"""Cargo screening benchmark: a load generator in its own process against a real `risk serve` with storage on.

    .venv/bin/python benchmarks/bench_cargo.py [--database {sqlite,postgresql}] [--runs 3] [--seconds 8]
        [--containers 50] [--items 5] [--batch 20] [--follow-ups 0.5] [--no-model] [--json]

Starts the server as a subprocess (bench_scoring.start_server, with the demo models: the
container-targeting model scores every container; --no-model screens by rules alone) on a fresh
data folder and a fresh database: SQLite in that folder, or a
new PostgreSQL database made through --postgres-url and dropped at the end. Sends a warm-up whose
requests are checked (parsed back and validated) and whose answers are read and tallied (the mix
of rule hits and outcomes is printed), then per run measures unary ScoreCargoReport calls at 8 and
32 in flight and ScoreCargoReports batches of --batch reports (two calls in flight). Prints reports
and containers per second, p50/p99 call latency, the CPU per report of the server, of PostgreSQL
(all its processes) and of this client, and the share of the machine's CPU other processes used
(noise), each the median of --runs runs, then the issue's bar: 50 x 5 reports at no less than 300
reports/s unary, storage included. Not a test: the machine is shared and noisy, so a bar missed by
a few percent wants a rerun on a quiet machine. Server settings come from the RISK_* environment
as for `risk serve` (e.g. RISK_CONSISTENCY__ENABLED=false leaves out the cross-document check).

Reports are built as domain objects (risk_service.domain.cargo.model), checked with
validate_cargo_report and converted with cargo_report_to_pb once, into a pool of --pool templates;
each request is then assembled from their serialized pieces before the timed phase, so the client
costs little: a protobuf message is the concatenation of its fields, so a template's bytes
without id, version, documents and container numbers plus those fields is the wire form of the
report with them set. Every request is a filing of its own consignment: its own report id, bills
of lading and container numbers (ISO 6346 check digits from stdnum), except

- follow-ups: --follow-ups of the pre-loading filings are followed, FOLLOW_UP_LAG requests later,
  by the pre-arrival filing of the same consignment (same bills and containers, a report id of its
  own), as carriers file both; the service's cross-document check finds the earlier one;
- amendments: one request in AMENDMENT_EVERY re-files the report of AMENDMENT_LAG requests earlier
  as version 2, so the look-up of earlier versions is part of the work.

About 90% of the reports are clean; the rest carry late filings, vague descriptions, unsealed
containers, mass gaps, risky transshipments, goods of an origin off the route or a watch-listed
party. Pre-loading filings were made days ago (planned loading now past), pre-arrival filings in
the last two days: the service judges filing_time by its real clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from stdnum import imo, iso6346

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_scoring import CpuMeter, fresh_database, percentile, start_server, stop_server  # noqa: E402  (beside this file)

from protos.risk.v1 import cargo_pb2  # noqa: E402
from protos.risk.v1 import risk_scoring_service_pb2 as pb  # noqa: E402
from risk_service.domain.cargo.model import CargoItem, CargoReport, Container, FilingType  # noqa: E402
from risk_service.domain.cargo.validation import CargoLimits, validate_cargo_report  # noqa: E402
from risk_service.domain.declaration import Party, TransportMode  # noqa: E402
from risk_service.grpc.cargo_convert import cargo_report_from_pb, cargo_report_to_pb  # noqa: E402

BAR_REPORTS_PER_S = 300.0  # the bar for 50 x 5 reports, unary, storage included
BAR_SHAPE = (50, 5)
POSTGRES_URL = os.environ.get("RISK_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")
UNARY_METHOD = "/risk.v1.RiskScoringService/ScoreCargoReport"
BATCH_METHOD = "/risk.v1.RiskScoringService/ScoreCargoReports"
# One request in this many re-files the report of AMENDMENT_LAG requests earlier as version 2; the lag
# is not a multiple of AMENDMENT_EVERY, so an amendment never amends an amendment. Both lags are long
# enough for the earlier filing to be stored with 32 calls in flight.
AMENDMENT_EVERY = 25
AMENDMENT_LAG = 101
FOLLOW_UP_LAG = 151
NAN = float("nan")

# --- what the reports are made of ---------------------------------------------------------------

# (HS code, description, kg per package): none of the descriptions holds a term of the cargo rule
# set's vague_description_terms list (goods, parts, samples, ...), so clean items stay clean.
CATALOGUE: tuple[tuple[str, str, float], ...] = (
    ("847130", "Portable computers, 14 inch", 12.0),
    ("851713", "Smartphones, 128 GB, boxed", 6.0),
    ("852872", "LED television sets, 55 inch", 22.0),
    ("940360", "Wooden bedroom furniture, knocked down", 38.0),
    ("940171", "Upholstered seats with metal frames", 30.0),
    ("640411", "Sports footwear with rubber soles", 9.0),
    ("611030", "Knitted pullovers of synthetic fibres", 11.0),
    ("620342", "Men's cotton trousers", 14.0),
    ("392690", "Plastic storage boxes with lids", 8.0),
    ("732393", "Stainless steel cooking pots", 16.0),
    ("950300", "Plastic toy building blocks", 10.0),
    ("870830", "Brake pads for passenger cars", 24.0),
    ("401110", "New pneumatic tyres for cars", 45.0),
    ("841510", "Split air conditioners, wall mounted", 35.0),
    ("841821", "Household refrigerators, 300 litres", 60.0),
    ("850760", "Lithium-ion battery packs for e-bikes", 20.0),
    ("854143", "Photovoltaic solar modules, 400 W", 25.0),
    ("690721", "Ceramic floor tiles, 60 x 60 cm", 28.0),
    ("481910", "Corrugated cardboard cartons, flat packed", 18.0),
    ("731815", "Steel hex bolts, zinc plated", 25.0),
    ("392020", "Polypropylene film on rolls", 40.0),
    ("210390", "Soy sauce in glass bottles", 15.0),
    ("630260", "Cotton bath towels", 12.0),
    ("420292", "Polyester travel bags", 9.0),
    ("871200", "Bicycles, 26 inch, unassembled", 19.0),
    ("850811", "Cordless vacuum cleaners", 7.0),
    ("900410", "Sunglasses with plastic frames", 5.0),
    ("940542", "LED ceiling lamps", 8.0),
)
VAGUE_DESCRIPTIONS = ("GENERAL CARGO", "PARTS", "FAK", "SPARE PARTS", "SAID TO CONTAIN 20 PALLETS", "VARIOUS")
# Ports of loading, by the country of their goods; ports of discharge; transshipment hubs.
LOADING_PORTS = ("CNSHA", "CNNGB", "CNYTN", "CNTAO", "KRPUS", "SGSIN", "VNSGN", "TWKHH", "JPTYO", "HKHKG", "INNSA")
DISCHARGE_PORTS = ("NLRTM", "DEHAM", "BEANR", "GBFXT", "FRLEH", "ESVLC", "ITGOA", "USLAX", "USNYC", "PLGDN")
HUBS = ("SGSIN", "LKCMB", "ESALG", "MAPTM", "EGPSD", "KRPUS", "MTMAR", "GRPIR")
RISKY_HUBS = ("AEJEA", "MYPKG")  # on the cargo rule set's risky_transshipment_ports list
OFF_ROUTE_ORIGINS = ("TH", "ID", "BD", "KH", "PK", "TR")  # on no route drawn here
# Party ids under a targeting instruction (risk_service/domain/rules/default_watchlisted_parties.yaml).
WATCHLISTED_PARTIES = ("GB000000000001", "DE000000000002", "NL000000000003", "XI000000000004")
# Carriers: name, bill of lading prefix (its SCAC), its container owner codes (ISO 6346, category U).
CARRIERS = (
    ("MSC Mediterranean Shipping Company", "MEDU", ("MSCU", "MEDU", "MSMU")),
    ("A.P. Moller - Maersk", "MAEU", ("MAEU", "MSKU", "MRKU")),
    ("CMA CGM", "CMDU", ("CMAU", "CGMU", "TGHU")),
    ("COSCO Shipping Lines", "COSU", ("CSNU", "CBHU", "CCLU")),
    ("Hapag-Lloyd", "HLCU", ("HLXU", "HLBU", "FANU")),
    ("Ocean Network Express", "ONEY", ("ONEU", "NYKU", "TCLU")),
    ("Evergreen Marine", "EGLV", ("EGHU", "EISU", "EMCU")),
    ("HMM", "HDMU", ("HDMU", "KOCU", "SEGU")),
)
LEASING_OWNERS = ("TGHU", "TCNU", "TRHU", "CAIU", "FCIU", "SEGU", "BMOU", "GESU")
SIZE_TYPES = ("45G1", "45G1", "45G1", "42G1", "22G1", "22G1", "45R1")


@dataclass(frozen=True)
class Mix:
    """Share of consignments with each kind of finding; the rest (about 90%) are clean."""

    pre_loading: float = 0.5  # first filed before loading; the rest are first filed before arrival
    house_bill: float = 0.4  # filed by a forwarder for a house bill, else by the carrier for the master
    late: float = 0.05  # pre-loading filing inside the 24 h before loading
    after_loading: float = 0.01  # pre-loading filing after the planned loading
    vague: float = 0.03  # one item described as GENERAL CARGO, PARTS, ...
    unsealed: float = 0.01  # one container without a seal number
    mass_gap: float = 0.01  # one container whose gross mass is 15-40% off its items'
    risky_route: float = 0.01  # transshipped through a listed port
    off_route_origin: float = 0.01  # one item of an origin that is not on the route
    watchlisted: float = 0.005  # a consignor or consignee on the watch list


@dataclass(frozen=True)
class Consignment:
    """One consignment's cargo report as first filed, and the times of its pre-arrival filing."""

    report: CargoReport  # its documents and container numbers are placeholders: each request sets its own
    pre_arrival_filing_time: datetime


class ReportFactory:
    """Valid, realistic cargo reports as domain objects; times relative to `now`. Parties, carriers,
    vessels and goods repeat across consignments, as they do."""

    def __init__(self, seed: int, n_containers: int, n_items: int, now: datetime, mix: Mix = Mix()) -> None:
        self._rng = random.Random(seed)
        self._containers = n_containers
        self._items = n_items
        self._now = now
        self._mix = mix
        rng = self._rng
        # A fleet of valid IMO numbers (the first is the usual worked example of the check digit).
        fleet = ["9074729"]
        while len(fleet) < 40:
            six = f"9{rng.randrange(10**5):05d}"
            fleet.append(six + imo.calc_check_digit(six))
        self._fleet = fleet
        self._shippers = {p[:2]: [self._party(p[:2], "Exporters") for _ in range(30)] for p in LOADING_PORTS}
        self._consignees = {p[:2]: [self._party(p[:2], "Imports") for _ in range(30)] for p in DISCHARGE_PORTS}
        self._forwarders = [self._party(cc, "Logistics") for cc in ("DE", "CH", "DK", "CN", "SG") for _ in range(3)]
        self._agents = [self._party(p[:2], "Customs Brokers") for p in DISCHARGE_PORTS]

    def _party(self, country: str, kind: str) -> Party:
        number = self._rng.randrange(10**11, 10**12)  # 12 digits: never a watch-listed id
        return Party(f"{country}{number}", f"{country} {kind} {number % 1000:03d}")

    def consignment(self) -> Consignment:
        rng, mix = self._rng, self._mix
        carrier_name, scac, owners = rng.choice(CARRIERS)
        carrier = Party(f"CARRIER-{scac}", carrier_name)
        loading = rng.choice(LOADING_PORTS)
        discharge = rng.choice(DISCHARGE_PORTS)
        hubs = [h for h in HUBS if h not in (loading, discharge)]
        transshipments: list[str] = []
        draw = rng.random()
        if draw < mix.risky_route:
            transshipments = [rng.choice(RISKY_HUBS)]
        elif draw < 0.3:
            transshipments = [rng.choice(hubs)]
        elif draw < 0.33:
            transshipments = rng.sample(hubs, 2)
        pre_loading_filed, pre_arrival_filed, planned_loading, planned_arrival = self._times()
        first = FilingType.PRE_LOADING if rng.random() < mix.pre_loading else FilingType.PRE_ARRIVAL
        consignor = rng.choice(self._shippers[loading[:2]])
        consignee = rng.choice(self._consignees[discharge[:2]])
        if rng.random() < mix.watchlisted:
            watchlisted = Party(rng.choice(WATCHLISTED_PARTIES), "Listed Trading Ltd")
            if rng.random() < 0.5:
                consignor = watchlisted
            else:
                consignee = watchlisted
        notify = rng.random()
        notify_party = consignee if notify < 0.5 else rng.choice(self._agents) if notify < 0.8 else Party("")
        house = rng.random() < mix.house_bill
        report = CargoReport(
            report_id="CR-TEMPLATE",
            version=1,
            filing_type=first,
            filer=rng.choice(self._forwarders) if house else carrier,
            carrier=carrier,
            transport_mode=TransportMode.SEA,
            vessel_imo_number=rng.choice(self._fleet),
            voyage_number=f"{rng.randrange(1, 999):03d}{rng.choice('EWNS')}",
            master_transport_document_number=f"{scac}0000000000",
            house_transport_document_number=f"HB{loading[2:]}000000000" if house else "",
            port_of_loading=loading,
            transshipment_ports=tuple(transshipments),
            port_of_discharge=discharge,
            planned_loading_time=planned_loading,
            planned_arrival_time=planned_arrival,
            filing_time=pre_loading_filed if first == FilingType.PRE_LOADING else pre_arrival_filed,
            consignor=consignor,
            consignee=consignee,
            notify_party=notify_party,
            containers=self._containers_for(owners, loading[:2]),
        )
        return Consignment(report, pre_arrival_filed)

    def _times(self) -> tuple[datetime, datetime, datetime, datetime]:
        """Pre-loading filing, pre-arrival filing, planned loading and arrival: loaded days ago, arriving
        within two weeks; most pre-loading filings keep the 24 h rule."""
        rng, mix = self._rng, self._mix
        pre_arrival = self._now - timedelta(hours=rng.uniform(0.5, 48.0))
        loading = pre_arrival - timedelta(days=rng.uniform(1.0, 20.0))
        arrival = max(pre_arrival + timedelta(days=rng.uniform(1.0, 15.0)), loading + timedelta(days=7))
        draw = rng.random()
        if draw < mix.after_loading:
            pre_loading = loading + timedelta(hours=rng.uniform(2.0, 20.0))
        elif draw < mix.after_loading + mix.late:
            pre_loading = loading - timedelta(hours=rng.uniform(2.0, 22.0))
        else:
            pre_loading = loading - timedelta(hours=rng.uniform(26.0, 120.0))
        return pre_loading, pre_arrival, loading, arrival

    def _containers_for(self, owners: tuple[str, ...], origin: str) -> tuple[Container, ...]:
        rng, mix = self._rng, self._mix
        goods = rng.sample(CATALOGUE, rng.randint(2, 5))  # one consignment: a few kinds of goods
        unsealed = rng.randrange(self._containers) if rng.random() < mix.unsealed else -1
        gap = rng.randrange(self._containers) if rng.random() < mix.mass_gap else -1
        vague = rng.randrange(self._containers) if rng.random() < mix.vague else -1
        off_route = rng.randrange(self._containers) if rng.random() < mix.off_route_origin else -1
        seal_prefix = owners[0][:2]
        containers = []
        for c in range(self._containers):
            items = []
            for i in range(self._items):
                hs_code, description, kg = rng.choice(goods)
                packages = rng.randint(10, 60)
                items.append(
                    CargoItem(
                        item_number=i + 1,
                        hs_code=hs_code,
                        description=rng.choice(VAGUE_DESCRIPTIONS) if c == vague and i == 0 else description,
                        packages=packages,
                        gross_mass_kg=round(packages * kg * rng.uniform(0.9, 1.1), 1),
                        origin_country=rng.choice(OFF_ROUTE_ORIGINS) if c == off_route and i == 0 else origin,
                    )
                )
            items_mass = sum(item.gross_mass_kg for item in items)
            gross = items_mass * (rng.uniform(1.15, 1.4) if c == gap else rng.uniform(0.99, 1.02))
            seals: tuple[str, ...] = ()
            if c != unsealed:
                seals = (f"{seal_prefix}{rng.randrange(10**7, 10**8)}",)
                if rng.random() < 0.1:  # a customs or shipper's seal as well
                    seals += (f"CS{rng.randrange(10**7, 10**8)}",)
            owner = rng.choice(owners) if rng.random() < 0.7 else rng.choice(LEASING_OWNERS)
            placeholder = f"{owner}{c:06d}"  # a valid number; each request sets one of its own
            containers.append(
                Container(
                    container_number=placeholder + iso6346.calc_check_digit(placeholder),
                    size_type_code=rng.choice(SIZE_TYPES),
                    seal_numbers=seals,
                    gross_mass_kg=round(gross, 1),
                    packages=sum(item.packages for item in items),
                    items=tuple(items),
                )
            )
        return tuple(containers)


# --- requests on the wire -----------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message) on the wire."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# CargoReport and Container field numbers (protos/risk/v1/cargo.proto); request field 1 is the report.
_REPORT_ID, _VERSION, _MASTER, _HOUSE, _CONTAINERS, _CONTAINER_NUMBER = 1, 2, 9, 10, 20, 1


@dataclass(frozen=True)
class Template:
    """A consignment's report in serialized pieces, without what each request sets."""

    consignment: Consignment
    heads: dict[FilingType, bytes]  # the report without id, version, documents and containers, per filing type
    containers: tuple[bytes, ...]  # each Container without its number
    owners: tuple[str, ...]  # each container's owner code

    @classmethod
    def of(cls, consignment: Consignment) -> Template:
        first = consignment.report
        # Empty strings and zeros are not on the wire (proto3), so these leave the per-request fields out.
        blank = replace(
            first, report_id="", version=0, master_transport_document_number="", house_transport_document_number=""
        )
        heads = {
            filing_type: cargo_report_to_pb(
                replace(blank, filing_type=filing_type, filing_time=filed, containers=())
            ).SerializeToString()
            for filing_type, filed in (
                (first.filing_type, first.filing_time),
                (FilingType.PRE_ARRIVAL, consignment.pre_arrival_filing_time),
            )
        }
        unnumbered = tuple(replace(c, container_number="") for c in first.containers)
        containers = tuple(
            c.SerializeToString() for c in cargo_report_to_pb(replace(blank, containers=unnumbered)).containers
        )
        owners = tuple(c.container_number[:4] for c in first.containers)
        return cls(consignment, heads, containers, owners)


@dataclass(frozen=True)
class Filing:
    """What one request filed, kept for the follow-ups and amendments that refer back to it."""

    report_id: str
    filing_type: FilingType
    template: Template
    documents: bytes  # the bill of lading fields
    containers: bytes  # the containers fields, numbers set


class RequestStream:
    """Serialized ScoreCargoReportRequests: new consignments from the template pool, follow-ups, amendments.

    A ScoreCargoReportsRequest holds its reports in field 1, as ScoreCargoReportRequest holds its one,
    so a batch request is its reports' unary requests concatenated. prepare() builds requests ahead, so
    the timed phases only send them; past those, calls build them as they go.
    """

    def __init__(self, pool: list[Template], *, follow_ups: float, seed: int = 0) -> None:
        self.pool = pool
        self.containers_per_report = len(pool[0].containers)
        self.kinds: Counter[str] = Counter()
        self._follow_ups = follow_ups
        self._rng = random.Random(seed)
        self._tag = f"{os.getpid()}{self._rng.randrange(10**4):04d}"  # ids differ between invocations
        self._recent: deque[Filing] = deque(maxlen=max(AMENDMENT_LAG, FOLLOW_UP_LAG))
        self._ready: deque[bytes] = deque()
        self._n = 0
        self._consignments = 0
        # Container serial numbers per owner code, from a random start: unique in this invocation.
        self._serials: dict[str, int] = {}

    def prepare(self, count: int) -> None:
        """Builds `count` more requests ahead of time."""
        for _ in range(count):
            self._ready.append(self._build())

    def __call__(self) -> bytes:
        return self._ready.popleft() if self._ready else self._build()

    @property
    def ready(self) -> int:
        return len(self._ready)

    def _build(self) -> bytes:
        n = self._n
        self._n += 1
        amended = self._back(AMENDMENT_LAG) if n % AMENDMENT_EVERY == AMENDMENT_EVERY - 1 else None
        earlier = self._back(FOLLOW_UP_LAG)
        if amended is not None:
            self.kinds["amendment"] += 1
            filing, version = amended, 2
        elif (
            earlier is not None
            and earlier.filing_type == FilingType.PRE_LOADING
            and self._rng.random() < self._follow_ups
        ):
            self.kinds["pre-arrival follow-up"] += 1
            filing = replace(earlier, report_id=self._report_id(n), filing_type=FilingType.PRE_ARRIVAL)
            version = 1
        else:
            template = self.pool[self._consignments % len(self.pool)]
            filing = self._new_consignment(n, template)
            version = 1
            self.kinds[f"new consignment, {filing.filing_type.name.lower().replace('_', '-')}"] += 1
        if version == 1:
            self._recent.append(filing)
        else:
            self._recent.append(replace(filing, filing_type=FilingType.UNSPECIFIED))  # never followed up
        report = (
            _field(_REPORT_ID, filing.report_id.encode())
            + _varint(_VERSION << 3)
            + _varint(version)
            + filing.documents
            + filing.template.heads[filing.filing_type]
            + filing.containers
        )
        return _field(1, report)

    def _back(self, lag: int) -> Filing | None:
        """The filing of `lag` requests ago, if there was one."""
        return self._recent[-lag] if len(self._recent) >= lag else None

    def _report_id(self, n: int) -> str:
        return f"CR{self._tag}-{n:08d}"

    def _new_consignment(self, n: int, template: Template) -> Filing:
        self._consignments += 1
        first = template.consignment.report
        k = f"{self._tag}{self._consignments:06d}"
        documents = _field(_MASTER, f"{first.master_transport_document_number[:4]}{k}".encode())
        if first.house_transport_document_number:
            documents += _field(_HOUSE, f"{first.house_transport_document_number[:5]}{k}".encode())
        containers = b"".join(
            _field(_CONTAINERS, _field(_CONTAINER_NUMBER, self._container_number(owner).encode()) + rest)
            for owner, rest in zip(template.owners, template.containers, strict=True)
        )
        return Filing(self._report_id(n), first.filing_type, template, documents, containers)

    def _container_number(self, owner: str) -> str:
        serial = self._serials.get(owner)
        if serial is None:
            serial = self._rng.randrange(10**6)
        self._serials[owner] = serial + 1
        number = f"{owner}{serial % 10**6:06d}"
        return number + iso6346.calc_check_digit(number)


def build_pool(size: int, n_containers: int, n_items: int, seed: int = 0) -> list[Template]:
    """`size` distinct consignments, each checked with validate_cargo_report in both its filings."""
    now = datetime.now(UTC)
    factory = ReportFactory(seed, n_containers, n_items, now)
    limits = CargoLimits()
    pool = []
    for _ in range(size):
        consignment = factory.consignment()
        first = consignment.report
        follow_up = replace(first, filing_type=FilingType.PRE_ARRIVAL, filing_time=consignment.pre_arrival_filing_time)
        for report in (first, follow_up):
            violations = validate_cargo_report(report, limits, now=now)
            if violations:
                raise AssertionError(f"generated an invalid report: {violations[:3]}")
        pool.append(Template.of(consignment))
    # An assembled request must parse to the domain report it came from, with the request's own fields.
    parsed = cargo_report_from_pb(
        pb.ScoreCargoReportRequest.FromString(RequestStream(pool, follow_ups=0)()).cargo_report
    )
    first = pool[0].consignment.report
    expected = replace(
        first,
        report_id=parsed.report_id,
        master_transport_document_number=parsed.master_transport_document_number,
        house_transport_document_number=parsed.house_transport_document_number,
        containers=tuple(
            replace(c, container_number=p.container_number)
            for c, p in zip(first.containers, parsed.containers, strict=True)
        ),
    )
    if parsed != expected:
        raise AssertionError("an assembled request does not parse back to its report")
    return pool


def check_request(request: bytes, limits: CargoLimits) -> CargoReport:
    """Parses a request the way the server does and validates its report; raises on a bad one."""
    report = cargo_report_from_pb(pb.ScoreCargoReportRequest.FromString(request).cargo_report)
    violations = validate_cargo_report(report, limits)
    if violations:
        raise AssertionError(f"request for {report.report_id} is invalid: {violations[:3]}")
    return report


# --- measuring ----------------------------------------------------------------------------------


def _channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)],
    )


async def unary(address: str, make: RequestStream, meter: CpuMeter, in_flight: int, seconds: float) -> dict[str, float]:
    """`in_flight` callers sending one report at a time for `seconds`; answers are left unparsed."""
    latencies: list[float] = []
    async with _channel(address) as channel:
        call = channel.unary_unary(UNARY_METHOD)  # no serializers: bytes in, bytes out
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                request = make()
                t = time.perf_counter()
                await call(request, timeout=30)
                latencies.append(time.perf_counter() - t)

        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        cpu = meter.stop(len(latencies))
    return _result(len(latencies), make.containers_per_report, elapsed, latencies, cpu)


async def batch(address: str, make: RequestStream, meter: CpuMeter, size: int, seconds: float) -> dict[str, float]:
    """ScoreCargoReports with `size` reports a call, two calls in flight for `seconds`."""
    latencies: list[float] = []
    count = 0
    async with _channel(address) as channel:
        call = channel.unary_unary(BATCH_METHOD)
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                request = b"".join(make() for _ in range(size))
                t = time.perf_counter()
                await call(request, timeout=120)
                latencies.append(time.perf_counter() - t)
                count += size

        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(2)))  # two in flight keeps the server busy while one is built
        elapsed = time.perf_counter() - started
        cpu = meter.stop(count)
    return _result(count, make.containers_per_report, elapsed, latencies, cpu)


def _result(
    reports: int, containers: int, elapsed: float, latencies: list[float], cpu: dict[str, float]
) -> dict[str, float]:
    return {
        "reports_per_s": reports / elapsed,
        "containers_per_s": reports * containers / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        **cpu,
    }


async def warm_up(address: str, make: RequestStream, reports: int, batch_size: int) -> tuple[Counter[str], float]:
    """Unary calls at 8 in flight, then two batches. Each request is parsed back and validated first, and
    each answer is read and tallied: the mix of rule hits and outcomes the generated reports lead to.
    Returns the tally and the unary reports per second (a first guess of how many requests to prepare)."""
    tally: Counter[str] = Counter()
    limits = CargoLimits()
    requests = [make() for _ in range(reports + 2 * batch_size)]
    expected = {check_request(r, limits).key for r in requests}
    async with _channel(address) as channel:
        stub_unary = channel.unary_unary(UNARY_METHOD, response_deserializer=pb.ScoreCargoReportResponse.FromString)
        stub_batch = channel.unary_unary(BATCH_METHOD, response_deserializer=pb.ScoreCargoReportsResponse.FromString)
        unary_requests = deque(requests[:reports])

        async def worker() -> None:
            while unary_requests:
                response = await stub_unary(unary_requests.popleft(), timeout=60)
                _tally(tally, response.assessment)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(8)))
        rate = reports / (time.perf_counter() - started)
        for k in range(2):
            chunk = requests[reports + k * batch_size : reports + (k + 1) * batch_size]
            response = await stub_batch(b"".join(chunk), timeout=120)
            for assessment in response.assessments:
                _tally(tally, assessment)
    if tally["reports"] != len(expected):
        raise AssertionError(f"{len(expected)} reports sent, {tally['reports']} answered")
    return tally, rate


def _tally(tally: Counter[str], assessment: cargo_pb2.CargoAssessment) -> None:
    tally["reports"] += 1
    hits = {h.rule_id for h in assessment.rule_hits} | {h.rule_id for c in assessment.containers for h in c.rule_hits}
    tally["clean" if not hits else "with hits"] += 1
    tally.update(f"rule {rule_id}" for rule_id in hits)
    if assessment.filing_type == cargo_pb2.FILING_TYPE_PRE_LOADING:
        outcome = cargo_pb2.PreLoadingOutcome.Name(assessment.pre_loading_outcome)
        tally[f"pre-loading {outcome.removeprefix('PRE_LOADING_OUTCOME_')}"] += 1
    else:
        tally["pre-arrival"] += 1
        tally["containers scanned or opened"] += assessment.summary.scan + assessment.summary.physical_examination
        if not hits:  # checks without any rule hit come from the random control draw
            tally["random scans"] += assessment.summary.scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="where to create the fresh PostgreSQL database")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each timed mode")
    parser.add_argument("--containers", type=int, default=BAR_SHAPE[0], help="containers per report")
    parser.add_argument("--items", type=int, default=BAR_SHAPE[1], help="goods items per container")
    parser.add_argument("--batch", type=int, default=20, help="reports per ScoreCargoReports call")
    parser.add_argument("--pool", type=int, default=500, help="distinct consignments generated (ids are always fresh)")
    parser.add_argument(
        "--follow-ups", type=float, default=0.5, help="share of pre-loading filings followed by a pre-arrival filing"
    )
    parser.add_argument("--warmup", type=int, default=200, help="reports sent unary before timing, answers read")
    parser.add_argument("--no-model", action="store_true", help="no container model: rules and cross-checks alone")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()

    load_before = os.getloadavg()
    started = time.perf_counter()
    pool = build_pool(args.pool, args.containers, args.items)
    make = RequestStream(pool, follow_ups=args.follow_ups)
    size_kb = statistics.mean(
        len(t.heads[t.consignment.report.filing_type]) + sum(map(len, t.containers)) for t in pool
    )
    print(
        f"generated {len(pool)} consignments of {args.containers} x {args.items} ({size_kb / 1024:.1f} KiB a report) "
        f"in {time.perf_counter() - started:.1f} s; load average before: {load_before[0]:.2f}",
        flush=True,
    )
    results: dict[str, list[dict[str, float]]] = {}
    loads: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="risk-bench-cargo-") as folder,
        fresh_database(args.database, Path(folder), args.postgres_url) as url,
    ):
        proc, address = start_server(Path(folder), url, demo=not args.no_model)
        try:
            meter = CpuMeter(proc.pid, postgres=args.database == "postgresql")
            tally, rate = asyncio.run(warm_up(address, make, args.warmup, args.batch))
            print(_mix_line(tally), flush=True)
            for run in range(args.runs):
                loads.append(os.getloadavg()[0])
                modes: dict[str, Callable[[], Any]] = {
                    "unary_8": lambda: unary(address, make, meter, 8, args.seconds),
                    "unary_32": lambda: unary(address, make, meter, 32, args.seconds),
                    f"batch_{args.batch}": lambda: batch(address, make, meter, args.batch, args.seconds),
                }
                for mode, measurement in modes.items():
                    # Enough requests for the fastest rate seen so far, and then some; past them the
                    # client builds as it goes (its CPU per report shows it).
                    make.prepare(max(0, int(rate * 1.5 * args.seconds) + 200 - make.ready))
                    result = asyncio.run(measurement())
                    rate = max(rate, result["reports_per_s"])
                    results.setdefault(mode, []).append(result)
                    print(f"run {run + 1}/{args.runs} {_row(mode, result)}", flush=True)
        finally:
            stop_server(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)  # reaped, so the database can be dropped

    summary = {mode: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for mode, runs in results.items()}
    print(
        f"store: {args.database}   reports: {args.containers} containers x {args.items} items   "
        f"runs: {args.runs} x {args.seconds:.0f}s   (median of runs)   "
        f"load average before: {load_before[0]:.2f}, at run starts: {', '.join(f'{x:.2f}' for x in loads)}"
    )
    kinds = ", ".join(f"{kind} {count}" for kind, count in make.kinds.most_common())
    print(f"requests built: {kinds}")
    print(_header())
    for mode, s in summary.items():
        print(_row(mode, s))
    rates = {mode: summary[mode]["reports_per_s"] for mode in ("unary_8", "unary_32")}
    bar = {mode: rate >= BAR_REPORTS_PER_S for mode, rate in rates.items()}
    shape_note = "" if (args.containers, args.items) == BAR_SHAPE else " (the bar is for 50 x 5 reports)"
    verdicts = ", ".join(f"{mode} {rates[mode]:.0f} {'PASS' if ok else 'MISS'}" for mode, ok in bar.items())
    print(f"bar: unary >= {BAR_REPORTS_PER_S:.0f} reports/s{shape_note}: {verdicts}")
    if args.json:
        print(
            json.dumps(
                _without_nan(
                    {
                        "database": args.database,
                        "containers": args.containers,
                        "items": args.items,
                        "runs": args.runs,
                        "seconds": args.seconds,
                        "load_before": load_before[0],
                        "load_at_runs": loads,
                        "median": summary,
                        "all_runs": results,
                        "bar_reports_per_s": BAR_REPORTS_PER_S,
                        "bar_pass": bar,
                        "requests_built": dict(make.kinds),
                    }
                ),
                allow_nan=False,
            )
        )


def _without_nan(value: Any) -> Any:
    """NaN (a figure that does not apply, e.g. PostgreSQL's CPU on SQLite) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value


def _header() -> str:
    return (
        f"{'mode':<10} {'reports/s':>10} {'cont/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'server µs/rep':>14} {'pg µs/rep':>10} {'client µs/rep':>14} {'other cpu':>10}"
    )


def _row(mode: str, s: dict[str, float]) -> str:
    return (
        f"{mode:<10} {s['reports_per_s']:>10.0f} {s['containers_per_s']:>9.0f} {s['p50_ms']:>8.2f} "
        f"{s['p99_ms']:>8.2f} {s['server_cpu_us']:>14.0f} {s['database_cpu_us']:>10.0f} "
        f"{s['client_cpu_us']:>14.0f} {s['other_cpu_pct']:>9.0f}%"
    )


def _mix_line(tally: Counter[str]) -> str:
    n = tally["reports"]
    rules = sorted(((k[5:], v) for k, v in tally.items() if k.startswith("rule ")), key=lambda kv: -kv[1])
    outcomes = sorted((k, v) for k, v in tally.items() if k.startswith("pre-loading "))
    return (
        f"warm-up: {n} reports answered, {100 * tally['clean'] / n:.0f}% without a rule hit; "
        f"reports hit per rule: {', '.join(f'{r} {v}' for r, v in rules) or 'none'}; "
        f"{', '.join(f'{k} {v}' for k, v in outcomes)}; pre-arrival {tally['pre-arrival']} "
        f"({tally['containers scanned or opened']} containers to scan or open, "
        f"{tally['random scans']} of them drawn at random in reports without a hit)"
    )


if __name__ == "__main__":
    main()
