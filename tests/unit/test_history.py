"""Reading history into the canonical schema: typed columns, derived fields, and refusals that name file and line."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the venv
import pytest

from training.history import HISTORY_COLUMNS, HistoryError, read_histories, read_history
from training.mapping import load_mapping, mapping_path

DATA = Path(__file__).parents[1] / "data" / "history"
# The shared external data sits beside the checkout; RISK_KCS_DIR points elsewhere.
KCS = Path(os.environ.get("RISK_KCS_DIR", Path(__file__).parents[3] / "shared" / "data" / "kcs"))


def write(tmp_path: Path, text: str, name: str = "history.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(err: pytest.ExceptionInfo[HistoryError]) -> list[str]:
    return [str(p) for p in err.value.problems]


def test_a_canonical_file_reads_typed_with_defaults_and_derived_columns() -> None:
    history = read_history(DATA / "canonical_small.csv")

    assert list(history.columns) == [c.name for c in HISTORY_COLUMNS]
    assert history["hs_code"].tolist() == ["847130", "847150", "020130"]  # text keeps leading zeros
    assert history["lodgement_time"].iloc[2] == pd.Timestamp("2026-01-03", tz="UTC")
    assert history["item_count"].tolist() == [2, 2, 1]  # counted per declaration
    assert history["duties_and_taxes"].iloc[0] == pytest.approx(80.04)  # 8 % of the value
    assert math.isnan(history["duties_and_taxes"].iloc[1])  # no rate, no duties
    assert history["inspected"].tolist() == [True, True, False]
    assert history["finding"].tolist() == [False, True, False]
    assert history["random_control"].tolist() == [False, True, False]
    assert history["transport_mode"].tolist() == [0, 0, 0] and history["declaration_type"].tolist() == [1, 1, 1]
    assert math.isnan(history["net_mass_kg"].iloc[2])


def test_missing_required_columns_are_each_named(tmp_path: Path) -> None:
    path = write(tmp_path, "declaration_id,hs_code\nD1,847130\n")
    with pytest.raises(HistoryError) as err:
        read_history(path)
    text = "\n".join(problems(err))
    for column in ("lodgement_time", "origin_country", "customs_value", "inspected"):
        assert f"{path}: column '{column}': required column is missing" in text


def test_wrong_types_are_reported_with_line_and_column(tmp_path: Path) -> None:
    source = (DATA / "canonical_small.csv").read_text(encoding="utf-8")
    path = write(tmp_path, source.replace("1000.5", "ten").replace("IMP-2,0,", "IMP-2,maybe,"))
    with pytest.raises(HistoryError) as err:
        read_history(path)
    assert problems(err) == [
        f"{path}:2: column 'customs_value': 'ten' is not a number",
        f"{path}:4: column 'inspected': 'maybe' is not a flag (1/0, true/false, yes/no)",
    ]


def test_dates_out_of_order_and_unparsable_dates_are_refused(tmp_path: Path) -> None:
    header = "declaration_id,lodgement_time,hs_code,origin_country,customs_value,inspected,finding\n"
    path = write(tmp_path, header + "D1,2026-01-05,847130,CN,1,1,0\nD2,2026-01-04,847130,CN,1,1,0\n")
    with pytest.raises(HistoryError) as err:
        read_history(path)
    assert len(problems(err)) == 1
    assert problems(err)[0].startswith(f"{path}:3: column 'lodgement_time': dates out of order")

    bad = write(tmp_path, header + "D1,05/01/2026,847130,CN,1,1,0\n", "bad.csv")
    with pytest.raises(HistoryError, match=r"bad.csv:2: column 'lodgement_time': '05/01/2026' is not an ISO 8601"):
        read_history(bad)


def test_inconsistent_outcomes_are_refused(tmp_path: Path) -> None:
    header = "declaration_id,lodgement_time,hs_code,origin_country,customs_value,inspected,finding,random_control\n"
    rows = "D1,2026-01-01,847130,CN,1,1,,0\nD2,2026-01-01,847130,CN,1,0,1,0\nD2,2026-01-02,847130,CN,-5,0,0,1\n"
    with pytest.raises(HistoryError) as err:
        read_history(write(tmp_path, header + rows))
    text = "\n".join(problems(err))
    assert ":2: column 'finding': an inspected row needs its finding" in text
    assert ":3: column 'finding': a finding on a row not inspected" in text
    assert ":4: column 'customs_value': must not be negative" in text
    assert ":4: column 'random_control': a random control that was not inspected" in text
    assert ":4: column 'item_number': declaration D2 item 1 appears twice" in text


def test_files_are_read_in_time_order_or_refused(tmp_path: Path) -> None:
    header = "declaration_id,lodgement_time,hs_code,origin_country,customs_value,inspected,finding\n"
    early = write(tmp_path, header + "D1,2026-01-01,847130,CN,1,1,0\n", "early.csv")
    late = write(tmp_path, header + "D2,2026-02-01,847130,CN,1,1,1\n", "late.csv")
    assert read_histories([early, late])["declaration_id"].tolist() == ["D1", "D2"]
    with pytest.raises(HistoryError, match=r"early.csv:2: column 'lodgement_time': starts at .* before .*late.csv"):
        read_histories([late, early])


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    csv = read_history(DATA / "canonical_small.csv")
    raw = pd.read_csv(DATA / "canonical_small.csv", dtype=str, keep_default_na=False)
    raw.to_parquet(tmp_path / "history.parquet")
    pd.testing.assert_frame_equal(read_history(tmp_path / "history.parquet"), csv)


def test_unknown_format_and_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="unknown format"):
        read_history(write(tmp_path, "x", "history.xlsx"))
    with pytest.raises(HistoryError, match="no such file"):
        read_history(tmp_path / "absent.csv")


# -- mappings -----------------------------------------------------------------------------------


def test_mapping_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\ncolumns:\n  declaration_id: ID\n  hs_kode: HS\nconstant:\n  inspected: 1\n"
        "date_formats:\n  customs_value: '%Y'\n",
        "mapping.yaml",
    )
    with pytest.raises(HistoryError) as err:
        load_mapping(path)
    text = "\n".join(problems(err))
    assert f"{path}:4: columns: unknown column 'hs_kode'" in text
    assert f"{path}:5: unknown key 'constant'" in text
    assert f"{path}:8: date_formats: 'customs_value' is not mapped to a column" in text


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "columns:\n  a: [unclosed\n", "mapping.yaml")
    with pytest.raises(HistoryError, match=r"mapping.yaml:\d+: invalid YAML"):
        load_mapping(path)


def test_a_code_the_mapping_does_not_know_names_the_history_line(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "columns:\n  declaration_id: ID\n  lodgement_time: Day\n  hs_code: HS\n  origin_country: Origin\n"
        "  customs_value: Value\n  transport_mode: Mode\nconstants:\n  inspected: 1\n  finding: 0\n"
        "date_formats:\n  lodgement_time: '%d/%m/%Y'\npad:\n  hs_code: 6\ncodes:\n  transport_mode: {'10': 1}\n",
        "mapping.yaml",
    )
    history = write(tmp_path, "ID,Day,HS,Origin,Value,Mode\nA,02/01/2026,20130,AU,5,10\nB,03/01/2026,847130,CN,5,70\n")
    with pytest.raises(HistoryError) as err:
        read_history(history, load_mapping(mapping))
    assert problems(err) == [
        f"{history}:3: column 'Mode': code '70' is not in the mapping's code list for transport_mode "
        f"({mapping}); add it or a 'default'"
    ]
    fixed = write(tmp_path, "ID,Day,HS,Origin,Value,Mode\nA,02/01/2026,20130,AU,5,10\n", "fixed.csv")
    frame = read_history(fixed, load_mapping(mapping))
    assert frame["hs_code"].tolist() == ["020130"]
    assert frame["transport_mode"].tolist() == [1]
    assert frame["lodgement_time"].tolist() == [pd.Timestamp("2026-01-02", tz="UTC")]


@pytest.mark.skipif(not (KCS / "train.csv").is_file(), reason="the shared KCS data is not on this machine")
def test_the_shipped_kcs_mapping_reads_the_kcs_export(tmp_path: Path) -> None:
    head = "".join((KCS / "train.csv").open(encoding="utf-8").readlines()[:300])
    history = read_history(write(tmp_path, head, "kcs_head.csv"), load_mapping(mapping_path("kcs")))

    assert len(history) == 299
    assert history["inspected"].all()
    assert history["hs_code"].str.fullmatch(r"\d{6}").all()
    assert set(history["transport_mode"]) <= {1, 2, 3, 4, 5, 9}
    assert 0.05 < history["finding"].mean() < 0.5
    assert (history["duties_and_taxes"] >= 0).all()


def test_the_documented_schema_is_the_one_in_code() -> None:
    from training.history import schema_markdown

    documented = (Path(__file__).parents[2] / "docs" / "history_schema.md").read_text(encoding="utf-8")
    assert documented == schema_markdown(), "run: .venv/bin/python -m training.history > docs/history_schema.md"


def test_codes_amounts_and_counts_out_of_shape_are_refused(tmp_path: Path) -> None:
    header = (
        "declaration_id,item_number,lodgement_time,hs_code,origin_country,customs_value,inspected,finding,"
        "revenue_recovered\n"
    )
    with pytest.raises(HistoryError, match=r":2: column 'item_number': '1e30' is not a whole number"):
        read_history(write(tmp_path, header + "D2,1e30,2026-01-01,847130,CN,1,1,1,5\n", "big.csv"))
    rows = "D1,1,2026-01-01,8471,CN,1,1,1,5\nD2,1,2026-01-01,847130,China,1,1,1,5\nD3,1,2026-01-01,847130,CN,1,1,1,-5\n"
    with pytest.raises(HistoryError) as err:
        read_history(write(tmp_path, header + rows))
    text = "\n".join(problems(err))
    assert ":2: column 'hs_code': must be 6 to 10 digits" in text
    assert ":3: column 'origin_country': must be an ISO 3166 alpha-2 code" in text
    assert ":4: column 'revenue_recovered': must not be negative" in text


def test_line_numbers_count_the_lines_of_quoted_multi_line_cells(tmp_path: Path) -> None:
    header = "declaration_id,lodgement_time,hs_code,origin_country,customs_value,inspected,finding,importer_id\n"
    rows = 'D1,2026-01-01,847130,CN,1,1,0,"ACME\nTRADING"\nD2,2026-01-02,847130,CN,lots,1,0,X\n'
    with pytest.raises(HistoryError) as err:
        read_history(write(tmp_path, header + rows))
    assert problems(err) == [f"{tmp_path / 'history.csv'}:4: column 'customs_value': 'lots' is not a number"]


def test_parquet_with_typed_columns_and_gaps_reads_like_its_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "declaration_id": ["D1", "D2"],
            "lodgement_time": pd.to_datetime(["2026-01-01", "2026-01-02"], utc=True),
            "hs_code": ["847130", "020130"],
            "origin_country": ["CN", "AU"],
            "customs_value": [1.5, 2.0],
            "inspected": [1.0, 0.0],
            "finding": [1.0, float("nan")],  # how pandas stores a flag with a gap
            "transport_mode": [1.0, float("nan")],
        }
    )
    frame.to_parquet(tmp_path / "typed.parquet")
    history = read_history(tmp_path / "typed.parquet")
    assert history["finding"].tolist() == [True, False]
    assert history["transport_mode"].tolist() == [1, 0]
    assert history["lodgement_time"].tolist() == list(frame["lodgement_time"])


def test_padding_touches_digits_only_and_drops_a_float_tail(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "columns:\n  declaration_id: ID\n  lodgement_time: Day\n  hs_code: HS\n  origin_country: Origin\n"
        "  customs_value: Value\nconstants:\n  inspected: 0\npad:\n  hs_code: 6\n",
        "mapping.yaml",
    )
    history = write(tmp_path, "ID,Day,HS,Origin,Value\nA,2026-01-02,20130.0,AU,5\nB,2026-01-03,AB12,CN,5\n")
    with pytest.raises(HistoryError) as err:
        read_history(history, load_mapping(mapping))
    assert problems(err) == [f"{history}:3: column 'hs_code': must be 6 to 10 digits"]


def test_mapping_keys_given_twice_bad_constants_and_unknown_names_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "columns:\n  declaration_id: ID\n  declaration_id: Other\nconstants:\n  inspected: maybe\n",
        "mapping.yaml",
    )
    with pytest.raises(HistoryError) as err:
        load_mapping(path)
    text = "\n".join(problems(err))
    assert f"{path}:3: columns: 'declaration_id' is given twice (first at line 2)" in text
    assert "constants: 'maybe' is not a flag (1/0, true/false, yes/no) (inspected)" in text
    with pytest.raises(HistoryError, match=r"no such mapping file \(shipped mappings: kcs\)"):
        load_mapping(mapping_path("kcx"))
