"""Every /v1 route takes the caller and is in the OpenAPI document (so the tenant-isolation
walk in tests/integration/test_tenants.py covers it)."""

from __future__ import annotations

from pathlib import Path

from fastapi import routing
from fastapi.routing import APIRoute

from nullspace.server.app import create_app
from nullspace.server.deps import get_principal
from nullspace.server.settings import Settings


def _depends_on(dependant, call) -> bool:  # noqa: ANN001
    return dependant.call is call or any(_depends_on(d, call) for d in dependant.dependencies)


def test_every_v1_route_is_documented_and_knows_its_caller(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    # FastAPI >= 0.16x keeps included routers nested; older versions flatten them into app.routes
    flat = getattr(routing, "iter_route_contexts", None)
    every = [c.original_route for c in flat(app.routes)] if flat else app.routes
    routes = [r for r in every if isinstance(r, APIRoute) and r.path.startswith("/v1/")]
    assert len(routes) > 20
    documented = app.openapi()["paths"]
    for route in routes:
        for method in route.methods:
            assert method.lower() in documented.get(route.path, {}), f"{method} {route.path} is not in OpenAPI"
        if route.path != "/v1/health":
            assert _depends_on(route.dependant, get_principal), f"{route.path} does not take deps.Caller"
