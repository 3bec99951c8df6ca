"""``process.Process`` (§5.4) over the agent's ``/commands``: the same processes, limits and
process-tree kills as ``/v1/sandboxes/{id}/commands``, addressed by pid (or tag) as E2B does.

Every process started here is a background command of the agent: leaving a stream does not
kill it (E2B's ``disconnect()``), it can be re-attached with ``Connect``, and it is listed by
both doors. ``Connect-Timeout-Ms`` on ``Start`` bounds the process's life, as in envd.
"""

from __future__ import annotations

import base64
import signal
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import urlencode

from ...agent_client import AgentError
from ...routes.commands import COMMAND_ID
from .connect import ConnectError
from .rpc import Call, Method, b64, field, uint

SIGNALS = {"SIGNAL_SIGKILL": "SIGKILL", "SIGNAL_SIGTERM": "SIGTERM", 9: "SIGKILL", 15: "SIGTERM"}
# Go's names for the status string of a process ended by a signal (ProcessState.String())
SIGNAL_NAMES = {
    signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGINT: "interrupt",
    signal.SIGHUP: "hangup", signal.SIGQUIT: "quit", signal.SIGABRT: "aborted",
    signal.SIGSEGV: "segmentation fault", signal.SIGPIPE: "broken pipe", signal.SIGUSR1: "user defined signal 1",
    signal.SIGUSR2: "user defined signal 2", signal.SIGBUS: "bus error", signal.SIGFPE: "floating point exception",
}  # fmt: skip
SHELLS = {"/bin/bash", "bash", "/usr/bin/bash", "/bin/sh", "sh"}


def _argv(cmd: str, args: list[str]) -> list[str]:
    """The argv to run. A shell's login flag (the SDK always sends ``bash -l -c``) is dropped:
    Debian's /etc/profile resets PATH and would hide the template's /opt/venv (docs/e2b.md)."""
    if cmd in SHELLS:
        before_c = args.index("-c") if "-c" in args else len(args)
        args = [a for i, a in enumerate(args) if not (i < before_c and a in ("-l", "--login"))]
    return [cmd, *args]


def _config(message: dict[str, Any]) -> tuple[list[str], dict[str, str], str | None]:
    config = field(message, "process", dict)
    if config is None:
        raise ConnectError("invalid_argument", "process is required")
    cmd = field(config, "cmd", str, "")
    if not cmd or "\0" in cmd:
        raise ConnectError("invalid_argument", "process.cmd must be a non-empty string")
    args = field(config, "args", list, [])
    envs = field(config, "envs", dict, {})
    if not all(isinstance(a, str) for a in args):
        raise ConnectError("invalid_argument", "process.args must be strings")
    if not all(isinstance(v, str) for v in envs.values()):
        raise ConnectError("invalid_argument", "process.envs values must be strings")
    return _argv(cmd, args), envs, field(config, "cwd", str)


def _size(pty: dict[str, Any]) -> dict[str, int]:
    size = field(pty, "size", dict, {})
    rows, cols = uint(size, "rows"), uint(size, "cols")
    if not rows or not cols:
        raise ConnectError("invalid_argument", "pty.size needs rows and cols (at least 1)")
    return {"rows": rows, "cols": cols}


# -- events ----------------------------------------------------------------------------------------


def _end(event: dict[str, Any]) -> dict[str, Any]:
    code, sig = event.get("exit_code"), event.get("signal")
    if event.get("status") == "timeout":
        raise ConnectError("deadline_exceeded", f"the process was {event.get('error') or 'killed at its deadline'}")
    if event.get("status") == "lost":
        raise ConnectError("unavailable", f"the process was lost: {event.get('error')}")
    if isinstance(sig, int) and not isinstance(sig, bool) and sig > 0:
        try:
            name = SIGNAL_NAMES.get(signal.Signals(sig), f"signal {sig}")
        except ValueError:
            name = f"signal {sig}"
        return {"exitCode": -1, "exited": False, "status": f"signal: {name}", "error": f"signal: {name}"}
    code = code if isinstance(code, int) and not isinstance(code, bool) else -1
    end: dict[str, Any] = {"exitCode": code, "exited": True, "status": f"exit status {code}"}
    if code:
        end["error"] = end["status"]  # envd sends Go's Wait() error for any failure
    return end


def _event(event: dict[str, Any]) -> dict[str, Any] | None:
    """An agent event as a ``ProcessEvent`` (None: nothing to send)."""
    kind = event.get("type")
    if kind == "start" and isinstance(event.get("pid"), int):
        return {"start": {"pid": event["pid"]}}
    if kind in ("stdout", "stderr") and isinstance(event.get("text"), str):
        return {"data": {kind: base64.b64encode(event["text"].encode("utf-8", "replace")).decode("ascii")}}
    if kind == "pty" and isinstance(event.get("data"), str):
        return {"data": {"pty": event["data"]}}
    if kind == "keepalive":
        return {"keepalive": {}}
    if kind == "end":
        return {"end": _end(event)}
    return None


async def _follow(call: Call, command_id: str, from_now: bool) -> AsyncGenerator[dict[str, Any], None]:
    """The command's events as ``{"event": ProcessEvent}`` messages, until its end (or the call's
    deadline: ``deadline_exceeded``, the process keeps running)."""
    path = f"/commands/{command_id}/events" + ("?since=now" if from_now else "")
    events = call.live.agent.stream("GET", path)
    started = False
    try:
        async for raw in events:
            event = _event(raw)
            if event is None:
                continue
            if not started and "start" not in event:
                raise AgentError("the sandbox agent did not start the stream with the process's start")
            started = True
            yield {"event": event}
            if "end" in event:
                return
            if call.deadline is not None and time.monotonic() > call.deadline:
                raise ConnectError("deadline_exceeded", "the stream's deadline (Connect-Timeout-Ms) passed")
        raise AgentError("the process's event stream ended without its end")
    finally:
        await events.aclose()


# -- finding a process -----------------------------------------------------------------------------


def _info(reply: Any) -> dict[str, Any]:
    """One command info from the (hostile) agent, checked."""
    if not (isinstance(reply, dict) and isinstance(reply.get("id"), str) and COMMAND_ID.match(reply["id"])):
        raise AgentError("the sandbox agent sent a malformed command")
    if not isinstance(reply.get("pid"), int):
        raise AgentError("the sandbox agent sent a command without a pid")
    return reply


async def _select(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    """The command a ``ProcessSelector`` (``{"pid": N}`` or ``{"tag": "..."}``) names."""
    selector = field(message, "process", dict)
    if not selector:
        raise ConnectError("invalid_argument", "process (a selector: pid or tag) is required")
    pid, tag = uint(selector, "pid"), field(selector, "tag", str)
    if pid is None and tag is None:
        raise ConnectError("invalid_argument", "process needs a pid or a tag")
    query = {"pid": str(pid)} if pid is not None else {"tag": tag}
    reply = await call.agent("GET", f"/commands?{urlencode(query)}")
    if not isinstance(reply, list) or len(reply) != 1:
        raise AgentError("the sandbox agent sent a malformed process lookup")
    return _info(reply[0])


async def _running(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    info = await _select(call, message)
    if not info.get("running"):
        raise ConnectError("not_found", f"process {info['pid']} has already ended")
    return info


# -- the service -----------------------------------------------------------------------------------


async def start(call: Call, message: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    argv, envs, cwd = _config(message)
    body: dict[str, Any] = {"cmd": argv, "background": True, "envs": envs, "output": "ring"}
    if cwd:
        body["cwd"] = cwd
    pty = field(message, "pty", dict)
    if pty is not None:
        body["pty"] = _size(pty)
    else:
        body["stdin_open"] = field(message, "stdin", bool, True)  # absent: open (older SDKs)
    tag = field(message, "tag", str)
    if tag is not None:
        body["tag"] = tag
    if call.timeout is not None:
        body["timeout"] = max(call.timeout, 0.001)
    info = _info(await call.agent("POST", "/commands", body))
    async for event in _follow(call, info["id"], from_now=False):
        yield event


async def connect_process(call: Call, message: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    info = await _select(call, message)
    async for event in _follow(call, info["id"], from_now=True):
        yield event


async def list_processes(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    reply = await call.agent("GET", "/commands")
    processes = []
    for item in reply if isinstance(reply, list) else []:
        if not isinstance(item, dict):
            continue
        argv, envs = item.get("argv"), item.get("envs")
        if not (isinstance(item.get("pid"), int) and isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            continue
        envs = {k: v for k, v in envs.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(envs, dict) else {}
        config: dict[str, Any] = {"cmd": argv[0], "args": argv[1:], "envs": envs}
        if isinstance(item.get("cwd"), str):
            config["cwd"] = item["cwd"]
        process: dict[str, Any] = {"config": config, "pid": item["pid"]}
        if isinstance(item.get("tag"), str):
            process["tag"] = item["tag"]
        processes.append(process)
    return {"processes": processes}


async def send_signal(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    name = SIGNALS.get(message.get("signal"))  # type: ignore[arg-type]
    if name is None:
        raise ConnectError("invalid_argument", "signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM")
    info = await _running(call, message)
    reply = await call.agent("POST", f"/commands/{info['id']}/kill", {"signal": name})
    if not (isinstance(reply, dict) and reply.get("killed") is True):
        raise ConnectError("not_found", f"process {info['pid']} has already ended")
    return {}


def _input(message: dict[str, Any]) -> bytes:
    data = field(message, "input", dict)
    if not data or len(data) != 1 or next(iter(data)) not in ("stdin", "pty"):
        raise ConnectError("invalid_argument", "input must hold stdin or pty bytes")
    kind = next(iter(data))
    return b64(data[kind], f"input.{kind}")


async def _write(call: Call, info: dict[str, Any], data: bytes) -> None:
    if data:
        body = {"data_base64": base64.b64encode(data).decode("ascii")}
        await call.agent("POST", f"/commands/{info['id']}/stdin", body)


async def send_input(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    data = _input(message)
    await _write(call, await _running(call, message), data)
    return {}


async def stream_input(call: Call, messages: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """Client streaming: ``start`` (a selector), then ``data`` and ``keepalive`` messages."""
    info: dict[str, Any] | None = None
    async for message in messages:
        if "start" in message:
            if info is not None:
                raise ConnectError("invalid_argument", "start was sent twice")
            info = await _running(call, field(message, "start", dict, {}))
        elif "data" in message:
            if info is None:
                raise ConnectError("invalid_argument", "the first message must be start")
            await _write(call, info, _input(field(message, "data", dict, {})))
        elif "keepalive" not in message:
            raise ConnectError("invalid_argument", "each message must be start, data or keepalive")
    if info is None:
        raise ConnectError("invalid_argument", "the stream had no start message")
    return {}


async def close_stdin(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    info = await _running(call, message)
    await call.agent("POST", f"/commands/{info['id']}/stdin", {"eof": True})
    return {}


async def update(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    pty = field(message, "pty", dict)
    if pty is None:
        return {}  # nothing to change
    size = _size(pty)
    info = await _running(call, message)
    await call.agent("POST", f"/commands/{info['id']}/resize", size)
    return {}


METHODS = {
    "Start": Method("server_stream", start),
    "Connect": Method("server_stream", connect_process),
    "List": Method("unary", list_processes),
    "SendInput": Method("unary", send_input),
    "StreamInput": Method("client_stream", stream_input),
    "SendSignal": Method("unary", send_signal),
    "CloseStdin": Method("unary", close_stdin),
    "Update": Method("unary", update),
}
