"""One ``/execute`` request: the run state machine and its event queue.

A run is driven by its own task (`Context.submit`), never by the HTTP response: the response
only reads `Run.events()`. So a client that goes away cannot cancel a run half way; it calls
`Run.abandon()`, and the run interrupts the kernel and winds down like a timeout, with nobody
listening. Stream text is capped *before* it is queued, so a slow reader costs at most the
output cap in memory.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from . import messages
from .kernels import Kernel
from .messages import Event

T = TypeVar("T")


async def _get(queue: asyncio.Queue[T], timeout: float) -> T:
    """``queue.get()``, or TimeoutError after `timeout` s. Unlike ``asyncio.wait_for`` on Python
    3.11, no task per call: a run waits like this for every kernel message and every event."""
    async with asyncio.timeout(timeout):
        return await queue.get()


@dataclass(frozen=True)
class RunRequest:
    code: str
    envs: dict[str, str] | None = None
    timeout: float | None = None
    max_output_bytes: int | None = None  # None: the agent's --max-output-bytes


class Outcome(enum.Enum):
    DONE = "done"  # execute_reply + idle arrived
    DEAD = "dead"  # the kernel process exited
    HUNG = "hung"  # interrupted, but no reply within the grace period
    PREEMPTED = "preempted"  # the context is being restarted/deleted


class Run:
    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self.abandoned = False
        self.preempted: str | None = None
        self.finished = False
        self.error_sent = False
        self._wake: Callable[[], None] | None = None

    # producer side
    def emit(self, event: Event) -> None:
        """Queue an event. A run has at most one ``error``: a later one (say the kernel died
        after the user's exception was reported) is demoted to a stderr notice."""
        if self.finished or self.abandoned:
            return
        if event["type"] == "error":
            if self.error_sent:
                event = messages.notice(f"{event['name']}: {event['value']}")
            self.error_sent = True
        self._events.put_nowait(event)

    def finish(self, status: str) -> None:
        if not self.finished:
            self.emit(messages.end_of_execution(status))
            self.finished = True
            self._events.put_nowait(None)

    def on_wake(self, wake: Callable[[], None] | None) -> None:
        self._wake = wake

    # control side
    def abandon(self) -> None:
        """The reader went away: interrupt the kernel and drop all further events."""
        self.abandoned = True
        self._poke()

    def preempt(self, reason: str) -> None:
        self.preempted = reason
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake()

    # consumer side
    async def events(self, keepalive: float) -> AsyncIterator[Event]:
        """Yield events until ``end_of_execution``; a keepalive after `keepalive` s of silence."""
        while True:
            try:
                event = await _get(self._events, keepalive)
            except TimeoutError:
                yield messages.keepalive()
                continue
            if event is None:
                return
            yield event


@dataclass
class DriveResult:
    outcome: Outcome
    status: str = "ok"  # "ok" | "error" — meaningful for DONE
    interrupted: bool = False  # the deadline passed or the reader left, and we interrupted


async def drive(
    kernel: Kernel,
    run: Run,
    *,
    max_output_bytes: int,
    chunk_bytes: int,
    interrupt_grace: float,
    poll_interval: float,
    idle_grace: float = 2.0,
    settle: float = 0.0,
) -> DriveResult:
    """Send the user code and turn the kernel's messages into events until the run is over.

    Ends when both the ``execute_reply`` and the ``idle`` status arrived; when the kernel process
    exits (checked every `poll_interval` s of silence); when the kernel does not come back within
    `interrupt_grace` s of an interrupt (timeout or abandoned reader); or when preempted.
    Emits everything except the final error/end events, which depend on the outcome.
    """
    loop = asyncio.get_running_loop()
    req = run.request
    msg_id, queue = kernel.execute(req.code)
    run.on_wake(lambda: queue.put_nowait(("wake", None)))
    limiter = messages.OutputLimiter(max_output_bytes, chunk_bytes)
    deadline = loop.time() + req.timeout if req.timeout else None
    got_reply = got_idle = False
    status = "ok"
    interrupted_at: float | None = None
    reply_at = 0.0
    try:
        settle_until: float | None = None
        while True:
            now = loop.time()
            if got_reply and got_idle:
                # `settle` > 0: the kernel may publish output after its idle status (Deno does):
                # end only after `settle` s without a message (agent/languages.py).
                if settle_until is None:
                    settle_until = now + settle
                if now >= settle_until:
                    break
            if run.preempted:
                return DriveResult(Outcome.PREEMPTED, "error", interrupted_at is not None)
            if interrupted_at is None and (run.abandoned or (deadline and now >= deadline)):
                await kernel.interrupt()
                interrupted_at = now = loop.time()
            if interrupted_at is not None and now - interrupted_at >= interrupt_grace:
                return DriveResult(Outcome.HUNG, "error", True)
            if got_reply and now - reply_at >= idle_grace:
                break  # the idle status was lost; the reply is authoritative
            wait = poll_interval
            if interrupted_at is None and deadline is not None:
                wait = min(wait, max(deadline - now, 0.0))
            if settle_until is not None:
                wait = min(wait, max(settle_until - now, 0.0))
            try:
                channel, msg = await _get(queue, wait)
            except TimeoutError:
                if not await kernel.is_alive():
                    return DriveResult(Outcome.DEAD, "error", interrupted_at is not None)
                continue
            if msg is None:  # a wake-up
                continue
            if settle_until is not None:
                settle_until = loop.time() + settle
            if channel == "shell":
                if msg.get("msg_type") == "execute_reply":
                    got_reply, reply_at = True, loop.time()
                    content = msg.get("content") or {}
                    if content.get("status") != "ok":
                        status = "error"
                    event = messages.reply_error(content)
                    if event is not None and not run.error_sent and interrupted_at is None:
                        run.emit(event)
                continue
            if messages.is_idle(msg):
                got_idle = True
                continue
            event = messages.iopub_event(msg)
            if event is None:
                continue
            kind = event["type"]
            if kind == "error":
                status = "error"
                if run.error_sent or interrupted_at is not None:
                    continue  # iopub and reply repeat each other; after an interrupt, the timeout is the error
                run.emit(event)
            elif kind in ("stdout", "stderr"):
                for piece in limiter.feed(event):
                    run.emit(piece)
            else:
                run.emit(event)
    finally:
        run.on_wake(None)
        kernel.release(msg_id)
    return DriveResult(Outcome.DONE, status, interrupted_at is not None)


async def silent(
    kernel: Kernel,
    code: str,
    *,
    user_expressions: dict[str, str] | None = None,
    timeout: float = 10.0,
    poll_interval: float = 0.3,
    publish: bool = False,
) -> dict | None:
    """Run `code` for the agent, unseen by the user, and return the ``execute_reply`` content (None:
    no answer/dead). `publish`: a non-silent run that stores no history (its iopub messages are
    dropped): ipykernel's first such run costs 3-5 ms more than later ones, so a warm-up pays it."""
    loop = asyncio.get_running_loop()
    msg_id, queue = kernel.execute(
        code, silent=not publish, store_history=False, user_expressions=user_expressions, stop_on_error=False
    )
    deadline = loop.time() + timeout
    try:
        while True:
            try:
                channel, msg = await _get(queue, poll_interval)
            except TimeoutError:
                if loop.time() >= deadline or not await kernel.is_alive():
                    return None
                continue
            if channel == "shell" and msg is not None and msg.get("msg_type") == "execute_reply":
                return msg.get("content") or {}
    finally:
        kernel.release(msg_id)
