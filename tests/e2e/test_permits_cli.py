"""`risk permits import` and `risk permits report` as an agency runs them against a running service."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import RISK, ROOT, run, running_server

DATA = ROOT / "tests" / "data" / "permits"
QUARANTINE_CSV = DATA / "nfqs_quarantine.csv"  # NFQS: two permits, the first with two goods lines
HEALTH_JSONL = DATA / "mfds_health.jsonl"  # MFDS: two permits, a blank line between them
LICENCES_WITH_ERRORS_CSV = DATA / "motie_with_errors.csv"  # MOTIE: two good permits among five bad ones
STRATEGIC_WITH_ERRORS_JSONL = DATA / "yestrade_with_errors.jsonl"  # YESTRADE: two good among three bad
CONFORMITY_STRICT_CSV = DATA / "kats_conformity_strict.csv"  # KATS: the server refuses the third permit
CITES_STRICT_JSONL = DATA / "moe_cites_strict.jsonl"  # MOE: the second line is not JSON
BEEF_DECLARATION = DATA / "declaration_beef.json"  # cites NFQS-2026-000101 and MFDS-2026-000201
SUMMARY = re.compile(r"^(?P<file>.+): (\d+) created, (\d+) amended, (\d+) unchanged, (\d+) skipped$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`risk serve` on SQLite with permit checks on; no model is needed to screen permits."""
    with running_server(tmp_path_factory.mktemp("risk-permits")) as address:
        yield address


@pytest.fixture(scope="module")
def fed(server: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """The NFQS and MFDS files imported once, and a beef declaration citing both permits scored."""
    imports = {
        path.name: run("permits", "import", str(path), "--address", server) for path in (QUARANTINE_CSV, HEALTH_JSONL)
    }
    scored = run("score", str(BEEF_DECLARATION), "--address", server)
    assert scored.returncode == 0, scored.stderr
    return imports


def summary(result: subprocess.CompletedProcess[str]) -> tuple[int, int, int, int]:
    """(created, amended, unchanged, skipped) from the one line import prints on stdout."""
    match = SUMMARY.match(result.stdout.strip())
    assert match, f"stdout is not one summary line: {result.stdout!r}"
    created, amended, unchanged, skipped = (int(n) for n in match.groups()[1:])
    return created, amended, unchanged, skipped


def error_lines(result: subprocess.CompletedProcess[str], path: Path) -> list[int]:
    """Line numbers of the `FILE:LINE: message` reports on stderr (indented field details are not counted)."""
    found = re.findall(rf"^{re.escape(str(path))}:(\d+): ", result.stderr, flags=re.MULTILINE)
    return sorted(int(n) for n in found)


def report(server: str, agency: str, fmt: str = "table") -> subprocess.CompletedProcess[str]:
    result = run("permits", "report", "--agency", agency, "--format", fmt, "--address", server)
    assert result.returncode == 0, result.stderr
    return result


def csv_report(server: str, agency: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(report(server, agency, "csv").stdout)))


def reported_permits(server: str, agency: str) -> set[str]:
    return {row["permit_id"] for row in csv_report(server, agency)}


# -- import ----------------------------------------------------------------------------------------


def test_a_csv_and_a_json_lines_file_import_cleanly(fed: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for name, result in fed.items():
        assert result.returncode == 0, result.stderr
        assert summary(result) == (2, 0, 0, 0), name
        assert "Traceback" not in result.stderr


def test_consecutive_csv_rows_make_one_permit_with_each_goods_line(fed: object, server: str) -> None:
    rows = [(r["permit_id"], r["line"], r["unit"], r["authorised"]) for r in csv_report(server, "NFQS")]
    assert rows == [
        ("NFQS-2026-000101", "1", "KGM", "24000"),
        ("NFQS-2026-000101", "2", "TNE", "40"),
        ("NFQS-2026-000102", "1", "KGM", "18000"),
    ]
    assert reported_permits(server, "MFDS") == {"MFDS-2026-000201", "MFDS-2026-000202"}


def test_importing_the_same_files_again_changes_nothing(fed: object, server: str) -> None:
    for path in (QUARANTINE_CSV, HEALTH_JSONL):
        again = run("permits", "import", str(path), "--address", server)
        assert again.returncode == 0, again.stderr
        assert summary(again) == (0, 0, 2, 0)


def test_a_changed_row_amends_its_permit_and_leaves_the_others_alone(server: str, tmp_path: Path) -> None:
    # The same certificates as issued by the plant and animal quarantine agency (APQA), fed twice.
    first, second = tmp_path / "apqa.csv", tmp_path / "apqa_extended.csv"
    first.write_text(QUARANTINE_CSV.read_text().replace("NFQS", "APQA"))
    assert summary(run("permits", "import", str(first), "--address", server)) == (2, 0, 0, 0)
    # The agency extends the citrus certificate by a month; the beef certificate is fed unchanged.
    second.write_text(first.read_text().replace("2026-03-01,2026-12-31", "2026-03-01,2027-01-31"))
    result = run("permits", "import", str(second), "--address", server)
    assert result.returncode == 0, result.stderr
    assert summary(result) == (0, 1, 1, 0)
    usages = [json.loads(line) for line in report(server, "APQA", "json").stdout.splitlines()]
    permits = {u["permit"]["permit"]["permit_id"]: u["permit"]["permit"] for u in usages}
    assert permits["APQA-2026-000102"]["version"] == 2
    assert permits["APQA-2026-000102"]["valid_to_time"] == "2027-02-01T00:00:00Z"
    assert permits["APQA-2026-000101"]["version"] == 1


def test_bad_csv_lines_are_reported_by_line_and_skipped(server: str) -> None:
    result = run("permits", "import", str(LICENCES_WITH_ERRORS_CSV), "--address", server)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # 4: an unknown type, in a row whose quoted description runs on to line 5; 7: the second goods line of
    # MOTIE-2026-000303 has too few columns; 8: valid_to before valid_from and 9: an unknown unit, both
    # refused by the server; 12: the first goods line of MOTIE-2026-000307 has a quantity that is no number.
    assert error_lines(result, LICENCES_WITH_ERRORS_CSV) == [4, 7, 8, 9, 12]
    stderr = result.stderr
    assert f"{LICENCES_WITH_ERRORS_CSV}:4: type 'IMPORT_LICENSE' is not a permit type" in stderr
    assert f"{LICENCES_WITH_ERRORS_CSV}:7: expected 16 columns, found 13" in stderr
    assert f"{LICENCES_WITH_ERRORS_CSV}:8: " in stderr and "permit.valid_to_time" in stderr
    assert f"{LICENCES_WITH_ERRORS_CSV}:9: " in stderr and "permit.goods_lines[0].unit" in stderr and "'BAG'" in stderr
    assert f"{LICENCES_WITH_ERRORS_CSV}:12: authorised_quantity '1 200' is not a number" in stderr
    assert summary(result) == (2, 0, 0, 5)
    # A permit with a bad goods line is skipped whole, never stored without that line.
    rows = {(r["permit_id"], r["line"]) for r in csv_report(server, "MOTIE")}
    assert rows == {("MOTIE-2026-000301", "1"), ("MOTIE-2026-000306", "1"), ("MOTIE-2026-000306", "2")}
    usages = [json.loads(line) for line in report(server, "MOTIE", "json").stdout.splitlines()]
    laptops = usages[0]["permit"]["permit"]["goods_lines"][0]
    assert laptops["description"] == "Portable computers\n(laptops, notebooks)"


def test_bad_json_lines_are_reported_by_line_and_skipped(server: str) -> None:
    result = run("permits", "import", str(STRATEGIC_WITH_ERRORS_JSONL), "--address", server)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # 2: broken JSON; 3 is blank; 4: an unknown permit type; 5: a negative quantity the server refuses.
    assert error_lines(result, STRATEGIC_WITH_ERRORS_JSONL) == [2, 4, 5]
    assert f"{STRATEGIC_WITH_ERRORS_JSONL}:2: not a risk.v1.Permit" in result.stderr
    assert "PERMIT_TYPE_DUAL_USE" in result.stderr
    assert "permit.goods_lines[0].authorised_quantity: must not be negative" in result.stderr
    assert summary(result) == (2, 0, 0, 3)
    assert reported_permits(server, "YESTRADE") == {"YT-2026-000401", "YT-2026-000405"}


def test_strict_import_stores_nothing_when_the_server_refuses_a_permit(server: str) -> None:
    strict = run("permits", "import", str(CONFORMITY_STRICT_CSV), "--strict", "--address", server)
    assert strict.returncode == 1
    assert error_lines(strict, CONFORMITY_STRICT_CSV) == [4]
    assert "refused in strict mode" in strict.stderr and "nothing was stored" in strict.stderr
    assert strict.stdout == ""
    assert reported_permits(server, "KATS") == set()

    lenient = run("permits", "import", str(CONFORMITY_STRICT_CSV), "--address", server)
    assert lenient.returncode == 1
    assert summary(lenient) == (2, 0, 0, 1)
    assert reported_permits(server, "KATS") == {"KATS-2026-000501", "KATS-2026-000502"}


def test_strict_import_sends_nothing_when_a_line_cannot_be_read(server: str) -> None:
    strict = run("permits", "import", str(CITES_STRICT_JSONL), "--strict", "--address", server)
    assert strict.returncode == 1
    assert error_lines(strict, CITES_STRICT_JSONL) == [2]
    assert "nothing was sent" in strict.stderr
    assert reported_permits(server, "MOE") == set()

    lenient = run("permits", "import", str(CITES_STRICT_JSONL), "--address", server)
    assert lenient.returncode == 1
    assert summary(lenient) == (2, 0, 0, 1)
    assert reported_permits(server, "MOE") == {"MOE-2026-000601", "MOE-2026-000603"}


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing.csv", None, "cannot read: No such file or directory"),
        ("empty.csv", "", "the file is empty"),
        ("empty.jsonl", "\n\n", "the file is empty"),
        ("header_only.csv", QUARANTINE_CSV.read_text().splitlines()[0] + "\n", "no permits"),
        ("no_header.csv", QUARANTINE_CSV.read_text().splitlines()[1] + "\n", "CSV header lacks permit_id"),
        ("cp949_header.csv", "허가번호,기관\n".encode("cp949"), "not UTF-8"),
    ],
)
def test_an_unusable_file_gets_one_line_naming_it(
    tmp_path: Path, name: str, content: str | bytes | None, says: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    # Nothing is sent, so no server is needed.
    result = run("permits", "import", str(path), "--address", "127.0.0.1:1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{path}: ") and says in result.stderr


def test_a_line_that_is_not_utf8_is_reported_and_skipped(server: str, tmp_path: Path) -> None:
    path = tmp_path / "mfds_mixed_encoding.jsonl"
    # The health certificates as the food safety institute (NIFDS) would issue them.
    good, bad = HEALTH_JSONL.read_text().replace("MFDS", "NIFDS").split("\n\n")
    # An agency system that wrote one record in the legacy Korean code page (CP949).
    path.write_bytes(good.encode() + b"\n" + bad.replace("Infant formula", "조제분유").encode("cp949") + b"\n")
    result = run("permits", "import", str(path), "--address", server)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{path}:2: not UTF-8 text")
    assert summary(result) == (1, 0, 0, 1)
    assert reported_permits(server, "NIFDS") == {"NIFDS-2026-000201"}


def test_piped_output_stays_parseable_while_the_progress_bar_draws(fed: object, server: str, tmp_path: Path) -> None:
    path = tmp_path / "nfqs_copy.csv"
    shutil.copy(QUARANTINE_CSV, path)
    # stderr on a terminal, so the progress bar draws; stdout piped, as into another program.
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, which tqdm would fill with nothing.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(
            [RISK, "permits", "import", str(path), "--address", server],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        terminal = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal side is closed and everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 0
    assert f"importing {path.name}" in drawn.decode(errors="replace"), "the progress bar drew on the terminal"
    assert proc.stdout.count("\n") == 1
    assert SUMMARY.match(proc.stdout.strip())


# -- report ----------------------------------------------------------------------------------------


def test_report_table_lists_authorised_drawn_remaining_and_the_declarations(fed: object, server: str) -> None:
    lines = report(server, "NFQS").stdout.splitlines()
    assert lines[0] == "permits of NFQS: 2"
    assert lines[1].split() == [
        "permit_id", "status", "holder_id", "line", "unit", "authorised", "drawn", "remaining",
        "authorised_value", "drawn_value", "remaining_value", "declarations",
    ]  # fmt: skip
    rows = [line.split() for line in lines[2:]]
    # 12,000 kg of chilled beef from line 1 (kilograms); 8,000 kg of frozen beef from line 2, in tonnes.
    assert rows[0][:8] == ["NFQS-2026-000101", "ACTIVE", "IMP-0001", "1", "KGM", "24000", "12000", "12000"]
    assert rows[0][-1] == "26020-IM-0000417/v1"
    assert rows[1][:8] == ["NFQS-2026-000101", "ACTIVE", "IMP-0001", "2", "TNE", "40", "8", "32"]
    assert rows[1][-1] == "26020-IM-0000417/v1"
    assert rows[2][0] == "NFQS-2026-000102" and rows[2][6:8] == ["0", "18000"] and rows[2][-1] == "-"


def test_report_csv_parses_with_one_row_per_goods_line(fed: object, server: str) -> None:
    rows = csv_report(server, "MFDS")
    assert [(r["permit_id"], r["line"]) for r in rows] == [("MFDS-2026-000201", "1"), ("MFDS-2026-000202", "1")]
    beef, formula = rows
    # Both beef items draw from the one MFDS line for chapter 02: 12,000 + 8,000 kg.
    assert (beef["authorised"], beef["drawn"], beef["remaining"]) == ("50000", "20000", "30000")
    assert beef["drawn_value"] == "195200000" and beef["declarations"] == "26020-IM-0000417/v1"
    assert (formula["authorised"], formula["drawn"], formula["remaining"]) == ("3000", "0", "3000")
    assert (formula["authorised_value"], formula["remaining_value"], formula["declarations"]) == (
        "45000000",
        "45000000",
        "-",
    )


def test_report_json_has_one_permit_per_line_with_balances_and_draws(fed: object, server: str) -> None:
    usages = [json.loads(line) for line in report(server, "NFQS", "json").stdout.splitlines()]
    assert [u["permit"]["permit"]["permit_id"] for u in usages] == ["NFQS-2026-000101", "NFQS-2026-000102"]
    beef, citrus = usages
    balances = {b["line_number"]: b for b in beef["permit"]["balances"]}
    assert (balances[1]["authorised_quantity"], balances[1]["drawn_quantity"], balances[1]["remaining_quantity"]) == (
        24000,
        12000,
        12000,
    )
    assert (balances[2]["authorised_quantity"], balances[2]["drawn_quantity"], balances[2]["remaining_quantity"]) == (
        40,
        8,
        32,
    )
    draws = sorted(
        (d["declaration_id"], d["declaration_version"], d["line_number"], d["quantity"]) for d in beef["draws"]
    )
    assert draws == [("26020-IM-0000417", 1, 1, 12000), ("26020-IM-0000417", 1, 2, 8)]
    # Nothing drawn is said, not left out.
    (untouched,) = citrus["permit"]["balances"]
    assert untouched["drawn_quantity"] == 0 and untouched["remaining_quantity"] == 18000
    assert citrus["draws"] == []


def test_scoring_the_declaration_again_does_not_draw_twice(fed: object, server: str) -> None:
    again = run("score", str(BEEF_DECLARATION), "--address", server)
    assert again.returncode == 0, again.stderr
    beef = csv_report(server, "MFDS")[0]
    assert (beef["drawn"], beef["remaining"]) == ("20000", "30000")


def test_report_of_an_agency_without_permits_is_empty(server: str) -> None:
    assert report(server, "NSSC").stdout.splitlines()[0] == "permits of NSSC: 0"
    assert csv_report(server, "NSSC") == []
    assert report(server, "NSSC", "json").stdout == ""


def test_report_without_a_server_says_so_on_one_line(tmp_path: Path) -> None:
    result = run("permits", "report", "--agency", "NFQS", "--address", "127.0.0.1:1", "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("risk: UNAVAILABLE") and "Traceback" not in result.stderr


def test_valid_to_9999_12_31_means_no_expiry(tmp_path: Path) -> None:
    """Agencies write the last day of the calendar for "does not expire"; its day ends at the last instant."""
    from risk_service.permit_feed import read_feed

    feed = tmp_path / "no_expiry.csv"
    header = QUARANTINE_CSV.read_text(encoding="utf-8").splitlines()[0]
    feed.write_text(
        header + "\nNFQS-2026-999001,NFQS,QUARANTINE_CERTIFICATE,IMP-0001,2026-01-01,9999-12-31,,,,false,1,0202,"
        "Frozen beef,KGM,1000,\n",
        encoding="utf-8",
    )
    (entry,) = read_feed(feed)
    assert entry.error == "" and entry.permit is not None
    assert entry.permit.valid_to_time.ToJsonString() == "9999-12-31T23:59:59.999999Z"
