"""Error codes and close codes: stable, and each one documented for widget developers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parley.protocol.errors import CloseCode, ErrorCode, ParleyError, ProtocolError
from parley.protocol.messages import OPS

README = Path(__file__).resolve().parents[2] / "protocol" / "README.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def table_rows(text: str, heading: str) -> dict[str, str]:
    """The first cells (unquoted) of the table under ``## heading``, mapped to their rows."""
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|(.*)", line)
        if match:
            rows[match[1]] = match[2]
    return rows


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_error_code_is_documented(readme: str, code: ErrorCode) -> None:
    rows = table_rows(readme, "Error codes")
    assert code.value in rows, f"{code.value} is missing from the error code table"
    assert rows[code.value].strip(" |"), f"{code.value} has no explanation"


@pytest.mark.parametrize("code", list(CloseCode), ids=lambda c: f"{c.value}-{c.name}")
def test_every_close_code_is_documented(readme: str, code: CloseCode) -> None:
    rows = table_rows(readme, "Close codes")
    assert str(code.value) in rows, f"{code.value} is missing from the close code table"
    assert rows[str(code.value)].strip(" |"), f"{code.value} has no explanation"


def test_the_tables_document_no_code_that_does_not_exist(readme: str) -> None:
    assert set(table_rows(readme, "Error codes")) == {c.value for c in ErrorCode}
    assert set(table_rows(readme, "Close codes")) == {str(c.value) for c in CloseCode}


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_has_a_section_with_examples(readme: str, op: str) -> None:
    section = readme.split(f"\n### {op}\n", 1)[1].split("\n### ", 1)[0]
    assert f'"op": "{op}"' in section, f"no example request for {op}"
    assert '"result"' in section, f"no example reply for {op}"


def test_the_library_sent_close_codes_are_said_to_be(readme: str) -> None:
    rows = table_rows(readme, "Close codes")
    assert "websockets library" in rows["1009"]
    assert "max_frame_bytes" in rows["1009"]
    assert "websockets library" in rows["1007"]
    assert "UTF-8" in rows["1007"]


# The codes themselves.


def test_error_codes_are_their_own_names() -> None:
    # The wire value is the name: renaming one is visibly a protocol change.
    for code in ErrorCode:
        assert code.value == code.name
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code.value)


def test_close_codes_are_registered_or_parleys_own() -> None:
    registered = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012}
    for code in CloseCode:
        assert code.value in registered or 4000 <= code.value <= 4999
    assert len({c.value for c in CloseCode}) == len(CloseCode)


def test_parley_error_carries_a_code_and_a_message() -> None:
    error = ParleyError("order_required", "no order yet")
    assert error.code is ErrorCode.order_required
    assert error.message == "no order yet"
    assert str(error) == "no order yet"
    assert error.to_wire() == {"code": "order_required", "message": "no order yet"}


def test_protocol_error_is_a_parley_error() -> None:
    error = ProtocolError(ErrorCode.bad_frame, "not an object")
    assert isinstance(error, ParleyError)
    assert error.to_wire() == {"code": "bad_frame", "message": "not an object"}


def test_a_code_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError):
        ParleyError("oops", "no such code")
