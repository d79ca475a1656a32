"""Build step: generate the gRPC stubs from the repository's proto/ into pulsebus/_gen.

`pip install ./clients/python` builds a wheel in-tree; build_py then runs grpcio-tools'
protoc (a build requirement) on every .proto under the proto directory and writes the
modules into the wheel's pulsebus/_gen package, rewriting their imports of each other to
live under it. Nothing generated is committed (pulsebus/_gen is git-ignored; it is only
written into the source tree for editable installs).

The proto directory is $PULSEBUS_PROTO_DIR, else ./proto (an sdist), else ../../proto
(the repository checkout).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def proto_root() -> Path:
    for candidate in (os.environ.get("PULSEBUS_PROTO_DIR"), HERE / "proto", HERE.parent.parent / "proto"):
        if candidate and (Path(candidate) / "pulsebus" / "v1" / "pulsebus.proto").is_file():
            return Path(candidate).resolve()
    raise SystemExit(
        "pulsebus: cannot find proto/pulsebus/v1/pulsebus.proto (looked in "
        "$PULSEBUS_PROTO_DIR, ./proto and ../../proto); build from the repository checkout"
    )


def generate(out: Path) -> None:
    """Runs protoc on every .proto of the proto root into `out` (a package)."""
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    protos = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"pulsebus: protoc failed on {root}")
    # Top-level proto packages (pulsebus, edupulse) become subpackages of _gen.
    tops = sorted({p.split("/", 1)[0] for p in protos})
    names = "|".join(map(re.escape, tops))
    imports = re.compile(rf"^(from|import) ({names})\.", re.M)
    # the module name the messages' __module__ gets (pickle imports it)
    module_names = re.compile(rf"(\(DESCRIPTOR, ')({names})\.")
    for path in out.rglob("*.py*"):
        if path.suffix in (".py", ".pyi"):
            text = imports.sub(r"\1 pulsebus._gen.\2.", path.read_text())
            path.write_text(module_names.sub(r"\1pulsebus._gen.\2.", text))
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
        (directory / "__init__.py").touch()


class BuildPyWithStubs(build_py):
    """build_py that also writes the generated stubs into the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            generate(HERE / "pulsebus" / "_gen")
        else:
            generate(Path(self.build_lib) / "pulsebus" / "_gen")


setup(cmdclass={"build_py": BuildPyWithStubs})
