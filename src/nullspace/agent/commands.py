"""``/commands`` (docs/api.md, "Commands"): the HTTP side of `processes.py`.

``POST /commands`` streams a foreground command's events as NDJSON (closing the stream kills
the command's tree) or answers ``201`` at once for a background one; ``GET .../events``
re-attaches (replay from the start, then live; leaving does not kill).
"""

from __future__ import annotations

import signal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .contexts import AgentError
from .processes import SIGNALS, Commands, data_field, terminal_size
from .web import NDJSONFollow, json_body

# -- HTTP ------------------------------------------------------------------------------------------


def _registry(request: Request) -> Commands:
    state = request.app.state
    commands = getattr(state, "commands", None)
    if commands is None:
        commands = state.commands = Commands(state.registry.config)
    return commands


async def start_command(request: Request) -> Response:
    registry = _registry(request)
    cmd = registry.start(await json_body(request))
    if cmd.background:
        return JSONResponse(cmd.info(), status_code=201)
    keepalive = registry.config.keepalive_interval
    return NDJSONFollow(
        cmd.follow(keepalive),
        on_abort=lambda: cmd.kill(reason="the client went away"),
        on_close=lambda: registry.forget(cmd),
    )


async def list_commands(request: Request) -> Response:
    """The running commands; ``?all=1``: also those that ended and are still kept;
    ``?pid=N`` or ``?tag=T``: the one command with that pid or tag (running first)."""
    registry = _registry(request)
    params = request.query_params
    if "pid" in params or "tag" in params:
        pid = params.get("pid")
        if pid is not None and not (pid.isdigit() and len(pid) < 10):
            raise AgentError(400, "invalid_argument", "pid must be a process id")
        cmd = registry.find(int(pid) if pid is not None else None, params.get("tag"))
        return JSONResponse([cmd.info()])
    everything = params.get("all") in ("1", "true")
    return JSONResponse([c.info() for c in registry.all.values() if everything or c.running])


async def get_command(request: Request) -> Response:
    return JSONResponse(_registry(request).get(request.path_params["command_id"]).info())


async def command_events(request: Request) -> Response:
    registry = _registry(request)
    cmd = registry.get(request.path_params["command_id"])
    from_now = request.query_params.get("since") == "now"
    return NDJSONFollow(cmd.follow(registry.config.keepalive_interval, from_now=from_now))


async def command_stdin(request: Request) -> Response:
    cmd = _registry(request).get(request.path_params["command_id"])
    body = await json_body(request)
    data = data_field(body, "data", "data_base64")
    if not cmd.running:
        raise AgentError(409, "conflict", f"{cmd.id} has already ended")
    if data:
        await cmd.write_stdin(data)
    if body.get("eof"):
        cmd.close_stdin()
    return Response(status_code=204)


async def kill_command(request: Request) -> Response:
    cmd = _registry(request).get(request.path_params["command_id"])
    body = await json_body(request)
    name = body.get("signal") or "SIGKILL"
    if name not in SIGNALS:
        raise AgentError(400, "invalid_argument", f"signal must be one of {', '.join(sorted(SIGNALS))}")
    return JSONResponse({"killed": cmd.kill(getattr(signal, name))})


async def resize_command(request: Request) -> Response:
    cmd = _registry(request).get(request.path_params["command_id"])
    cmd.resize(*terminal_size(await json_body(request)))
    return Response(status_code=204)


routes = [
    Route("/commands", start_command, methods=["POST"]),
    Route("/commands", list_commands, methods=["GET"]),
    Route("/commands/{command_id}", get_command, methods=["GET"]),
    Route("/commands/{command_id}/events", command_events, methods=["GET"]),
    Route("/commands/{command_id}/stdin", command_stdin, methods=["POST"]),
    Route("/commands/{command_id}/kill", kill_command, methods=["POST"]),
    Route("/commands/{command_id}/resize", resize_command, methods=["POST"]),
]
