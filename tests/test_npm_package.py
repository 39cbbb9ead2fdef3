"""The npm package in js/: versioned with the protocol, and holding every file the hub serves.

Its build, bundling and use in a browser are in ``tests/browser`` (``npm_bundle``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from parley.protocol.codec import JSON_SUBPROTOCOL

JS = Path(__file__).resolve().parents[1] / "js"


def test_the_package_is_versioned_with_the_protocol() -> None:
    package = json.loads((JS / "package.json").read_text(encoding="utf-8"))
    protocol = package["parley"]["protocol"]
    assert JSON_SUBPROTOCOL.startswith(protocol + ".")  # parley.v1 -> parley.v1.json
    major = int(package["version"].split(".")[0])
    assert protocol == f"parley.v{major}"
    client = (JS / "parley.js").read_text(encoding="utf-8")
    found = re.search(r'export const SUBPROTOCOL = "([^"]+)"', client)
    assert found and found.group(1) == JSON_SUBPROTOCOL


def test_the_tarball_holds_every_module_and_declaration() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is missing: scripts/ensure-node"
    done = subprocess.run(
        [npm, "pack", "--dry-run", "--json", "--loglevel=error"],
        cwd=JS, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    packed = {f["path"] for f in json.loads(done.stdout)[0]["files"]}
    shipped = {
        str(p.relative_to(JS))
        for p in [JS / "parley.js", JS / "parley.d.ts", *(JS / "widget").iterdir()]
    }
    assert shipped <= packed, shipped - packed
    assert {"package.json", "README.md"} <= packed
    package = json.loads((JS / "package.json").read_text(encoding="utf-8"))
    for target in _targets(package["exports"]):
        assert target.removeprefix("./") in packed, target


def _targets(exports: object) -> list[str]:
    if isinstance(exports, str):
        return [exports]
    assert isinstance(exports, dict)
    return [t for value in exports.values() for t in _targets(value)]
