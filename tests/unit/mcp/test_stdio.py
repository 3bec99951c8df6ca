"""`nullspace mcp` says at start when the local server cannot be reached from this user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nullspace.mcp.stdio import unreachable_reason


def test_not_root_on_the_local_socket_is_said_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = unreachable_reason({"NULLSPACE_SOCKET": str(tmp_path / "nullspace.sock")})
    assert reason and "needs root" in reason and "NULLSPACE_API_URL" in reason


def test_a_remote_server_or_root_needs_no_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert unreachable_reason({"NULLSPACE_API_URL": "http://server:49982"}) is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert unreachable_reason({"NULLSPACE_SOCKET": str(tmp_path / "nullspace.sock")}) is None
