"""Controlled goods table: lookup by HS prefix and conditions, file:line load errors, hot reload."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

import pytest

from risk_service.domain.declaration import DeclarationType
from risk_service.domain.permits import controlled_goods as controlled_goods_module
from risk_service.domain.permits.controlled_goods import (
    DEFAULT_CONTROLLED_GOODS_PATH,
    ControlledGoodsEntry,
    ControlledGoodsError,
    ControlledGoodsHolder,
    ControlledGoodsTable,
    EntryConditions,
    load_controlled_goods,
)
from risk_service.domain.permits.model import PermitType

IMPORT = DeclarationType.IMPORT
EXPORT = DeclarationType.EXPORT
_TYPES = (
    "IMPORT_LICENCE, EXPORT_LICENCE, QUARANTINE_CERTIFICATE, HEALTH_CERTIFICATE, STRATEGIC_TRADE_PERMIT, "
    "CERTIFICATE_OF_ORIGIN, CONFORMITY_CERTIFICATE, CITES_PERMIT, OTHER"
)


def _write(directory: Path, text: str | bytes, name: str = "goods.yaml") -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def _bump(path: Path, text: str) -> None:
    """Rewrites a file and moves its mtime on, so the change is seen even within one clock tick."""
    stat = path.stat()
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _errors(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ControlledGoodsError) as caught:
        load_controlled_goods(path)
    assert all(e.file == str(path) for e in caught.value.errors)
    return [(e.line, e.message) for e in caught.value.errors]


def _none(unit: str) -> float | None:
    return None


def _types(requirements: list) -> list[tuple[PermitType, str]]:  # type: ignore[type-arg]
    return [(r.permit_type, r.agency) for r in requirements]


# -- the default table --------------------------------------------------------------------------


def test_default_table_loads_with_a_version_and_one_line_descriptions() -> None:
    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    assert table.version == "2026.11.1"
    assert 15 <= len(table.entries) <= 25
    assert all(e.description and "\n" not in e.description for e in table.entries)
    assert {e.agency for e in table.entries} >= {"NFQS", "MFDS", "YESTRADE", "NSSC", "KATS", "MOE"}


def test_default_table_asks_quarantine_and_food_safety_for_imported_beef() -> None:
    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    from_australia = table.requirements("0201300000", "AU", IMPORT, lambda unit: 2000.0)
    assert _types(from_australia) == [
        (PermitType.QUARANTINE_CERTIFICATE, "NFQS"),
        (PermitType.HEALTH_CERTIFICATE, "MFDS"),
    ]
    from_us = table.requirements("0201300000", "US", IMPORT, lambda unit: 2000.0)
    # The BSE entry (prefix 0201) is more specific than the meat entry (02): it is the one kept.
    assert [r.hs_prefix for r in from_us] == ["0201", "0201"]


def test_default_table_asks_strategic_licences_for_exports_only() -> None:
    table = load_controlled_goods(DEFAULT_CONTROLLED_GOODS_PATH)
    assert _types(table.requirements("8471300000", "KR", EXPORT, _none)) == [
        (PermitType.STRATEGIC_TRADE_PERMIT, "YESTRADE")
    ]
    assert table.requirements("8471300000", "CN", IMPORT, _none) == []


# -- lookup -------------------------------------------------------------------------------------


def _entry(
    prefix: str,
    permit_type: PermitType = PermitType.IMPORT_LICENCE,
    agency: str = "A",
    when: EntryConditions | None = None,
) -> ControlledGoodsEntry:
    return ControlledGoodsEntry(prefix, permit_type, agency, f"goods {prefix}", when or EntryConditions())


def test_every_matching_prefix_asks_for_its_permit_most_specific_first() -> None:
    table = ControlledGoodsTable(
        "t",
        [
            _entry("01", PermitType.QUARANTINE_CERTIFICATE, "NFQS"),
            _entry("0106", PermitType.CITES_PERMIT, "MOE"),
            _entry("0106", PermitType.QUARANTINE_CERTIFICATE, "NFQS"),
            _entry("02", PermitType.HEALTH_CERTIFICATE, "MFDS"),
        ],
    )
    found = table.requirements("0106190000", "TH", IMPORT, _none)
    assert [(r.hs_prefix, r.permit_type) for r in found] == [
        ("0106", PermitType.CITES_PERMIT),
        ("0106", PermitType.QUARANTINE_CERTIFICATE),
    ]
    assert table.requirements("0301", "TH", IMPORT, _none) == []
    assert table.requirements("0", "TH", IMPORT, _none) == []


class _CountingDict(dict[str, tuple[ControlledGoodsEntry, ...]]):
    probes = 0

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        _CountingDict.probes += 1
        return super().get(key, default)

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the table was scanned")


def _counting(table: ControlledGoodsTable) -> ControlledGoodsTable:
    table._by_prefix = _CountingDict(table._by_prefix)
    _CountingDict.probes = 0
    return table


def test_lookup_probes_only_the_prefix_lengths_the_table_has_and_never_scans() -> None:
    table = _counting(ControlledGoodsTable("t", [_entry(f"{n:04d}") for n in range(1000)]))
    assert [r.hs_prefix for r in table.requirements("0123456789", "CN", IMPORT, _none)] == ["0123"]
    assert _CountingDict.probes == 1

    every_length = [_entry("0123456789"[:n], agency=f"A{n}") for n in range(2, 11)]
    table = _counting(ControlledGoodsTable("t", every_length))
    found = table.requirements("0123456789", "CN", IMPORT, _none)
    assert [r.hs_prefix for r in found] == ["0123456789"[:n] for n in range(10, 1, -1)]  # most specific first
    assert _CountingDict.probes == 9


def test_lookup_remembers_each_code_and_still_judges_conditions_per_item() -> None:
    table = _counting(ControlledGoodsTable("t", [_entry("0201", when=EntryConditions(origin_in=frozenset({"US"})))]))
    assert [r.hs_prefix for r in table.requirements("0201300000", "US", IMPORT, _none)] == ["0201"]
    assert table.requirements("0201300000", "AU", IMPORT, _none) == []  # same code, another origin
    assert _CountingDict.probes == 1  # the code's entries were looked up once


_AT_LEAST_5_KG = EntryConditions(min_quantity=5.0, quantity_unit="KGM")


@pytest.mark.parametrize(
    ("when", "origin", "procedure", "quantity", "applies"),
    [
        (EntryConditions(origin_in=frozenset({"US", "CA"})), "US", IMPORT, None, True),
        (EntryConditions(origin_in=frozenset({"US", "CA"})), "AU", IMPORT, None, False),
        (EntryConditions(origin_not_in=frozenset({"KR"})), "KR", IMPORT, None, False),
        (EntryConditions(origin_not_in=frozenset({"KR"})), "CN", IMPORT, None, True),
        (EntryConditions(procedures=frozenset({EXPORT})), "CN", IMPORT, None, False),
        (EntryConditions(procedures=frozenset({EXPORT})), "CN", EXPORT, None, True),
        (_AT_LEAST_5_KG, "CN", IMPORT, 4.99, False),
        (_AT_LEAST_5_KG, "CN", IMPORT, 5.0, True),
        # A quantity that does not convert cannot show it is below the threshold.
        (_AT_LEAST_5_KG, "CN", IMPORT, None, True),
    ],
)
def test_conditions_decide_whether_an_entry_applies(
    when: EntryConditions, origin: str, procedure: DeclarationType, quantity: float | None, applies: bool
) -> None:
    asked: list[str] = []

    def quantity_in(unit: str) -> float | None:
        asked.append(unit)
        return quantity

    table = ControlledGoodsTable("t", [_entry("0201", when=when)])
    assert bool(table.requirements("0201100000", origin, procedure, quantity_in)) is applies
    assert asked == (["KGM"] if when.min_quantity is not None else [])


# -- YAML ---------------------------------------------------------------------------------------


def test_a_yaml_table_loads_every_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        version: "v7"
        entries:
          - hs_prefix: "3004"
            permit_type: HEALTH_CERTIFICATE
            agency: MFDS
            description: "Medicaments"
            when:
              origin_in: [CN, "NO"]
              procedure: IMPORT
              min_quantity: 6
              quantity_unit: NAR
        """,
    )
    table = load_controlled_goods(path)
    assert table.version == "v7"
    assert table.sources == (path,)
    (entry,) = table.entries
    assert entry == ControlledGoodsEntry(
        "3004",
        PermitType.HEALTH_CERTIFICATE,
        "MFDS",
        "Medicaments",
        EntryConditions(
            origin_in=frozenset({"CN", "NO"}),
            procedures=frozenset({IMPORT}),
            min_quantity=6.0,
            quantity_unit="NAR",
        ),
        line=3,
    )


def test_yaml_errors_are_all_reported_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        version: "v1"
        colour: red
        entries:
          - hs_prefix: 0106
            permit_type: CITES_PERMIT
            agency: MOE
            description: "Live animals"
          - hs_prefix: "8471"
            permit_type: STRATEGIC
            agency: YESTRADE
            description: "Computers"
            when: {origin_in: [NO], min_quantity: 5, procedure: [EXPORT, SMUGGLE]}
          - hs_prefix: "8542"
            agency: ""
            description: "Chips"
            when: {quantity_unit: BOX, origin_not_in: [CN]}
          - hs_prefix: "9503"
            permit_type: CONFORMITY_CERTIFICATE
            agency: KATS
            description: "Toys"
            typo: 1
        """,
    )
    assert _errors(path) == [
        (2, "unknown key 'colour' (expected one of version, entries)"),
        (
            4,
            "hs_prefix 70 must be a string of 2 to 10 digits "
            '(quote it, e.g. "0106": unquoted, YAML reads it as a number)',
        ),
        (
            9,
            f"unknown permit_type 'STRATEGIC' (expected one of {_TYPES})",
        ),
        (
            12,
            "origin_in: False is not an ISO 3166 alpha-2 country code "
            "(quote it: unquoted, YAML reads NO, ON and YES as true/false)",
        ),
        (12, "procedure: 'SMUGGLE' is not IMPORT, EXPORT or TRANSIT"),
        (12, "min_quantity needs a quantity_unit"),
        (13, "missing 'permit_type'"),
        (14, "agency '' must be an agency code: letters, digits and . _ : / -, up to 64"),
        (16, "quantity_unit 'BOX' is not a unit quantities convert to (e.g. KGM, NAR)"),
        (21, "unknown key 'typo' (expected one of hs_prefix, permit_type, agency, description, when)"),
    ]


def test_yaml_duplicate_entries_are_refused(tmp_path: Path) -> None:
    entry = '  - {hs_prefix: "01", permit_type: OTHER, agency: A, description: d}\n'
    path = _write(tmp_path, 'version: "v1"\nentries:\n' + entry + entry)
    assert _errors(path) == [(4, "duplicates the entry at line 3")]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('version: "v1"\nentries: [\n', 3, "invalid YAML"),
        ('version: "v1"\nentries: ' + "[" * 5000 + "\n", 2, "nested more than"),
        (b'version: "v1"\nentries: []\n\xff\xfe', 3, "not UTF-8 text"),
        ("", 0, "the table is empty"),
        ("version: 1\nentries: []\n", 1, "version must be a non-empty quoted string"),
        ("entries: {}\n", 1, "missing 'version'"),
        ('version: "v1"\nentries: {}\n', 2, "'entries' must be a sequence"),
        ('version: "v1"\nentries:\n  - just text\n', 3, "an entry must be a mapping"),
    ],
    ids=[
        "syntax",
        "deeply-nested",
        "binary",
        "empty",
        "numeric-version",
        "no-version",
        "entries-mapping",
        "entry-text",
    ],
)
def test_a_broken_yaml_file_is_a_load_error_with_its_line(
    tmp_path: Path, text: str | bytes, line: int, message: str
) -> None:
    path = _write(tmp_path, text)
    errors = _errors(path)
    assert any(n == line and message in m for n, m in errors), errors


def test_files_beyond_the_size_bound_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(controlled_goods_module, "MAX_FILE_BYTES", 100)
    path = _write(tmp_path, 'version: "v1"\nentries: []\n' + "#" * 200)
    assert _errors(path) == [(0, "the table is larger than the 100 bytes limit")]


def test_unknown_formats_and_missing_files_are_load_errors(tmp_path: Path) -> None:
    assert _errors(_write(tmp_path, "x", name="goods.json")) == [
        (0, "unknown table format '.json': name the file .yaml, .yml or .csv")
    ]
    ((line, message),) = _errors(tmp_path / "absent.yaml")
    assert line == 0 and message.startswith("cannot read the table: FileNotFoundError")
    directory = tmp_path / "folder.yaml"
    directory.mkdir()
    assert _errors(directory) == [(0, "cannot read the table: not a regular file")]


def test_a_load_error_prints_one_problem_a_line_with_file_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path, 'version: "v1"\nentries:\n  - {hs_prefix: "1", permit_type: OTHER, agency: A, description: d}\n'
    )
    with pytest.raises(ControlledGoodsError) as caught:
        load_controlled_goods(path)
    assert str(caught.value) == f"{path}:3: hs_prefix '1' must be a string of 2 to 10 digits"


# -- CSV ----------------------------------------------------------------------------------------

_HEADER = "hs_prefix,permit_type,agency,description,origin_in,origin_not_in,procedure,min_quantity,quantity_unit\n"


def test_a_csv_table_loads_with_the_version_of_its_first_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# version: 2026.12.1\n"
        + _HEADER
        + '0201,QUARANTINE_CERTIFICATE,NFQS,"Beef, chilled",US;CA,,IMPORT,,\n'
        + "3004,HEALTH_CERTIFICATE,MFDS,Medicaments,,KR,IMPORT;TRANSIT,6,NAR\n",
        name="goods.csv",
    )
    table = load_controlled_goods(path)
    assert table.version == "2026.12.1"
    beef, medicaments = table.entries
    assert beef == ControlledGoodsEntry(
        "0201",
        PermitType.QUARANTINE_CERTIFICATE,
        "NFQS",
        "Beef, chilled",
        EntryConditions(origin_in=frozenset({"US", "CA"}), procedures=frozenset({IMPORT})),
        line=3,
    )
    assert medicaments.when == EntryConditions(
        origin_not_in=frozenset({"KR"}),
        procedures=frozenset({IMPORT, DeclarationType.TRANSIT}),
        min_quantity=6.0,
        quantity_unit="NAR",
    )
    assert medicaments.line == 4


def test_a_csv_table_without_a_version_line_is_versioned_by_its_hash(tmp_path: Path) -> None:
    content = ("\ufeffdescription,hs_prefix,agency,permit_type\nToys,9503,KATS,CONFORMITY_CERTIFICATE\n").encode()
    path = _write(tmp_path, content, name="goods.csv")
    table = load_controlled_goods(path)
    assert table.version == "sha256:" + hashlib.sha256(content).hexdigest()[:12]
    assert [(e.hs_prefix, e.agency) for e in table.entries] == [("9503", "KATS")]


def test_csv_errors_name_the_physical_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "# version: v1\n"
        "# owned by the single window team\n"
        + _HEADER
        + '0201,QUARANTINE_CERTIFICATE,NFQS,"Beef,\nchilled\nor frozen",,,,,\n'
        + "\n"
        + "8471,STRATEGIC,YESTRADE,Computers,,,EXPORT,,\n"
        + "9503,CONFORMITY_CERTIFICATE,KATS,Toys,XX,,,ten,NAR\n"
        + "9504,CONFORMITY_CERTIFICATE,KATS,Games\n",
        name="goods.csv",
    )
    assert _errors(path) == [
        (
            8,
            f"unknown permit_type 'STRATEGIC' (expected one of {_TYPES})",
        ),
        (9, "origin_in: 'XX' is not an ISO 3166 alpha-2 country code"),
        (9, "min_quantity 'ten' must be a number, 0 or more"),
        (10, "has 4 cells; the header has 9"),
    ]


@pytest.mark.parametrize(
    ("header", "messages"),
    [
        ("hs_prefix,permit_type,agency,description,colour\n", ["unknown column 'colour'"]),
        ("hs_prefix,permit_type,agency\n", ["missing column 'description'"]),
        ("hs_prefix,permit_type,agency,description,agency\n", ["column 'agency' appears more than once"]),
        ("hs_prefix;permit_type;agency;description\n", ["unknown column 'hs_prefix;permit_type;agency;description'"]),
    ],
)
def test_a_bad_csv_header_is_reported_on_its_line(tmp_path: Path, header: str, messages: list[str]) -> None:
    path = _write(tmp_path, "# version: v1\n" + header + "01,OTHER,A,d\n", name="goods.csv")
    errors = _errors(path)
    for message in messages:
        assert any(line == 2 and text.startswith(message) for line, text in errors), errors


def test_a_csv_quoting_error_is_reported_where_its_record_starts(tmp_path: Path) -> None:
    path = _write(tmp_path, _HEADER + '01,OTHER,A,d,,,,,\n02,OTHER,A,"unclosed\n', name="goods.csv")
    ((line, message),) = _errors(path)
    assert line == 3 and message.startswith("invalid CSV")


def test_a_csv_file_with_no_header_is_a_load_error(tmp_path: Path) -> None:
    assert _errors(_write(tmp_path, "# version: v1\n\n", name="goods.csv")) == [
        (0, "the table is empty: expected a header line naming its columns")
    ]


# -- hot reload ---------------------------------------------------------------------------------

_V1 = 'version: "v1"\nentries:\n  - {hs_prefix: "01", permit_type: OTHER, agency: A, description: one}\n'
_V2 = 'version: "v2"\nentries:\n  - {hs_prefix: "02", permit_type: OTHER, agency: B, description: two}\n'


def test_holder_swaps_in_a_good_changed_table(tmp_path: Path) -> None:
    path = _write(tmp_path, _V1)
    holder = ControlledGoodsHolder(path)
    assert holder.current.version == "v1"
    assert holder.reload_if_changed() is False
    _bump(path, _V2)
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"
    assert holder.last_error is None


def test_a_broken_edit_keeps_the_previous_table_until_it_is_fixed(tmp_path: Path) -> None:
    path = _write(tmp_path, _V1)
    holder = ControlledGoodsHolder(path)
    previous = holder.current
    _bump(path, 'version: "v2"\nentries:\n  - {hs_prefix: "02", permit_type: NOPE, agency: B, description: two}\n')
    assert holder.reload_if_changed() is False
    assert holder.current is previous
    assert holder.last_error is not None
    assert [str(e) for e in holder.last_error.errors] == [
        f"{path}:3: unknown permit_type 'NOPE' (expected one of {_TYPES})"
    ]
    assert holder.reload_if_changed() is False  # the same broken file is not loaded again
    _bump(path, _V2)
    assert holder.reload_if_changed() is True
    assert holder.current.version == "v2"
    assert holder.last_error is None


def test_holder_survives_a_loader_that_raises_something_unexpected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, _V1)
    holder = ControlledGoodsHolder(path)
    previous = holder.current

    def broken_loader(path: Path) -> ControlledGoodsTable:
        raise MemoryError("boom")

    monkeypatch.setattr(controlled_goods_module, "load_controlled_goods", broken_loader)
    _bump(path, _V2)
    assert holder.reload() is False
    assert holder.current is previous
    assert str(holder.last_error) == f"{path}:1: cannot load controlled goods table: unexpected MemoryError"


def test_holder_first_load_error_is_raised(tmp_path: Path) -> None:
    with pytest.raises(ControlledGoodsError):
        ControlledGoodsHolder(_write(tmp_path, "version: 1\n"))


def test_holder_reloads_a_csv_table(tmp_path: Path) -> None:
    path = _write(tmp_path, "# version: v1\n" + _HEADER + "01,OTHER,A,one,,,,,\n", name="goods.csv")
    holder = ControlledGoodsHolder(path)
    _bump(path, "# version: v2\n" + _HEADER + "01,OTHER,A,one,,,,,\n02,OTHER,B,two,,,,,\n")
    assert holder.reload_if_changed() is True
    assert (holder.current.version, len(holder.current.entries)) == ("v2", 2)
