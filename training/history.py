"""The canonical history schema: one row per declaration goods item with its inspection outcome.

Training reads history only in this shape. Another administration's export is adapted to it by a
mapping file (training.mapping); the service's own assessments and officers' results will be
exported straight into it. `read_history` refuses a file with missing columns, values of the wrong
type, unparsable or out-of-order dates, naming the file, line and column, before any training starts.
The schema is documented column by column in docs/history_schema.md, which schema_markdown()
writes (`python -m training.history > docs/history_schema.md`; a test keeps the two in step).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    from training.mapping import HistoryMapping

Kind = Literal["text", "integer", "number", "flag", "time"]


@dataclass(frozen=True, slots=True)
class HistoryColumn:
    name: str
    kind: Kind
    required: bool
    description: str
    default: object = None  # for an optional column the file leaves out


HISTORY_COLUMNS: tuple[HistoryColumn, ...] = (
    HistoryColumn("declaration_id", "text", True, "the declaration's id; its items share it"),
    HistoryColumn("item_number", "integer", False, "1-based goods item number within the declaration", 1),
    HistoryColumn("lodgement_time", "time", True, "when the declaration was lodged (UTC); rows in this order"),
    HistoryColumn("hs_code", "text", True, "HS code of the item, 6 to 10 digits"),
    HistoryColumn("origin_country", "text", True, "ISO 3166 alpha-2 country of origin"),
    HistoryColumn("export_country", "text", False, "ISO 3166 alpha-2 country of dispatch", ""),
    HistoryColumn("customs_value", "number", True, "customs value in national currency"),
    HistoryColumn("net_mass_kg", "number", False, "net mass in kilograms", math.nan),
    HistoryColumn("gross_mass_kg", "number", False, "gross mass in kilograms", math.nan),
    HistoryColumn("quantity", "number", False, "quantity in quantity_unit", math.nan),
    HistoryColumn("quantity_unit", "text", False, "UN/ECE Rec 20 unit code, e.g. KGM, NAR, LTR", ""),
    HistoryColumn("duties_and_taxes", "number", False, "duties and taxes assessed, national currency", math.nan),
    HistoryColumn(
        "tax_rate_percent", "number", False, "duty rate in percent; gives duties_and_taxes when absent", math.nan
    ),
    HistoryColumn("transport_mode", "integer", False, "UN/ECE Rec 19 mode of transport at the border", 0),
    HistoryColumn("declaration_type", "integer", False, "1 import, 2 export, 3 transit", 1),
    HistoryColumn(
        "aeo_status", "integer", False, "1 none, 2 customs simplifications, 3 security and safety, 4 full", 1
    ),
    HistoryColumn("preference_claimed", "flag", False, "a tariff preference (FTA, GSP) was claimed", False),
    HistoryColumn("permit_count", "integer", False, "permits cited by the item", 0),
    HistoryColumn("permit_balance_used", "number", False, "share of the cited permit line drawn before", math.nan),
    HistoryColumn("permit_days_to_expiry", "number", False, "days to the earliest cited permit's end", math.nan),
    HistoryColumn("item_count", "integer", False, "goods items in the declaration; counted when absent", 0),
    HistoryColumn("importer_id", "text", False, "the importer's trader id (EORI, business number)", ""),
    HistoryColumn("declarant_id", "text", False, "the declarant's (broker's) id", ""),
    HistoryColumn("exporter_id", "text", False, "the exporter's or seller's id", ""),
    HistoryColumn("customs_office", "text", False, "the customs office of lodgement", ""),
    HistoryColumn("inspected", "flag", True, "whether the consignment was inspected (only then is finding known)"),
    HistoryColumn("finding", "flag", False, "the inspection found an irregularity; required on inspected rows", False),
    HistoryColumn("revenue_recovered", "number", False, "duties and taxes recovered by the inspection", math.nan),
    HistoryColumn("random_control", "flag", False, "the inspection was a random control, not targeted", False),
)
COLUMNS_BY_NAME = {c.name: c for c in HISTORY_COLUMNS}

RowCheck = tuple[np.ndarray, str, str]  # (bad rows, column, message)


@dataclass(frozen=True)
class HistorySchema:
    """A canonical history: its columns, the time column rows are ordered by, the unit a row belongs
    to (a declaration, a cargo report) and the row within it, and the checks only this schema has.
    """

    name: str
    columns: tuple[HistoryColumn, ...]
    time_column: str
    unit_column: str  # rows of one unit share its outcome history (entity history counts units)
    row_column: str  # unique within a unit
    checks: Callable[[pd.DataFrame], Sequence[RowCheck]] = field(default=lambda frame: ())
    derive: Callable[[pd.DataFrame], pd.DataFrame] = field(default=lambda frame: frame)
    by_name: Mapping[str, HistoryColumn] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})


# Errors listed per column before "and N more": one bad export repeats the same mistake.
_SHOWN_PER_COLUMN = 3
_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


@dataclass(frozen=True, slots=True)
class HistoryProblem:
    """One reason a history file is refused; line 0 means the whole file (e.g. a missing column)."""

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: column '{self.column}': {self.message}" if self.column else f"{where}: {self.message}"


class HistoryError(ValueError):
    """A history (or mapping) file that cannot be used; `.problems` lists every problem found."""

    def __init__(self, problems: Sequence[HistoryProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def read_history(
    path: Path, mapping: HistoryMapping | None = None, schema: HistorySchema | None = None
) -> pd.DataFrame:
    """The file's rows in the canonical schema, typed; CSV or Parquet (by suffix).

    Line numbers in errors are CSV lines (the header is line 1) or Parquet row numbers + 1.
    Raises HistoryError listing every problem found, before anything is trained.
    """
    schema = schema or DECLARATION_SCHEMA
    raw = _read_raw(path)
    source = str(path)
    try:
        if mapping is not None:
            if schema is not DECLARATION_SCHEMA:
                raise HistoryError([HistoryProblem(source, 0, "", "mapping files adapt declaration histories only")])
            raw = mapping.apply(raw, source)
        return _to_canonical(raw, source, schema)
    except HistoryError as err:
        if path.suffix.lower() == ".parquet":
            raise
        raise HistoryError(_physical_lines(path, err.problems)) from None


def _physical_lines(path: Path, problems: Sequence[HistoryProblem]) -> list[HistoryProblem]:
    """Problems re-numbered from records to the file's lines: a quoted field may span several lines.

    Errors carry record numbers + 1 (the header is line 1); here each becomes the line the record starts on.
    """
    import csv

    wanted = {p.line for p in problems if p.line > 1}
    if not wanted:
        return list(problems)
    starts: dict[int, int] = {}
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        line = 1
        for record, _ in enumerate(reader, start=1):
            if record in wanted:
                starts[record] = line
            line = reader.line_num + 1
    return [HistoryProblem(p.file, starts.get(p.line, p.line), p.column, p.message) for p in problems]


def read_histories(
    paths: Iterable[Path], mapping: HistoryMapping | None = None, schema: HistorySchema | None = None
) -> pd.DataFrame:
    """Several files read as one history, in the order given; each must start no earlier than the last ended."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    schema = schema or DECLARATION_SCHEMA
    time_column = schema.time_column
    frames: list[pd.DataFrame] = []
    previous: tuple[str, pd.Timestamp] | None = None
    for path in paths:
        frame = read_history(path, mapping, schema)
        if frame.empty:
            continue
        first = frame[time_column].iloc[0]
        if previous is not None and first < previous[1]:
            raise HistoryError(
                [
                    HistoryProblem(
                        str(path),
                        2,
                        time_column,
                        f"starts at {first.isoformat()}, before {previous[0]} ends ({previous[1].isoformat()}); "
                        "give the files in time order",
                    )
                ]
            )
        previous = (str(path), frame[time_column].iloc[-1])
        frames.append(frame)
    if not frames:
        raise HistoryError([HistoryProblem(", ".join(str(p) for p in paths), 0, "", "no rows")])
    return pd.concat(frames, ignore_index=True)


def schema_markdown() -> str:
    """docs/history_schema.md: the canonical columns as a table."""
    lines = [
        "# Canonical history schema",
        "",
        "One row per declaration goods item, in lodgement order, with the inspection outcome. CSV (header",
        "row, UTF-8) or Parquet. Read by `risk train`, `risk evaluate`, `risk promote` and",
        "`risk rules backtest`; written by `risk data generate`. Another administration's export is",
        "adapted to it by a mapping file (`training/mappings/`). Generated from",
        "`training/history.py` by `python -m training.history`; do not edit by hand.",
        "",
        "Flags read 1/0, true/false or yes/no; times are ISO 8601 (UTC when no offset is given); an empty",
        "cell of an optional column takes its default. A file is refused, naming file, line and column,",
        "for a missing required column, a value of the wrong type, dates out of order, a finding on a",
        "row not inspected, an inspected row without its finding, or a declaration item given twice.",
        "",
        "| column | type | required | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for c in HISTORY_COLUMNS:
        default = "" if c.required else ("empty" if c.default in ("", None) else str(c.default).lower())
        lines.append(f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | {default} | {c.description} |")
    return "\n".join(lines) + "\n"


def write_history(frame: pd.DataFrame, path: Path, schema: HistorySchema | None = None) -> int:
    """Writes the frame's canonical columns (those it has, in schema order) as CSV or Parquet; returns rows.

    What it writes, read_history reads back to the same values.
    """
    schema = schema or DECLARATION_SCHEMA
    columns = [c.name for c in schema.columns if c.name in frame.columns]
    missing = [c.name for c in schema.columns if c.required and c.name not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks required history columns: {', '.join(missing)}")
    out = frame[columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        out.to_parquet(path, index=False)
    elif path.suffix.lower() in (".csv", ".txt"):
        out.to_csv(path, index=False)
    else:
        raise ValueError(f"{path}: unknown format; use .csv or .parquet")
    return len(out)


def fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 over the files' bytes in order: which data a run was trained on, for its record."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _read_raw(path: Path) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    if not path.is_file():
        raise HistoryError([HistoryProblem(str(path), 0, "", "no such file")])
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            for name in frame.columns:
                column = frame[name]
                # 1.0 is how pandas stores a flag or a code in a float column (one with gaps): read it as 1.
                if column.dtype.kind == "f" and bool(np.all(np.isnan(column) | (column == np.round(column)))):
                    frame[name] = column.astype("Int64")
            return frame.astype(object).where(frame.notna(), "").astype(str)
        if suffix in (".csv", ".txt"):
            # Everything as text: types are checked here, per value, so errors can name the line.
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise HistoryError([HistoryProblem(str(path), 0, "", f"not UTF-8 text ({err.reason})")]) from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise HistoryError([HistoryProblem(str(path), 0, "", f"cannot be read: {err}")]) from None
    raise HistoryError([HistoryProblem(str(path), 0, "", "unknown format: use .csv or .parquet")])


def _to_canonical(raw: pd.DataFrame, source: str, schema: HistorySchema) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    problems: list[HistoryProblem] = []
    missing = [c.name for c in schema.columns if c.required and c.name not in raw.columns]
    for name in missing:
        problems.append(HistoryProblem(source, 0, name, "required column is missing"))
    if problems:
        raise HistoryError(problems)
    lines = np.arange(2, len(raw) + 2)  # the header is line 1
    out: dict[str, object] = {}
    blanks: dict[str, np.ndarray] = {}
    for column in schema.columns:
        if column.name not in raw.columns:
            out[column.name] = _filled(column, len(raw))
            continue
        text = raw[column.name].astype(str).str.strip()
        values, bad = PARSERS[column.kind](text)
        blank = blanks[column.name] = (text == "").to_numpy()
        if column.required:
            bad = bad | blank
        elif column.default is not None:
            values = _with_default(values, blank, column)
        _report(problems, source, column, text, lines, bad)
        out[column.name] = values
    frame = pd.DataFrame(out)
    if not problems:
        _check_rows(frame, blanks, source, lines, problems, schema)
    if problems:
        raise HistoryError(problems)
    return schema.derive(frame)


def _filled(column: HistoryColumn, n: int) -> np.ndarray:
    if column.kind == "text":
        return np.full(n, column.default, dtype=object)
    if column.kind == "flag":
        return np.full(n, bool(column.default))
    if column.kind == "time":
        import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")  # type: ignore[no-any-return]
    return np.full(n, column.default, dtype=np.int64 if column.kind == "integer" else np.float64)


def _with_default(values: np.ndarray, blank: np.ndarray, column: HistoryColumn) -> np.ndarray:
    if not blank.any():
        return values
    if column.kind == "integer" and values.dtype != np.int64:
        values = values.astype(np.float64)
    out = values.copy()
    out[blank] = column.default
    return out.astype(np.int64) if column.kind == "integer" else out


def _parse_text(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    return text.to_numpy(dtype=object), np.zeros(len(text), dtype=bool)


def _parse_number(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    numbers = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(dtype=np.float64)
    bad = (text != "").to_numpy() & ~np.isfinite(numbers)
    return numbers, bad


def _parse_integer(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    numbers, bad = _parse_number(text)
    # Beyond 2**53 a float no longer holds every integer; such a value is a broken cell, not a count.
    whole = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2.0**53)
    bad = bad | ((text != "").to_numpy() & ~whole)
    return np.where(whole, numbers, 0).astype(np.int64), bad


def _parse_flag(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lowered = text.str.lower()
    true = lowered.isin(_TRUE).to_numpy()
    false = lowered.isin(_FALSE).to_numpy()
    bad = (text != "").to_numpy() & ~(true | false)
    return true, bad


def _parse_time(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

    times = pd.to_datetime(text.where(text != ""), errors="coerce", utc=True, format="ISO8601")
    return times.to_numpy(), (times.isna() & (text != "")).to_numpy()  # a blank is for the column to judge


PARSERS: dict[Kind, Callable[[pd.Series], tuple[np.ndarray, np.ndarray]]] = {
    "text": _parse_text,
    "number": _parse_number,
    "integer": _parse_integer,
    "flag": _parse_flag,
    "time": _parse_time,
}
EXPECTED: dict[Kind, str] = {
    "text": "text",
    "number": "a number",
    "integer": "a whole number",
    "flag": "a flag (1/0, true/false, yes/no)",
    "time": "an ISO 8601 date or time",
}


def _report(
    problems: list[HistoryProblem],
    source: str,
    column: HistoryColumn,
    text: pd.Series,
    lines: np.ndarray,
    bad: np.ndarray,
) -> None:
    def message(i: int) -> str:
        shown = text.iloc[i]
        return "required value is empty" if shown == "" else f"'{shown[:40]}' is not {EXPECTED[column.kind]}"

    report_rows(problems, source, column.name, lines, bad, message)


def report_rows(
    problems: list[HistoryProblem],
    source: str,
    column: str,
    lines: np.ndarray,
    bad: np.ndarray,
    message: Callable[[int], str],
) -> None:
    """One problem per bad row (a boolean mask) for the first few, then how many more there are."""
    where = np.flatnonzero(bad)
    for i in where[:_SHOWN_PER_COLUMN]:
        problems.append(HistoryProblem(source, int(lines[i]), column, message(int(i))))
    if where.size > _SHOWN_PER_COLUMN:
        problems.append(HistoryProblem(source, 0, column, f"and {where.size - _SHOWN_PER_COLUMN} more rows like these"))


def _check_rows(
    frame: pd.DataFrame,
    blanks: dict[str, np.ndarray],
    source: str,
    lines: np.ndarray,
    problems: list[HistoryProblem],
    schema: HistorySchema,
) -> None:
    time_column = schema.time_column
    times = frame[time_column].to_numpy()
    if len(times) > 1:
        back = np.flatnonzero(times[1:] < times[:-1])
        if back.size:
            i = int(back[0]) + 1
            problems.append(
                HistoryProblem(
                    source,
                    int(lines[i]),
                    time_column,
                    f"dates out of order: {frame[time_column].iloc[i].isoformat()} comes after "
                    f"{frame[time_column].iloc[i - 1].isoformat()} (line {int(lines[i - 1])}); "
                    f"a history must be in {time_column.removesuffix('_time')} order",
                )
            )
    inspected = frame["inspected"].to_numpy()
    finding_blank = blanks.get("finding", np.ones(len(frame), dtype=bool))
    checks: list[RowCheck] = [
        (frame["revenue_recovered"].to_numpy() < 0, "revenue_recovered", "must not be negative"),
        *schema.checks(frame),
        (inspected & finding_blank, "finding", "an inspected row needs its finding (1 or 0)"),
        (~inspected & frame["finding"].to_numpy(), "finding", "a finding on a row not inspected"),
        (~inspected & frame["random_control"].to_numpy(), "random_control", "a random control that was not inspected"),
    ]
    for bad, column, message in checks:
        for i in np.flatnonzero(bad)[:_SHOWN_PER_COLUMN]:
            problems.append(HistoryProblem(source, int(lines[i]), column, message))
    unit, row = schema.unit_column, schema.row_column
    duplicated = frame.duplicated([unit, row]).to_numpy()
    for i in np.flatnonzero(duplicated)[:_SHOWN_PER_COLUMN]:
        problems.append(
            HistoryProblem(
                source,
                int(lines[i]),
                row,
                f"{unit.removesuffix('_id').replace('_', ' ')} {frame[unit].iloc[i]} "
                f"{row.removesuffix('_number').replace('_', ' ')} {frame[row].iloc[i]} appears twice",
            )
        )


def _declaration_checks(frame: pd.DataFrame) -> list[RowCheck]:
    hs = frame["hs_code"].astype(str)
    origin = frame["origin_country"].astype(str)
    export = frame["export_country"].astype(str)
    return [
        (frame["customs_value"].to_numpy() < 0, "customs_value", "must not be negative"),
        (~hs.str.fullmatch(r"\d{6,10}").to_numpy(), "hs_code", "must be 6 to 10 digits"),
        (~origin.str.fullmatch(r"[A-Z]{2}").to_numpy(), "origin_country", "must be an ISO 3166 alpha-2 code"),
        (
            ~(export.str.fullmatch(r"[A-Z]{2}") | (export == "")).to_numpy(),
            "export_country",
            "must be an ISO 3166 alpha-2 code or empty",
        ),
    ]


def _derive_declarations(frame: pd.DataFrame) -> pd.DataFrame:
    """Fills the columns the schema derives: item_count by declaration, duties from the duty rate."""
    if (frame["item_count"] == 0).any():
        counts = frame.groupby("declaration_id", sort=False)["item_number"].transform("size")
        frame["item_count"] = np.where(frame["item_count"] == 0, counts, frame["item_count"]).astype(np.int64)
    duties = frame["duties_and_taxes"].to_numpy()
    from_rate = frame["customs_value"].to_numpy() * frame["tax_rate_percent"].to_numpy() / 100.0
    frame["duties_and_taxes"] = np.where(np.isnan(duties), from_rate, duties)
    return frame


DECLARATION_SCHEMA = HistorySchema(
    "declaration",
    HISTORY_COLUMNS,
    time_column="lodgement_time",
    unit_column="declaration_id",
    row_column="item_number",
    checks=_declaration_checks,
    derive=_derive_declarations,
)


if __name__ == "__main__":
    print(schema_markdown(), end="")
