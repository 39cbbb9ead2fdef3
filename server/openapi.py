"""The internal HTTP API described in OpenAPI 3.1, served at ``GET /v1/openapi.json``.

Written by hand next to the routes it describes (``server/api.py``,
``server/push_api.py``); ``tests/server/test_openapi.py`` checks that every
route is in it and runs schemathesis against a live hub with it, so a route
that drifts from its description fails a test. ``docs/api.md`` is the prose.
"""

from __future__ import annotations

from typing import Any, Final

from parley.server.core.model import LISTING_STATUSES, ORDER_STATUSES
from parley.server.core.reports import REMOVAL_REASONS, RESOLVE_ACTIONS
from parley.server.core.restrictions import RESTRICTION_KINDS

ID: Final = {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"}
MONEY: Final = {
    "type": "object",
    "required": ["amount", "currency"],
    "additionalProperties": False,
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
}
ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
ANY_OBJECT: Final = {"type": "object"}


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _answers(*ok: int, errors: tuple[int, ...] = (400,)) -> dict[str, Any]:
    """Responses: the success statuses with a JSON object, and the error statuses."""
    responses: dict[str, Any] = {}
    for status in ok:
        responses[str(status)] = {
            "description": "done",
            "content": {"application/json": {"schema": ANY_OBJECT}},
        }
    for status in (*errors, 401, 503):
        responses[str(status)] = {
            "description": "refused: see the code",
            "content": {"application/json": {"schema": ERROR}},
        }
    return responses


def _path_ids(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": ID} for n in names]


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def spec() -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    user = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 64},
            "locale": {"type": "string", "minLength": 1, "maxLength": 16},
            "email": {"type": "string", "maxLength": 254},
        },
    }
    listing = {
        "type": "object",
        "required": ["seller_id", "title", "price"],
        "properties": {
            "seller_id": ID,
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "price": MONEY,
            "photo_url": {"type": "string", "minLength": 1, "maxLength": 2048},
            "offers_enabled": {"type": "boolean"},
            "status": {"enum": sorted(LISTING_STATUSES)},
        },
    }
    order = {
        "type": "object",
        "required": ["listing_id", "buyer_id", "seller_id"],
        "properties": {"listing_id": ID, "buyer_id": ID, "seller_id": ID},
    }
    status = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": sorted(ORDER_STATUSES)},
            "carrier": {"type": "string"},
            "tracking_number": {"type": "string"},
            "reason": text,
            "event_id": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    }
    listing_event = {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"enum": ["edited", "photos_added", "price_changed", "status_changed"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 100},
            "fields": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "event_id": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    }
    like = {"type": "object", "properties": {"ts": {"type": "integer", "minimum": 0}}}
    ack = {
        "type": "object",
        "required": ["group", "ids"],
        "properties": {
            "group": {"type": "string"},
            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
    }
    name = {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,64}$"}
    statement = {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": 2000},
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 10,
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 2000},
            },
        ]
    }
    reasons = {"enum": sorted(REMOVAL_REASONS)}
    removal = {
        "type": "object",
        "required": ["reason", "statement"],
        "properties": {"reason": reasons, "statement": statement},
    }
    restriction = {
        "type": "object",
        "required": ["kind", "reason"],
        "properties": {
            "kind": {"enum": sorted(RESTRICTION_KINDS)},
            "until": {"type": ["integer", "null"], "minimum": 0},
            "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        },
    }
    resolution = {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"enum": sorted(RESOLVE_ACTIONS)},
            "statement": statement,
            "reason": reasons,
            "restriction": restriction,
        },
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {"summary": "the process answers", "security": [], "responses": _answers(200)}
        },
        "/readyz": {
            "get": {
                "summary": "the store answers; on Redis, a pub/sub canary comes back (503: why)",
                "security": [],
                "responses": _answers(200),
            }
        },
        "/v1/users/{id}": {
            "parameters": _path_ids("id"),
            "put": {
                "summary": "a member: username, locale, e-mail",
                "requestBody": _json_body(user),
                "responses": _answers(200, errors=(400, 409, 413)),
            },
            "delete": {
                "summary": "erase the member (docs/moderation.md): 200 when done, 202 while"
                " it runs (ask again to follow or resume it)",
                "parameters": [_query("wait", {"type": "integer", "minimum": 0, "maximum": 30})],
                "responses": _answers(200, 202, errors=(400, 404)),
            },
        },
        "/v1/users/{id}/export": {
            "parameters": _path_ids("id"),
            "get": {
                "summary": "everything Parley holds about a member, as one JSON document"
                " (streamed; docs/api.md)",
                "responses": _answers(200, errors=(400, 404)),
            },
        },
        "/v1/users/{id}/restriction": {
            "parameters": _path_ids("id"),
            "put": {
                "summary": "restrict a member (read_only or suspended) on every hub, until lifted",
                "requestBody": _json_body(restriction),
                "responses": _answers(200, errors=(400, 413)),
            },
            "get": {
                "summary": "the member's restriction in force",
                "responses": _answers(200, errors=(400, 404)),
            },
            "delete": {"summary": "lift it on every hub at once", "responses": _answers(200)},
        },
        "/v1/listings/{id}": {
            "parameters": _path_ids("id"),
            "put": {
                "summary": "a listing; deleted closes its room",
                "requestBody": _json_body(listing),
                "responses": _answers(200, errors=(400, 409, 413)),
            },
        },
        "/v1/listings/{id}/events": {
            "parameters": _path_ids("id"),
            "post": {
                "summary": "the seller changed the listing (R3)",
                "requestBody": _json_body(listing_event),
                "responses": _answers(201, errors=(400, 404, 413)),
            },
        },
        "/v1/listings/{id}/likers/{user_id}": {
            "parameters": _path_ids("id", "user_id"),
            "put": {
                "summary": "a member favourited the listing (R6)",
                "requestBody": _json_body(like, required=False),
                "responses": _answers(200, 201, errors=(400, 413)),
            },
            "delete": {
                "summary": "a member no longer favourites the listing",
                "responses": _answers(200),
            },
        },
        "/v1/orders/{id}": {
            "parameters": _path_ids("id"),
            "put": {
                "summary": "an order: opens its private room (R9), closes open offers",
                "requestBody": _json_body(order),
                "responses": _answers(200, 201, errors=(400, 409, 413)),
            },
        },
        "/v1/orders/{id}/status": {
            "parameters": _path_ids("id"),
            "post": {
                "summary": "the order's status changed (R9)",
                "requestBody": _json_body(status),
                "responses": _answers(200, errors=(400, 404, 413)),
            },
        },
        "/v1/offers/{id}": {
            "parameters": _path_ids("id"),
            "get": {"summary": "a negotiation", "responses": _answers(200, errors=(400, 404))},
        },
        "/v1/events": {
            "get": {
                "summary": "the backend's event feed (offer.accepted)",
                "parameters": [
                    _query("after", {"type": "integer", "minimum": 0}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("wait", {"type": "integer", "minimum": 0, "maximum": 30}),
                ],
                "responses": _answers(200),
            }
        },
        "/v1/reports": {
            "get": {
                "summary": "the moderators' review queue: one item per reported message",
                "parameters": [
                    _query("state", {"enum": ["open", "resolved"]}),
                    _query("after", {"type": "integer", "minimum": 0}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
                "responses": _answers(200),
            }
        },
        "/v1/reports/{id}": {
            "parameters": _path_ids("id"),
            "get": {"summary": "one queue item", "responses": _answers(200, errors=(400, 404))},
        },
        "/v1/reports/{id}/resolve": {
            "parameters": _path_ids("id"),
            "post": {
                "summary": "act on a queue item: dismiss, remove_message, restrict_member",
                "requestBody": _json_body(resolution),
                "responses": _answers(200, errors=(400, 404, 409, 413)),
            },
        },
        "/v1/rooms/{room}/messages/{seq}/remove": {
            "parameters": [
                {
                    "name": "room",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": "^(listing|order):[A-Za-z0-9_.\\-]{1,64}$",
                    },
                },
                {
                    "name": "seq",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                },
            ],
            "post": {
                "summary": "remove a member's message: a tombstone for all, its author told why",
                "requestBody": _json_body(removal),
                "responses": _answers(200, errors=(400, 404, 409, 413)),
            },
        },
        "/v1/push": {
            "get": {
                "summary": "push gateways fetch notifications",
                "parameters": [
                    {"name": "group", "in": "query", "required": True, "schema": name},
                    {"name": "consumer", "in": "query", "required": True, "schema": name},
                    _query("count", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("wait", {"type": "number", "minimum": 0, "maximum": 30}),
                ],
                "responses": _answers(200),
            }
        },
        "/v1/push/ack": {
            "post": {
                "summary": "push gateways ack what they delivered",
                "requestBody": _json_body(ack),
                "responses": _answers(200, errors=(400, 413)),
            }
        },
        "/v1/push/stats": {
            "get": {
                "summary": "a consumer group's backlog",
                "parameters": [{"name": "group", "in": "query", "required": True, "schema": name}],
                "responses": _answers(200),
            }
        },
        "/v1/openapi.json": {
            "get": {"summary": "this document", "security": [], "responses": _answers(200)},
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text format 0.0.4); the API key as bearer token",
                "responses": {
                    "200": {
                        "description": "the exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_answers(errors=()),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Parley internal API",
            "version": "1",
            "description": "What the marketplace backend and push gateways call. See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }
