"""Reads an agency's permit file (CSV or JSON lines) into risk.v1.Permit messages, with an error per bad line.

CSV: one row per goods line; consecutive rows with the same permit_id are one permit, whose
permit-level columns come from its first row and must repeat unchanged on the others. Columns:
permit_id, issuing_agency, type, holder_id, valid_from, valid_to, allowed_origin_countries,
allowed_customs_offices, end_use, single_use, line_number, hs_prefix, description, unit,
authorised_quantity, authorised_value. Lists are separated by ';'. Dates are ISO 8601; a date
without a time is a whole day in UTC, so valid_to 2027-06-30 means valid through that day.
JSON lines: one risk.v1.Permit in proto JSON per line; blank lines are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from google.protobuf import json_format

from protos.risk.v1 import permit_pb2

CSV_COLUMNS = (
    "permit_id",
    "issuing_agency",
    "type",
    "holder_id",
    "valid_from",
    "valid_to",
    "allowed_origin_countries",
    "allowed_customs_offices",
    "end_use",
    "single_use",
    "line_number",
    "hs_prefix",
    "description",
    "unit",
    "authorised_quantity",
    "authorised_value",
)
_PERMIT_COLUMNS = CSV_COLUMNS[:10]
_REQUIRED = frozenset({"permit_id", "issuing_agency", "type", "holder_id", "valid_from", "valid_to", "hs_prefix"})
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n", ""})
MAX_FEED_BYTES = 512 * 1024 * 1024
# Bytes that are not UTF-8 are read as lone surrogates (errors="surrogateescape"), which valid text
# never holds: a bad line is then reported by number instead of ending the read with a traceback.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_NOT_UTF8_MESSAGE = "not UTF-8 text; save the file as UTF-8"


class FeedError(Exception):
    """The file as a whole cannot be read (missing, unreadable, no header)."""


@dataclass(frozen=True, slots=True)
class FeedEntry:
    line_number: int  # first line of the permit in the file
    permit: permit_pb2.Permit | None
    error: str = ""  # why the entry could not be read; permit is None then


def read_feed(path: Path) -> Iterator[FeedEntry]:
    """Entries in file order; a bad line yields an entry with its error and reading goes on."""
    try:
        size = path.stat().st_size
        if size > MAX_FEED_BYTES:
            raise FeedError(f"{path}: {size} bytes is larger than the {MAX_FEED_BYTES} bytes a feed may have")
        handle = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as err:
        raise FeedError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        if path.suffix.lower() == ".csv":
            yield from _read_csv(handle)
        else:
            yield from _read_json_lines(handle)


def _read_json_lines(handle: io.TextIOBase) -> Iterator[FeedEntry]:
    empty = True
    for number, raw in enumerate(handle, start=1):
        text = raw.strip()
        if not text:
            continue
        empty = False
        if _NOT_UTF8.search(text):
            yield FeedEntry(number, None, _NOT_UTF8_MESSAGE)
            continue
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object")
            yield FeedEntry(number, json_format.ParseDict(document, permit_pb2.Permit()))
        except (ValueError, json_format.ParseError, RecursionError) as err:
            yield FeedEntry(number, None, f"not a risk.v1.Permit: {str(err)[:300]}")
    if empty:
        raise FeedError("the file is empty; one risk.v1.Permit in JSON per line is expected")


def _read_csv(handle: io.TextIOBase) -> Iterator[FeedEntry]:
    reader = csv.reader(handle, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise FeedError(f"line 1: cannot read the CSV header: {err}") from None
    if not header:
        raise FeedError("line 1: the file is empty; a CSV header is required")
    if any(_NOT_UTF8.search(name) for name in header):
        raise FeedError(f"line 1: the CSV header is {_NOT_UTF8_MESSAGE}")
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise FeedError(f"line 1: CSV header lacks {', '.join(missing)}")
    # The permit being read: its id, first line and row; `current` is None once one of its rows was bad,
    # and its further rows are then skipped, so a permit is never sent without some of its goods lines.
    current: permit_pb2.Permit | None = None
    group, first_line, first_row, broken = "", 0, {}, False
    empty = True
    while True:
        line = reader.line_num + 1  # the first line of the next row (a quoted value may span lines)
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            # Which permit the unreadable row belongs to is unknown: the one being read is not sent whole.
            if current is not None:
                yield FeedEntry(first_line, None, f"permit {group} skipped: line {line} cannot be read")
            current, broken = None, True
            yield FeedEntry(line, None, f"malformed CSV: {err}")
            continue
        if not values:
            continue  # a blank line
        empty = False
        error = ""
        if len(values) != len(header):
            error = f"expected {len(header)} columns, found {len(values)}"
        elif any(_NOT_UTF8.search(v) for v in values):
            error = _NOT_UTF8_MESSAGE
        cells = {name: value.strip() for name, value in zip(header, values, strict=False)}
        permit_id = cells.get("permit_id", "")
        if not (permit_id and permit_id == group):  # the first row of a permit
            if current is not None:
                yield FeedEntry(first_line, current)
            current, group, first_line, first_row, broken = None, permit_id, line, cells, bool(error)
            if not error:
                try:
                    current = _permit(cells)
                except ValueError as err:
                    broken, error = True, str(err)
            if error:
                yield FeedEntry(line, None, error)
            continue
        if broken:
            if error:
                yield FeedEntry(line, None, error)
            continue
        assert current is not None  # a permit whose rows were all good so far
        changed = [] if error else [c for c in _PERMIT_COLUMNS if cells[c] != first_row[c]]
        if changed:
            error = f"{', '.join(changed)} differ from line {first_line}"
        if not error:
            try:
                current.goods_lines.append(_goods_line(cells))
            except ValueError as err:
                error = str(err)
        if error:
            current, broken = None, True
            yield FeedEntry(line, None, f"{error}; permit {permit_id} is skipped")
    if current is not None:
        yield FeedEntry(first_line, current)
    if empty:
        raise FeedError("line 2: the file holds a CSV header but no permits")


def _permit(cells: dict[str, str]) -> permit_pb2.Permit:
    empty = sorted(c for c in _REQUIRED if not cells[c])
    if empty:
        raise ValueError(f"{', '.join(empty)} must not be empty")
    permit = permit_pb2.Permit(
        permit_id=cells["permit_id"],
        issuing_agency=cells["issuing_agency"],
        type=_permit_type(cells["type"]),
        holder_id=cells["holder_id"],
        allowed_origin_countries=_list(cells["allowed_origin_countries"]),
        allowed_customs_offices=_list(cells["allowed_customs_offices"]),
        end_use=cells["end_use"],
        single_use=_bool("single_use", cells["single_use"]),
    )
    permit.valid_from_time.FromDatetime(_instant("valid_from", cells["valid_from"], end_of_day=False))
    permit.valid_to_time.FromDatetime(_instant("valid_to", cells["valid_to"], end_of_day=True))
    permit.goods_lines.append(_goods_line(cells))
    return permit


def _goods_line(cells: dict[str, str]) -> permit_pb2.PermitGoodsLine:
    line = permit_pb2.PermitGoodsLine(
        line_number=_int("line_number", cells["line_number"]),
        hs_prefix=cells["hs_prefix"],
        description=cells["description"],
        unit=cells["unit"],
    )
    if cells["authorised_quantity"]:
        line.authorised_quantity = _float("authorised_quantity", cells["authorised_quantity"])
    if cells["authorised_value"]:
        line.authorised_value = _float("authorised_value", cells["authorised_value"])
    return line


def _permit_type(text: str) -> permit_pb2.PermitType.ValueType:
    name = text.upper()
    name = name if name.startswith("PERMIT_TYPE_") else f"PERMIT_TYPE_{name}"
    try:
        value = permit_pb2.PermitType.Value(name)
    except ValueError:
        known = ", ".join(n.removeprefix("PERMIT_TYPE_") for n in permit_pb2.PermitType.keys()[1:])
        raise ValueError(f"type {text!r} is not a permit type ({known})") from None
    return value


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def _bool(column: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"{column} {text!r} is not true or false")


def _int(column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a whole number") from None


def _float(column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not a number") from None


def _instant(column: str, text: str, *, end_of_day: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            if end_of_day and day == date.max:  # 9999-12-31, the usual "no expiry": its day ends at the last instant
                return datetime.max.replace(tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column} {text!r} is not an ISO 8601 date or time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{column} {text!r} has no time zone; add Z or an offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{column} {text!r} is out of range") from None
