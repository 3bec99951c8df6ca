"""``POST /packages``: install packages the trusted side has already fetched.

The server resolves and downloads on the host (the sandbox has no network) and puts exactly
the files of that resolution into this sandbox's read-only cache view (``/opt/nullspace/cache``,
see template.json ``packages``). Here:

* Python: the exact wheels of the server's resolution are unpacked into a staging directory
  (`wheels.py`; milliseconds), or, when that is not simple (a version change, an unusual
  wheel), ``pip install --no-index --find-links <cache>/wheels --prefix <staging>`` does it.
  The staged files are then merged into the user site directory
  (``~/.local/lib/pythonX.Y/site-packages``, on ``sys.path`` of every interpreter of the
  template through a ``.pth`` file). On failure the staging directory is removed and nothing
  else changed. Live Python contexts then run ``importlib.invalidate_caches()`` silently, so
  ``import`` finds the new packages at once.
* JavaScript: the server has installed the npm project (package.json, node_modules) into the
  cache view; ``~/node_modules`` and ``~/package.json`` become links to it (Node and Deno
  resolve bare specifiers by walking up from the working directory).

The answer is always 200 ``{"status": "ok"|"error", "installed": [...], "log": "..."}``: the
server turns ``error`` into its own ``package_install_failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import wheels
from .config import DEFAULT_TEMPLATE_JSON
from .contexts import AgentError, Registry
from .runs import silent
from .web import json_body

log = logging.getLogger("nullspace.agent")

MAX_LOG = 64 << 10
DEFAULT_TIMEOUT = 300.0
_DIST_INFO = re.compile(r"^(?P<name>[A-Za-z0-9._]+)-(?P<version>[^-]+)\.dist-info$")

INVALIDATE = """\
import importlib as _nullspace_importlib, sys as _nullspace_sys
_nullspace_importlib.invalidate_caches()
if {site!r} not in _nullspace_sys.path:
    _nullspace_sys.path.append({site!r})
del _nullspace_importlib, _nullspace_sys
"""


def _config(template_json: str = DEFAULT_TEMPLATE_JSON) -> dict[str, Any]:
    try:
        with open(template_json, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        data = {}
    packages = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(packages, dict) or not isinstance(data.get("home"), str):
        raise AgentError(
            409, "package_install_failed",
            "this sandbox's template was built before package installs were supported; rebuild it "
            "(nullspace template build …)",
        )  # fmt: skip
    return {**packages, "home": data["home"]}


async def install(request: Request) -> Response:
    from .app import _registry

    body = await json_body(request)
    language = body.get("language") or "python"
    packages = body.get("packages")
    if not isinstance(packages, list) or not all(
        isinstance(p, str) and p and not p.startswith("-") for p in packages
    ):
        raise AgentError(400, "invalid_argument", "packages must be a list of requirement strings")
    timeout = body.get("timeout") or DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise AgentError(400, "invalid_argument", "timeout must be a positive number of seconds")
    config = _config()
    wheel_names = body.get("wheels")
    if wheel_names is not None and (
        not isinstance(wheel_names, list)
        or not all(
            isinstance(w, str) and w.endswith(".whl") and "/" not in w and not w.startswith(".")
            for w in wheel_names
        )
    ):
        raise AgentError(400, "invalid_argument", "wheels must be a list of wheel file names")
    if language == "python":
        result = await install_python(_registry(request), config, packages, float(timeout), wheel_names)
    elif language == "javascript":
        result = link_node_modules(config)
    else:
        raise AgentError(400, "invalid_argument", f"unsupported package language {language!r}")
    return JSONResponse(result)


async def install_python(
    registry: Registry,
    config: dict[str, Any],
    packages: list[str],
    timeout: float,
    wheel_names: list[str] | None = None,
) -> dict[str, Any]:
    site, prefix, cache = config["python_site"], config["python_prefix"], config["cache"]
    os.makedirs(site, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".install-", dir=prefix)
    started = time.monotonic()
    if wheel_names:
        paths = [os.path.join(cache, "wheels", name) for name in wheel_names]
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        try:
            fast = await asyncio.to_thread(_fast_install, paths, staging, version, site)
        except wheels.Conflict as exc:
            shutil.rmtree(staging, ignore_errors=True)
            return {"status": "error", "installed": [], "log": f"ERROR: {exc}\n"}
        if fast is not None:
            done, lines, old = fast
            try:
                for dist_info in old:
                    wheels.uninstall(dist_info, site)
                _move_in(staging, site, prefix)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            output = (
                "\n".join(lines) + f"\n[unpacked the resolved wheels: {time.monotonic() - started:.2f} s]\n"
            )
            return await _finish(registry, site, packages, done, output)
        shutil.rmtree(staging, ignore_errors=True)
        staging = tempfile.mkdtemp(prefix=".install-", dir=prefix)
    argv = [
        sys.executable, "-m", "pip", "install",
        "--no-index", "--find-links", f"{cache}/wheels", "--only-binary", ":all:",
        "--prefix", staging, "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
        "--no-warn-script-location", "--no-cache-dir", "--", *packages,
    ]  # fmt: skip
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PYTHONUNBUFFERED": "1"}
    try:
        code, output = await _run(argv, env, timeout)
        if code != 0:
            return {"status": "error", "installed": [], "log": output}
        try:  # pip --prefix leaves an older version in the user site alone: remove it here
            for dist_info in wheels.replaced(_staged_distributions(staging), site):
                wheels.uninstall(dist_info, site)
        except wheels.Conflict as exc:
            return {"status": "error", "installed": [], "log": f"{output}ERROR: {exc}\n"}
        installed = _move_in(staging, site, prefix)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    output += f"[pip install: {time.monotonic() - started:.2f} s]\n"
    return await _finish(registry, site, packages, installed, output)


def _fast_install(
    paths: list[str], staging: str, version: str, site: str
) -> tuple[list[tuple[str, str]], list[str], list[str]] | None:
    try:
        return wheels.install(paths, staging, version, site)
    except wheels.Conflict:
        raise
    except Exception:  # anything unexpected: pip does it
        log.exception("unpacking wheels failed; falling back to pip")
        return None


async def _finish(
    registry: Registry, site: str, packages: list[str], installed: list[tuple[str, str]], output: str
) -> dict[str, Any]:
    importlib.invalidate_caches()
    new = {_normalize(name) for name, _ in installed}
    for name in packages:
        project = re.match(r"[A-Za-z0-9._-]+", name)
        if project and _normalize(project.group(0)) not in new:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                dist = importlib.metadata.distribution(project.group(0))
                installed.append((dist.metadata["Name"] or project.group(0), dist.version))
    await refresh_contexts(registry, site)
    return {
        "status": "ok",
        "installed": [{"name": name, "version": version} for name, version in installed],
        "log": output,
    }


async def _run(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        return 124, f"pip install did not finish within {timeout:.0f} s\n"
    text = out.decode("utf-8", "replace")
    return proc.returncode or 0, text[-MAX_LOG:]


def _staged_distributions(staging: str) -> list[tuple[str, str]]:
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    staged_site = os.path.join(staging, "lib", version, "site-packages")
    entries = os.listdir(staged_site) if os.path.isdir(staged_site) else []
    return [(m.group("name"), m.group("version")) for m in map(_DIST_INFO.match, entries) if m]


def _move_in(staging: str, site: str, prefix: str) -> list[tuple[str, str]]:
    """Merge pip's staged tree into place (files replace files, directories merge: namespace
    packages shared by several distributions survive); returns each new (name, version)."""
    installed = []
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    staged_site = os.path.join(staging, "lib", version, "site-packages")
    if os.path.isdir(staged_site):
        for entry in sorted(os.listdir(staged_site)):
            match = _DIST_INFO.match(entry)
            if match:
                installed.append((match.group("name"), match.group("version")))
        _merge(staged_site, site)
        shutil.rmtree(os.path.join(staging, "lib"))
    _merge(staging, prefix)
    return installed


def _merge(source: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    for entry in sorted(os.listdir(source)):
        src, dst = os.path.join(source, entry), os.path.join(target, entry)
        if os.path.isdir(src) and not os.path.islink(src) and os.path.isdir(dst) and not os.path.islink(dst):
            _merge(src, dst)
            continue
        if os.path.lexists(dst):
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            else:
                os.unlink(dst)
        os.rename(src, dst)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


async def refresh_contexts(registry: Registry, site: str) -> None:
    """`importlib.invalidate_caches()` in every live Python context, silently. A context busy
    with a run gets it when the run ends (its directory cache refreshes by itself anyway:
    the site directory existed when the kernel started)."""
    code = INVALIDATE.format(site=site)
    for ctx in list(registry.contexts.values()):
        if ctx.language != "python" or not ctx.kernel_ok or ctx.closed:
            continue
        if ctx.run_lock.locked():
            asyncio.get_running_loop().create_task(_refresh_later(ctx, code, registry))
            continue
        async with ctx.run_lock:
            await silent(ctx.kernel, code, poll_interval=registry.config.poll_interval)


async def _refresh_later(ctx: Any, code: str, registry: Registry) -> None:
    with contextlib.suppress(Exception):
        async with ctx.run_lock:
            if ctx.kernel_ok and not ctx.closed:
                await silent(ctx.kernel, code, poll_interval=registry.config.poll_interval)


def link_node_modules(config: dict[str, Any]) -> dict[str, Any]:
    """Point ~/node_modules and ~/package.json at the npm project in the cache view."""
    home, project = config["home"], os.path.join(config["cache"], "npm")
    lines = []
    for name in ("node_modules", "package.json"):
        target, link = os.path.join(project, name), os.path.join(home, name)
        if not os.path.exists(target):
            return {"status": "error", "installed": [], "log": f"{target} is missing"}
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link) and not os.path.islink(link):
            return {
                "status": "error",
                "installed": [],
                "log": f"{link} exists and is not a link; move it away to use installed npm packages",
            }
        temporary = f"{link}.nullspace-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, link)
        lines.append(f"{link} -> {target}")
    return {"status": "ok", "installed": [], "log": "\n".join(lines)}


routes = [Route("/packages", install, methods=["POST"])]
