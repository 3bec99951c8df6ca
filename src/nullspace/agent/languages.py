"""What differs between languages at the kernel level: transport, and starting ahead of need.

* **Transport.** Kernels listen on IPC (unix) sockets by default. Deno's kernel and JJava
  (JeroMQ) only speak TCP; their kernelspec says so in ``metadata.nullspace.transport`` and the
  agent then connects over 127.0.0.1, which is the sandbox's own loopback (its own network
  namespace), so no one outside the sandbox can reach those ports.
* **Prestart.** After the boot language's default context is ready, the agent starts the
  default contexts of the template's ``prestart`` languages (template.json, e.g. bash, javascript,
  r) in the background, one at a time, each only after the sandbox has been idle for
  ``prestart_delay`` seconds, so a prestart never competes with a user's run for the CPU. A run
  in such a language then finds its kernel ready instead of paying its 0.4–1.5 s start. The
  sandbox env ``NULLSPACE_PRESTART`` overrides the list (``none``, ``all`` or ``r,java``). It
  begins only once the sandbox is in use (first request other than /health: an unclaimed
  warm-pool sandbox stays small), and with ``NULLSPACE_MEMORY_MB`` in the environment it keeps
  the prestarted kernels within a third of that limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .config import prestart_override, resolve_prestart

if TYPE_CHECKING:
    from .contexts import Registry

log = logging.getLogger("nullspace.agent")

MEMORY_ENV = "NULLSPACE_MEMORY_MB"
"""The sandbox's memory limit, when the server passes it: prestart then keeps within a third."""

IDLE_MIB = {"bash": 15, "r": 110, "javascript": 180, "typescript": 180, "java": 170}
"""Measured idle memory of each kernel (Private_Dirty after one run, docs/benchmarks.md)."""


def launch_env(language: str) -> dict[str, str] | None:
    """The environment a kernel of `language` starts with (None: the agent's own).

    Java: without /sys the JVM cannot see its cgroup and sizes its heap from the host's RAM, so a
    big allocation got the kernel OOM-killed (``OutOfMemory``, state lost) instead of raising
    ``OutOfMemoryError`` in the run. ``JDK_JAVA_OPTIONS`` gives it the sandbox's limit; half of
    it is heap, the rest is for the JVM itself and the sandbox's other processes.
    """
    if language != "java":
        return None
    try:
        memory_mb = int(os.environ.get(MEMORY_ENV, ""))
    except ValueError:
        return None
    options = f"-XX:MaxRAM={memory_mb}m -XX:MaxRAMPercentage=50"
    extra = os.environ.get("JDK_JAVA_OPTIONS")
    return {**os.environ, "JDK_JAVA_OPTIONS": f"{options} {extra}" if extra else options}


def apply_transport(km: Any) -> None:
    """Switch a kernel manager to TCP on 127.0.0.1 when its kernelspec cannot do IPC."""
    try:
        metadata = km.kernel_spec.metadata or {}
    except Exception:  # no such kernelspec: start_kernel reports it
        return
    options = metadata.get("nullspace") if isinstance(metadata, dict) else None
    if isinstance(options, dict) and options.get("transport") == "tcp":
        km.transport = "tcp"
        km.ip = "127.0.0.1"


def within_budget(languages: Iterable[str], memory_mb: str | None) -> list[str]:
    """The prefix-greedy subset of `languages` whose idle kernels fit in a third of the
    sandbox's memory (all of them when the limit is unknown)."""
    try:
        budget = int(memory_mb) / 3 if memory_mb else None
    except ValueError:
        budget = None
    chosen = []
    for language in languages:
        cost = IDLE_MIB.get(language, 100)
        if budget is None or cost <= budget:
            chosen.append(language)
            budget = None if budget is None else budget - cost
    return chosen


def _idle(registry: Registry) -> bool:
    return all(not ctx.run_lock.locked() for ctx in list(registry.contexts.values()))


async def _wait_idle(registry: Registry, delay: float, step: float = 0.1) -> None:
    """Until no context has had a run for `delay` seconds in a row."""
    quiet = 0.0
    while quiet < delay:
        await asyncio.sleep(step)
        quiet = quiet + step if _idle(registry) else 0.0


_used: weakref.WeakKeyDictionary[Any, asyncio.Event] = weakref.WeakKeyDictionary()


def _used_event(registry: Registry) -> asyncio.Event:
    event = _used.get(registry)
    if event is None:
        event = _used[registry] = asyncio.Event()
    return event


class FirstRequest:
    """ASGI middleware: marks the sandbox as in use at its first request other than /health.

    A warm-pool sandbox sits unclaimed, answering health checks only: it must not grow by a few
    hundred MiB of kernels before the claimer's memory limit and envs (``NULLSPACE_PRESTART``)
    arrive. So prestart waits for this."""

    def __init__(self, app: Any, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") != "/health":
            _used_event(self.registry).set()
        await self.app(scope, receive, send)


async def prestart(registry: Registry, languages: Iterable[str], delay: float) -> None:
    """Start the default context of each language: once booted and in use, each after an idle
    spell. ``NULLSPACE_PRESTART``, read when it begins (a pool claimer's envs arrive late),
    overrides `languages`."""
    while not registry.ready:
        if registry.boot_error:
            return
        await asyncio.sleep(0.05)
    await _used_event(registry).wait()
    await _wait_idle(registry, delay)
    override = prestart_override()
    if override is not None:
        config = registry.config
        languages = resolve_prestart(None, config.kernels, config.boot_language, override)
    languages = within_budget(languages, os.environ.get(MEMORY_ENV))
    for i, language in enumerate(languages):
        if i:
            await _wait_idle(registry, delay)
        if language in registry.defaults:
            continue  # a run already started it
        try:
            await registry.default_context(language)
            log.info("prestarted the %s kernel", language)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the first run in that language retries and reports it
            log.warning("prestarting the %s kernel failed: %s", language, getattr(exc, "message", exc))


def start_prestart(registry: Registry) -> asyncio.Task[None] | None:
    """Schedule `prestart` for the registry's configured languages."""
    config = registry.config
    languages = getattr(config, "prestart", ())
    return asyncio.create_task(
        prestart(registry, languages, getattr(config, "prestart_delay", 1.0)), name="prestart"
    )


# -- error names ------------------------------------------------------------------------------------

# JJava reports every exception a snippet throws as ename "RuntimeException" (JShell's wrapper)
# with evalue "<class name>, <message>", and a compile error as "CompilationException" with the
# rejected snippet as the value and the diagnostics in the traceback.
_JSHELL_THROWN = re.compile(r"^(?P<cls>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+), (?P<msg>.*)$", re.DOTALL)
_JSHELL_REJECTED = re.compile(r"^\[snippet: \[.*\], status: REJECTED\]$", re.DOTALL)


def tidy_error(name: str, value: str, traceback: str) -> tuple[str, str]:
    """A kernel error's (name, value) in the shape every language shares: the exception class's
    simple name and its bare message. Only rewrites the JJava forms above."""
    if name == "RuntimeException":
        match = _JSHELL_THROWN.match(value)
        if match:
            message = match.group("msg")
            return match.group("cls").rsplit(".", 1)[-1], "" if message == "null" else message
    elif name == "CompilationException" and _JSHELL_REJECTED.match(value):
        diagnostics = [line for line in traceback.splitlines() if line.strip() and not line.startswith("|")]
        if diagnostics:
            return name, diagnostics[0].strip()
    return name, value


def iopub_settle(km: Any) -> float:
    """Seconds a run lingers after execute_reply + idle for late iopub messages: Deno publishes
    results and output from other tasks than its status messages, so they can arrive just after
    ``idle`` (measured: 0.1–2 ms; 13 of 200 runs). From kernelspec ``metadata.nullspace.settle``."""
    try:
        metadata = km.kernel_spec.metadata or {}
    except Exception:
        return 0.0
    options = metadata.get("nullspace") if isinstance(metadata, dict) else None
    value = options.get("settle") if isinstance(options, dict) else None
    return float(value) if isinstance(value, int | float) and 0 < value <= 1 else 0.0
