"""Synthetic permit registry: deterministic, valid for the service, readable by the feed, and covering the history."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protos.risk.v1 import permit_pb2
from risk_service.domain.declaration import DeclarationType
from risk_service.domain.permits.controlled_goods import DEFAULT_CONTROLLED_GOODS_PATH, load_controlled_goods
from risk_service.domain.permits.units import UNITS
from risk_service.domain.permits.validation import validate_permit
from risk_service.domain.validation import ValidationLimits
from risk_service.grpc.permit_convert import permit_from_pb
from risk_service.permit_feed import read_feed
from risk_service.synthetic_permits import generate_permits, write_permits
from training.synthetic import PERMIT_CHAPTERS, generate_history

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 120
SEED = 5


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generate_history(2000, seed=3, start=date(2025, 1, 1), days=DAYS)


@pytest.fixture(scope="module")
def permits(history: pd.DataFrame) -> list[permit_pb2.Permit]:
    return generate_permits(history, seed=SEED)


@pytest.fixture(scope="module")
def cited(history: pd.DataFrame) -> pd.DataFrame:
    """Items citing permits in the chapters that need them, with the party the service checks as holder."""
    rows = history[(history["permit_count"] > 0) & history["hs_code"].str[:2].astype(int).isin(PERMIT_CHAPTERS)]
    exporting = rows["declaration_type"] == int(DeclarationType.EXPORT)
    return rows.assign(holder=np.where(exporting, rows["exporter_id"], rows["importer_id"]))


def _time(stamp: object) -> datetime:
    assert isinstance(stamp, pd.Timestamp)
    moment: datetime = stamp.to_pydatetime()
    return moment


def _by_holder(permits: list[permit_pb2.Permit]) -> dict[str, list[permit_pb2.Permit]]:
    held: dict[str, list[permit_pb2.Permit]] = defaultdict(list)
    for permit in permits:
        held[permit.holder_id].append(permit)
    return held


def _covers(permit: permit_pb2.Permit, hs_code: str) -> bool:
    return any(hs_code.startswith(line.hs_prefix) for line in permit.goods_lines)


def test_same_history_and_seed_give_the_same_file(history: pd.DataFrame, tmp_path: Path) -> None:
    first, again, other = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_permits(generate_permits(history, seed=SEED), first)
    write_permits(generate_permits(history.copy(), seed=SEED), again)
    write_permits(generate_permits(history, seed=SEED + 1), other)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_every_permit_passes_the_registry_validation(permits: list[permit_pb2.Permit]) -> None:
    # The check PermitService applies to every row of `risk permits import`.
    assert len(permits) > 100
    for permit in permits:
        assert validate_permit(permit_from_pb(permit), ValidationLimits(), allow_unspecified_status=True) == [], (
            permit.permit_id
        )


def test_the_feed_reads_the_file_back_unchanged(permits: list[permit_pb2.Permit], tmp_path: Path) -> None:
    path = tmp_path / "permits.jsonl"
    assert write_permits(permits, path) == len(permits)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(permits)
    assert all(json.loads(line)["permitId"] for line in lines)
    entries = list(read_feed(path))
    assert [e.error for e in entries if e.error] == []
    assert [e.permit for e in entries] == permits
    assert [e.line_number for e in entries] == list(range(1, len(permits) + 1))


def test_permit_ids_are_unique(permits: list[permit_pb2.Permit]) -> None:
    ids = Counter(p.permit_id for p in permits)
    assert [pid for pid, n in ids.items() if n > 1] == []


def test_validity_ends_after_it_starts(permits: list[permit_pb2.Permit]) -> None:
    for permit in permits:
        assert permit.HasField("valid_from_time") and permit.HasField("valid_to_time"), permit.permit_id
        assert permit.valid_to_time.ToDatetime() > permit.valid_from_time.ToDatetime(), permit.permit_id


def test_each_holder_of_cited_controlled_goods_holds_a_permit_covering_them(
    permits: list[permit_pb2.Permit], cited: pd.DataFrame
) -> None:
    assert len(cited) > 100
    held = _by_holder(permits)
    uncovered = [
        (holder, hs_code)
        for holder, hs_code in zip(cited["holder"], cited["hs_code"], strict=True)
        if not any(_covers(p, hs_code) for p in held[holder])
    ]
    assert uncovered == []


def test_the_permits_are_those_the_controlled_goods_table_asks_for(
    permits: list[permit_pb2.Permit], cited: pd.DataFrame
) -> None:
    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    held = _by_holder(permits)
    asked = 0
    for row in cited.itertuples():
        for need in table.requirements(
            row.hs_code, row.origin_country, DeclarationType(row.declaration_type), lambda u: None
        ):
            asked += 1
            kinds = {(p.type, p.issuing_agency) for p in held[row.holder] if _covers(p, row.hs_code)}
            assert (int(need.permit_type), need.agency) in kinds, (row.holder, row.hs_code, need)
    assert asked > 100  # chapter 30 imports need the MFDS licence


def test_items_not_citing_an_expired_permit_find_one_valid_where_and_when_they_were_filed(
    permits: list[permit_pb2.Permit], cited: pd.DataFrame
) -> None:
    # What screening checks: holder, goods, validity at lodgement, origin and office. Items the
    # history says cited an expired permit (negative days to expiry) are left out.
    held = _by_holder(permits)
    honest = cited[~(cited["permit_days_to_expiry"] < 0)]
    assert len(honest) > 100
    for row in honest.itertuples():
        lodged = _time(row.lodgement_time)
        usable = [
            p
            for p in held[row.holder]
            if _covers(p, row.hs_code)
            and p.valid_from_time.ToDatetime(tzinfo=UTC) <= lodged < p.valid_to_time.ToDatetime(tzinfo=UTC)
            and (not p.allowed_origin_countries or row.origin_country in p.allowed_origin_countries)
            and (not p.allowed_customs_offices or row.customs_office in p.allowed_customs_offices)
        ]
        assert usable, (row.declaration_id, row.item_number, row.holder, row.hs_code)


def test_authorised_quantities_are_in_units_the_items_convert_to(
    permits: list[permit_pb2.Permit], history: pd.DataFrame
) -> None:
    units_by_code = history.groupby(history["hs_code"].str[:6])["quantity_unit"].agg(set).to_dict()
    limited = [(p, line) for p in permits for line in p.goods_lines if line.HasField("authorised_quantity")]
    assert len(limited) > 30
    for permit, line in limited:
        assert line.authorised_quantity > 0
        item_units = set().union(*(u for code, u in units_by_code.items() if code.startswith(line.hs_prefix)))
        dimensions = {UNITS[u][0] for u in item_units}
        assert dimensions == {UNITS[line.unit][0]}, (permit.permit_id, line.unit, item_units)


def test_the_registry_has_lapsing_licences_renewals_and_single_use_documents(
    permits: list[permit_pb2.Permit],
) -> None:
    end = START + pd.Timedelta(days=DAYS)
    lapsing = [p for p in permits if START < p.valid_to_time.ToDatetime(tzinfo=UTC) < end]
    licences = Counter((p.holder_id, p.issuing_agency, p.type) for p in permits if not p.single_use)
    assert len(lapsing) >= 10
    assert sum(1 for n in licences.values() if n > 1) >= 5  # renewed within the period
    assert sum(p.single_use for p in permits) >= 50
    assert {p.issuing_agency for p in permits} >= {"MFDS", "KNPA", "YESTRADE", "NFQS", "KATS"}
    assert all(p.status == permit_pb2.PERMIT_STATUS_UNSPECIFIED and p.version == 0 for p in permits)


def test_a_history_citing_no_permits_gives_none(history: pd.DataFrame) -> None:
    assert generate_permits(history.assign(permit_count=0), seed=SEED) == []


def test_a_history_without_the_permit_columns_is_refused(history: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="permit_days_to_expiry"):
        generate_permits(history.drop(columns="permit_days_to_expiry"), seed=SEED)


def test_permits_end_where_the_history_says_for_the_items_they_were_issued_for(
    permits: list[permit_pb2.Permit], history: pd.DataFrame
) -> None:
    # Each document, and the first licence of each chain, ends permit_days_to_expiry (to the next
    # day boundary) after the item it was issued for; later items of a licence draw their own days.
    held = _by_holder(permits)
    rows = history[(history["permit_count"] == 1) & np.isfinite(history["permit_days_to_expiry"])]
    exporting = rows["declaration_type"] == int(DeclarationType.EXPORT)
    holders = np.where(exporting, rows["exporter_id"], rows["importer_id"])
    matched = 0
    for holder, row in zip(holders, rows.itertuples(), strict=True):
        lodged = _time(row.lodgement_time)
        ends = [
            (p.valid_to_time.ToDatetime(tzinfo=UTC) - lodged).total_seconds() / 86400.0
            for p in held[holder]
            if _covers(p, row.hs_code)
        ]
        matched += any(row.permit_days_to_expiry <= left <= row.permit_days_to_expiry + 1 for left in ends)
    assert matched >= 0.3 * len(rows)
