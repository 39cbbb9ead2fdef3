"""Parley installs under its own name, beside software that owns ``server``, ``client``
or ``protocol``.

The wheel is built from the checkout and installed in a clean virtualenv next to a
package whose top-level module is named ``server``. Parley's dependencies come from
the checkout's environment as a plain path entry, so the test needs no network; that
environment's own ``.pth`` files (the editable install of the checkout) are not run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import urllib.request
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hubproc import HubProcess

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(source: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps",
        "--quiet", "-w", out, source)  # fmt: skip
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def parley_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory: pytest.TempPathFactory, parley_wheel: Path) -> Iterator[Path]:
    """A virtualenv holding Parley's wheel and another project's ``server`` module."""
    base = tmp_path_factory.mktemp("clean")
    other = base / "other-project"
    (other / "server").mkdir(parents=True)
    (other / "server" / "__init__.py").write_text('OWNER = "other-project"\n')
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "other-project"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["server"]\n'
    )
    other_wheel = build_wheel(other, base / "other-wheel")

    env = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    # Dependencies only: a path line, not a site dir, so that directory's .pth files
    # (among them the checkout's editable install) are not processed.
    (site / "zz-parley-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "--quiet", other_wheel, parley_wheel)  # fmt: skip
    yield env


def test_the_wheel_holds_one_top_level_package_and_the_files_parley_serves(
    parley_wheel: Path,
) -> None:
    names = zipfile.ZipFile(parley_wheel).namelist()
    top = {name.partition("/")[0] for name in names if not name.startswith("parley-")}
    assert top == {"parley"}
    for expected in (
        "parley/server/hub.py",
        "parley/server/ops/rooms.py",
        "parley/server/store/redis.py",
        "parley/server/templates/mail/order.html",
        "parley/server/web_static/parley.js",
        "parley/server/web_static/parley.d.ts",
        "parley/server/web_static/widget/widget.js",
        "parley/server/web_static/widget/widget.css",
        "parley/server/web_static/widget/widget.d.ts",
        "parley/server/web_static/widget/open.js",
        "parley/protocol/README.md",
        "parley/client/__init__.py",
    ):
        assert expected in names, f"{expected} missing from the wheel"


def test_parley_imports_beside_a_package_that_owns_server(clean_env: Path) -> None:
    python = clean_env / "bin" / "python"
    probe = (
        "import json, server, parley.server.hub, parley.client, parley.protocol.codec;"
        "print(json.dumps({'server': server.OWNER, 'hub': parley.server.hub.__file__,"
        " 'client': parley.client.__file__}))"
    )
    found = json.loads(run(python, "-c", probe, cwd=clean_env))
    assert found["server"] == "other-project"
    for key in ("hub", "client"):
        assert Path(found[key]).is_relative_to(clean_env), found[key]


def test_the_installed_parley_command_serves(clean_env: Path, tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, f"sqlite:///{tmp_path / 'parley.sqlite3'}",
                     command=[str(clean_env / "bin" / "parley")])  # fmt: skip
    hub.start()
    try:
        with urllib.request.urlopen(hub.api_url + "/readyz", timeout=10) as answer:
            assert answer.status == 200
        public = f"http://127.0.0.1:{hub.settings['ws_port']}"
        # The npm package's files, copied into the wheel (js/ is linked in a checkout).
        for path, text in (("/parley.js", b"export class ParleyClient"),
                           ("/widget/widget.js", b"export class ParleyWidget")):  # fmt: skip
            with urllib.request.urlopen(public + path, timeout=10) as answer:
                assert text in answer.read(), path
    finally:
        assert hub.terminate() == 0
