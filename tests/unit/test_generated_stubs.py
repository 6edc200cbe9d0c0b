"""The checked-in protobuf stubs must match what protoc makes from the .proto files today."""

from __future__ import annotations

from pathlib import Path

from protos.generate import PROTO_ROOT, generate


def test_checked_in_stubs_are_up_to_date(tmp_path: Path) -> None:
    fresh = {p.name: p.read_text() for p in generate(tmp_path)}
    checked_in = {p.name: p.read_text() for p in (PROTO_ROOT / "risk" / "v1").iterdir() if p.name in fresh}
    stale = sorted(name for name in fresh if checked_in.get(name) != fresh[name])
    assert not stale, f"stale stubs {stale}: run `python -m protos.generate` and commit the result"
