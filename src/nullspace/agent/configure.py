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

from .contexts import AgentError, Registry
from .runs import silent


def _envs(body: object) -> dict[str, str]:
    envs = body.get("envs") if isinstance(body, dict) else None
    if envs is None:
        return {}
    if not isinstance(envs, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in envs.items()
    ):
        raise AgentError(400, "invalid_argument", "envs must map strings to strings")
    for key, value in envs.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise AgentError(400, "invalid_argument", f"invalid environment variable {key!r}")
    return envs


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
    from .app import _body, _registry

    body = await _body(request)
    await apply_envs(_registry(request), _envs(body))
    return JSONResponse({"status": "ok"})


routes = [Route("/configure", configure, methods=["POST"])]
