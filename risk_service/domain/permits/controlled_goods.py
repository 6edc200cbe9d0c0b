"""The controlled goods table: which HS prefixes need which permits from which agency, loaded from YAML or CSV.

A YAML table (see default_controlled_goods.yaml)::

    version: "2026.11.1"               # required, a quoted string; reported in every assessment
    entries:
      - hs_prefix: "0201"              # required, 2 to 10 digits, quoted (0201 unquoted is a number)
        permit_type: HEALTH_CERTIFICATE   # required, a PermitType name
        agency: MFDS                   # required, the issuing agency's code
        description: "Beef from BSE-listed origins"   # required, shown to officers
        when:                          # optional; every condition given must hold
          origin_in: [US, CA]          # item origin is one of these (ISO 3166 alpha-2)
          origin_not_in: [KR]          # item origin is none of these
          procedure: [IMPORT]          # IMPORT | EXPORT | TRANSIT
          min_quantity: 6              # item quantity, in quantity_unit, is at least this
          quantity_unit: NAR           # required with min_quantity; a unit units.py converts

A CSV table has a header naming its columns, any order: hs_prefix, permit_type, agency,
description (required) and origin_in, origin_not_in, procedure, min_quantity, quantity_unit
(optional); list cells separate entries with ';'. Its version is the first line's
`# version: X` comment or, without one, `sha256:` and the start of the file's hash. Keep the
hs_prefix column as text in a spreadsheet: a number format drops leading zeros.

Every entry whose prefix starts an item's HS code and whose conditions hold asks for one permit
of its type from its agency. Every load error names its file and line; all are reported at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from risk_service.domain.declaration import DeclarationType
from risk_service.domain.permits.model import PermitType
from risk_service.domain.permits.units import is_known_unit
from risk_service.domain.rules.holder import FileHolder
from risk_service.domain.rules.loader import MAX_FILE_BYTES, YamlProblem, compose_yaml, line_at, readable_size
from risk_service.domain.validation import COUNTRY_CODES

logger = logging.getLogger(__name__)

#: The shipped default table.
DEFAULT_CONTROLLED_GOODS_PATH: Final = Path(__file__).with_name("default_controlled_goods.yaml")

#: Longest description kept; it is shown to officers in a hit message.
MAX_DESCRIPTION_LENGTH: Final = 500

_HS_PREFIX: Final = re.compile(r"[0-9]{2,10}")
_AGENCY: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}")
_CSV_VERSION: Final = re.compile(r"#\s*version\s*:\s*(\S.*?)\s*$")
_PERMIT_TYPES: Final = {t.name: t for t in PermitType if t != PermitType.UNSPECIFIED}
_PROCEDURES: Final = {t.name: t for t in DeclarationType if t != DeclarationType.UNSPECIFIED}
_TOP_KEYS: Final = ("version", "entries")
_ENTRY_KEYS: Final = ("hs_prefix", "permit_type", "agency", "description", "when")
_REQUIRED_KEYS: Final = ("hs_prefix", "permit_type", "agency", "description")
_CONDITION_KEYS: Final = ("origin_in", "origin_not_in", "procedure", "min_quantity", "quantity_unit")
_CSV_COLUMNS: Final = (*_REQUIRED_KEYS, *_CONDITION_KEYS)
_LIST_KEYS: Final = frozenset({"origin_in", "origin_not_in", "procedure"})


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryConditions:
    """When an entry applies; empty conditions always hold."""

    origin_in: frozenset[str] = frozenset()
    origin_not_in: frozenset[str] = frozenset()
    procedures: frozenset[DeclarationType] = frozenset()
    min_quantity: float | None = None
    quantity_unit: str = ""

    def hold(
        self,
        origin_country: str,
        declaration_type: DeclarationType,
        quantity_in_unit: Callable[[str], float | None],
    ) -> bool:
        if self.origin_in and origin_country not in self.origin_in:
            return False
        if origin_country in self.origin_not_in:
            return False
        if self.procedures and declaration_type not in self.procedures:
            return False
        if self.min_quantity is not None:
            quantity = quantity_in_unit(self.quantity_unit)
            # A quantity that does not convert cannot show it is under the threshold: the permit is
            # still asked for, so an odd unit is not a way around it.
            if quantity is not None and quantity < self.min_quantity:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ControlledGoodsEntry:
    """One row of the table: goods under `hs_prefix` need a `permit_type` from `agency` when `when` holds."""

    hs_prefix: str
    permit_type: PermitType
    agency: str
    description: str
    when: EntryConditions = EntryConditions()
    line: int = 0  # where the entry is defined, 0 when built in code


@dataclass(frozen=True, slots=True)
class Requirement:
    """A permit a goods item must cite: its type and issuing agency, and the entry that asks for it."""

    permit_type: PermitType
    agency: str
    hs_prefix: str
    description: str


_MAX_MEMO_CODES = 100_000


class ControlledGoodsTable:
    """An immutable, loaded table; safe to share between threads."""

    def __init__(
        self,
        version: str,
        entries: Sequence[ControlledGoodsEntry],
        *,
        path: Path | None = None,
        sources: Sequence[Path] = (),
    ) -> None:
        self.version = version
        self.entries: tuple[ControlledGoodsEntry, ...] = tuple(entries)
        self.path = path
        self.sources: tuple[Path, ...] = tuple(sources)  # files the table was read from, for change detection
        by_prefix: dict[str, list[ControlledGoodsEntry]] = {}
        for entry in self.entries:
            by_prefix.setdefault(entry.hs_prefix, []).append(entry)
        self._by_prefix: dict[str, tuple[ControlledGoodsEntry, ...]] = {k: tuple(v) for k, v in by_prefix.items()}
        # The prefix lengths the table has, longest first: a look-up probes only these.
        self._lengths = tuple(sorted({len(p) for p in self._by_prefix if 2 <= len(p) <= 10}, reverse=True))
        # HS code -> its entries, most specific first. Codes repeat from filing to filing; bounded, since
        # callers send any code.
        self._entries_of: dict[str, tuple[ControlledGoodsEntry, ...]] = {}

    def requirements(
        self,
        hs_code: str,
        origin_country: str,
        declaration_type: DeclarationType,
        quantity_in_unit: Callable[[str], float | None],
    ) -> list[Requirement]:
        """The permits a goods item needs, most specific entry first, one per (type, agency).

        `quantity_in_unit(unit)` gives the item's quantity in a unit, or None when it does not
        convert; it is called only for entries with a quantity threshold. Looks up the prefixes of
        the HS code of the lengths the table has (at most 9 dictionary probes), once per code, and
        never scans.
        """
        found: list[Requirement] = []
        seen: set[tuple[PermitType, str]] = set()
        for entry in self._entries_for(hs_code):
            key = (entry.permit_type, entry.agency)
            if key in seen or not entry.when.hold(origin_country, declaration_type, quantity_in_unit):
                continue
            seen.add(key)
            found.append(Requirement(entry.permit_type, entry.agency, entry.hs_prefix, entry.description))
        return found

    def _entries_for(self, hs_code: str) -> tuple[ControlledGoodsEntry, ...]:
        """Every entry whose prefix starts `hs_code`, longest prefix first."""
        entries = self._entries_of.get(hs_code)
        if entries is None:
            size = min(len(hs_code), 10)
            entries = tuple(
                entry
                for length in self._lengths
                if length <= size
                for entry in self._by_prefix.get(hs_code[:length], ())
            )
            if len(self._entries_of) >= _MAX_MEMO_CODES:
                self._entries_of.clear()
            self._entries_of[hs_code] = entries
        return entries


# -- load errors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlledGoodsLoadError:
    """One problem in a table file; line is 1-based, 0 when it concerns the whole file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ControlledGoodsError(Exception):
    """A table that cannot be loaded; `.errors` lists every problem, one per line in str()."""

    def __init__(self, errors: Sequence[ControlledGoodsLoadError], sources: Sequence[Path] = ()) -> None:
        self.errors = list(errors)
        self.sources = tuple(sources)  # files read (or attempted), so a holder can tell when a fix lands
        super().__init__("\n".join(str(e) for e in self.errors))


# -- loading ------------------------------------------------------------------------------------


def load_controlled_goods(path: Path) -> ControlledGoodsTable:
    """Loads and checks a table (.yaml, .yml or .csv); raises ControlledGoodsError listing every problem.

    Any failure to read or parse becomes a ControlledGoodsError, never another exception, so a
    hot reload of a broken file cannot take down its caller.
    """
    loader = _Loader(Path(path))
    try:
        return loader.load()
    except ControlledGoodsError:
        raise
    except Exception as exc:  # a loader bug or an input we did not foresee: still a load error
        logger.exception("unexpected error loading controlled goods table %s", loader.path)
        loader.error(loader.line, f"cannot load controlled goods table: unexpected {type(exc).__name__}")
        raise loader.fail() from exc


#: A field as read from either format: (line, value). YAML values are as YAML typed them; CSV
#: values are strings, lists of strings or floats.
_Raw = Mapping[str, tuple[int, object]]


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[ControlledGoodsLoadError] = []
        self.line = 1  # where loading is, for a failure that carries no position of its own
        self.constructor = yaml.SafeLoader("")

    def error(self, line: int, message: str) -> None:
        self.errors.append(ControlledGoodsLoadError(str(self.path), line, message))

    def fail(self) -> ControlledGoodsError:
        return ControlledGoodsError(self.errors, [self.path])

    def load(self) -> ControlledGoodsTable:
        suffix = self.path.suffix.lower()
        if suffix not in (".yaml", ".yml", ".csv"):
            self.error(0, f"unknown table format '{suffix}': name the file .yaml, .yml or .csv")
            raise self.fail()
        data = self.read()
        if data is None:
            raise self.fail()
        if suffix == ".csv":
            version, entries = self.from_csv(data)
        else:
            version, entries = self.from_yaml(data)
        self.duplicates(entries)
        if self.errors:
            raise self.fail()
        return ControlledGoodsTable(version, entries, path=self.path, sources=[self.path])

    def read(self) -> bytes | None:
        try:
            info = self.path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.error(0, "cannot read the table: not a regular file")
                return None
            with self.path.open("rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
        except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
            self.error(0, f"cannot read the table: {type(exc).__name__}: {exc}")
            return None
        if len(data) > MAX_FILE_BYTES:
            self.error(0, f"the table is larger than the {readable_size(MAX_FILE_BYTES)} limit")
            return None
        return data

    def text(self, data: bytes) -> str | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = line_at(data, exc.start)
            self.error(line, f"the table is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})")
            return None
        return text.removeprefix("\ufeff")  # spreadsheets write a byte order mark

    def duplicates(self, entries: Iterable[ControlledGoodsEntry]) -> None:
        first: dict[tuple[str, PermitType, str, EntryConditions], int] = {}
        for entry in entries:
            key = (entry.hs_prefix, entry.permit_type, entry.agency, entry.when)
            if key in first:
                self.error(entry.line, f"duplicates the entry at line {first[key]}")
            else:
                first[key] = entry.line

    # --- YAML --------------------------------------------------------------------------------

    def from_yaml(self, data: bytes) -> tuple[str, list[ControlledGoodsEntry]]:
        text = self.text(data)
        root = self.compose(text) if text is not None else None
        if root is None:
            return "", []
        top = self.mapping(root, "the table")
        if top is None:
            return "", []
        for key, (key_node, _) in top.items():
            if key not in _TOP_KEYS:
                self.error(_line(key_node), f"unknown key '{key}' (expected one of {', '.join(_TOP_KEYS)})")
        version = ""
        if "version" not in top:
            self.error(1, "missing 'version'")
        else:
            node = top["version"][1]
            value = self.value(node)
            if isinstance(value, _Invalid):
                pass  # already reported
            elif not isinstance(value, str) or not value.strip():
                self.error(_line(node), 'version must be a non-empty quoted string, e.g. "2026.11.1"')
            else:
                version = value
        entries: list[ControlledGoodsEntry] = []
        if "entries" not in top:
            self.error(1, "missing 'entries'")
            return version, entries
        node = top["entries"][1]
        if not isinstance(node, yaml.SequenceNode):
            self.error(_line(node), "'entries' must be a sequence of entries")
            return version, entries
        for entry_node in node.value:
            entry = self.yaml_entry(entry_node)
            if entry is not None:
                entries.append(entry)
        return version, entries

    def yaml_entry(self, node: yaml.Node) -> ControlledGoodsEntry | None:
        line = self.line = _line(node)
        fields = self.mapping(node, "an entry")
        if fields is None:
            return None
        raw: dict[str, tuple[int, object]] = {}
        for key, (key_node, value_node) in fields.items():
            if key not in _ENTRY_KEYS:
                self.error(_line(key_node), f"unknown key '{key}' (expected one of {', '.join(_ENTRY_KEYS)})")
            elif key == "when":
                raw.update(self.yaml_conditions(value_node))
            else:
                raw[key] = (_line(value_node), self.value(value_node))
        return _Entry(self, line, raw).build()

    def yaml_conditions(self, node: yaml.Node) -> dict[str, tuple[int, object]]:
        fields = self.mapping(node, "'when'")
        raw: dict[str, tuple[int, object]] = {}
        for key, (key_node, value_node) in (fields or {}).items():
            if key not in _CONDITION_KEYS:
                self.error(_line(key_node), f"unknown condition '{key}' (expected one of {', '.join(_CONDITION_KEYS)})")
            else:
                raw[key] = (_line(value_node), self.value(value_node))
        return raw

    def compose(self, text: str) -> yaml.Node | None:
        try:
            node = compose_yaml(text)
        except YamlProblem as problem:
            self.error(problem.line, problem.message)
            return None
        if node is None:
            self.error(0, "the table is empty")
        return node

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(_line(node), f"{what} must be a mapping")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                self.error(_line(key_node), f"keys of {what} must be strings")
                continue
            key = str(key_node.value)
            if key in out:
                self.error(_line(key_node), f"duplicate key '{key}' in {what}")
                continue
            out[key] = (key_node, value_node)
        return out

    def value(self, node: yaml.Node) -> object:
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # the constructor raises plain ValueError for e.g. 2026-02-30
            self.error(_line(node), f"invalid value: {exc}")
            return _INVALID

    # --- CSV ---------------------------------------------------------------------------------

    def from_csv(self, data: bytes) -> tuple[str, list[ControlledGoodsEntry]]:
        text = self.text(data)
        if text is None:
            return "", []
        # Split as csv does (\n, \r\n or \r), not on every Unicode line break, so line numbers are the file's.
        lines = list(io.StringIO(text, newline=""))
        version = ""
        # Comment lines before the header are blanked, so the reader's line count stays the file's.
        for n, line in enumerate(lines):
            if not line.lstrip().startswith("#"):
                break
            match = _CSV_VERSION.fullmatch(line.strip())
            if n == 0 and match is not None:
                version = match.group(1)
            lines[n] = "\n"
        if not version:
            version = "sha256:" + hashlib.sha256(data).hexdigest()[:12]
        reader = csv.reader(lines, strict=True)
        header: list[str] | None = None
        entries: list[ControlledGoodsEntry] = []
        end = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.error(end + 1, f"invalid CSV: {exc}")
                return version, entries  # the reader cannot resume reliably after a quoting error
            start, end = end + 1, reader.line_num
            self.line = start
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = self.csv_header(row, start)
                if header is None:
                    return version, entries
                continue
            entry = self.csv_row(header, row, start)
            if entry is not None:
                entries.append(entry)
        if header is None:
            self.error(0, "the table is empty: expected a header line naming its columns")
        return version, entries

    def csv_header(self, row: list[str], line: int) -> list[str] | None:
        names = [cell.strip().lower() for cell in row]
        ok = True
        for name in names:
            if name not in _CSV_COLUMNS:
                hint = "; separate columns with ',' not ';'" if ";" in name else ""
                self.error(line, f"unknown column '{name[:40]}' (expected {', '.join(_CSV_COLUMNS)}){hint}")
                ok = False
        for name in dict.fromkeys(n for n in names if names.count(n) > 1):
            self.error(line, f"column '{name}' appears more than once")
            ok = False
        for name in _REQUIRED_KEYS:
            if name not in names:
                self.error(line, f"missing column '{name}'")
                ok = False
        return names if ok else None

    def csv_row(self, header: list[str], row: list[str], line: int) -> ControlledGoodsEntry | None:
        if len(row) != len(header):
            self.error(line, f"has {len(row)} cells; the header has {len(header)}")
            return None
        raw: dict[str, tuple[int, object]] = {}
        for name, cell in zip(header, row, strict=True):
            cell = cell.strip()
            if not cell and name not in _REQUIRED_KEYS:
                continue  # an empty condition cell sets no condition
            if name in _LIST_KEYS:
                raw[name] = (line, [part.strip() for part in cell.split(";") if part.strip()])
            elif name == "min_quantity":
                try:
                    raw[name] = (line, float(cell))
                except ValueError:
                    raw[name] = (line, cell)  # reported as not a number below
            else:
                raw[name] = (line, cell)
        return _Entry(self, line, raw).build()


class _Invalid:
    """A YAML value that failed to construct (already reported)."""


_INVALID: Final = _Invalid()


class _Entry:
    """Checks one entry's fields, as read from either format, and builds it when all are valid."""

    def __init__(self, loader: _Loader, line: int, raw: _Raw) -> None:
        self.loader = loader
        self.line = line
        self.raw = raw
        self.ok = True

    def error(self, line: int, message: str) -> None:
        self.ok = False
        self.loader.error(line, message)

    def build(self) -> ControlledGoodsEntry | None:
        for key in _REQUIRED_KEYS:
            if key not in self.raw:
                self.error(self.line, f"missing '{key}'")
        hs_prefix = self.hs_prefix()
        permit_type = self.permit_type()
        agency = self.string("agency", _AGENCY, "must be an agency code: letters, digits and . _ : / -, up to 64")
        description = self.string("description", None, f"must be non-empty text up to {MAX_DESCRIPTION_LENGTH} long")
        when = self.conditions()
        if not self.ok or hs_prefix is None or permit_type is None or agency is None or description is None:
            return None
        if when is None:
            return None
        return ControlledGoodsEntry(hs_prefix, permit_type, agency, description, when, self.line)

    def hs_prefix(self) -> str | None:
        if "hs_prefix" not in self.raw:
            return None
        line, value = self.raw["hs_prefix"]
        if isinstance(value, _Invalid):
            self.ok = False
            return None
        if isinstance(value, str) and _HS_PREFIX.fullmatch(value):
            return value
        hint = ' (quote it, e.g. "0106": unquoted, YAML reads it as a number)' if isinstance(value, int) else ""
        self.error(line, f"hs_prefix {_shown(value)} must be a string of 2 to 10 digits{hint}")
        return None

    def permit_type(self) -> PermitType | None:
        if "permit_type" not in self.raw:
            return None
        line, value = self.raw["permit_type"]
        if isinstance(value, _Invalid):
            self.ok = False
            return None
        found = _PERMIT_TYPES.get(value) if isinstance(value, str) else None
        if found is None:
            self.error(line, f"unknown permit_type {_shown(value)} (expected one of {', '.join(_PERMIT_TYPES)})")
        return found

    def string(self, key: str, pattern: re.Pattern[str] | None, rule: str) -> str | None:
        if key not in self.raw:
            return None
        line, value = self.raw[key]
        if isinstance(value, _Invalid):
            self.ok = False
            return None
        if isinstance(value, str):
            value = value.strip()
            if value and len(value) <= MAX_DESCRIPTION_LENGTH and (pattern is None or pattern.fullmatch(value)):
                return value
        self.error(line, f"{key} {_shown(value)} {rule}")
        return None

    def conditions(self) -> EntryConditions | None:
        origin_in = self.codes("origin_in", COUNTRY_CODES, "an ISO 3166 alpha-2 country code")
        origin_not_in = self.codes("origin_not_in", COUNTRY_CODES, "an ISO 3166 alpha-2 country code")
        procedures = self.codes("procedure", frozenset(_PROCEDURES), "IMPORT, EXPORT or TRANSIT")
        if origin_in and origin_not_in and origin_in & origin_not_in:
            both = ", ".join(sorted(origin_in & origin_not_in))
            self.error(self.raw["origin_not_in"][0], f"{both} in both origin_in and origin_not_in")
        min_quantity: float | None = None
        if "min_quantity" in self.raw:
            line, value = self.raw["min_quantity"]
            if isinstance(value, _Invalid):
                self.ok = False
            elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                self.error(line, f"min_quantity {_shown(value)} must be a number, 0 or more")
            else:
                min_quantity = float(value)
        unit = ""
        if "quantity_unit" in self.raw:
            line, value = self.raw["quantity_unit"]
            if isinstance(value, _Invalid):
                self.ok = False
            elif not isinstance(value, str) or not is_known_unit(value):
                self.error(line, f"quantity_unit {_shown(value)} is not a unit quantities convert to (e.g. KGM, NAR)")
            elif "min_quantity" not in self.raw:
                self.error(line, "quantity_unit is given without min_quantity")
            else:
                unit = value
        elif "min_quantity" in self.raw:
            self.error(self.raw["min_quantity"][0], "min_quantity needs a quantity_unit")
        if origin_in is None or origin_not_in is None or procedures is None:
            return None
        return EntryConditions(
            origin_in=origin_in,
            origin_not_in=origin_not_in,
            procedures=frozenset(_PROCEDURES[p] for p in procedures),
            min_quantity=min_quantity,
            quantity_unit=unit,
        )

    def codes(self, key: str, allowed: frozenset[str], what: str) -> frozenset[str] | None:
        """A list condition (a single string counts as a list of one); None when invalid."""
        if key not in self.raw:
            return frozenset()
        line, value = self.raw[key]
        if isinstance(value, _Invalid):
            self.ok = False
            return None
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            self.error(line, f"{key} must be a non-empty list of codes")
            return None
        ok = True
        for code in values:
            if isinstance(code, str) and code in allowed:
                continue
            # YAML 1.1 reads NO (Norway), ON, YES as booleans.
            hint = " (quote it: unquoted, YAML reads NO, ON and YES as true/false)" if isinstance(code, bool) else ""
            self.error(line, f"{key}: {_shown(code)} is not {what}{hint}")
            ok = False
        return frozenset(str(c) for c in values) if ok else None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _shown(value: object) -> str:
    """A value for an error message, bounded so a huge cell does not flood the report."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- hot reload ---------------------------------------------------------------------------------


class ControlledGoodsHolder(FileHolder[ControlledGoodsTable, ControlledGoodsError]):
    """The active controlled goods table. Readers read `.current` once per declaration; reloads swap it whole.

    The first load raises ControlledGoodsError. After that, reloads never raise: a broken edit is
    logged, kept in `.last_error`, and the previous table stays active.
    """

    what = "controlled goods table"
    error_type = ControlledGoodsError

    def _load(self) -> ControlledGoodsTable:
        return load_controlled_goods(self.path)

    def _summary(self, value: ControlledGoodsTable) -> str:
        return f"version {value.version}, {len(value.entries)} entries"

    def _unexpected(self, message: str) -> ControlledGoodsError:
        return ControlledGoodsError([ControlledGoodsLoadError(str(self.path), 1, message)], [self.path])
