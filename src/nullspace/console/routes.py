"""`/console`: the console's page and assets, with a strict Content-Security-Policy.

The console page may load only its own scripts and styles and talk only to this origin. Output
of sandboxed code that can carry active content (HTML, plotly figures) is shown in
`/console/frame.html`, loaded in `<iframe sandbox="allow-scripts">`: an opaque origin, so it can
reach neither the console's storage (where the API key lives) nor its cookies, and its own policy
forbids any network connection.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

STATIC = Path(__file__).resolve().parent / "static"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
FRAME_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "media-src 'self' data: blob:; connect-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ASSETS = {p.name for p in STATIC.iterdir() if p.suffix in TYPES} if STATIC.is_dir() else set()

router = APIRouter(prefix="/console", include_in_schema=False)


def plotly_js() -> Path | None:
    """plotly.js as the installed plotly package ships it, if it is installed."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def _headers(name: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": FRAME_CSP if name == "frame.html" else CONSOLE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if name != "frame.html":
        headers["X-Frame-Options"] = "DENY"
    return headers


@router.get("")
async def index() -> Response:
    return FileResponse(STATIC / "index.html", media_type=TYPES[".html"], headers=_headers("index.html"))


@router.get("/")
async def index_slash() -> Response:
    return RedirectResponse("/console", status_code=308)


@router.api_route("/plotly.min.js", methods=["GET", "HEAD"])
async def plotly() -> Response:
    """404 when plotly is not installed: the console then shows a figure's PNG or HTML instead."""
    path = plotly_js()
    if path is None:
        return Response("plotly is not installed", status_code=404, media_type="text/plain")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=86400"}
    return FileResponse(path, media_type=TYPES[".js"], headers=headers)


@router.get("/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(STATIC / name, media_type=TYPES[Path(name).suffix], headers=_headers(name))
