"""``filesystem.Filesystem`` (§5.5) over the agent's ``/files`` and ``/watchers``: every path is
resolved inside the sandbox by the agent, exactly as for ``/v1/sandboxes/{id}/files``."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from ...._exceptions import ConflictError
from ...agent_client import AgentError
from .connect import ConnectError
from .rpc import Call, Method, field, uint

MAX_DEPTH = 64
WATCHER_ID = re.compile(r"^w_[0-9a-f]{1,64}$")
FILE_TYPES = {"file": "FILE_TYPE_FILE", "dir": "FILE_TYPE_DIRECTORY", "symlink": "FILE_TYPE_SYMLINK"}
EVENT_TYPES = {"create": "EVENT_TYPE_CREATE", "write": "EVENT_TYPE_WRITE", "remove": "EVENT_TYPE_REMOVE",
               "rename": "EVENT_TYPE_RENAME", "chmod": "EVENT_TYPE_CHMOD"}  # fmt: skip


def _path(message: dict[str, Any], name: str = "path") -> str:
    path = field(message, name, str, "")
    if not path:
        raise ConnectError("invalid_argument", f"{name} must be a non-empty path")
    return path


def _query(endpoint: str, **params: str) -> str:
    return f"{endpoint}?{urlencode(params)}"


def entry_info(entry: Any) -> dict[str, Any]:
    """The agent's entry (hostile: checked) as an ``EntryInfo`` message. A symlink reports its
    target's type and ``isSymlink`` (as envd ≥ 0.6 does)."""
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("name", "path", "type")):
        raise AgentError("the sandbox agent sent a malformed file entry")
    size, mode = entry.get("size"), entry.get("mode")
    info: dict[str, Any] = {
        "name": entry["name"],
        "type": FILE_TYPES.get(entry["type"], "FILE_TYPE_UNSPECIFIED"),
        "path": entry["path"],
        "size": str(size if isinstance(size, int) and size >= 0 else 0),
        "mode": mode if isinstance(mode, int) and 0 <= mode < 1 << 32 else 0,
        "permissions": str(entry.get("permissions") or ""),
        "owner": str(entry.get("owner") or ""),
        "group": str(entry.get("group") or ""),
    }
    modified = entry.get("modified_time")
    if isinstance(modified, str):
        try:
            info["modifiedTime"] = datetime.fromisoformat(modified).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError:
            pass
    metadata = entry.get("metadata")
    if isinstance(metadata, dict) and metadata and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        info["metadata"] = metadata
    target = entry.get("symlink_target")
    if isinstance(target, str):
        info["symlinkTarget"] = target
        info["isSymlink"] = True
    return info


async def stat(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    return {"entry": entry_info(await call.agent("GET", _query("/files/info", path=_path(message))))}


async def list_dir(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    depth = uint(message, "depth") or 1  # 0 (unset): one level, as envd
    if depth > MAX_DEPTH:
        raise ConnectError("invalid_argument", f"depth must be at most {MAX_DEPTH}")
    reply = await call.agent("GET", _query("/files/list", path=_path(message), depth=str(depth)))
    if not isinstance(reply, list):
        raise AgentError("the sandbox agent sent a malformed listing")
    return {"entries": [entry_info(e) for e in reply]}


async def make_dir(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    path = _path(message)
    try:
        reply = await call.agent("POST", "/files/mkdir", {"path": path})
    except ConflictError as exc:  # a file is in the way
        raise ConnectError("already_exists", exc.message) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("created"), bool):
        raise AgentError("the sandbox agent sent a malformed answer")
    if not reply["created"]:
        raise ConnectError("already_exists", f"{path} already exists")
    return {"entry": entry_info(reply.get("entry"))}


async def move(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    body = {"source": _path(message, "source"), "destination": _path(message, "destination")}
    return {"entry": entry_info(await call.agent("POST", "/files/rename", body))}


async def remove(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    await call.agent("DELETE", _query("/files", path=_path(message)))
    return {}


# -- watching --------------------------------------------------------------------------------------


def _watch_body(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": _path(message),
        "recursive": field(message, "recursive", bool, False),
        "include_entry": field(message, "includeEntry", bool, False),
    }


def fs_event(event: Any) -> dict[str, Any] | None:
    """An agent watch event as a ``FilesystemEvent`` (None: not one)."""
    if not isinstance(event, dict) or not isinstance(event.get("name"), str) or event.get("op") not in EVENT_TYPES:
        return None
    out: dict[str, Any] = {"name": event["name"], "type": EVENT_TYPES[event["op"]]}
    if event.get("entry") is not None:
        try:
            out["entry"] = entry_info(event["entry"])
        except AgentError:
            pass
    return out


def _watcher_id(reply: Any) -> str:
    if not (isinstance(reply, dict) and isinstance(reply.get("id"), str) and WATCHER_ID.match(reply["id"])):
        raise AgentError("the sandbox agent sent a malformed watcher")
    return reply["id"]


async def watch_dir(call: Call, message: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    """A watcher for the stream's life: ``start``, then events (and keepalives) as they come."""
    watcher = _watcher_id(await call.agent("POST", "/watchers", _watch_body(message)))
    events = call.live.agent.stream("GET", f"/watchers/{watcher}/stream")
    try:
        async for raw in events:
            kind = raw.get("type")
            if kind == "start":
                yield {"start": {}}
            elif kind == "keepalive":
                yield {"keepalive": {}}
            elif kind == "fs" and (event := fs_event(raw)) is not None:
                yield {"filesystem": event}
            elif kind == "end":
                raise ConnectError("aborted", str(raw.get("error") or "the watch ended"))
            if call.deadline is not None and time.monotonic() > call.deadline:
                raise ConnectError("deadline_exceeded", "the watch's deadline (Connect-Timeout-Ms) passed")
        raise AgentError("the watch stream ended")
    finally:
        await events.aclose()
        try:
            await call.live.agent.request("DELETE", f"/watchers/{watcher}")
        except Exception:  # noqa: BLE001, S110 - gone with the sandbox, or already removed
            pass


async def create_watcher(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    return {"watcherId": _watcher_id(await call.agent("POST", "/watchers", _watch_body(message)))}


def _watcher(message: dict[str, Any]) -> str:
    watcher = field(message, "watcherId", str, "")
    if not WATCHER_ID.match(watcher):
        raise ConnectError("not_found", f"watcher {watcher!r} does not exist")
    return watcher


async def get_watcher_events(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    reply = await call.agent("GET", f"/watchers/{_watcher(message)}/events")
    events = reply.get("events") if isinstance(reply, dict) else None
    if not isinstance(events, list):
        raise AgentError("the sandbox agent sent malformed watch events")
    return {"events": [e for e in map(fs_event, events) if e is not None]}


async def remove_watcher(call: Call, message: dict[str, Any]) -> dict[str, Any]:
    await call.agent("DELETE", f"/watchers/{_watcher(message)}")
    return {}


METHODS = {
    "Stat": Method("unary", stat),
    "ListDir": Method("unary", list_dir),
    "MakeDir": Method("unary", make_dir),
    "Move": Method("unary", move),
    "Remove": Method("unary", remove),
    "WatchDir": Method("server_stream", watch_dir),
    "CreateWatcher": Method("unary", create_watcher),
    "GetWatcherEvents": Method("unary", get_watcher_events),
    "RemoveWatcher": Method("unary", remove_watcher),
}
