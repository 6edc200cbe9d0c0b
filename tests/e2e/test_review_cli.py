"""`risk review` and `risk rules stats` as officers and analysts run them against a running service."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, run, running_server

DATA = ROOT / "tests" / "data"
FLAGGED = DATA / "review" / "declaration_flagged.json"  # RED under the default rules: two goods items
MANIFEST = DATA / "cargo_report_manifest.json"  # the cargo report DEMO-2026-000042 disagrees with
MASS_MISMATCH = DATA / "declaration_mass_mismatch.json"  # DEMO-2026-000042: YELLOW, gross mass 40% off
BEEF = DATA / "permits" / "declaration_beef.json"  # cites permits the registry does not know

LIFECYCLE_CASE = "REVIEW-2026-000100"
LIFECYCLE_DAY = "2026-10-05"  # the only declaration lodged that day: rule stats count it alone


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`risk serve --demo`: the model scores too, so cases carry explanations."""
    with running_server(tmp_path_factory.mktemp("risk-review"), "--demo") as address:
        yield address


def risk(server: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(*args, "--address", server, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def flag(server: str, folder: Path, declaration_id: str, **changes: str) -> dict[str, object]:
    """Scores a copy of the flagged declaration under a new id (and lodgement time or importer): a case opens."""
    document = json.loads(FLAGGED.read_text())
    document["declarationId"] = declaration_id
    document["lodgementTime"] = changes.get("lodged", document["lodgementTime"])
    document["importer"]["id"] = changes.get("importer", f"IMP-{declaration_id}")
    path = folder / f"{declaration_id}.json"
    path.write_text(json.dumps(document))
    assessment: dict[str, object] = json.loads(ok(run("score", str(path), "--address", server)))["assessment"]
    assert assessment["channel"] != "CHANNEL_GREEN", "the test declaration must open a case"
    return assessment


def listed(server: str, *args: str) -> dict[str, dict[str, str]]:
    """`risk review list --format csv` rows by case id."""
    rows = csv.DictReader(io.StringIO(ok(risk(server, "review", "list", "--format", "csv", *args))))
    return {row["case_id"]: row for row in rows}


def section(report: str, title: str) -> str:
    """One section of `risk review show`: its title line and the indented lines under it."""
    for block in report.split("\n\n"):
        if block.startswith(title):
            return block
    raise AssertionError(f"no section {title!r} in:\n{report}")


def refused(result: subprocess.CompletedProcess[str], code: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith(f"risk: {code}: "), result.stderr
    return result.stderr


# -- list ------------------------------------------------------------------------------------------


def test_a_flagged_declaration_is_listed_as_an_open_case(server: str, tmp_path: Path) -> None:
    assessment = flag(server, tmp_path, "REVIEW-2026-000001")
    row = listed(server)["REVIEW-2026-000001"]
    assert row["status"] == "OPEN" and row["version"] == "1" and row["officer"] == "-" and row["outcome"] == "-"
    assert row["channel"] == str(assessment["channel"]).removeprefix("CHANNEL_")
    assert float(row["risk_score"]) == pytest.approx(assessment["riskScore"])
    assert float(row["revenue_at_stake"]) == 156_000 + 39_000  # B00 of both goods items
    assert (row["office"], row["importer"]) == ("020", "IMP-REVIEW-2026-000001")

    table = ok(risk(server, "review", "list"))
    header, *lines = table.splitlines()[1:]
    assert header.split() == [
        "case_id", "status", "version", "channel", "risk_score", "revenue_at_stake", "office", "importer", "officer",
        "opened", "outcome",
    ]  # fmt: skip
    line = next(line for line in lines if line.startswith("REVIEW-2026-000001 "))
    score = f"{float(row['risk_score']):.3f}"
    assert line.split()[:7] == ["REVIEW-2026-000001", "OPEN", "1", row["channel"], score, "195,000", "020"]
    assert line.index("OPEN") == header.index("status"), "the columns line up"

    # every filter passes it through, or leaves it out
    assert "REVIEW-2026-000001" in listed(server, "--channel", row["channel"].lower(), "--status", "open")
    assert "REVIEW-2026-000001" in listed(server, "--office", "020", "--min-score", "0.1")
    assert "REVIEW-2026-000001" not in listed(server, "--status", "open", "--min-score", "0.99")
    assert "REVIEW-2026-000001" not in listed(server, "--status", "open", "--until", "2000-01-01")


def test_a_list_stops_at_the_limit_and_says_more_match(server: str, tmp_path: Path) -> None:
    for n in (2, 3):
        flag(server, tmp_path, f"REVIEW-2026-00000{n}")
    result = risk(server, "review", "list", "--limit", "2", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(ok(result))))) == 2
    assert "showing the first 2 cases; more match (raise --limit)" in result.stderr
    lines = [json.loads(line) for line in ok(risk(server, "review", "list", "--format", "json")).splitlines()]
    scores = [case["risk_score"] for case in lines]
    assert len(lines) >= 3 and scores == sorted(scores, reverse=True), "riskiest first"


def test_a_list_matching_nothing_is_empty_not_an_error(server: str, tmp_path: Path) -> None:
    flag(server, tmp_path, "REVIEW-2026-000004")
    result = risk(server, "review", "list", "--office", "999")
    # The first ListCases read page[-1] of an empty page for the next token and answered INTERNAL.
    assert result.returncode == 0, f"ListCases with no match must return an empty page: {result.stderr}"
    assert result.stdout.splitlines()[0] == "cases: 0"


# -- show ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mass_mismatch(server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """DEMO-2026-000042 scored after its cargo report, with an earlier filing of the same importer."""
    ok(run("score", str(MANIFEST), "--address", server))
    flag(
        server,
        tmp_path_factory.mktemp("prior"),
        "REVIEW-2026-000042",
        lodged="2026-11-02T08:00:00Z",
        importer="IMP-4521",
    )
    ok(run("score", str(MASS_MISMATCH), "--address", server))
    return "DEMO-2026-000042"


def test_show_prints_every_section_of_the_case(server: str, mass_mismatch: str) -> None:
    report = ok(risk(server, "review", "show", mass_mismatch))
    header = section(report, f"case {mass_mismatch}: OPEN, version 1")
    assert "channel YELLOW" in header and "revenue at stake 13,440,000" in header and "officer -" in header

    declaration = section(report, f"declaration {mass_mismatch} version 1 (newest of 1): IMPORT")
    assert "importer IMP-4521 Busan Electronics Co." in declaration
    item = next(line.split() for line in declaration.splitlines() if line.strip().startswith("1 "))
    assert item[:2] == ["1", "8471300000"] and "134,400,000" in item and "13,440,000" in item

    assessments = section(report, "assessments (1, oldest first)")
    assert "YELLOW" in assessments and "declaration-risk v1" in assessments
    assert "1,450 kg declared, 2,400 kg on the cargo report" in assessments

    consistency = section(report, "consistency findings")
    assert "CONSISTENCY_GROSS_MASS [at least YELLOW]: Gross mass 1,450 kg declared, 2,400 kg" in consistency
    cargo = section(report, "linked cargo reports")
    assert "CR-DEMO-0002 v1 PRE_ARRIVAL: MAEU2026PUS0042 CNSHA -> KRPUS" in cargo
    assert "container MAEU7654320: 2,400 kg" in cargo
    assert section(report, "permit checks").splitlines()[1:] == ["  none"]
    assert section(report, "permit draws").splitlines()[1:] == ["  none"]

    why = section(report, "why the model flagged it").splitlines()[1:]
    assert why and all(line.startswith("  item 1 (") for line in why)
    assert any(line.endswith("(raised the risk)") for line in why), why

    importer = section(report, "importer IMP-4521")
    assert "other filings: 1," in importer and "REVIEW-2026-000042" in importer, "the earlier filing is in the history"
    assert section(report, "events").splitlines()[1:] == ["  none"]


def test_show_lists_the_permit_checks(server: str) -> None:
    ok(run("score", str(BEEF), "--address", server))
    declaration_id = json.loads(BEEF.read_text())["declarationId"]
    checks = section(ok(risk(server, "review", "show", declaration_id)), "permit checks").splitlines()[1:]
    assert checks and all(line.startswith("  PERMIT_") for line in checks), checks
    assert any("is not in the permit registry" in line for line in checks)


def test_show_as_json_is_the_case_detail(server: str, mass_mismatch: str) -> None:
    detail = json.loads(ok(risk(server, "review", "show", mass_mismatch, "--format", "json")))
    assert detail["case"]["case_id"] == mass_mismatch and detail["case"]["status"] == "CASE_STATUS_OPEN"
    assert [v["declaration_id"] for v in detail["declaration_versions"]] == [mass_mismatch]
    assert detail["cargo_reports"][0]["report"]["report_id"] == "CR-DEMO-0002"
    assert detail["explanations"] and detail["importer_history"]["importer_id"] == "IMP-4521"


def test_an_unknown_case_is_not_found(server: str) -> None:
    assert "no case NO-SUCH-CASE" in refused(risk(server, "review", "show", "NO-SUCH-CASE"), "NOT_FOUND")
    claim = risk(server, "review", "claim", "NO-SUCH-CASE", "--officer", "alice")
    assert "no case NO-SUCH-CASE" in refused(claim, "NOT_FOUND")


# -- officers' actions -----------------------------------------------------------------------------


def test_a_case_held_by_one_officer_cannot_be_claimed_by_another(server: str, tmp_path: Path) -> None:
    flag(server, tmp_path, "REVIEW-2026-000010")
    # the officer comes from $RISK_OFFICER when --officer is not given
    carol = {**os.environ, "RISK_OFFICER": "carol"}
    claimed = ok(risk(server, "review", "claim", "REVIEW-2026-000010", env=carol))
    assert claimed == "case REVIEW-2026-000010 claimed by carol (version 2)\n"

    second = risk(server, "review", "claim", "REVIEW-2026-000010", "--officer", "dave")
    assert "case REVIEW-2026-000010 is already held by carol" in refused(second, "FAILED_PRECONDITION")
    release = risk(server, "review", "release", "REVIEW-2026-000010", "--officer", "dave")
    assert "held by carol, not by dave" in refused(release, "FAILED_PRECONDITION")

    mine = ok(risk(server, "review", "list", "--mine", "--format", "csv", env=carol))
    assert [row["case_id"] for row in csv.DictReader(io.StringIO(mine))] == ["REVIEW-2026-000010"]
    assert "REVIEW-2026-000010" not in listed(server, "--officer", "dave")
    assert listed(server, "--officer", "carol")["REVIEW-2026-000010"]["status"] == "CLAIMED"


def test_a_stale_version_is_refused_with_a_hint_to_reload(server: str, tmp_path: Path) -> None:
    flag(server, tmp_path, "REVIEW-2026-000011")
    assert ok(risk(server, "review", "claim", "REVIEW-2026-000011", "--version", "1", "--officer", "alice")).endswith(
        "(version 2)\n"
    )
    # alice read version 1 earlier; the case has moved on since
    stale = risk(server, "review", "release", "REVIEW-2026-000011", "--version", "1", "--officer", "alice")
    message = refused(stale, "ABORTED")
    assert "version 2" in message
    assert "reload it with `risk review show REVIEW-2026-000011`" in message
    released = ok(risk(server, "review", "release", "REVIEW-2026-000011", "--version", "2", "--officer", "alice"))
    assert released == "case REVIEW-2026-000011 released to the queue (version 3)\n"


def test_an_unknown_finding_code_is_named_with_its_field(server: str, tmp_path: Path) -> None:
    flag(server, tmp_path, "REVIEW-2026-000012")
    ok(risk(server, "review", "claim", "REVIEW-2026-000012", "--officer", "alice"))
    result = risk(
        server, "review", "result", "REVIEW-2026-000012", "--officer", "alice",
        "--outcome", "discrepancy", "--finding", "UNDERVALUATION", "--finding", "SMUGGLED_UNICORNS", "--item", "7",
    )  # fmt: skip
    message = refused(result, "INVALID_ARGUMENT")
    assert "\n  result.finding_codes[1]: 'SMUGGLED_UNICORNS' is not a configured finding code" in message
    assert "\n  result.item_numbers[0]: the declaration has no goods item 7" in message
    assert "result.finding_codes[0]" not in message
    assert listed(server)["REVIEW-2026-000012"]["version"] == "2", "nothing was recorded"


def test_closing_without_a_result_is_refused(server: str, tmp_path: Path) -> None:
    flag(server, tmp_path, "REVIEW-2026-000013")
    ok(risk(server, "review", "claim", "REVIEW-2026-000013", "--officer", "alice"))
    closing = risk(server, "review", "close", "REVIEW-2026-000013", "--officer", "alice")
    assert "has no inspection result" in refused(closing, "FAILED_PRECONDITION")


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("12,5", "'12,5' is not an amount"),
        ("-3", "'-3' is not a finite amount of zero or more"),
        ("nan", "'nan' is not a finite amount of zero or more"),
        ("0.0000000001", "'0.0000000001' has more than 9 decimal places"),
    ],
)
def test_a_bad_revenue_amount_is_refused_naming_the_option(amount: str, why: str) -> None:
    result = run(
        "review", "result", "ANY-CASE", "--outcome", "discrepancy", "--finding", "UNDERVALUATION",
        "--revenue", amount, "--address", "127.0.0.1:1",
    )  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert f"argument --revenue: {why}" in result.stderr


# -- a case from claim to close, and what rule statistics make of it -------------------------------------------


@pytest.fixture(scope="module")
def lifecycle(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A case claimed, given a result, overridden and closed, each step taking the version the previous printed."""
    assessment = flag(server, tmp_path_factory.mktemp("lifecycle"), LIFECYCLE_CASE, lodged=f"{LIFECYCLE_DAY}T09:30:00Z")
    case = ("review", "{action}", LIFECYCLE_CASE, "--officer", "erin")
    result = (
        "--outcome", "discrepancy", "--finding", "UNDERVALUATION", "--finding", "ORIGIN_MISDECLARED",
        "--revenue", "1234567.89", "--item", "2", "--notes", "invoice for item 2 was a tenth of the price list",
    )  # fmt: skip
    override = ("--channel", "YELLOW", "--reason", "DOCUMENTS_VERIFIED", "--text", "origin certificate checked with VN")

    def step(action: str, *more: str) -> str:
        return ok(risk(server, *(a.format(action=action) for a in case), *more))

    steps = {
        "claim": step("claim", "--version", "1"),
        "result": step("result", "--version", "2", *result),
        "override": step("override", "--version", "3", *override),
        "close": step("close"),  # no --version: the version read just before
    }
    return {"assessment": assessment, "steps": steps}


def test_each_step_says_what_happened_with_the_new_version(lifecycle: dict[str, object]) -> None:
    steps = lifecycle["steps"]
    assert isinstance(steps, dict)
    assert steps == {
        "claim": f"case {LIFECYCLE_CASE} claimed by erin (version 2)\n",
        "result": f"case {LIFECYCLE_CASE}: result DISCREPANCY (UNDERVALUATION, ORIGIN_MISDECLARED), items 2, "
        "revenue recovered 1,234,567.89 KRW, recorded by erin (version 3)\n",
        "override": f"case {LIFECYCLE_CASE}: channel RED overridden to YELLOW (DOCUMENTS_VERIFIED) by erin "
        "(version 4)\n",
        "close": f"case {LIFECYCLE_CASE} closed by erin (version 5)\n",
    }


def test_a_closed_case_is_listed_by_status_with_its_outcome(server: str, lifecycle: dict[str, object]) -> None:
    closed = listed(server, "--status", "closed")
    assert set(closed) == {LIFECYCLE_CASE}
    row = closed[LIFECYCLE_CASE]
    assert (row["status"], row["version"], row["officer"]) == ("CLOSED", "5", "erin")
    assert row["outcome"] == "DISCREPANCY UNDERVALUATION/ORIGIN_MISDECLARED; -> YELLOW (DOCUMENTS_VERIFIED)"
    assert LIFECYCLE_CASE not in listed(server, "--status", "open", "--status", "claimed")


def test_a_closed_case_shows_its_result_exactly_and_every_event(server: str, lifecycle: dict[str, object]) -> None:
    report = ok(risk(server, "review", "show", LIFECYCLE_CASE))
    header = section(report, f"case {LIFECYCLE_CASE}: CLOSED, version 5")
    assert "result: DISCREPANCY (UNDERVALUATION, ORIGIN_MISDECLARED), items 2, revenue recovered 1,234,567.89 KRW" in (
        header
    )
    assert "notes: invoice for item 2 was a tenth of the price list" in header
    assert "override: RED -> YELLOW (DOCUMENTS_VERIFIED) by erin" in header
    assert header.endswith(": origin certificate checked with VN")
    events = [(line.split()[0], line.split()[3]) for line in section(report, "events").splitlines()[1:]]
    assert events == [
        ("v2", "CLAIMED"), ("v3", "RESULT_RECORDED"), ("v4", "CHANNEL_OVERRIDDEN"), ("v5", "CLOSED")
    ]  # fmt: skip
    money = json.loads(ok(risk(server, "review", "show", LIFECYCLE_CASE, "--format", "json")))["case"]["result"][
        "revenue_recovered"
    ]
    assert money == {"currency_code": "KRW", "units": "1234567", "nanos": 890000000}


def test_rule_stats_count_the_inspected_case_under_each_rule_that_flagged_it(
    server: str, lifecycle: dict[str, object]
) -> None:
    assessment = lifecycle["assessment"]
    assert isinstance(assessment, dict)
    flagged_by = {hit["ruleId"] for hit in assessment["ruleHits"]}
    until = "2026-10-06"
    table = ok(run("rules", "stats", "--from", LIFECYCLE_DAY, "--until", until, "--address", server))
    summary, header, *lines = table.splitlines()
    assert summary == f"declarations lodged {LIFECYCLE_DAY} to {until} (exclusive): 1, inspected 1; " + (
        f"{len(flagged_by)} rules hit"
    )
    assert header.split() == ["rule_id", "hits", "inspected", "findings", "finding_rate", "revenue_per_inspection"]
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert set(rows) == flagged_by
    for rule_id in flagged_by:
        assert rows[rule_id] == ["1", "1", "1", "100.0%", "1,234,567.89", "KRW"], rule_id

    as_csv = ok(
        run("rules", "stats", "--from", LIFECYCLE_DAY, "--until", until, "--format", "csv", "--address", server)
    )
    first = next(csv.DictReader(io.StringIO(as_csv)))
    assert first["inspected"] == "1" and float(first["finding_rate"]) == 1.0 and first["currency"] == "KRW"
    assert float(first["revenue_per_inspection"]) == 1234567.89


def test_rule_stats_need_a_period_that_ends_after_it_starts(server: str) -> None:
    result = run("rules", "stats", "--from", "2026-10-06", "--until", "2026-10-05", "--address", server)
    assert "until: must be after since" in refused(result, "INVALID_ARGUMENT")
