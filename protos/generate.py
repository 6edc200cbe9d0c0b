"""Regenerates the checked-in protobuf and gRPC stubs from the .proto files.

Run `python -m protos.generate` after editing a .proto; tests/unit/test_generated_stubs.py
fails while the checked-in stubs are stale.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
# protoc writes `from risk.v1 import x_pb2`; our stubs live under the `protos` package.
_IMPORT_FIX = re.compile(r"^from risk\.v1 import", re.MULTILINE)


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.glob("risk/v1/*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Writes the stubs for every proto under out_dir/risk/v1 and returns their paths."""
    from grpc_tools import protoc  # dev-only dependency

    include_dirs = [
        str(PROTO_ROOT),
        str(resources.files("grpc_tools") / "_proto"),
        str(_googleapis_protos_root()),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={_mypy_plugin()}",
        *(f"-I{d}" for d in include_dirs),
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    written = sorted(p for p in (out_dir / "risk" / "v1").iterdir() if p.name.endswith(GENERATED_SUFFIXES))
    for path in written:
        path.write_text(_IMPORT_FIX.sub("from protos.risk.v1 import", path.read_text()))
    return written


def _mypy_plugin() -> str:
    # The plugin is a console script of mypy-protobuf, beside this interpreter.
    found = shutil.which("protoc-gen-mypy") or str(Path(sys.executable).parent / "protoc-gen-mypy")
    return found


def _googleapis_protos_root() -> Path:
    import google.rpc

    return Path(next(iter(google.rpc.__path__))).parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copyfile(path, PROTO_ROOT / "risk" / "v1" / path.name)
            print(f"wrote protos/risk/v1/{path.name}")


if __name__ == "__main__":
    main()
