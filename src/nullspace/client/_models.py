"""Public data types of the SDK: results, logs, executions, contexts, sandbox info (no I/O)."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .._exceptions import ServerError
from ._artifacts import ArtifactInfo

CHART_MIME = "application/vnd.nullspace.chart+json"

# Result field → MIME type, in the order `Result.formats()` lists them.
MIME_FIELDS: dict[str, str] = {
    "text": "text/plain",
    "html": "text/html",
    "markdown": "text/markdown",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "pdf": "application/pdf",
    "latex": "text/latex",
    "json": "application/json",
    "javascript": "application/javascript",
    "chart": CHART_MIME,
}
_MAPPED_MIMES = frozenset(MIME_FIELDS.values())


@dataclass
class OutputMessage:
    """One chunk of stdout or stderr, as the kernel printed it.

    Attributes:
        line: The text (may hold several lines or part of one).
        timestamp: ISO-8601 time the server saw it, if known.
        error: True for stderr, False for stdout.
    """

    line: str
    timestamp: str | None = None
    error: bool = False

    def __str__(self) -> str:
        return self.line


@dataclass
class ExecutionError:
    """The error a run ended with (`name`, `value`, `traceback`), like a Python exception.

    Attributes:
        name: The exception class, or a server-made name: `OutOfMemory`, `KernelDied`,
            `ExecutionTimeout`, ... (docs/api.md).
        value: The message.
        traceback: The formatted traceback ("" for server-made errors).
        state_lost: True when the context's kernel was restarted because of this error (it
            died, or a timeout could not interrupt it): its variables and imports are gone.
            The context itself works again for the next run.
        details: Other fields the server sent, e.g. `signal` and `exit_code` for `KernelDied`,
            `limit` for `OutOfMemory`.
    """

    name: str
    value: str
    traceback: str = ""
    state_lost: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The error as a plain dict."""
        return asdict(self)


@dataclass
class EndOfExecution:
    """Last item of `run_code_stream`: the run's final `status` and the assembled `execution`.

    Attributes:
        status: "ok", "error" or "timeout" (whatever the server sent).
        execution: Everything the run produced (results, logs, error, limits, count).
    """

    status: str
    execution: Execution = field(repr=False)


@dataclass
class Logs:
    """Output chunks of a run, in order."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class Result:
    """One rich output of a run (`display()` or the value of the last expression).

    Attributes:
        data: The whole MIME bundle, keyed by MIME type.
        is_main_result: True for the value of the last expression.
        metadata: The kernel's display metadata.
        text, html, markdown, svg, png, jpeg, pdf, latex, json, javascript, chart: The
            bundle's entry for the matching MIME type, or None. `text` drops the quotes of a
            string's repr (`'abc'` → `abc`, as E2B does); `data["text/plain"]` stays raw. `png`, `jpeg` and `pdf` are base64
            strings; `chart` comes from `application/vnd.nullspace.chart+json`.
        extra: Bundle entries of MIME types not mapped to a field.
    """

    text: str | None
    html: str | None
    markdown: str | None
    svg: str | None
    png: str | None
    jpeg: str | None
    pdf: str | None
    latex: str | None
    json: Any
    javascript: str | None
    chart: Any

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        is_main_result: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.is_main_result = bool(is_main_result)
        self.metadata: dict[str, Any] = dict(metadata or {})
        for name, mime in MIME_FIELDS.items():
            setattr(self, name, self.data.get(mime))
        self.text = _unquote(self.text)
        if not self.chart:
            self.chart = None
        self.extra: dict[str, Any] = {k: v for k, v in self.data.items() if k not in _MAPPED_MIMES}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Result:
        """Build a Result from a wire `result` event."""
        data = event.get("data")
        metadata = event.get("metadata")
        return cls(
            data=data if isinstance(data, dict) else {},
            is_main_result=bool(event.get("is_main_result", False)),
            metadata=metadata if isinstance(metadata, dict) else {},
        )

    def formats(self) -> list[str]:
        """Names of the fields present, e.g. `["text", "png"]` (`extra` not included)."""
        return [name for name in MIME_FIELDS if getattr(self, name) is not None]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data: the bundle, `is_main_result` and `metadata`."""
        return {"data": self.data, "is_main_result": self.is_main_result, "metadata": self.metadata}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.text or ""

    def __repr__(self) -> str:
        parts = [f"formats={self.formats()!r}"]
        if self.text is not None:
            text = self.text if len(self.text) <= 80 else self.text[:77] + "..."
            parts.append(f"text={text!r}")
        if self.is_main_result:
            parts.append("is_main_result=True")
        if self.extra:
            parts.append(f"extra={sorted(self.extra)!r}")
        return f"Result({', '.join(parts)})"

    # Rich display in Jupyter / IPython.
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return dict(self.data)

    def _repr_html_(self) -> str | None:
        return self.html

    def _repr_markdown_(self) -> str | None:
        return self.markdown

    def _repr_svg_(self) -> str | None:
        return self.svg

    def _repr_latex_(self) -> str | None:
        return self.latex

    def _repr_json_(self) -> Any:
        return self.json

    def _repr_javascript_(self) -> str | None:
        return self.javascript

    def _repr_png_(self) -> bytes | None:
        return base64.b64decode(self.png) if self.png else None

    def _repr_jpeg_(self) -> bytes | None:
        return base64.b64decode(self.jpeg) if self.jpeg else None


@dataclass
class Execution:
    """Everything one `run_code` produced.

    Attributes:
        results: Rich outputs, in order.
        logs: stdout and stderr chunks.
        error: The error the run ended with, or None.
        execution_count: The kernel's execution counter for this run.
        limits: `limit` events (sandbox limits hit during the run) as dicts.
        network_refusals: Destinations the egress proxy refused while the run went on
            (host, port, reason), as dicts.
        artifacts: Files the run created or changed under its context's working directory
            (`Artifact` in `Sandbox`, `AsyncArtifact` in `AsyncSandbox`: `read()`, `download()`).
    """

    results: list[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: ExecutionError | None = None
    execution_count: int | None = None
    limits: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[ArtifactInfo] = field(default_factory=list)
    network_refusals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        """Text of the main result (the last expression's value), or None."""
        for result in self.results:
            if result.is_main_result:
                return result.text
        return None

    def to_dict(self) -> dict[str, Any]:
        """The execution as plain JSON-compatible data."""
        return {
            "results": [r.to_dict() for r in self.results],
            "logs": asdict(self.logs),
            "error": self.error.to_dict() if self.error else None,
            "execution_count": self.execution_count,
            "limits": self.limits,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "network_refusals": self.network_refusals,
        }

    def to_json(self) -> str:
        """The execution serialized as a JSON string."""
        return json.dumps(self.to_dict())


@dataclass
class Context:
    """A code context: one kernel with its own state, language and working directory.
    `default`: the language's default context (the one `run_code` uses without `context`)."""

    id: str
    language: str
    cwd: str
    default: bool = False

    @classmethod
    def from_dict(cls, data: Any) -> Context:
        """Parse a Context from the server's JSON."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ServerError(f"malformed context in server response: {data!r}"[:500])
        language, cwd = data.get("language"), data.get("cwd")
        return cls(
            id=data["id"], language=str(language or ""), cwd=str(cwd or ""), default=data.get("default") is True
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class SandboxInfo:
    """What the server knows about a sandbox.

    Attributes:
        sandbox_id: The sandbox's id.
        template: Template it was created from.
        state: "running", "paused", "killed", "timed_out" or "dead".
        created_at: Creation time (UTC), if known.
        end_at: When it ends (or ended), if known.
        metadata: The metadata given at creation.
        env_keys: Names of the sandbox-wide environment variables.
        cpu: CPU limit (cores).
        memory_mb: Memory limit in MiB.
        end_reason: Why it ended, for ended sandboxes.
    """

    sandbox_id: str
    template: str = ""
    state: str = "running"
    created_at: datetime | None = None
    end_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    env_keys: list[str] = field(default_factory=list)
    cpu: float | None = None
    memory_mb: int | None = None
    end_reason: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> SandboxInfo:
        """Parse a SandboxInfo from the server's JSON (unknown fields are ignored)."""
        if not isinstance(data, dict) or not isinstance(data.get("sandbox_id"), str):
            raise ServerError(f"malformed sandbox info in server response: {data!r}"[:500])
        metadata = data.get("metadata")
        env_keys = data.get("env_keys")
        return cls(
            sandbox_id=data["sandbox_id"],
            template=str(data.get("template") or ""),
            state=str(data.get("state") or "running"),
            created_at=_parse_time(data.get("created_at")),
            end_at=_parse_time(data.get("end_at")),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            env_keys=list(env_keys) if isinstance(env_keys, list) else [],
            cpu=data.get("cpu"),
            memory_mb=data.get("memory_mb"),
            end_reason=data.get("end_reason"),
        )


@dataclass(frozen=True)
class PauseInfo:
    """What `pause()` did.

    Attributes:
        paused_until: When the paused sandbox is killed unless resumed (UTC).
        memory_before_bytes: RAM the sandbox held before the pause.
        memory_after_bytes: RAM it still holds while paused (the rest went to swap).
    """

    paused_until: datetime | None
    memory_before_bytes: int
    memory_after_bytes: int

    @classmethod
    def from_dict(cls, data: Any) -> PauseInfo:
        if not isinstance(data, dict):
            raise ServerError(f"malformed pause reply: {data!r}"[:500])
        return cls(
            paused_until=_parse_time(data.get("end_at")),
            memory_before_bytes=int(data.get("memory_before_bytes") or 0),
            memory_after_bytes=int(data.get("memory_after_bytes") or 0),
        )


def _unquote(text: Any) -> Any:
    """`'abc'` → `abc`: the text of a string result without its repr quotes."""
    if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
