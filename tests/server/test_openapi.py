"""The internal API against its OpenAPI document: every route described, and
schemathesis's generated requests (valid and not) answered as described —
never a 5xx, never a body the document does not allow — by a real hub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from parley.server.openapi import spec
from tests.support.hubproc import API_KEY, HubProcess

SCHEMA = schemathesis.openapi.from_dict(spec())
EXAMPLES_PER_ROUTE = 25  # bounded: a few seconds for the whole document


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    directory: Path = tmp_path_factory.mktemp("openapi")
    proc = HubProcess(directory, f"sqlite:///{directory / 'parley.sqlite3'}")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def test_every_route_of_the_api_is_in_the_document(hub: HubProcess) -> None:
    served = requests.get(f"{hub.api_url}/v1/openapi.json", timeout=5)
    assert served.status_code == 200 and served.json() == spec()
    from parley.server.api import InternalApi
    from parley.server.config import load_config
    from parley.server.core.clock import FakeClock
    from parley.server.data_rights_api import data_rights_routes
    from parley.server.member_erasure import MemberErasures
    from parley.server.moderation_api import moderation_routes
    from parley.server.push_api import push_routes
    from parley.server.store import open_store
    from tests.support.hubproc import test_settings

    config = load_config(None, {}, **test_settings("sqlite:///unused.sqlite3"))
    api = InternalApi(config, open_store(config.store), FakeClock())
    app = api.app()
    app.router.add_routes(push_routes(None))  # type: ignore[arg-type]
    app.router.add_routes(moderation_routes(config, api.store, api.clock, api.notifier))
    erasures = MemberErasures(api.store, api.clock)
    app.router.add_routes(data_rights_routes(api.store, api.clock, erasures))
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    described = {
        (method.upper(), path)
        for path, item in spec()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == described


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_generated_requests_get_described_answers(case: schemathesis.Case, hub: HubProcess) -> None:
    if case.query and "wait" in case.query:
        case.query["wait"] = 0  # long-polls are bounded (30 s); the fuzzing does not wait them out
    response = case.call(base_url=hub.api_url, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    case.validate_response(
        response,
        checks=[
            schemathesis.checks.not_a_server_error,
            schemathesis.checks.status_code_conformance,
            schemathesis.checks.content_type_conformance,
            schemathesis.checks.response_schema_conformance,
        ],
    )
