"""``POST /configure``: apply a claimer's settings to a pre-warmed sandbox.

A warm-pool sandbox boots with no user environment. When a caller claims it, the server sends
the caller's ``envs`` here before ``create`` returns: they go into the agent's own environment
(so new kernels and commands inherit them), into every kernel's launch environment (so a kernel
restarted after a crash keeps them), and into every running kernel through the language's env
snippet, run silently (no execution count, no output).
"""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .contexts import AgentError, Registry, validate_envs
from .kernel_process import kernel_env
from .runs import silent
from .web import json_body


async def apply_envs(registry: Registry, envs: dict[str, str]) -> None:
    os.environ.update(envs)
    for ctx in list(registry.contexts.values()):
        await ctx.wait_started()
        ctx.kernel.env.update(envs)
        snippets = ctx.env_snippets
        if snippets is None or not ctx.kernel_ok:
            continue
        async with ctx.run_lock:
            reply = await silent(ctx.kernel, snippets.set(envs), poll_interval=registry.config.poll_interval)
        if reply is None or reply.get("status") != "ok":
            raise AgentError(500, "internal", f"could not apply envs to the {ctx.language} context")


async def configure(request: Request) -> Response:
    from .app import _registry

    body = await json_body(request)
    await apply_envs(_registry(request), validate_envs(body.get("envs")))
    return JSONResponse({"status": "ok"})


async def envs(request: Request) -> Response:
    """The environment commands and new kernels get (the E2B door's ``/envs`` picks the
    sandbox-level variables out of it)."""
    return JSONResponse(kernel_env())


routes = [Route("/configure", configure, methods=["POST"]), Route("/envs", envs, methods=["GET"])]
