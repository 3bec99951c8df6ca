"""ExecutionBuilder: kernel-health fields of `error` events and the per-run output cap argument."""

from __future__ import annotations

import pytest

import nullspace
from nullspace.client._execution import ExecutionBuilder, execute_body


def test_error_keeps_state_lost_and_details() -> None:
    builder = ExecutionBuilder()
    builder.feed(
        {
            "type": "error",
            "name": "OutOfMemory",
            "value": "memory limit of 256 MiB",
            "traceback": "",
            "state_lost": True,
            "exit_code": None,
            "signal": 9,
            "limit": {"resource": "memory", "limit_bytes": 268435456},
        }
    )
    builder.feed({"type": "end_of_execution", "status": "error"})
    error = builder.finish().error
    assert error is not None and error.state_lost is True
    assert error.details == {
        "exit_code": None,
        "signal": 9,
        "limit": {"resource": "memory", "limit_bytes": 268435456},
    }


def test_plain_errors_have_no_details() -> None:
    builder = ExecutionBuilder()
    (error,) = builder.feed({"type": "error", "name": "ValueError", "value": "v", "traceback": "tb"})
    assert error == nullspace.ExecutionError("ValueError", "v", "tb")
    assert error.state_lost is False and error.details == {}


def test_artifacts_without_a_binder_stay_plain_info() -> None:
    builder = ExecutionBuilder()
    builder.feed(
        {"type": "artifacts", "artifacts": [{"path": "/home/user/a", "size": -1, "sha256": "short"}]}
    )
    (info,) = builder.execution.artifacts
    assert isinstance(info, nullspace.ArtifactInfo)
    assert (info.name, info.size, info.sha256, info.mime_type) == ("a", 0, None, "application/octet-stream")


def test_max_output_bytes_is_sent_only_when_set() -> None:
    assert "max_output_bytes" not in execute_body("1", None, None, None, None)
    assert execute_body("1", None, None, None, None, 4096)["max_output_bytes"] == 4096
    with pytest.raises(nullspace.InvalidArgumentError):
        execute_body("1", None, None, None, None, 0)
