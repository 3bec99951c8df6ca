"""Package installs into a running sandbox: the trusted side (ARCHITECTURE §4, §7.4).

The sandbox has no network. For `POST /v1/sandboxes/{id}/packages` the server:

1. validates every requirement strictly (`templates.spec.package_problem`: a name and a
   version specifier, nothing that pip or npm could read as an option, URL or path);
2. resolves and downloads on the host, as a child process through the reaper, with a timeout:
   Python with `pip download --only-binary :all:` for the template's interpreter and platform
   (wheels only: no package code runs on the host), constrained to the versions the template
   and earlier installs already have, into the shared cache `<data_dir>/cache/wheels`. A
   request pinned with `==` is answered from an earlier identical resolution
   (`<data_dir>/cache/resolutions/`), else offline from the cache when its wheels are there;
   JavaScript with `npm install --ignore-scripts` into a staging copy of the sandbox's npm
   project (npm's own cache is `<data_dir>/cache/npm`);
3. puts exactly those files into the sandbox's own cache view (`<sandbox>/cache`, bound
   read-only at /opt/nullspace/cache; wheels are hard links into the shared cache), so a
   sandbox never sees what other sandboxes installed;
4. asks the agent to install from that view (agent/packages.py).

A package that does not exist or does not resolve fails in step 2, before the sandbox is
touched; the error (`PackageInstallError`) carries pip's or npm's message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import InvalidArgumentError, PackageInstallError
from ..runtime.reaper import Reaper
from ..templates import _python, _steps, _store
from ..templates.spec import npm_name, package_problem
from .agent_client import AgentError
from .lifecycle import LiveSandbox

MAX_PACKAGES = 64
MAX_LOG = 64 << 10
MAX_MESSAGE = 4000
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 1800.0
LANGUAGES = ("python", "javascript")


@dataclass
class InstallOutcome:
    """What an install did: `installed` `[{"name", "version"}]` and the combined log."""

    installed: list[dict[str, str]] = field(default_factory=list)
    log: str = ""


class PackageInstaller:
    """Installs packages into running sandboxes; one install per sandbox at a time."""

    def __init__(self, data_dir: Path, reaper: Reaper) -> None:
        self.data_dir = data_dir
        self.reaper = reaper
        self._locks: dict[str, asyncio.Lock] = {}

    async def install(
        self, live: LiveSandbox, packages: Sequence[str], language: str, timeout: float | None
    ) -> InstallOutcome:
        """Resolve and fetch on the host, then install in the sandbox.

        Raises:
            InvalidArgumentError: a requirement is malformed, or the language is unknown.
            PackageInstallError: resolution, download or installation failed (sandbox unchanged).
        """
        language = (language or "python").lower()
        if language not in LANGUAGES:
            raise InvalidArgumentError(
                f"language {language!r}: packages can be installed for {', '.join(LANGUAGES)}"
            )
        if not packages or len(packages) > MAX_PACKAGES:
            raise InvalidArgumentError(f"give 1 to {MAX_PACKAGES} packages")
        for package in packages:
            problem = package_problem(package, language)
            if problem:
                raise InvalidArgumentError(f"package {package!r} {problem}")
        if len(set(packages)) != len(packages):
            raise InvalidArgumentError("a package is listed twice")
        timeout = min(timeout or DEFAULT_TIMEOUT, MAX_TIMEOUT)
        deadline = time.monotonic() + timeout
        lock = self._locks.setdefault(live.record.id, asyncio.Lock())
        try:
            async with lock:
                meta = _store.read_meta(self.data_dir, live.record.template, live.record.digest) or {}
                if language == "python":
                    return await self._python(live, list(packages), meta, deadline)
                return await self._javascript(live, list(packages), meta, deadline)
        finally:
            if not lock.locked():
                self._locks.pop(live.record.id, None)

    # -- Python ----------------------------------------------------------------------------------

    async def _python(
        self, live: LiveSandbox, packages: list[str], meta: dict[str, Any], deadline: float
    ) -> InstallOutcome:
        python = meta.get("python")
        if not isinstance(python, dict) or not isinstance(python.get("tags"), dict):
            raise PackageInstallError(
                f"template {live.record.template!r} was built before package installs were supported; "
                "rebuild it (nullspace template build …)"
            )
        tags = _python.TargetTags(
            version=python["tags"]["version"],
            implementation=python["tags"]["implementation"],
            abis=tuple(python["tags"]["abis"]),
            platforms=tuple(python["tags"]["platforms"]),
        )
        base = live.running.base
        state = _read_state(base)
        pinned = {**(python.get("packages") or {}), **state.get("python", {})}
        cache = _store.wheel_cache(self.data_dir)
        cache.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ns-pip-") as scratch:
            constraints = _steps.write_constraints(pinned, packages, Path(scratch))
            log, wheels = await self._download(packages, cache, tags, constraints, deadline)
        log += f"[host: resolved and fetched in {time.monotonic() - started:.2f} s]\n"
        view = base / "cache" / "wheels"
        for wheel in wheels:
            target = view / wheel.name
            if not target.exists():
                try:
                    os.link(wheel, target)
                except OSError:
                    shutil.copy2(wheel, target)
        started = time.monotonic()
        body = {"language": "python", "packages": packages, "wheels": [w.name for w in wheels]}
        reply = await self._agent(live, body, deadline)
        log += reply["log"] + f"[sandbox: installed in {time.monotonic() - started:.2f} s]\n"
        if reply["status"] != "ok":
            raise PackageInstallError(_failure("pip install (in the sandbox)", packages, reply["log"]))
        installed = reply["installed"]
        # Later installs are pinned to what is here now: take that from the wheels the host
        # resolved, never from what the sandbox says (it could smuggle lines into the
        # constraints file pip reads on the host).
        python_state = state.setdefault("python", {})
        for wheel in wheels:
            match = _WHEEL.match(wheel.name)
            if match:
                python_state[_python.project_name(match.group("name"))] = match.group("version")
        _write_state(base, state)
        return InstallOutcome(installed, log[-MAX_LOG:])

    async def _download(
        self, packages: list[str], cache: Path, tags: _python.TargetTags, constraints: Path, deadline: float
    ) -> tuple[str, list[Path]]:
        """`pip download`; when every requirement is pinned with `==`: first a resolution this
        server already made for the same request (no pip at all), then offline from the cache."""
        log = ""
        pinned = all("==" in p and "," not in p for p in packages)
        memo = cache.parent / "resolutions" / f"{_request_key(packages, tags, constraints)}.json"
        if pinned:
            wheels = _recall(memo, cache)
            if wheels:
                return (
                    f"$ pip download {' '.join(packages)}\nresolved as before: {' '.join(w.name for w in wheels)}\n",
                    wheels,
                )
        # offline only when every pinned wheel is already here (else it would fail: ~1 s lost)
        attempts = [True, False] if pinned and all(_cached_wheel(p, cache) for p in packages) else [False]
        for offline in attempts:
            argv = _python.pip_download_argv(packages, cache, tags, constraints=constraints, offline=offline)
            if shutil.which("flock"):
                argv = ["flock", str(cache / ".lock"), *argv]  # one writer at a time, also with builds
            code, output = await self._run(argv, cache, deadline, "pip download")
            if code == 0:
                names = [n for n in (_python.saved_wheel(line) for line in output.splitlines()) if n]
                wheels = [cache / n for n in dict.fromkeys(names)]
                if wheels and all(w.suffix == ".whl" and w.is_file() for w in wheels):
                    if pinned:
                        _remember(memo, wheels)
                    header = "(from the cache) " if offline else ""
                    return log + f"$ pip download {header}{' '.join(packages)}\n{output}", wheels
            if not offline:
                raise PackageInstallError(_failure("pip download", packages, output))
            log += "(not all in the cache: resolving online)\n"
        raise AssertionError("unreachable")  # pragma: no cover

    # -- JavaScript ------------------------------------------------------------------------------

    async def _javascript(
        self, live: LiveSandbox, packages: list[str], meta: dict[str, Any], deadline: float
    ) -> InstallOutcome:
        base = live.running.base
        live_project = base / "cache" / "npm"
        staging = base / "npm-staging"
        await asyncio.to_thread(_prepare_npm_staging, live_project, staging, meta.get("npm"))
        try:
            before = _lock_versions(staging)
            argv = _steps.npm_command(staging, packages, _store.npm_cache(self.data_dir))
            code, output = await self._run(argv, staging, deadline, "npm install", env=_steps.npm_env())
            if code != 0:
                raise PackageInstallError(_failure("npm install", packages, output))
            after = _lock_versions(staging)
            await asyncio.to_thread(_swap_in, staging, live_project, base / "npm-old")
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        reply = await self._agent(live, {"language": "javascript", "packages": packages}, deadline)
        if reply["status"] != "ok":
            raise PackageInstallError(_failure("linking node_modules", packages, reply["log"]))
        requested = {npm_name(p) for p in packages}
        installed = [
            {"name": name, "version": version}
            for name, version in sorted(after.items())
            if name in requested or before.get(name) != version
        ]
        return InstallOutcome(
            installed, f"$ npm install {' '.join(packages)}\n{output}{reply['log']}"[-MAX_LOG:]
        )

    # -- plumbing --------------------------------------------------------------------------------

    async def _run(
        self, argv: list[str], cwd: Path, deadline: float, what: str, env: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """A host child through the reaper; output to a file; killed at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PackageInstallError(f"{what}: out of time before it started")
        with tempfile.TemporaryFile() as out:
            process, exited = await self.reaper.spawn(
                argv, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env or _host_env(), start_new_session=True,
            )  # fmt: skip
            try:
                code = await asyncio.wait_for(asyncio.shield(exited), remaining)
            except TimeoutError:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await exited
                raise PackageInstallError(f"{what} did not finish within the install timeout") from None
            out.seek(max(0, out.seek(0, os.SEEK_END) - MAX_LOG))
            return code, out.read().decode("utf-8", "replace")

    async def _agent(self, live: LiveSandbox, body: dict[str, Any], deadline: float) -> dict[str, Any]:
        remaining = max(1.0, deadline - time.monotonic())
        try:
            reply = await live.agent.request(
                "POST", "/packages", json_body={**body, "timeout": remaining}, timeout=remaining + 10
            )
        except AgentError as exc:
            raise PackageInstallError(f"the sandbox could not install: {exc}") from exc
        return _check_reply(reply)


_WHEEL = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$"
)
_NAME = re.compile(r"^(?:@[A-Za-z0-9._-]+/)?[A-Za-z0-9][A-Za-z0-9._-]{0,213}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$")


def _check_reply(reply: Any) -> dict[str, Any]:
    """The agent is untrusted: keep only well-formed fields, bounded."""
    if not isinstance(reply, dict) or reply.get("status") not in ("ok", "error"):
        raise PackageInstallError("the sandbox agent gave a malformed answer to the install")
    installed = []
    for item in reply.get("installed") or []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("version"), str)
            and _NAME.match(item["name"])
            and _VERSION.match(item["version"])
        ):
            installed.append({"name": item["name"], "version": item["version"]})
    log = reply.get("log")
    return {
        "status": reply["status"],
        "installed": installed[:1000],
        "log": log[-MAX_LOG:] if isinstance(log, str) else "",
    }


def _request_key(packages: Sequence[str], tags: _python.TargetTags, constraints: Path) -> str:
    body = json.dumps(
        {"packages": sorted(packages), "tags": [tags.version, tags.implementation, tags.abis, tags.platforms],
         "constraints": constraints.read_text()},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(body.encode()).hexdigest()


def _cached_wheel(requirement: str, cache: Path) -> bool:
    """Whether a wheel of `name==version` is in the cache (wheel names: PEP 427 escaping)."""
    match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*==\s*([A-Za-z0-9.+!_-]+)\s*$", requirement)
    if not match:
        return False
    name, version = re.sub(r"[-_.]+", "_", match.group(1)).lower(), match.group(2).lower()
    for wheel in cache.glob("*.whl"):
        parts = wheel.name.split("-")
        if (
            len(parts) >= 5
            and re.sub(r"[-_.]+", "_", parts[0]).lower() == name
            and parts[1].lower() == version
        ):
            return True
    return False


def _recall(memo: Path, cache: Path) -> list[Path]:
    """The wheels of an earlier resolution of the same fully pinned request, if all still there."""
    try:
        names = json.loads(memo.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(names, list) or not names:
        return []
    wheels = [cache / n for n in names if isinstance(n, str) and "/" not in n and n.endswith(".whl")]
    return wheels if len(wheels) == len(names) and all(w.is_file() for w in wheels) else []


def _remember(memo: Path, wheels: list[Path]) -> None:
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([w.name for w in wheels]))
    os.replace(tmp, memo)


def _failure(what: str, packages: Sequence[str], output: str) -> str:
    """The installer's own message: its ERROR lines, else its last lines."""
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^\s*(ERROR|npm (ERR|error))\b", line)]
    shown = "\n".join(errors or lines[-15:])
    return f"{what} failed for {', '.join(packages)}:\n{shown}"[:MAX_MESSAGE]


def _host_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _read_state(base: Path) -> dict[str, Any]:
    """What earlier installs put into this sandbox (kept on the host, outside its view)."""
    try:
        data = json.loads((base / "packages.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(base: Path, state: dict[str, Any]) -> None:
    path = base / "packages.json"
    path.write_text(json.dumps(state, sort_keys=True))
    os.chmod(path, 0o600)


def _prepare_npm_staging(live_project: Path, staging: Path, template_npm: Any) -> None:
    """A copy of the sandbox's npm project (or a fresh one from the template's package.json and
    lock, so the template's packages keep their versions)."""
    shutil.rmtree(staging, ignore_errors=True)
    if (live_project / "package.json").is_file():
        shutil.copytree(live_project, staging, symlinks=True)
        return
    staging.mkdir(mode=0o755)
    files = template_npm.get("files") if isinstance(template_npm, dict) else None
    for name, text in (files or {}).items():
        if name in ("package.json", "package-lock.json") and isinstance(text, str):
            (staging / name).write_text(text)


def _swap_in(staging: Path, live_project: Path, old: Path) -> None:
    """Replace the sandbox's npm project by the staged one (readable by the sandbox uid)."""
    for dirpath, dirnames, filenames in os.walk(staging):  # never follows symlinks
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)
    os.chmod(staging, 0o755)
    shutil.rmtree(old, ignore_errors=True)
    os.rename(live_project, old)
    os.rename(staging, live_project)
    shutil.rmtree(old, ignore_errors=True)


def _lock_versions(project: Path) -> dict[str, str]:
    """name → version of every package in the project's package-lock.json."""
    try:
        lock = json.loads((project / "package-lock.json").read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for path, info in (lock.get("packages") or {}).items():
        if path and isinstance(info, dict) and isinstance(info.get("version"), str):
            found[path.rsplit("node_modules/", 1)[-1]] = info["version"]
    return found
