"""The purity rule of STYLE.md, checked: ``protocol/`` and ``server/core/`` do no I/O.

They import no event loop, socket, database, HTTP or thread module, and no
``time``: the domain reads time from an injected clock. Imports point down the
layers: ``protocol/`` knows nothing of the server or the client, and the
domain nothing of the store or the I/O around it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("protocol", "server/core")
FORBIDDEN = frozenset(
    {
        "asyncio",
        "websockets",
        "redis",
        "sqlite3",
        "aiosqlite",
        "socket",
        "time",
        "aiohttp",
        "threading",
        "selectors",
    }
)


def imported_modules(source: str) -> Iterator[str]:
    """Every module an ``import``, ``from ... import``, ``__import__("...")`` or
    ``importlib.import_module("...")`` names, at any depth in the file.

    Relative imports (``from . import x``) stay inside their package: not checked.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            loads = name in ("__import__", "import_module")
            if loads and isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield first.value


def top_level(module: str) -> str:
    return module.partition(".")[0]


def parley_part(module: str) -> str | None:
    """``server``, ``client`` or ``protocol`` for a module of Parley's, else None."""
    first, _, rest = module.partition(".")
    return rest.partition(".")[0] if first == "parley" else None


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


PURE_FILES = [path for package in PURE_PACKAGES for path in python_files(package)]


def test_the_pure_packages_are_found() -> None:
    names = {relative(path) for path in PURE_FILES}
    assert {"protocol/messages.py", "protocol/codec.py", "server/core/rooms.py"} <= names


@pytest.mark.parametrize("path", PURE_FILES, ids=relative)
def test_pure_layers_import_no_io(path: Path) -> None:
    found = {
        module
        for module in imported_modules(path.read_text(encoding="utf-8"))
        if top_level(module) in FORBIDDEN
    }
    assert not found, f"{relative(path)} imports {', '.join(sorted(found))}"


@pytest.mark.parametrize("path", python_files("protocol"), ids=relative)
def test_protocol_imports_nothing_below_it(path: Path) -> None:
    found = {
        module
        for module in imported_modules(path.read_text(encoding="utf-8"))
        if parley_part(module) in ("server", "client")
    }
    assert not found, f"{relative(path)} imports {', '.join(sorted(found))}"


@pytest.mark.parametrize("path", python_files("server/core"), ids=relative)
def test_the_domain_imports_only_protocol_and_itself_from_parley(path: Path) -> None:
    found = {
        module
        for module in imported_modules(path.read_text(encoding="utf-8"))
        if parley_part(module) in ("server", "client")
        and not module.startswith("parley.server.core")
    }
    assert not found, f"{relative(path)} imports {', '.join(sorted(found))}"


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import time as clock",
        "import os, socket",
        "from websockets.asyncio.server import serve",
        "from redis import asyncio as aioredis",
        "def f():\n    import sqlite3\n",
        "try:\n    import aiosqlite\nexcept ImportError:\n    pass\n",
        "if True:\n    from threading import Lock\n",
        "selectors = __import__('selectors')",
        "import importlib\nimportlib.import_module('aiohttp.web')",
    ],
)
def test_the_check_sees_every_way_to_import(source: str) -> None:
    assert any(top_level(m) in FORBIDDEN for m in imported_modules(source))


@pytest.mark.parametrize(
    "source",
    ["import timeit", "import datetime", "from dataclasses import dataclass", "from . import x"],
)
def test_the_check_leaves_other_modules_alone(source: str) -> None:
    assert not any(top_level(m) in FORBIDDEN for m in imported_modules(source))
