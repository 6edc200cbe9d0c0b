"""Cross-document consistency: what a declaration and the cargo report of the same consignment disagree on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from risk_service.domain.assessment import Channel
from risk_service.domain.cargo.model import CargoReport
from risk_service.domain.consistency import (
    CONSIGNEE,
    CONTAINER_NOT_DECLARED,
    CONTAINER_NOT_REPORTED,
    GROSS_MASS,
    HS_HEADING,
    PACKAGES,
    ConsistencyConfig,
    compare,
    declaration_hits,
    declaration_link_keys,
    linked,
    links,
    master_house_mismatches,
    report_hits,
    report_link_keys,
)
from risk_service.domain.cross_check import CrossCheck
from risk_service.domain.declaration import Declaration, Party
from tests.builders import declaration, item
from tests.cargo_builders import CONTAINER_NUMBERS, cargo_item, cargo_report, container

CONFIG = ConsistencyConfig()
BILL = "OCLU2026SHA0001"


def consignment() -> tuple[Declaration, CargoReport]:
    """A declaration and its manifest that agree: one bill, one container, 40 cartons of laptops, 500 kg."""
    report = cargo_report(
        master_transport_document_number=BILL,
        consignee=Party("IMP-1"),
        containers=(container(items=(cargo_item(hs_code="847130", packages=40, gross_mass_kg=500.0),)),),
    )
    filed = declaration(
        transport_document_number=BILL,
        container_numbers=(CONTAINER_NUMBERS[0],),
        importer=Party("IMP-1"),
        items=(item(hs_code="8471300000", gross_mass_kg=500.0, net_mass_kg=450.0, packages=40),),
    )
    return filed, report


def reasons(d: Declaration, r: CargoReport, config: ConsistencyConfig = CONFIG) -> dict[str, str]:
    return {m.reason: m.message for m in compare(d, r, config)}


def test_documents_that_agree_have_no_mismatch_and_are_linked_both_ways() -> None:
    d, r = consignment()
    assert links(d, r) and compare(d, r, CONFIG) == []
    assert ("document", BILL) in declaration_link_keys(d) & report_link_keys(r)


def test_unlinked_documents_are_not_compared() -> None:
    d, r = consignment()
    other = replace(d, transport_document_number="OTHER-BILL", container_numbers=("MSCU1234566",))
    assert not links(other, r) and compare(replace(other, importer=Party("X")), r, CONFIG) == []


def test_gross_mass_beyond_the_tolerance_names_both_figures() -> None:
    d, r = consignment()
    heavier = replace(d, items=(replace(d.items[0], gross_mass_kg=520.0, net_mass_kg=450.0),))
    assert GROSS_MASS not in reasons(heavier, r)  # 3.8 % apart: within 5 %
    light = replace(d, items=(replace(d.items[0], gross_mass_kg=300.0, net_mass_kg=250.0),))
    message = reasons(light, r)[GROSS_MASS]
    assert "300 kg declared" in message and "500 kg on the cargo report" in message and "40%" in message
    assert GROSS_MASS not in reasons(light, r, ConsistencyConfig(mass_tolerance=0.5))


def test_consignee_heading_packages_and_containers() -> None:
    d, r = consignment()
    changed = replace(
        d,
        importer=Party("IMP-OTHER"),
        container_numbers=(CONTAINER_NUMBERS[0], CONTAINER_NUMBERS[1]),
        items=(replace(d.items[0], hs_code="8517130000", packages=35),),
    )
    found = reasons(changed, r)
    assert "IMP-OTHER" in found[CONSIGNEE] and "IMP-1" in found[CONSIGNEE]
    assert "declared but not on the cargo report: 8517" in found[HS_HEADING]
    assert "on the cargo report but not declared: 8471" in found[HS_HEADING]
    assert "35 packages declared, 40 on the cargo report" in found[PACKAGES]
    assert CONTAINER_NUMBERS[1] in found[CONTAINER_NOT_REPORTED]
    assert CONTAINER_NOT_DECLARED not in found
    more = replace(r, containers=(*r.containers, container(container_number=CONTAINER_NUMBERS[2])))
    assert CONTAINER_NUMBERS[2] in reasons(d, more)[CONTAINER_NOT_DECLARED]


def test_packages_are_compared_only_when_every_item_states_them() -> None:
    d, r = consignment()
    unstated = replace(d, items=(replace(d.items[0], packages=0),))
    assert PACKAGES not in reasons(unstated, r)


def test_a_container_link_compares_only_the_shared_containers_goods() -> None:
    """A consolidation: the declaration's bill is not the report's; they share one container."""
    d, r = consignment()
    by_container = replace(d, transport_document_number="HOUSE-9")
    other_goods = container(
        container_number=CONTAINER_NUMBERS[1], items=(cargo_item(hs_code="610910", gross_mass_kg=9000.0),)
    )
    consolidated = replace(r, containers=(*r.containers, other_goods), consignee=Party("NVOCC-AGENT"))
    assert links(by_container, consolidated)
    found = reasons(by_container, consolidated)
    assert GROSS_MASS not in found and HS_HEADING not in found  # the other container is someone else's
    assert CONTAINER_NOT_DECLARED not in found
    assert CONSIGNEE not in found  # a consolidator's consignee is not the importer's


def test_a_declaration_of_a_master_bill_is_not_the_consignment_of_a_house_report() -> None:
    d, r = consignment()
    house = replace(r, house_transport_document_number="HBL-7", consignee=Party("OTHER"))
    found = reasons(d, house)  # linked by the container only: goods compared, parties and lists not
    assert CONSIGNEE not in found and CONTAINER_NOT_DECLARED not in found
    assert reasons(replace(d, transport_document_number="HBL-7"), house)[CONSIGNEE]


def test_filings_link_only_within_the_window() -> None:
    from datetime import timedelta

    d, r = consignment()
    assert d.lodgement_time is not None and r.planned_arrival_time is not None
    now = d.lodgement_time
    assert linked(d, r, CONFIG, now)
    later = replace(d, lodgement_time=r.planned_arrival_time + timedelta(days=61))
    assert links(later, r) and not linked(later, r, CONFIG, now)
    assert linked(later, r, ConsistencyConfig(link_window_days=90), now)


def test_hits_carry_each_sides_fields_and_the_configured_channel_and_weight() -> None:
    d, r = consignment()
    light = replace(d, items=(replace(d.items[0], gross_mass_kg=300.0, net_mass_kg=250.0),))
    mismatches = compare(light, r, CONFIG)
    (on_declaration,) = declaration_hits(mismatches, CONFIG)
    (on_report,) = report_hits(mismatches, CONFIG)
    assert on_declaration.fields == ("declaration.items.gross_mass_kg",)
    assert on_report.fields == ("cargo_report.containers.items.gross_mass_kg",) and on_report.item_numbers == ()
    assert on_declaration.min_channel == Channel.YELLOW and on_declaration.weight == 0.3
    custom = ConsistencyConfig({GROSS_MASS: (Channel.RED, 0.6)})
    (raised,) = declaration_hits(mismatches, custom)
    assert (raised.min_channel, raised.weight) == (Channel.RED, 0.6)


@pytest.mark.parametrize("bad", [{"CONSISTENCY_TYPO": (None, 0.1)}, {GROSS_MASS: (None, 2.0)}])
def test_config_refuses_unknown_codes_and_bad_weights(bad: dict[str, tuple[Channel | None, float]]) -> None:
    with pytest.raises(ValueError):
        ConsistencyConfig(bad)
    with pytest.raises(ValueError, match="mass_tolerance"):
        ConsistencyConfig(mass_tolerance=1.0)


def test_a_house_filing_is_compared_with_its_master() -> None:
    master = cargo_report(report_id="MASTER", master_transport_document_number=BILL)
    house = replace(master, report_id="HOUSE", house_transport_document_number="HBL-1")
    assert master_house_mismatches(house, master, CONFIG) == 0
    off = replace(
        house,
        containers=(
            container(items=(cargo_item(hs_code="610910", gross_mass_kg=900.0),)),
            container(container_number=CONTAINER_NUMBERS[3]),
        ),
    )
    assert master_house_mismatches(off, master, CONFIG) == 3  # a container, a heading and mass
    assert master_house_mismatches(master, house, CONFIG) == 0  # only a house against its master


def test_a_container_link_only_flags_declaring_what_the_container_does_not_carry() -> None:
    d, r = consignment()
    by_container = replace(d, transport_document_number="HOUSE-9")
    heavier_report = replace(r, containers=(container(items=(cargo_item(gross_mass_kg=2000.0, packages=100),)),))
    assert GROSS_MASS not in reasons(by_container, heavier_report)  # other bills' goods share the box
    assert PACKAGES not in reasons(by_container, heavier_report)
    too_much = replace(by_container, items=(replace(d.items[0], gross_mass_kg=2500.0, net_mass_kg=2400.0),))
    assert "2,500 kg declared" in reasons(too_much, heavier_report)[GROSS_MASS]


def cross_check(reports: list[CargoReport], declarations: list[Declaration]) -> CrossCheck:
    import features
    from risk_service.domain.cargo.rules import CARGO_SUBJECT, DEFAULT_CARGO_RULES_PATH
    from risk_service.domain.cargo.screening import CargoPolicy, CargoScreener
    from risk_service.domain.entity_history import EntityHistory
    from risk_service.domain.model_handle import ModelHandle
    from risk_service.domain.policy import SelectionPolicy
    from risk_service.domain.rules import DEFAULT_RULES_PATH, RuleSetHolder
    from risk_service.domain.screening import Screener
    from tests.cargo_records import cargo_record
    from tests.integration.test_assessment_store import make_assessment

    cargo = CargoScreener(
        RuleSetHolder(DEFAULT_CARGO_RULES_PATH, (), subject=CARGO_SUBJECT), CargoPolicy(SelectionPolicy(), {})
    )
    screener = Screener(
        RuleSetHolder(DEFAULT_RULES_PATH, features.FEATURE_NAMES), ModelHandle(None), SelectionPolicy(), EntityHistory()
    )
    stored_reports = [(r, cargo_record(r).assessment) for r in reports]
    stored_declarations = [(d, make_assessment(d)) for d in declarations]
    return CrossCheck(
        CONFIG,
        lambda keys, since, until: stored_reports,
        lambda keys, since, until: stored_declarations,
        screener,
        cargo,
    )


def test_a_declaration_is_compared_with_its_own_bill_not_the_master_over_its_container() -> None:
    d, r = consignment()
    house = replace(r, report_id="HOUSE", house_transport_document_number="HBL-9")
    declared = replace(d, transport_document_number="HBL-9")
    master = replace(
        r,
        report_id="MASTER",
        containers=(
            container(items=(cargo_item(), cargo_item(item_number=2, hs_code="610910", gross_mass_kg=1500.0))),
        ),
    )
    (found,) = cross_check([house, master], []).for_declarations([declared])
    assert found.hits == ()  # it matches its house bill; the master's other goods are not its own
    assert [x.assessment.report_id for x in found.reassessments] == ["HOUSE"]


def test_one_call_writes_one_re_assessment_per_linked_report_with_every_reason() -> None:
    d, r = consignment()
    light = replace(d, items=(replace(d.items[0], gross_mass_kg=300.0, net_mass_kg=250.0),))
    other_heading = replace(d, declaration_id="D-2", items=(replace(d.items[0], hs_code="8517130000"),))
    first, second = cross_check([r], []).for_declarations([light, other_heading])
    (shared,) = first.reassessments
    assert second.reassessments == (shared,)  # the same one, stored once
    assert {h.rule_id for h in shared.assessment.rule_hits} >= {GROSS_MASS, HS_HEADING}
