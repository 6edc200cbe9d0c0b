"""A permit's goods-line look-up: built once per permit version, the longest prefix wins, never part of equality."""

from __future__ import annotations

import dataclasses
import pickle

from risk_service.domain.permits.model import Permit, PermitGoodsLine, PermitType


def _permit(*prefixes: str) -> Permit:
    lines = tuple(PermitGoodsLine(n, prefix) for n, prefix in enumerate(prefixes, start=1))
    return Permit("P-1", "NFQS", PermitType.QUARANTINE_CERTIFICATE, "IMP-1", lines, None, None)


def test_the_longest_prefix_covers_the_code() -> None:
    permit = _permit("02", "0201", "02013000")
    assert permit.covering_line("0201300000").hs_prefix == "02013000"  # type: ignore[union-attr]
    assert permit.covering_line("0201100000").hs_prefix == "0201"  # type: ignore[union-attr]
    assert permit.covering_line("0299").hs_prefix == "02"  # type: ignore[union-attr]
    assert permit.covering_line("0301") is None
    assert permit.covering_line("0") is None  # shorter than any prefix
    assert permit.covering_line("") is None


def test_codes_longer_than_ten_digits_are_matched_on_their_first_ten() -> None:
    permit = _permit("0201300000")
    assert permit.covering_line("020130000099").hs_prefix == "0201300000"  # type: ignore[union-attr]


def test_a_prefix_longer_than_the_code_does_not_cover_it() -> None:
    assert _permit("02013000").covering_line("020130") is None


def test_the_lookup_follows_a_new_version_and_stays_out_of_equality() -> None:
    permit = _permit("0201")
    amended = dataclasses.replace(permit, goods_lines=(PermitGoodsLine(1, "0303"),))
    assert amended.covering_line("0303100000") is not None
    assert amended.covering_line("0201100000") is None
    assert dataclasses.replace(permit) == permit
    assert hash(dataclasses.replace(permit)) == hash(permit)
    assert "lines_by_prefix" not in repr(permit)
    copy = pickle.loads(pickle.dumps(permit))
    assert copy == permit and copy.covering_line("0201100000") is not None
