"""`AsyncSandbox`: create a sandbox, run code in its contexts, end it."""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator
from contextlib import aclosing
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ..._exceptions import SandboxNotFoundError
from .._config import CREATE_REQUEST_TIMEOUT, ConnectionConfig, stream_read_timeout
from .._execution import (
    ErrorCallback,
    ExecutionBuilder,
    OutputCallback,
    ResultCallback,
    StreamEvent,
    acall,
    context_id,
    dispatch,
    execute_body,
)
from .._models import Context, EndOfExecution, Execution, PauseInfo, SandboxInfo
from .._network import Network, NetworkInfo, Secret, network_body, secrets_body
from .._packages import InstallResult, install_body
from ._http import AsyncAPIClient
from .artifacts import AsyncArtifact
from .commands import AsyncCommands
from .files import AsyncFiles
from .pty import AsyncPty


class AsyncSandbox:
    """An isolated sandbox with Jupyter kernels.

    Get one with `await AsyncSandbox.create()` or `await AsyncSandbox.connect(sandbox_id)`;
    `async with` kills it on exit::

        async with await AsyncSandbox.create() as sbx:
            execution = await sbx.run_code("1 + 1")
            print(execution.text)  # "2"
    """

    def __init__(self, info: SandboxInfo, api: AsyncAPIClient) -> None:
        """Wrap an existing sandbox; use `create()` or `connect()` instead of calling this."""
        self._info = info
        self._api = api
        self.commands = AsyncCommands(api, self._path())  # processes: run, background, kill
        self.files = AsyncFiles(api, self._path())  # read, write (verified), list, remove...
        self.pty = AsyncPty(api, self.commands)  # interactive programs on a terminal

    @property
    def sandbox_id(self) -> str:
        """The sandbox's id."""
        return self._info.sandbox_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sandbox_id={self.sandbox_id!r})"

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.kill()
        finally:
            await self.close()

    @staticmethod
    def _client(
        api_url: str | None,
        api_key: str | None,
        request_timeout: float | None,
        http_client: httpx.AsyncClient | None,
        transport: httpx.AsyncBaseTransport | None,
    ) -> AsyncAPIClient:
        config = ConnectionConfig.resolve(api_url, api_key, request_timeout)
        return AsyncAPIClient(config, http_client=http_client, transport=transport)

    def _path(self, *parts: str) -> str:
        return "/".join(["/v1/sandboxes", quote(self.sandbox_id, safe=""), *parts])

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def create(
        cls,
        template: str = "code-interpreter",
        timeout: int = 300,
        envs: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
        cpu: float | None = None,
        memory_mb: int | None = None,
        disk_mb: int | None = None,
        *,
        auto_resume: bool = False,
        network: Network = None,
        secrets: dict[str, Secret] | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncSandbox:
        """Create a sandbox; it ends by itself `timeout` seconds later unless killed or extended.

        Args:
            template: Template to start from.
            timeout: Lifetime in seconds (see `set_timeout`).
            envs: Environment variables for everything run in the sandbox.
            metadata: Free-form string labels (filter on them with `list(metadata=...)`).
            cpu: CPU limit in cores (server default when None).
            memory_mb: Memory limit in MiB (server default when None).
            disk_mb: Disk limit in MiB for everything written in the sandbox (server default
                when None). Files live in memory and count against `memory_mb` too.
            auto_resume: When paused (`pause`), any call resumes it instead of raising
                `SandboxPausedError`.
            network: None (no network, the default), "open" (if the server permits it), or an
                allow-list of names, `["pypi.org", "*.example.com:443"]` (docs/egress.md).
            secrets: Env name → `Secret(value, hosts=[...])`: the sandbox sees a placeholder,
                swapped for the value only in HTTPS requests to those hosts.
            api_url: Server URL; default env `NULLSPACE_API_URL`, else the local unix socket
                (a local server is started when none answers).
            api_key: API key for a TCP server; default env `NULLSPACE_API_KEY`.
            request_timeout: Seconds for this request (default 600: the first create may build
                the template) and the default for later requests of this sandbox (default 60).
            http_client: A ready httpx client to use (tests, custom proxies); not closed by us.
            transport: An httpx transport for the client the SDK builds.

        Returns:
            The running sandbox.

        Raises:
            TemplateNotFoundError: no such template.
            CapacityError: the server is at its sandbox limit.
            TransportError: the server could not be reached or started.
        """
        body: dict[str, Any] = {"template": template, "timeout": timeout}
        if auto_resume:
            body["auto_resume"] = True
        optional = {
            "envs": envs,
            "metadata": metadata,
            "cpu": cpu,
            "memory_mb": memory_mb,
            "disk_mb": disk_mb,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if network is not None:
            body["network"] = network_body(network)
        if secrets:
            body["secrets"] = secrets_body(secrets)
        api = cls._client(api_url, api_key, request_timeout, http_client, transport)
        try:
            await api.ensure_server()
            data = await api.request(
                "POST",
                "/v1/sandboxes",
                json=body,
                timeout=CREATE_REQUEST_TIMEOUT if request_timeout is None else request_timeout,
            )
            info = SandboxInfo.from_dict(data)
        except BaseException:
            await api.aclose()
            raise
        return cls(info, api)

    @classmethod
    async def connect(
        cls,
        sandbox_id: str,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> AsyncSandbox:
        """Attach to a running sandbox by id (connection arguments as in `create`); a paused
        sandbox is resumed.

        Raises:
            SandboxNotFoundError: no such sandbox, or it has ended.
        """
        api = cls._client(api_url, api_key, request_timeout, http_client, transport)
        path = f"/v1/sandboxes/{quote(sandbox_id, safe='')}"
        try:
            await api.ensure_server()
            info = SandboxInfo.from_dict(await api.request("GET", path))
            if info.state == "paused":
                info = SandboxInfo.from_dict(await api.request("POST", f"{path}/resume"))
            if info.state != "running":
                reason = f" ({info.end_reason})" if info.end_reason else ""
                raise SandboxNotFoundError(f"sandbox {sandbox_id} is {info.state}{reason}")
        except BaseException:
            await api.aclose()
            raise
        return cls(info, api)

    @classmethod
    async def list(
        cls,
        metadata: dict[str, str] | None = None,
        state: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> builtins.list[SandboxInfo]:
        """List sandboxes, optionally only those whose metadata has all the given pairs.

        Args:
            metadata: Required metadata pairs (sent as `metadata.KEY=VALUE`).
            state: Only sandboxes in this state, e.g. "running".
            api_url: As in `create`.
            api_key: As in `create`.
            request_timeout: Seconds for the request.
            http_client: As in `create`.
            transport: As in `create`.
        """
        params = [(f"metadata.{k}", v) for k, v in (metadata or {}).items()]
        if state is not None:
            params.append(("state", state))
        api = cls._client(api_url, api_key, request_timeout, http_client, transport)
        try:
            await api.ensure_server()
            data = await api.request("GET", "/v1/sandboxes", params=params)
        finally:
            await api.aclose()
        return [SandboxInfo.from_dict(item) for item in data or []]

    async def get_info(self, request_timeout: float | None = None) -> SandboxInfo:
        """Fetch the sandbox's current info (also works once it has ended)."""
        data = await self._api.request("GET", self._path(), timeout=request_timeout)
        self._info = SandboxInfo.from_dict(data)
        return self._info

    async def is_running(self, request_timeout: float | None = None) -> bool:
        """True while the sandbox is running; False once it ended or if it never existed."""
        try:
            return (await self.get_info(request_timeout)).state == "running"
        except SandboxNotFoundError:
            return False

    async def set_timeout(self, seconds: int, request_timeout: float | None = None) -> None:
        """Make the sandbox end `seconds` from now (extends or shortens its life)."""
        data = await self._api.request(
            "POST", self._path("timeout"), json={"timeout": seconds}, timeout=request_timeout
        )
        if data:
            self._info = SandboxInfo.from_dict(data)

    async def pause(self, timeout: int | None = None, request_timeout: float | None = None) -> PauseInfo:
        """Freeze the sandbox: its processes stop, its memory goes to swap, its lifetime stops.

        Everything (variables, files, background commands) is kept while the host runs. Calls
        other than `get_info`, `kill` and `resume` raise `SandboxPausedError` until `resume`
        (or any call, if created with `auto_resume`). docs/pause.md says what survives.

        Args:
            timeout: Kill it if not resumed within this many seconds (server maximum when None).
        """
        body = {} if timeout is None else {"timeout": timeout}
        data = await self._api.request("POST", self._path("pause"), json=body, timeout=request_timeout)
        self._info = SandboxInfo.from_dict(data)
        return PauseInfo.from_dict(data)

    async def resume(self, timeout: int | None = None, request_timeout: float | None = None) -> None:
        """Thaw a paused sandbox. It gets back the lifetime it had left, or `timeout` seconds."""
        body = {} if timeout is None else {"timeout": timeout}
        data = await self._api.request("POST", self._path("resume"), json=body, timeout=request_timeout)
        self._info = SandboxInfo.from_dict(data)

    async def get_network(self, request_timeout: float | None = None) -> NetworkInfo:
        """The sandbox's network policy, traffic counters and latest refused destinations."""
        return NetworkInfo.from_dict(await self._api.request("GET", self._path("network"), timeout=request_timeout))

    async def set_network(self, network: Network, request_timeout: float | None = None) -> NetworkInfo:
        """Change the network policy of the running sandbox (its open connections are closed).

        Args:
            network: None/"none", "open", or an allow-list of names (as in `create`).
        """
        data = await self._api.request("PUT", self._path("network"), json=network_body(network), timeout=request_timeout)
        return NetworkInfo.from_dict(data)

    async def kill(self, request_timeout: float | None = None) -> bool:
        """End the sandbox now.

        Returns:
            True if it was killed now, False if it had already ended or never existed.
        """
        try:
            await self._api.request("DELETE", self._path(), timeout=request_timeout)
        except SandboxNotFoundError:
            return False
        return True

    async def close(self) -> None:
        """Release this object's HTTP connections (the sandbox keeps running)."""
        await self._api.aclose()

    # -- code --------------------------------------------------------------------------------

    async def run_code_stream(
        self,
        code: str,
        language: str | None = None,
        context: Context | str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Run code and yield its output as it happens.

        Yields `OutputMessage` (stdout/stderr), `Result`, `ExecutionError`, and last an
        `EndOfExecution` carrying the assembled `Execution`. Breaking out early closes the
        stream (the server then interrupts the run); wrap in `contextlib.aclosing` to do that
        promptly.

        Args:
            code: The code to run.
            language: Language of a fresh default context ("python", "javascript", ...);
                mutually exclusive with `context`.
            context: A `Context` (or its id) to run in.
            envs: Environment variables for this run only.
            timeout: Seconds after which the server interrupts the run (None: no limit).
            request_timeout: Seconds allowed for connecting and between two received bytes
                (default 60; stretched past `timeout`).
            max_output_bytes: Cap on this run's stdout+stderr (default: the server's, 8 MiB);
                beyond it the text is cut and a stderr line says so.

        Raises:
            InvalidArgumentError: both `language` and `context` were given.
            ExecutionTimeoutError: after the last item, when the run hit `timeout`.
            TransportError: the stream ended without `end_of_execution`.
        """
        body = execute_body(code, language, context, envs, timeout, max_output_bytes)
        base = self._api.config.request_timeout if request_timeout is None else request_timeout
        http_timeout = httpx.Timeout(base, read=stream_read_timeout(timeout, base))
        builder = ExecutionBuilder(artifact=lambda info: AsyncArtifact(info, self))
        events = self._api.stream_events(self._path("execute"), body, http_timeout)
        async with aclosing(events):
            async for event in events:
                for item in builder.feed(event):  # noqa: UP028
                    yield item
                if builder.ended:
                    break
        builder.finish()

    async def run_code(
        self,
        code: str,
        language: str | None = None,
        context: Context | str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        on_result: ResultCallback | None = None,
        on_error: ErrorCallback | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        request_timeout: float | None = None,
        max_output_bytes: int | None = None,
    ) -> Execution:
        """Run code and return everything it produced.

        Callbacks fire as each event arrives, in stream order; an exception raised by a
        callback stops the run (the stream is closed) and propagates.

        Args:
            code: The code to run.
            language: Language of the default context ("python", "javascript", ...);
                mutually exclusive with `context`.
            context: A `Context` (or its id) to run in.
            on_stdout: Called with each stdout `OutputMessage`.
            on_stderr: Called with each stderr `OutputMessage`.
            on_result: Called with each `Result`.
            on_error: Called with the `ExecutionError`, if the run fails.
            envs: Environment variables for this run only.
            timeout: Seconds after which the server interrupts the run (None: no limit).
            request_timeout: Seconds allowed for connecting and between two received bytes.
            max_output_bytes: Cap on this run's stdout+stderr (default: the server's, 8 MiB).

        Returns:
            The `Execution`; a failing run is not an exception, see `Execution.error`.

        Raises:
            InvalidArgumentError: both `language` and `context` were given.
            ExecutionTimeoutError: the run hit `timeout`; `.execution` holds the partial run.
            TransportError: the connection broke, or the stream ended without its end marker.
        """
        execution: Execution | None = None
        stream = self.run_code_stream(
            code, language, context, envs, timeout, request_timeout, max_output_bytes
        )
        async with aclosing(stream):
            async for item in stream:
                if isinstance(item, EndOfExecution):
                    execution = item.execution
                    continue
                callback, arg = dispatch(item, on_stdout, on_stderr, on_result, on_error)
                await acall(callback, arg)
        assert execution is not None  # run_code_stream raises when the end marker is missing
        return execution

    # -- contexts ----------------------------------------------------------------------------

    async def create_context(
        self,
        language: str | None = None,
        cwd: str | None = None,
        request_timeout: float | None = None,
    ) -> Context:
        """Start a new context (a kernel with its own state).

        Args:
            language: "python" (default), "javascript", ... as the template supports.
            cwd: Working directory (default: the template's, usually /home/user).
            request_timeout: Seconds for the request.
        """
        body = {k: v for k, v in {"language": language, "cwd": cwd}.items() if v is not None}
        data = await self._api.request(
            "POST", self._path("contexts"), json=body, timeout=request_timeout
        )
        return Context.from_dict(data)

    async def list_contexts(self, request_timeout: float | None = None) -> builtins.list[Context]:
        """The sandbox's contexts, in creation order."""
        data = await self._api.request("GET", self._path("contexts"), timeout=request_timeout)
        return [Context.from_dict(item) for item in data or []]

    async def restart_context(
        self, context: Context | str, request_timeout: float | None = None
    ) -> Context:
        """Restart a context's kernel: its state is gone, its id stays."""
        cid = quote(context_id(context) or "", safe="")
        data = await self._api.request(
            "POST", self._path("contexts", cid, "restart"), timeout=request_timeout
        )
        return Context.from_dict(data)

    async def fork_context(
        self, context: Context | str, request_timeout: float | None = None
    ) -> Context:
        """A new context whose state (variables, imports, loaded data) is a copy-on-write copy
        of `context`'s at this moment; the two then diverge independently. Python only (other
        languages: `InvalidArgumentError`); a run in progress in `context` is waited for."""
        cid = quote(context_id(context) or "", safe="")
        data = await self._api.request(
            "POST", self._path("contexts", cid, "fork"), timeout=request_timeout
        )
        return Context.from_dict(data)

    async def remove_context(
        self, context: Context | str, request_timeout: float | None = None
    ) -> None:
        """Shut a context's kernel down and forget it."""
        cid = quote(context_id(context) or "", safe="")
        await self._api.request("DELETE", self._path("contexts", cid), timeout=request_timeout)

    # -- packages ----------------------------------------------------------------------------

    async def install_packages(
        self,
        packages: builtins.list[str] | str,
        language: str = "python",
        timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> InstallResult:
        """Install packages into the running sandbox; existing contexts can import them at once.

        The sandbox stays without network: the server resolves and downloads (wheels only;
        npm without install scripts) and the sandbox installs from a read-only view of what
        was fetched. Use a template for packages every sandbox should have.

        Args:
            packages: Requirements such as `"humanize==4.9.0"`, `"pandas>=2"` (Python) or
                `"lodash@4.17.21"` (JavaScript): a name and an optional version specifier.
            language: `"python"` (pip) or `"javascript"` (npm; `~/node_modules`).
            timeout: Seconds for resolving, downloading and installing (server default 300).
            request_timeout: Seconds for the HTTP request (default: `timeout` + 30).

        Returns:
            `InstallResult`: `installed` `(name, version)` tuples and the installer's `log`.

        Raises:
            PackageInstallError: a package does not exist, does not resolve, or failed to
                install; the message is pip's (npm's). The sandbox is left as it was.
            InvalidArgumentError: a requirement is not a plain name + version specifier.
        """
        body = install_body(packages, language, timeout)
        if request_timeout is None:
            request_timeout = (timeout or 300.0) + 30.0
        data = await self._api.request(
            "POST", self._path("packages"), json=body, timeout=request_timeout
        )
        return InstallResult.from_dict(data)
