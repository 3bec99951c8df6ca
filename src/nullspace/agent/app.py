"""The agent's HTTP app: the code/context endpoints of docs/api.md without ``/v1/sandboxes/{id}``.

Errors are ``{"code", "message"}`` bodies with a 4xx/5xx status. ``/execute`` answers a 200
NDJSON stream (one ASCII-only JSON object per line, ``end_of_execution`` always last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import commands, configure, egress, files, packages, watch
from .config import AgentConfig
from .contexts import AgentError, Context, Registry, validate_envs
from .languages import FirstRequest, start_prestart
from .runs import RunRequest
from .web import NDJSONFollow, json_body

log = logging.getLogger("nullspace.agent")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _registry(request: Request) -> Registry:
    return request.app.state.registry


# -- endpoints -----------------------------------------------------------------------------------


MAX_HEALTH_WAIT = 60.0


async def health(request: Request) -> Response:
    """``?wait=S``: answer once the boot has ended (ready or failed), or after S seconds. The
    server asks this way while a sandbox starts: one request instead of polling."""
    reg = _registry(request)
    try:
        wait = min(float(request.query_params.get("wait", 0)), MAX_HEALTH_WAIT)
    except ValueError:
        return _error(400, "invalid_argument", "wait must be a number of seconds")
    if wait > 0 and not reg.booted.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await reg.booted.wait()
    body: dict[str, Any] = {"status": "ok", "ready": reg.ready, "contexts": len(reg.contexts)}
    if reg.boot_error and not reg.ready:
        body["error"] = reg.boot_error
    return JSONResponse(body)


async def create_context(request: Request) -> Response:
    body = await json_body(request)
    ctx = await _registry(request).create(body.get("language"), body.get("cwd"))
    return JSONResponse(ctx.info(), status_code=201)


async def list_contexts(request: Request) -> Response:
    return JSONResponse(_registry(request).list())


async def restart_context(request: Request) -> Response:
    ctx = await _registry(request).restart(request.path_params["context_id"])
    return JSONResponse(ctx.info())


async def fork_context(request: Request) -> Response:
    ctx = await _registry(request).fork(request.path_params["context_id"])
    return JSONResponse(ctx.info(), status_code=201)


async def delete_context(request: Request) -> Response:
    await _registry(request).delete(request.path_params["context_id"])
    return Response(status_code=204)


def _run_request(body: dict[str, Any]) -> RunRequest:
    code = body.get("code")
    if not isinstance(code, str):
        raise AgentError(400, "invalid_argument", "code must be a string")
    timeout = body.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise AgentError(400, "invalid_argument", "timeout must be a number of seconds")
        if not math.isfinite(timeout) or timeout < 0:
            raise AgentError(400, "invalid_argument", "timeout must be >= 0")
    envs = validate_envs(body.get("envs"))
    cap = body.get("max_output_bytes")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise AgentError(400, "invalid_argument", "max_output_bytes must be a positive integer")
    return RunRequest(code=code, envs=envs or None, timeout=timeout or None, max_output_bytes=cap)


async def execute(request: Request) -> Response:
    reg = _registry(request)
    body = await json_body(request)
    run_request = _run_request(body)
    language, context_id = body.get("language"), body.get("context_id")
    if language is not None and context_id is not None:
        raise AgentError(400, "invalid_argument", "only one of context_id or language can be provided")
    ctx: Context
    if context_id is not None:
        if not isinstance(context_id, str):
            raise AgentError(400, "invalid_argument", "context_id must be a string")
        ctx = await reg.started(reg.get(context_id))
    else:
        ctx = await reg.default_context(language)
    if run_request.envs and ctx.env_snippets is None:
        raise AgentError(400, "invalid_argument", f"envs are not supported for {ctx.language} contexts yet")
    run = ctx.submit(run_request)
    # A client that goes away abandons the run, which interrupts the kernel; the run itself lives
    # in its own task, so the response can never cut it short.
    return NDJSONFollow(
        run.events(reg.config.keepalive_interval), on_abort=lambda: run.finished or run.abandon()
    )


# -- error handlers ------------------------------------------------------------------------------


async def _agent_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentError)
    return _error(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 413: "payload_too_large"}.get(exc.status_code, "invalid_argument")
    if exc.status_code >= 500:
        code = "internal"
    return _error(exc.status_code, code, str(exc.detail))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal", "internal agent error")


def create_app(registry: Registry | None = None, config: AgentConfig | None = None) -> Starlette:
    """The agent app. The lifespan boots the default context and shuts every kernel down."""
    reg = registry or Registry(config or AgentConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reg.boot()
        warmup = start_prestart(reg)
        try:
            yield
        finally:
            if warmup is not None:
                warmup.cancel()
            await reg.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/contexts", create_context, methods=["POST"]),
            Route("/contexts", list_contexts, methods=["GET"]),
            Route("/contexts/{context_id}/restart", restart_context, methods=["POST"]),
            Route("/contexts/{context_id}/fork", fork_context, methods=["POST"]),
            Route("/contexts/{context_id}", delete_context, methods=["DELETE"]),
            Route("/execute", execute, methods=["POST"]),
            *configure.routes,
            *egress.routes,
            *commands.routes,
            *files.routes,
            *packages.routes,
            *watch.routes,
        ],
        exception_handlers={
            AgentError: _agent_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.registry = reg
    app.add_middleware(FirstRequest, registry=reg)  # prestart waits for the sandbox to be used
    return app
