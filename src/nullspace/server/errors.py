"""Every error leaves the server as `{"code", "message"}` with a 4xx/5xx status."""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request, routing
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._exceptions import APIError, TemplateBuildError

log = logging.getLogger(__name__)

_STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 413: "payload_too_large"}


def is_disk_full(exc: BaseException) -> bool:
    """The host's disk (or the data dir's file system) is full: SQLite's SQLITE_FULL, ENOSPC, EDQUOT."""
    if isinstance(exc, sqlite3.OperationalError):
        return "full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (Starlette's 405 names only one route's)."""
    flat = getattr(routing, "iter_route_contexts", None)  # FastAPI >= 0.16x nests included routers
    routes = [c.original_route for c in flat(request.app.routes)] if flat else request.app.routes
    methods: set[str] = set()
    for route in routes:
        path_regex = getattr(route, "path_regex", None)
        if path_regex is not None and path_regex.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            return f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}"
        parts.append(f"{where}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        if exc.code == "disk_full" and (metrics := getattr(request.app.state, "metrics", None)):
            metrics.limit_hit("disk")
        return error_response(exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_argument", _describe(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "invalid_argument" if exc.status_code < 500 else "internal")
        response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    @app.exception_handler(TemplateBuildError)
    async def build_error(_: Request, exc: TemplateBuildError) -> JSONResponse:
        return error_response(500, "template_build_failed", f"{exc}\n{exc.log[-1500:]}")

    @app.exception_handler(sqlite3.OperationalError)
    @app.exception_handler(OSError)
    async def host_error(_: Request, exc: Exception) -> JSONResponse:
        if is_disk_full(exc):
            log.error("the data directory is full: %s", exc)
            return error_response(507, "disk_full", f"the server's data directory is full ({exc}); "
                                  "nothing was changed: free space on the host and retry")
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal", f"internal error: {type(exc).__name__}")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal", f"internal error: {type(exc).__name__}")


def document_errors(app: FastAPI) -> None:
    """Every error answer in the OpenAPI document is what the server sends: JSON `ErrorBody`.

    (A route with a streaming `response_class` would otherwise document its 4xx in the stream's
    media type.)"""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            for item in doc.get("paths", {}).values():
                for operation in item.values():
                    for status, response in (operation.get("responses") or {}).items():
                        if status == "default" or status[:1] in ("4", "5"):
                            response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
