"""create_app(settings) → the ASGI app; all state lives in the lifespan, none at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from fastapi import FastAPI

from .._version import __version__
from ..console import routes as console
from ..egress import routes as egress_routes
from ..egress.service import EgressService
from ..runtime import seccomp
from ..runtime.cgroups import open_driver
from ..runtime.local import LocalRuntime
from ..runtime.reaper import Reaper
from . import errors, recent_errors
from .lifecycle import SandboxManager
from .logs import SandboxLogs
from .metrics import Metrics
from .models import ErrorBody
from .routes import code, commands, files, ops, packages, pools, sandboxes, templates, watch
from .settings import Settings
from .store import Store
from .template_resolver import TemplateResolver

log = logging.getLogger(__name__)
AGENT_PACKAGE = Path(__file__).resolve().parent.parent / "agent"


def _mount_mcp(app: FastAPI) -> Callable[[], AbstractAsyncContextManager[None]]:
    """`/mcp` (MCP over streamable HTTP) when the `mcp` extra is installed."""
    try:
        from ..mcp.http import mount
    except ImportError:
        log.info("MCP over HTTP is off: the mcp extra is not installed")
        return nullcontext
    return mount(app)


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()
    sandbox_logs = SandboxLogs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = Reaper()
        reaper.start()
        runtime = LocalRuntime(settings.data_dir, open_driver(settings.cgroup_root), reaper, seccomp.sandbox_filters(), AGENT_PACKAGE)
        store = await Store.open(settings.db_path)
        manager = SandboxManager(settings, store, runtime, TemplateResolver(settings.data_dir, reaper), metrics)
        metrics.watch(manager)
        sandbox_logs.attach()
        manager.egress = EgressService(settings.egress, settings.data_dir / "egress")
        await manager.startup()
        app.state.manager = manager
        app.state.store = store
        app.state.recent_errors = recent_errors.install()
        try:
            async with mcp_sessions():  # MCP sessions end (their sandboxes killed) before the manager
                yield
        finally:
            recent_errors.uninstall(app.state.recent_errors)
            await manager.shutdown()
            await store.close()
            runtime.cgroups.remove_root()  # empty once every sandbox is gone; a no-op otherwise
            sandbox_logs.detach()

    app = FastAPI(
        title="nullspace",
        version=__version__,
        description="Self-hosted sandboxes for untrusted code. Errors are JSON `{code, message}`.",
        lifespan=lifespan,
        # any error status not listed on an operation (429 quota, 507 disk full, ...) has this body
        responses={"default": {"model": ErrorBody, "description": "an error: `{code, message}` (docs/api.md)"}},
    )
    app.state.metrics = metrics
    app.state.sandbox_logs = sandbox_logs
    errors.install(app)
    app.include_router(sandboxes.router)
    app.include_router(code.router)
    app.include_router(pools.router)
    app.include_router(commands.router)
    app.include_router(files.router)
    app.include_router(packages.router)
    app.include_router(templates.router)
    app.include_router(ops.router)
    mcp_sessions = _mount_mcp(app)
    app.include_router(egress_routes.router)
    app.include_router(watch.router)
    app.include_router(console.router)  # /console: the web console's page and assets (no key needed)

    @app.get("/v1/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    errors.document_errors(app)
    return app
