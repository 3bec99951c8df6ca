"""Contexts (one kernel each), default contexts per language, and how a run is carried out.

Runs in one context are serialized by ``Context.run_lock``, held by the run's own task from the
first silent setup execution to the last cleanup (env restore, or kernel restart after a death or
a hung interrupt). Different contexts run in parallel. Restart and delete preempt the active run
(it ends at once with a ``ContextRestarting``/``ContextDeleted`` error) and then take the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import uuid
from typing import Any

from . import artifacts, kernel_startup, messages
from .config import AgentConfig, normalize_language
from .kernel_process import ForkedProcess, Prelaunched, connection_file, ipc_connection
from .kernels import Kernel, KernelStartError
from .languages import iopub_settle, launch_env
from .runs import Outcome, Run, RunRequest, drive, silent
from .snippets import ENV_SNIPPETS, EnvSnippets, parse_snapshot

log = logging.getLogger("nullspace.agent")


def _start_was_cancelled(start_task: asyncio.Task[None] | None) -> bool:
    """A CancelledError came from a cancelled start task, not from cancelling the caller."""
    current = asyncio.current_task()
    return (
        start_task is not None
        and start_task.cancelled()
        and not (current is not None and current.cancelling())
    )


class AgentError(Exception):
    """An error with an HTTP status and a stable code (docs/api.md)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def validate_envs(envs: Any) -> dict[str, str]:
    """Environment variables from a request body (None → {}); 400 on anything malformed."""
    if envs is None:
        return {}
    if not isinstance(envs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in envs.items()):
        raise AgentError(400, "invalid_argument", "envs must map strings to strings")
    for key, value in envs.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise AgentError(400, "invalid_argument", f"invalid environment variable {key!r}")
    return envs


class Context:
    def __init__(
        self,
        context_id: str,
        language: str,
        cwd: str,
        kernel: Kernel,
        config: AgentConfig,
        *,
        default: bool = False,
    ) -> None:
        self.id = context_id
        self.language = language
        self.cwd = cwd
        self.kernel = kernel
        self.config = config
        self.default = default
        self.run_lock = asyncio.Lock()
        self.active: Run | None = None
        self.closed = False
        self.kernel_ok = False
        self.start_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "language": self.language, "cwd": self.cwd, "default": self.default}

    @property
    def env_snippets(self) -> EnvSnippets | None:
        return ENV_SNIPPETS.get(self.language)

    # -- kernel lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.kernel.start()
            # "ready" means: the kernel answered an execute, not only a kernel_info. For Python it
            # is a published one (no history), which warms the path a user's first run takes.
            warm_up = await silent(
                self.kernel, "pass", timeout=self.config.startup_timeout, publish=self.language == "python"
            )
            if warm_up is None:
                raise KernelStartError(f"kernel {self.kernel.kernel_name!r} did not answer")
        except BaseException:
            with contextlib.suppress(Exception):
                await self.kernel.shutdown()
            raise
        self.kernel_ok = True

    async def wait_started(self) -> None:
        assert self.start_task is not None
        await asyncio.shield(self.start_task)

    @property
    def start_failed(self) -> bool:
        t = self.start_task
        return t is not None and t.done() and (t.cancelled() or t.exception() is not None)

    async def _revive(self) -> None:
        """Restart the kernel (same context id and cwd); on failure the next run retries."""
        self.kernel_ok = False
        if self.closed:
            return
        try:
            if self.kernel.km is None:
                await self.kernel.start()
            else:
                await self.kernel.restart()
            self.kernel_ok = True
        except Exception:
            log.exception("context %s: kernel restart failed", self.id)

    async def restart(self) -> None:
        await self._settle_start()
        if self.active is not None:
            self.active.preempt("restarted")
        async with self.run_lock:
            await self._revive()
        if not self.kernel_ok:
            raise AgentError(500, "internal", f"the {self.language} kernel could not be restarted")

    async def close(self, reason: str = "deleted", wait_lock: float = 5.0) -> None:
        self.closed = True
        if self.active is not None:
            self.active.preempt(reason)
        await self._settle_start(cancel=True)
        try:
            await asyncio.wait_for(self.run_lock.acquire(), wait_lock)
        except TimeoutError:
            log.warning("context %s: closing while a run still holds it", self.id)
            await self.kernel.shutdown()
            return
        try:
            await self.kernel.shutdown()
        finally:
            self.run_lock.release()

    async def _settle_start(self, cancel: bool = False) -> None:
        if self.start_task is not None:
            if cancel:
                self.start_task.cancel()  # Context.start shuts a half-started kernel down
            try:
                await asyncio.shield(self.start_task)
            except Exception:
                pass  # the start failed: nothing to settle
            except asyncio.CancelledError:
                if not _start_was_cancelled(self.start_task):
                    raise

    # -- runs ------------------------------------------------------------------------------------

    def submit(self, request: RunRequest) -> Run:
        """Start a run in its own task; read it with ``run.events()``."""
        run = Run(request)
        task = asyncio.create_task(self._execute(run), name=f"run-{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _execute(self, run: Run) -> None:
        try:
            async with self.run_lock:
                await self._execute_locked(run)
        except Exception:
            log.exception("context %s: run failed", self.id)
            run.emit(messages.error_event("InternalError", "the agent failed to run the code"))
        finally:
            run.finish("error")  # no-op when the run already finished

    async def _execute_locked(self, run: Run) -> None:
        if self.closed:
            run.emit(messages.preempted_error("deleted"))
            return
        if run.abandoned:
            return
        if not self.kernel_ok:
            await self._revive()
            if not self.kernel_ok:
                run.emit(
                    messages.error_event("KernelDied", f"the {self.language} kernel could not be restarted")
                )
                return
        self.active = run
        try:
            await self._run(run)
        finally:
            self.active = None

    async def _run(self, run: Run) -> None:
        cfg = self.config
        restore: str | None = None
        files_before = await artifacts.before_run(self.cwd)
        if run.request.envs:
            restore = await self._apply_envs(run, run.request.envs)
            if restore is None:
                return
        result = await drive(
            self.kernel,
            run,
            max_output_bytes=run.request.max_output_bytes or cfg.max_output_bytes,
            chunk_bytes=cfg.chunk_bytes,
            interrupt_grace=cfg.interrupt_grace,
            poll_interval=cfg.poll_interval,
            settle=iopub_settle(self.kernel.km),
        )
        if (found := await artifacts.after_run(files_before)) is not None:
            run.emit(found)  # files the run created or changed (before end_of_execution)
        timeout = run.request.timeout or 0.0
        if result.outcome is Outcome.DONE:
            if result.interrupted and result.status != "ok":
                run.emit(messages.timeout_error(timeout, restarted=False))
                run.finish("timeout")
            else:
                run.finish(result.status)
            if restore is not None:
                await silent(self.kernel, restore, poll_interval=cfg.poll_interval)
        elif result.outcome is Outcome.PREEMPTED:
            run.emit(messages.preempted_error(run.preempted or "restarted"))
            run.finish("error")
        else:  # DEAD or HUNG: the kernel has to go
            if result.interrupted:
                run.emit(messages.timeout_error(timeout, restarted=True))
                run.finish("timeout")
            else:
                returncode = self.kernel.returncode()
                log.warning("context %s: kernel exited (%s)", self.id, returncode)
                run.emit(messages.kernel_died(returncode))
                run.finish("error")
            await self._revive()

    async def _apply_envs(self, run: Run, envs: dict[str, str]) -> str | None:
        """Set per-run env vars; returns the code that undoes them (None: setup failed)."""
        snippets = self.env_snippets
        assert snippets is not None  # checked by the app before the run is submitted
        keys = list(envs)
        previous = None
        if snippets.snapshot is not None:
            reply = await silent(
                self.kernel,
                "",
                user_expressions={"prev": snippets.snapshot(keys)},
                poll_interval=self.config.poll_interval,
            )
            if reply is not None:
                previous = parse_snapshot((reply.get("user_expressions") or {}).get("prev"))
        if previous is None:
            previous = {k: self.kernel.env.get(k) for k in keys}
        reply = await silent(self.kernel, snippets.set(envs), poll_interval=self.config.poll_interval)
        if reply is None or reply.get("status") != "ok":
            run.emit(
                messages.error_event(
                    "EnvSetupFailed",
                    "could not set the per-run environment variables",
                    messages.strip_ansi("\n".join(map(str, (reply or {}).get("traceback", [])))),
                )
            )
            if reply is None:
                await self._revive()
            else:
                await silent(self.kernel, snippets.restore(previous))
            return None
        return snippets.restore(previous)


def _forked_process(reply: dict[str, Any] | None, parent: int | None) -> ForkedProcess | None:
    """The forked kernel named by the fork expression's reply (None: the fork failed, or the
    reply names no child of `parent`)."""
    result = ((reply or {}).get("user_expressions") or {}).get("pid") or {}
    if result.get("status") != "ok":
        return None
    try:
        return None if parent is None else ForkedProcess(int(result["data"]["text/plain"]), parent)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return None


def _fork_error(reply: dict[str, Any] | None) -> str:
    result = ((reply or {}).get("user_expressions") or {}).get("pid") or {}
    if reply is None:
        return "no answer"
    if result.get("status") == "error":
        return f"{result.get('ename')}: {result.get('evalue')}"[:500]
    return "it did not report a forked process"


PRELOAD_CODE = """\
def __nullspace_preload(modules):
    import importlib
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            pass
try:
    __nullspace_preload({modules!r})
finally:
    del __nullspace_preload
"""


class Registry:
    """All contexts of this sandbox, in creation order, plus one default context per language."""

    def __init__(self, config: AgentConfig, prelaunched: Prelaunched | None = None) -> None:
        self.config = config
        self._prelaunched = prelaunched  # the boot kernel, already starting (__main__)
        self.contexts: dict[str, Context] = {}
        self.defaults: dict[str, Context] = {}
        self._default_locks: dict[str, asyncio.Lock] = {}
        self._seq = itertools.count(1)
        self.ready = False
        self.boot_error: str | None = None
        self._boot: asyncio.Task[None] | None = None
        self.booted = asyncio.Event()  # set when the boot ends, ready or failed

    # -- validation ------------------------------------------------------------------------------

    def resolve_language(self, language: Any) -> tuple[str, str]:
        if language is not None and not isinstance(language, str):
            raise AgentError(400, "invalid_argument", "language must be a string")
        name = normalize_language(language)
        kernel = self.config.kernel_for(name)
        if kernel is None:
            supported = ", ".join(self.config.supported())
            raise AgentError(
                400,
                "invalid_argument",
                f"unsupported language {name!r}; this sandbox supports: {supported}",
            )
        return name, kernel

    def resolve_cwd(self, cwd: Any) -> str:
        if cwd is None or cwd == "":
            return self.config.workdir
        if not isinstance(cwd, str) or "\0" in cwd:
            raise AgentError(400, "invalid_argument", "cwd must be a path")
        path = os.path.normpath(os.path.join(self.config.workdir, cwd))
        if not os.path.isdir(path):
            raise AgentError(400, "invalid_argument", f"cwd {cwd!r} is not an existing directory")
        if not os.access(path, os.X_OK):
            raise AgentError(400, "invalid_argument", f"cwd {cwd!r} cannot be entered: permission denied")
        return path

    # -- contexts --------------------------------------------------------------------------------

    def _new(
        self,
        language: str,
        kernel_name: str,
        cwd: str,
        *,
        default: bool,
        seq: int | None = None,
        prelaunched: Prelaunched | None = None,
    ) -> Context:
        self._check_limit()
        seq = next(self._seq) if seq is None else seq
        kernel = Kernel(
            kernel_name,
            cwd=cwd,
            connection_file=connection_file(self.config.runtime_dir, seq),
            env=launch_env(language),
            startup_timeout=self.config.startup_timeout,
            oom_score_adj=self.config.oom_score_adj,
            kernel_output=self.config.kernel_output,
            # IPython kernels load our display hooks (charts, tables): kernel_startup/
            extra_arguments=kernel_startup.ipython_arguments() if language == "python" else None,
            prelaunched=prelaunched or self._take_prelaunched(language, default),
        )
        ctx = Context(str(uuid.uuid4()), language, cwd, kernel, self.config, default=default)
        self.contexts[ctx.id] = ctx
        ctx.start_task = asyncio.create_task(self._start(ctx), name=f"start-{ctx.id}")
        return ctx

    def _check_limit(self) -> None:
        limit = self.config.max_contexts
        if len(self.contexts) >= limit:
            raise AgentError(409, "conflict", f"context limit reached: this sandbox may have at most {limit} "
                                              "contexts at once; remove one (DELETE .../contexts/ID) first")

    def _take_prelaunched(self, language: str, default: bool) -> Prelaunched | None:
        if default and language == self.config.boot_language:
            prelaunched, self._prelaunched = self._prelaunched, None
            return prelaunched
        return None

    async def _start(self, ctx: Context) -> None:
        try:
            await ctx.start()
        except BaseException:
            self._forget(ctx)
            raise

    def _forget(self, ctx: Context) -> None:
        self.contexts.pop(ctx.id, None)
        if self.defaults.get(ctx.language) is ctx:
            del self.defaults[ctx.language]

    async def started(self, ctx: Context) -> Context:
        """Wait until `ctx` has a running kernel (a start failure becomes a 500 `internal`)."""
        try:
            await ctx.wait_started()
        except asyncio.CancelledError:
            if ctx.closed and _start_was_cancelled(ctx.start_task):
                raise AgentError(
                    404, "context_not_found", f"context {ctx.id} was removed while starting"
                ) from None
            raise
        except Exception as exc:
            raise AgentError(500, "internal", str(exc) or type(exc).__name__) from exc
        return ctx

    async def create(self, language: Any = None, cwd: Any = None) -> Context:
        name, kernel = self.resolve_language(language)
        return await self.started(self._new(name, kernel, self.resolve_cwd(cwd), default=False))

    async def default_context(self, language: Any = None) -> Context:
        """The default context of a language, created (and started) on first use."""
        name, kernel = self.resolve_language(language)
        lock = self._default_locks.setdefault(name, asyncio.Lock())
        async with lock:
            ctx = self.defaults.get(name)
            if ctx is None or ctx.start_failed:
                ctx = self._new(name, kernel, self.config.workdir, default=True)
                self.defaults[name] = ctx
            return await self.started(ctx)

    async def fork(self, context_id: str) -> Context:
        """A new context whose kernel is a copy-on-write fork of `context_id`'s, taken between
        runs (a run in progress is waited for). Python only (kernel_startup/fork.py)."""
        ctx = await self.started(self.get(context_id))
        if ctx.language != "python":
            raise AgentError(
                400,
                "invalid_argument",
                f"forking a context is supported for Python only; context {ctx.id} is {ctx.language}",
            )
        self._check_limit()  # before the fork, not after it
        async with ctx.run_lock:
            if ctx.closed or not ctx.kernel_ok or ctx.kernel.km is None:
                raise AgentError(409, "conflict", f"context {ctx.id} has no running kernel to fork")
            seq = next(self._seq)
            path = connection_file(self.config.runtime_dir, seq)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({**ipc_connection(path), "kernel_name": ctx.kernel.kernel_name}, fh)
            reply = await silent(
                ctx.kernel,
                "",
                user_expressions={"pid": f"__import__('_nullspace_kernel.fork').fork.fork({path!r})"},
                timeout=self.config.startup_timeout,
                poll_interval=self.config.poll_interval,
            )
            process = _forked_process(reply, ctx.kernel.pid)
            if process is None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise AgentError(409, "conflict", f"the kernel of context {ctx.id} could not fork: {_fork_error(reply)}")
            prelaunched = Prelaunched(process, ctx.kernel.kernel_name, ctx.kernel.km.kernel_spec.resource_dir, path)
        try:
            fork = self._new(ctx.language, ctx.kernel.kernel_name, ctx.cwd, default=False, seq=seq, prelaunched=prelaunched)
        except BaseException:
            with contextlib.suppress(OSError):
                process.kill()
            raise
        return await self.started(fork)

    def get(self, context_id: str) -> Context:
        ctx = self.contexts.get(context_id)
        if ctx is None:
            raise AgentError(404, "context_not_found", f"context {context_id} not found")
        return ctx

    async def restart(self, context_id: str) -> Context:
        ctx = await self.started(self.get(context_id))
        await ctx.restart()
        return ctx

    async def delete(self, context_id: str) -> None:
        ctx = self.get(context_id)
        self._forget(ctx)
        await ctx.close("deleted")

    def list(self) -> list[dict[str, Any]]:
        return [ctx.info() for ctx in self.contexts.values()]

    # -- agent lifecycle -------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the default context of the boot language in the background; `ready` turns true
        when its kernel answered a first execute."""
        self._boot = asyncio.create_task(self._boot_default(), name="boot")

    async def _boot_default(self) -> None:
        try:
            ctx = await self.default_context(self.config.boot_language)
            if self.config.preload:
                await self._preload(ctx)
        except Exception as exc:
            self.boot_error = getattr(exc, "message", None) or str(exc)
            log.error("default %s context failed to start: %s", self.config.boot_language, exc)
        else:
            self.ready = True
        finally:
            self.booted.set()

    async def _preload(self, ctx: Context) -> None:
        """Import the warm pool's modules into the boot kernel, binding no names; a module that
        fails to import is skipped (the user's own import then reports it)."""
        code = PRELOAD_CODE.format(modules=list(self.config.preload))
        async with ctx.run_lock:
            reply = await silent(ctx.kernel, code, timeout=self.config.startup_timeout)
        if reply is None or reply.get("status") != "ok":
            log.warning("preloading %s did not finish: %s", self.config.preload, reply)

    async def close(self) -> None:
        if self._boot is not None and not self._boot.done():
            self._boot.cancel()
            with contextlib.suppress(BaseException):
                await self._boot
        contexts = list(self.contexts.values())
        self.contexts.clear()
        self.defaults.clear()
        await asyncio.gather(
            *(ctx.close("shutdown", wait_lock=2.0) for ctx in contexts), return_exceptions=True
        )
