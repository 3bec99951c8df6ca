"""Prometheus metrics: every instrument of the server, in this one module.

The rest of the server calls a handful of hooks (`Metrics.created`, `observe_create`,
`observe_run`, `pool_claimed`, `sandbox_ended`, `installing`) and `RequestMetrics` wraps the ASGI
app. Levels that already live in memory (running sandboxes, pool sizes) are read when Prometheus
scrapes (`_LiveCollector`), so they cost nothing between scrapes. Each app gets its own
`CollectorRegistry`: two servers in one process (tests) never mix their numbers.

Every label value comes from a closed set: a sandbox is hostile and a client may send any method
or path, so unknown values become ``other`` / ``unmatched`` and can never grow the series count.
`GET /metrics` answers only the unix socket and admin keys (docs/operations.md).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .._version import __version__

if TYPE_CHECKING:
    from .lifecycle import SandboxManager

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])

events = logging.getLogger("nullspace.sandbox")  # one line per sandbox start and end

CREATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RUN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
INSTALL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LIMIT_RESOURCES = frozenset({"memory", "pids", "disk"})
PACKAGE_LANGUAGES = frozenset({"python", "javascript"})
# error event name → kernel death kind / run outcome
KERNEL_DEATHS = {"OutOfMemory": "out_of_memory", "KernelDied": "crashed"}
RUN_ERRORS = {
    "ExecutionTimeout": "timeout",
    "OutOfMemory": "kernel_died",
    "KernelDied": "kernel_died",
    "SandboxEnded": "sandbox_ended",
    "AgentError": "agent_error",
}
E2B_PORTS = frozenset({b"49999", b"49983"})
E2B_CONTROL = ("/sandboxes", "/v2/sandboxes")
UNRESOLVED = frozenset({"template_not_found", "invalid_argument"})
END_STATES = frozenset({"killed", "timed_out", "dead"})


@dataclass
class _CreateObservation:
    start: str = "cold"


_create: contextvars.ContextVar[_CreateObservation | None] = contextvars.ContextVar("ns_create", default=None)


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code.isidentifier() and len(code) <= 40:
        return code
    name = type(exc).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class Metrics:
    """The server's instruments on their own registry; `render()` is the scrape body."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: Prometheus does not need them
        r = self.registry = CollectorRegistry(auto_describe=True)
        Info("nullspace_build", "Version of this server", registry=r).info({"version": __version__})
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        self.creates = Counter(
            "nullspace_sandbox_creates", "Sandbox creates by template and outcome "
            "(warm: from the pool, cold: started for the caller, else the error code)",
            ["template", "outcome"], registry=r,
        )
        self.create_seconds = Histogram(
            "nullspace_sandbox_create_seconds", "Create request to a ready sandbox (kernel answering)",
            ["template", "start"], buckets=CREATE_BUCKETS, registry=r,
        )
        self.ended = Counter(
            "nullspace_sandboxes_ended", "Sandboxes that ended, by template and how "
            "(killed, timed_out, dead: its agent exited or the server stopped)",
            ["template", "state"], registry=r,
        )
        self.runs = Counter(
            "nullspace_runs", "Code runs by outcome (ok, error, timeout, kernel_died, sandbox_ended, "
            "agent_error, abandoned: the client went away)", ["outcome"], registry=r,
        )
        self.run_seconds = Histogram(
            "nullspace_run_seconds", "Code runs, request to end of execution", buckets=RUN_BUCKETS, registry=r,
        )
        self.kernel_deaths = Counter(
            "nullspace_kernel_deaths", "Kernels that died during a run (out_of_memory, crashed)",
            ["kind"], registry=r,
        )
        self.limit_hits = Counter(
            "nullspace_limit_hits", "Runs or writes that hit a sandbox limit (memory, pids, disk)",
            ["resource"], registry=r,
        )
        self.pool_claims = Counter(
            "nullspace_pool_claims", "Creates served by a warm sandbox", ["template"], registry=r,
        )
        self.pool_misses = Counter(
            "nullspace_pool_misses", "Creates of a pooled template that found the pool empty (cold start)",
            ["template"], registry=r,
        )
        self.installs = Counter(
            "nullspace_package_installs", "Package installs by language and outcome (ok or the error code)",
            ["language", "outcome"], registry=r,
        )
        self.install_seconds = Histogram(
            "nullspace_package_install_seconds", "Package installs, request to installed",
            ["language"], buckets=INSTALL_BUCKETS, registry=r,
        )
        self.requests = Counter(
            "nullspace_http_requests", "HTTP requests by method, route template and status; "
            "errors are status >= 400", ["method", "route", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "nullspace_http_request_seconds", "HTTP requests, first byte in to last byte out "
            "(streams included)", ["method", "route"], buckets=REQUEST_BUCKETS, registry=r,
        )
        self._live: _LiveCollector | None = None

    def watch(self, manager: SandboxManager) -> None:
        """Report the manager's running sandboxes and warm pools at each scrape."""
        if self._live is None:
            self._live = _LiveCollector(manager)
            self.registry.register(self._live)

    def render(self) -> tuple[bytes, str]:
        """The scrape body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- hooks ------------------------------------------------------------------------------
    def sandbox_ended(self, sandbox_id: str, template: str, state: str, reason: str) -> None:
        self.ended.labels(template, state if state in END_STATES else "other").inc()
        events.info("sandbox ended (%s): %s", state, reason, extra={"sandbox_id": sandbox_id})

    def pool_claimed(self, template: str, *, hit: bool, pooled: bool) -> None:
        """A create asked the pool for a sandbox of `template` (`pooled`: the pool keeps some)."""
        if hit:
            self.pool_claims.labels(template).inc()
            observation = _create.get()
            if observation is not None:
                observation.start = "warm"
        elif pooled:
            self.pool_misses.labels(template).inc()

    def limit_hit(self, resource: str) -> None:
        self.limit_hits.labels(resource if resource in LIMIT_RESOURCES else "other").inc()

    @contextmanager
    def installing(self, language: str) -> Iterator[None]:
        """Count and time one package install."""
        language = language if language in PACKAGE_LANGUAGES else "other"
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self.installs.labels(language, _error_code(exc)).inc()
            raise
        self.installs.labels(language, "ok").inc()
        self.install_seconds.labels(language).observe(time.perf_counter() - started)

    def run_event(self, event: dict[str, Any]) -> str | None:
        """Count what one run event says (deaths, limits); the run's outcome if it is an error."""
        kind = event.get("type")
        if kind == "error":
            name = event.get("name")
            death = KERNEL_DEATHS.get(name) if isinstance(name, str) else None
            if death:
                self.kernel_deaths.labels(death).inc()
                events.warning("a kernel died during a run (%s); its context restarted", death)
            return RUN_ERRORS.get(name, "error") if isinstance(name, str) else "error"
        if kind == "limit":
            resource = event.get("resource")
            resource = resource if isinstance(resource, str) and resource in LIMIT_RESOURCES else "other"
            self.limit_hit(resource)
            events.warning("a run hit the sandbox's %s limit", resource)
        return None


def observe_create(method: F) -> F:
    """Decorate `SandboxManager.create(req, ...)`: count it and time it to a ready sandbox."""

    @functools.wraps(method)
    async def create(self: SandboxManager, req: Any, *args: Any, **kwargs: Any) -> Any:
        metrics: Metrics = self.metrics
        template = str(req.template)
        observation = _CreateObservation()
        token = _create.set(observation)
        started = time.perf_counter()
        try:
            record = await method(self, req, *args, **kwargs)
        except BaseException as exc:
            code = _error_code(exc)
            # a name that never resolved must not become a series (any client can send one)
            metrics.creates.labels("other" if code in UNRESOLVED else template, code).inc()
            raise
        finally:
            _create.reset(token)
        seconds = time.perf_counter() - started
        metrics.creates.labels(template, observation.start).inc()
        metrics.create_seconds.labels(template, observation.start).observe(seconds)
        events.info("sandbox created from template %s (%s start, %.0f ms)", template, observation.start,
                    seconds * 1000, extra={"sandbox_id": getattr(record, "id", None)})
        return record

    return create  # type: ignore[return-value]


def observe_run(method: F) -> F:
    """Decorate `SandboxManager.execute` (an async generator of run events): outcome, duration,
    kernel deaths and limit hits, read from the events themselves."""

    @functools.wraps(method)
    async def execute(self: SandboxManager, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        metrics: Metrics = self.metrics
        events = method(self, *args, **kwargs)
        started = time.perf_counter()
        outcome: str | None = None
        ran = ended = False
        try:
            async for event in events:
                ran = True
                if event.get("type") == "end_of_execution":
                    ended = True
                    metrics.runs.labels(outcome or "ok").inc()
                    metrics.run_seconds.observe(time.perf_counter() - started)
                elif (error := metrics.run_event(event)) is not None and outcome is None:
                    outcome = error
                yield event
        finally:
            if ran and not ended:
                metrics.runs.labels("abandoned").inc()
            await events.aclose()

    return execute  # type: ignore[return-value]


class _LiveCollector(Collector):
    """Gauges read from the manager at scrape time (no cost between scrapes)."""

    def __init__(self, manager: SandboxManager) -> None:
        self.manager = manager

    def describe(self) -> list[Any]:
        return []  # collected on demand only; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sandboxes = GaugeMetricFamily(
            "nullspace_sandboxes", "Sandboxes the server holds now, by template and state "
            "(running, paused, stopping); warm pool sandboxes are in nullspace_pool_sandboxes",
            labels=["template", "state"],
        )
        counts: dict[tuple[str, str], int] = {}
        for live in list(self.manager.live.values()):
            state = "stopping" if live.stopping else "paused" if getattr(live, "paused", None) else "running"
            key = (live.record.template, state)
            counts[key] = counts.get(key, 0) + 1
        for (template, state), n in sorted(counts.items()):
            sandboxes.add_metric([template, state], n)
        yield sandboxes
        target = GaugeMetricFamily("nullspace_pool_target", "Warm sandboxes wanted per template", labels=["template"])
        level = GaugeMetricFamily(
            "nullspace_pool_sandboxes", "Warm pool sandboxes by template and state (ready, starting)",
            labels=["template", "state"],
        )
        pool = self.manager.pool
        for template, row in sorted((pool.status() if pool else {}).items()):
            target.add_metric([template], row["target"])
            level.add_metric([template, "ready"], row["ready"])
            level.add_metric([template, "starting"], row["starting"])
        yield target
        yield level


def _unrouted(scope: Scope) -> str:
    """A label for a request no router of this scope matched: the E2B door's traffic (its
    sub-apps route copies of the scope), else ``unmatched`` (404s, refused keys)."""
    headers = dict(scope.get("headers") or ())
    port = headers.get(b"e2b-sandbox-port")
    if port is not None:
        return f"e2b sandbox port {port.decode()}" if port in E2B_PORTS else "e2b sandbox other port"
    path = scope["path"]
    if any(path == p or path.startswith(p + "/") for p in E2B_CONTROL):
        return "e2b control plane"
    return "unmatched"


def instrument(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """Wrap a listener's whole app (E2B door included): the sandbox id for logs, then metrics."""
    from .logs import SandboxRequests

    return SandboxRequests(RequestMetrics(app, metrics))


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by its route template.

    The route is the template FastAPI matched (``/v1/sandboxes/{sandbox_id}/execute``), never
    the raw path; the E2B door's traffic counts per door (`_unrouted`), and a request that
    matched no route (or was refused before routing: a bad key) as ``unmatched``.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or _unrouted(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.request_seconds.labels(method, template).observe(time.perf_counter() - started)
