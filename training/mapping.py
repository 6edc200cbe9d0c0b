"""Mapping files: adapt another administration's history export to the canonical schema without code.

A mapping is YAML with these keys (all but `columns` optional):

    name: kcs                      # shown in run records
    columns:                       # canonical column: the export's column
      declaration_id: Declaration ID
    constants:                     # canonical column: one value for every row
      inspected: 1
    date_formats:                  # canonical time column: strptime format of the export
      lodgement_time: "%Y-%m-%d"
    pad:                           # canonical column: left-pad with zeros to this width
      hs_code: 6
    codes:                         # canonical column: the export's code -> canonical value
      transport_mode: {"10": 1, "40": 4, default: 9}

Every problem in the mapping is reported with its file and line; a value the code list does not
know (and no `default` covers) is reported with the history file's line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from training.history import COLUMNS_BY_NAME, EXPECTED, PARSERS, HistoryError, HistoryProblem, report_rows

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

MAPPINGS_DIR = Path(__file__).parent / "mappings"
_KEYS = ("name", "columns", "constants", "date_formats", "pad", "codes")
_DEFAULT_CODE = "default"


@dataclass(frozen=True)
class HistoryMapping:
    name: str
    columns: Mapping[str, str]  # canonical -> source column
    constants: Mapping[str, str] = field(default_factory=dict)
    date_formats: Mapping[str, str] = field(default_factory=dict)
    pad: Mapping[str, int] = field(default_factory=dict)
    codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    path: str = ""

    def apply(self, raw: pd.DataFrame, source: str) -> pd.DataFrame:
        """The export's rows as canonical columns of text, ready for the schema's own checks."""
        import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

        problems = [
            HistoryProblem(source, 0, column, f"column is missing (the mapping {self.path} maps {canonical} to it)")
            for canonical, column in self.columns.items()
            if column not in raw.columns
        ]
        if problems:
            raise HistoryError(problems)
        lines = np.arange(2, len(raw) + 2)
        out: dict[str, pd.Series] = {}
        for canonical, column in self.columns.items():
            text = raw[column].astype(str).str.strip()
            if canonical in self.pad:
                # Codes read as numbers upstream lost their leading zeros, maybe gained a ".0": pad digits only.
                text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
                digits = text.str.fullmatch(r"\d+")
                text = text.where(~digits, text.str.zfill(self.pad[canonical]))
            if canonical in self.date_formats:
                text = self._dates(text, canonical, column, source, lines, problems)
            if canonical in self.codes:
                text = self._coded(text, canonical, column, source, lines, problems)
            out[canonical] = text.reset_index(drop=True)
        for canonical, value in self.constants.items():
            out[canonical] = pd.Series([value] * len(raw), dtype=object)
        if problems:
            raise HistoryError(problems)
        return pd.DataFrame(out)

    def _dates(
        self,
        text: pd.Series,
        canonical: str,
        column: str,
        source: str,
        lines: np.ndarray,
        problems: list[HistoryProblem],
    ) -> pd.Series:
        import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

        fmt = self.date_formats[canonical]
        parsed = pd.to_datetime(text.where(text != ""), format=fmt, errors="coerce", utc=True)
        bad = parsed.isna().to_numpy() & (text != "").to_numpy()
        report_rows(problems, source, column, lines, bad, lambda i: f"'{text.iloc[i][:40]}' does not match {fmt}")
        return parsed.map(lambda t: "" if pd.isna(t) else t.isoformat())

    def _coded(
        self,
        text: pd.Series,
        canonical: str,
        column: str,
        source: str,
        lines: np.ndarray,
        problems: list[HistoryProblem],
    ) -> pd.Series:
        codes = self.codes[canonical]
        known = text.isin(list(codes)) | (text == "")
        if _DEFAULT_CODE in codes:
            return text.map(lambda v: codes.get(v, codes[_DEFAULT_CODE]) if v != "" else "")
        report_rows(
            problems,
            source,
            column,
            lines,
            ~known.to_numpy(),
            lambda i: (
                f"code '{text.iloc[i][:40]}' is not in the mapping's code list for {canonical} "
                f"({self.path}); add it or a '{_DEFAULT_CODE}'"
            ),
        )
        return text.map(lambda v: codes.get(v, v))


def mapping_path(name_or_path: str) -> Path:
    """A shipped mapping by name ("kcs") or a mapping file by path."""
    shipped = MAPPINGS_DIR / f"{name_or_path}.yaml"
    return shipped if "/" not in name_or_path and shipped.is_file() else Path(name_or_path)


def shipped_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))


def load_mapping(path: Path) -> HistoryMapping:
    """Reads and checks a mapping file; raises HistoryError naming every problem's file and line."""
    source = str(path)
    if not path.is_file():
        known = ", ".join(shipped_mappings())
        raise HistoryError([HistoryProblem(source, 0, "", f"no such mapping file (shipped mappings: {known})")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError([HistoryProblem(source, 0, "", f"cannot read the mapping: {err}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        raise HistoryError([HistoryProblem(source, line, "", f"invalid YAML: {err.problem or err.context}")]) from None
    except yaml.YAMLError as err:
        raise HistoryError([HistoryProblem(source, 0, "", f"invalid YAML: {err}")]) from None
    return _Reader(source).mapping(node)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[HistoryProblem] = []

    def error(self, node: yaml.Node | None, message: str) -> None:
        line = int(node.start_mark.line) + 1 if node is not None else 0
        self.problems.append(HistoryProblem(self.source, line, "", message))

    def pairs(self, node: yaml.Node | None, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping")
            return []
        out: list[tuple[yaml.Node, yaml.Node]] = []
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or not isinstance(value, yaml.ScalarNode | yaml.MappingNode):
                self.error(key, f"{what}: keys must be names and values plain values")
                continue
            line = int(key.start_mark.line) + 1
            if str(key.value) in seen:  # YAML would keep the last silently
                self.error(key, f"{what}: '{key.value}' is given twice (first at line {seen[str(key.value)]})")
                continue
            seen[str(key.value)] = line
            out.append((key, value))
        return out

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or str(node.value).strip() == "":
            self.error(node, f"{what} must be a plain, non-empty value")
            return None
        return str(node.value).strip()

    def canonical(self, key: yaml.Node, section: str) -> str | None:
        name = str(key.value)
        if name not in COLUMNS_BY_NAME:
            self.error(key, f"{section}: unknown column '{name}' (not in the canonical history schema)")
            return None
        return name

    def mapping(self, node: yaml.Node | None) -> HistoryMapping:
        sections: dict[str, yaml.Node] = {}
        for key, value in self.pairs(node, "the mapping file"):
            if key.value not in _KEYS:
                self.error(key, f"unknown key '{key.value}' (expected one of {', '.join(_KEYS)})")
            else:
                sections[str(key.value)] = value
        if node is not None and "columns" not in sections:
            self.error(node, "'columns' is required: which export column gives each canonical column")
        name = self.scalar(sections["name"], "name") if "name" in sections else None
        columns = self.strings(sections.get("columns"), "columns")
        constants = self.strings(sections.get("constants"), "constants")
        date_formats = self.strings(sections.get("date_formats"), "date_formats")
        pad = self.widths(sections.get("pad"))
        codes = self.code_lists(sections.get("codes"))
        self.check_constants(sections.get("constants"), constants)
        for canonical in sorted(set(columns) & set(constants)):
            self.error(sections["constants"], f"constants: '{canonical}' is also mapped to a column")
        for section, names in (("date_formats", date_formats), ("pad", pad), ("codes", codes)):
            for canonical in sorted(set(names) - set(columns)):
                self.error(sections[section], f"{section}: '{canonical}' is not mapped to a column in 'columns'")
        for canonical in date_formats:
            if COLUMNS_BY_NAME[canonical].kind != "time":
                self.error(sections["date_formats"], f"date_formats: '{canonical}' is not a time column")
        if self.problems:
            raise HistoryError(self.problems)
        return HistoryMapping(
            name=name or Path(self.source).stem,
            columns=columns,
            constants=constants,
            date_formats=date_formats,
            pad=pad,
            codes=codes,
            path=self.source,
        )

    def check_constants(self, node: yaml.Node | None, constants: dict[str, str]) -> None:
        """A constant must be a value of its column's type: a broken one would fail every history row."""
        import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv

        for canonical, value in constants.items():
            _, bad = PARSERS[COLUMNS_BY_NAME[canonical].kind](pd.Series([value]))
            if bad.any():
                self.error(
                    node, f"constants: '{value}' is not {EXPECTED[COLUMNS_BY_NAME[canonical].kind]} ({canonical})"
                )

    def strings(self, node: yaml.Node | None, section: str) -> dict[str, str]:
        if node is None:
            return {}
        out: dict[str, str] = {}
        for key, value in self.pairs(node, section):
            canonical = self.canonical(key, section)
            text = self.scalar(value, f"{section}.{key.value}")
            if canonical is not None and text is not None:
                out[canonical] = text
        return out

    def widths(self, node: yaml.Node | None) -> dict[str, int]:
        out: dict[str, int] = {}
        for canonical, text in self.strings(node, "pad").items():
            if not text.isdigit() or not 1 <= int(text) <= 20:
                self.error(node, f"pad.{canonical} must be a width from 1 to 20, not '{text}'")
            else:
                out[canonical] = int(text)
        return out

    def code_lists(self, node: yaml.Node | None) -> dict[str, dict[str, str]]:
        if node is None:
            return {}
        out: dict[str, dict[str, str]] = {}
        for key, value in self.pairs(node, "codes"):
            canonical = self.canonical(key, "codes")
            codes: dict[str, str] = {}
            for code, target in self.pairs(value, f"codes.{key.value}"):
                text = self.scalar(target, f"codes.{key.value}.{code.value}")
                if text is not None:
                    codes[str(code.value)] = text
            if canonical is not None:
                out[canonical] = codes
        return out
