"""The OpenAPI 3.1 document of the agent and admin API, generated from the declared endpoints and their models.

Every operation lists its request body, its success response and each refusal it can give, all refusals
with the one error body ``{"error": str, "detail": str}``. Provider webhooks are not described here: their
shape is each provider's own; nor are routes plugins add.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from .api.endpoints import ENDPOINTS, MAX_ID, Endpoint
from .api.schemas import Error
from .idempotency import HEADER, MAX_KEY_LENGTH, SCHEMA

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
SKILL_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
PATH_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}

REFUSALS = {
    400: "The body is not JSON.",
    401: "No bearer token, or one nobody issued.",
    403: "The token is valid but lacks the right (wrong role, or not the caller's resource).",
    404: "Nothing with that id or name.",
    409: "The request contradicts the current state (e.g. the conversation is closed).",
    413: "The body is larger than the configured limit.",
    422: "The query or body breaks a rule (a field, an unknown skill, a message over its length limit).",
}
#: what the refusals also mean on an endpoint that takes an Idempotency-Key
IDEMPOTENCY_REFUSALS = {
    400: f"Or the {HEADER} header is empty, longer than {MAX_KEY_LENGTH} characters, or not printable ASCII.",
    409: f"Or a request with the same {HEADER} is still being processed: try again (Retry-After).",
    422: f"Or the {HEADER} was used before with another request (method, path or body); nothing was done.",
}
IDEMPOTENCY_KEY = {
    "name": HEADER, "in": "header", "required": False, "schema": SCHEMA,
    "description": f"Makes the request safe to retry: a request with the key of an earlier one by the same caller, "
                   f"to the same endpoint, is answered the earlier one's status and body, and nothing is done "
                   f"again. A Structured Field String (\"...\") or the same characters unquoted; 1 to "
                   f"{MAX_KEY_LENGTH} printable ASCII characters, e.g. a UUID. Kept 24 hours unless configured "
                   f"otherwise ([api] idempotency_retention_hours). A refused request (4xx) does not use up its key.",
}


@cache
def document() -> dict[str, Any]:
    """The whole document (the endpoints are fixed once the API modules are imported)."""
    return build(ENDPOINTS)


def build(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
    for e in endpoints:
        if e.body is not None:
            keys.append((e.body, "validation"))
        if e.response is not None:
            keys.append((e.response, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(keys)), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.openapi_path, {})[e.method.lower()] = _operation(e, refs)
    paths["/openapi.json"] = _public("openapi", "This document", {"type": "object"})
    paths["/healthz"] = _public("health", "The store answers", {
        "type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "smsconnector agent and admin API", "version": "0.1.0",
                 "description": "Agents answer consumers' SMS conversations; administrators manage agents and "
                                "skills. Live events stream from /api/events."},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "an admin token from configuration, or an agent's token"}},
        },
        "security": [{"bearer": []}],
    }


def _public(operation_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A GET anyone may call."""
    content = {"application/json": {"schema": schema}}
    return {"get": {"operationId": operation_id, "summary": summary, "tags": ["meta"], "security": [],
                    "responses": {"200": {"description": summary, "content": content}}}}


def _operation(e: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": e.handler.__name__, "summary": e.summary, "tags": [e.tag],
        "description": f"Roles: {', '.join(e.roles)}.",
        "parameters": [*_path_parameters(e), *_query_parameters(e), *([IDEMPOTENCY_KEY] if e.idempotent else [])],
        "responses": {str(e.status): _success(e, refs),
                      **{str(code): _refusal(code, refs, idempotent=e.idempotent) for code in e.error_statuses}},
    }
    if e.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(e.body, "validation")]}}}
    return operation


def _success(e: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    if e.media_type == "text/event-stream":
        return {"description": "A stream of Server-Sent Events", "content": {"text/event-stream": {
            "schema": {"type": "string"}}}}
    if e.response is None:
        return {"description": "Done; no content"}
    return {"description": "Success", "content": {"application/json": {
        "schema": refs[(e.response, "serialization")]}}}


def _refusal(code: int, refs: dict[Any, Any], *, idempotent: bool = False) -> dict[str, Any]:
    description = REFUSALS[code]
    if idempotent and code in IDEMPOTENCY_REFUSALS:
        description = f"{description} {IDEMPOTENCY_REFUSALS[code]}"
    return {"description": description,
            "content": {"application/json": {"schema": refs[(Error, "serialization")]}}}


def _path_parameters(e: Endpoint) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": PATH_ID if kind == "int" else SKILL_NAME}
            for name, kind in e.path_params]


def _query_parameters(e: Endpoint) -> list[dict[str, Any]]:
    if e.query is None:
        return []
    schema = e.query.model_json_schema(ref_template=REF)
    return [{"name": name, "in": "query", "required": name in schema.get("required", ()),
             "description": field.get("description", ""), "schema": _not_null(field)}
            for name, field in schema["properties"].items()]


def _not_null(field: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch pydantic gives optional fields."""
    field = {k: v for k, v in field.items() if k not in ("description", "title")}
    branches = [b for b in field.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        field.update(branches[0])
    elif branches:
        field["anyOf"] = branches
    if "default" in field and field["default"] is None:
        del field["default"]
    return field
