"""Port 49999: E2B's code-interpreter server (§4) as a translation over the SandboxManager.

The door has resolved the sandbox and checked its token (``scope["state"]["e2b_sandbox"]``).
Errors are plain text with the reference server's statuses, as the SDK expects (it reads the
body as the message and maps 404 to NotFoundException).

Contexts: E2B lists a ``python`` and a ``javascript`` default context in every fresh sandbox. Ours
start the JavaScript kernel on first use, so until then its default context is listed under a
stable made-up id, and a run there starts it (a "lazy" context). Default contexts are listed
first (python, javascript, then the rest), then the ones the user created, in creation order.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..._exceptions import APIError, ContextNotFoundError, InvalidArgumentError, SandboxNotFoundError
from ..._protocol.languages import normalize_language
from ..lifecycle import LiveSandbox, SandboxManager
from ..models import Execute
from ..streaming import NDJSONEvents
from . import results, wire

log = logging.getLogger(__name__)

CONTEXT_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
LAZY_LANGUAGE = "javascript"
_HIDDEN = "e2b_lazy_context_removed"  # in LiveSandbox.record.extra
_LANGUAGES = "e2b_context_languages"  # context id → language, of the contexts this door has seen
_SANDBOX_ENVS = "e2b_sandbox_envs"


class _SandboxGone(Exception):
    """The sandbox ended during a run: E2B's SDK expects the stream to break, not to end."""


def _live(request: Request) -> LiveSandbox:
    return request.state.e2b_sandbox


def _manager(request: Request) -> SandboxManager:
    return request.state.manager


def lazy_context_id(sandbox_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nullspace:{sandbox_id}:{LAZY_LANGUAGE}"))


def _context_id(value: Any) -> str:
    if not isinstance(value, str) or not CONTEXT_ID.match(value):
        raise ContextNotFoundError(f"Context {value} not found")
    return value


# -- contexts -------------------------------------------------------------------------------------------


async def _agent_contexts(request: Request) -> list[dict[str, Any]]:
    live = _live(request)
    reply = await _manager(request).agent_request(live.record.id, "GET", "/contexts", None, request.state.principal)
    if not isinstance(reply, list):
        return []
    contexts = [
        {"id": c["id"], "language": c["language"], "cwd": c["cwd"], "default": c.get("default") is True}
        for c in reply
        if isinstance(c, dict) and all(isinstance(c.get(k), str) for k in ("id", "language", "cwd"))
    ]  # the agent is untrusted: only well-formed entries
    live.record.extra.setdefault(_LANGUAGES, {}).update({c["id"]: c["language"] for c in contexts})
    return contexts


def _lazy_default(contexts: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((c for c in contexts if c["default"] and c["language"] == LAZY_LANGUAGE), None)


async def list_contexts(request: Request) -> Response:
    live = _live(request)
    contexts = await _agent_contexts(request)
    defaults = [c for c in contexts if c["default"]]
    if _lazy_default(contexts) is None and not live.record.extra.get(_HIDDEN):
        defaults.append({"id": lazy_context_id(live.record.id), "language": LAZY_LANGUAGE, "cwd": "/home/user"})
    first = {"python": 0, LAZY_LANGUAGE: 1}
    defaults.sort(key=lambda c: first.get(c["language"], 2))  # stable: the rest keep their order
    listed = defaults + [c for c in contexts if not c["default"]]
    return JSONResponse([{"id": c["id"], "language": c["language"], "cwd": c["cwd"]} for c in listed])


async def create_context(request: Request) -> Response:
    body = await wire.json_object(request)
    payload: dict[str, Any] = {}
    for key in ("language", "cwd"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{key} must be a string")
        if value:
            payload[key] = value
    reply = await _manager(request).agent_request(_live(request).record.id, "POST", "/contexts", payload, request.state.principal)
    if not (isinstance(reply, dict) and all(isinstance(reply.get(k), str) for k in ("id", "language", "cwd"))):
        raise APIError("the sandbox agent gave a malformed context")
    _live(request).record.extra.setdefault(_LANGUAGES, {})[reply["id"]] = reply["language"]
    return JSONResponse({"id": reply["id"], "language": reply["language"], "cwd": reply["cwd"]})


async def _context_action(request: Request, action: str) -> Response:
    live = _live(request)
    context_id = _context_id(request.path_params["context_id"])
    manager = _manager(request)
    if context_id == lazy_context_id(live.record.id):
        if live.record.extra.get(_HIDDEN):
            raise ContextNotFoundError(f"Context {context_id} not found")
        real = _lazy_default(await _agent_contexts(request))
        if action == "delete":
            live.record.extra[_HIDDEN] = True
        if real is None:
            return JSONResponse(None)  # never started: nothing to restart or shut down
        context_id = real["id"]
    if action == "delete":
        await manager.agent_request(live.record.id, "DELETE", f"/contexts/{context_id}", None, request.state.principal)
    else:
        await manager.agent_request(live.record.id, "POST", f"/contexts/{context_id}/restart", None, request.state.principal)
    return JSONResponse(None)


async def remove_context(request: Request) -> Response:
    return await _context_action(request, "delete")


async def restart_context(request: Request) -> Response:
    return await _context_action(request, "restart")


# -- execute ----------------------------------------------------------------------------------------------


class _E2BStream(NDJSONEvents):
    """NDJSON lines in E2B's shape; a sandbox that ends mid-run breaks the connection (the SDK then
    asks /health, gets 502 and raises "the sandbox was killed")."""

    media_type = None  # the reference server sets no content type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except _SandboxGone:
            return  # the response stays incomplete: the server closes the connection


async def _translated(first: dict[str, Any], events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    try:
        event: dict[str, Any] | None = first
        while event is not None:
            if event.get("type") == "error" and event.get("name") == "SandboxEnded":
                raise _SandboxGone
            line = results.translate(event)
            if line is not None:
                yield line
            event = await anext(events, None)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _sandbox_envs(request: Request) -> dict[str, str]:
    """The sandbox-level envs (given at create), as the agent holds them; {} if it says nonsense."""
    live = _live(request)
    cached = live.record.extra.get(_SANDBOX_ENVS)
    if cached is None:
        reply = await _manager(request).agent_request(live.record.id, "GET", "/envs", None, request.state.principal)
        values = {k: v for k, v in (reply if isinstance(reply, dict) else {}).items() if k in live.record.env_keys}
        try:
            cached = Execute(code="", envs=values).envs or {}
        except ValidationError:
            cached = {}
        live.record.extra[_SANDBOX_ENVS] = cached
    return cached


async def execute(request: Request) -> Response:
    live = _live(request)
    body = await wire.json_object(request)
    code, context_id, language = body.get("code"), body.get("context_id"), body.get("language")
    if not isinstance(code, str):
        raise InvalidArgumentError("code must be a string")
    if context_id is not None and language is not None:
        raise InvalidArgumentError("Only one of context_id or language can be provided")
    if language is not None and not isinstance(language, str):
        raise InvalidArgumentError("language must be a string")
    run: dict[str, Any] = {"code": code}
    if context_id is not None:
        context_id = _context_id(context_id)
        if context_id == lazy_context_id(live.record.id):
            if live.record.extra.get(_HIDDEN):
                raise ContextNotFoundError(f"Context {context_id} not found")
            run["language"] = LAZY_LANGUAGE
        else:
            run["context_id"] = context_id
    else:
        run["language"] = normalize_language(language)
    try:
        envs = Execute(code=code, envs=body.get("env_vars")).envs
    except ValidationError as exc:
        raise InvalidArgumentError(f"env_vars: {exc.errors()[0]['msg']}") from None
    language = run.get("language") or live.record.extra.get(_LANGUAGES, {}).get(run.get("context_id"))
    if language == "java" and live.record.env_keys:
        # E2B's Java reads sandbox-level envs with System.getProperty too: apply them as per-run
        # envs, which our Java kernel also sets as properties
        envs = {**await _sandbox_envs(request), **(envs or {})}
    if envs:
        run["envs"] = envs
    events = _manager(request).execute(live.record.id, run, request.state.principal)
    try:
        first = await anext(events)  # errors before the run starts are a status, not a stream
    except ContextNotFoundError:
        raise ContextNotFoundError(f"Context {context_id} not found") from None
    return _E2BStream(_translated(first, events))


async def health(request: Request) -> Response:
    return JSONResponse("OK")


# -- app ----------------------------------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    if isinstance(exc, SandboxNotFoundError):  # it ended after the door let the request in
        return JSONResponse({"sandboxId": _live(request).record.id, "message": "The sandbox was not found",
                             "code": 502}, status_code=502)  # fmt: skip
    status = exc.status_code if exc.status_code != 502 else 500
    return PlainTextResponse(exc.message, status_code=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("E2B code interpreter: unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return PlainTextResponse(f"internal error: {type(exc).__name__}", status_code=500)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/execute", execute, methods=["POST"]),
            Route("/contexts", create_context, methods=["POST"]),
            Route("/contexts", list_contexts, methods=["GET"]),
            Route("/contexts/{context_id}", remove_context, methods=["DELETE"]),
            Route("/contexts/{context_id}/restart", restart_context, methods=["POST"]),
        ],
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _internal},
    )

