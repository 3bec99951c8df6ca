"""A real nullspace server for the E2B SDK tests: TCP with an API key, E2B's env vars pointing at it.

The official SDKs (`e2b`, `e2b-code-interpreter`, pinned in scripts/setup.sh) read E2B_API_URL,
E2B_SANDBOX_URL and E2B_API_KEY on every call, so the fixture sets them for the session.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "nullspace_integration_conftest", Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
)
assert _spec and _spec.loader
_integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _integration  # dataclasses look their module up
_spec.loader.exec_module(_integration)

E2B_VARS = ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN", "E2B_DEBUG")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _integration._skip_reason()
    if reason:
        for item in items:
            if "e2b_server" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class E2BServer:
    url: str
    api_key: str
    data_dir: Path
    socket: Path

    def create_key(self, name: str, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "nullspace", "keys", "create", name, *args, "--data-dir", str(self.data_dir)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1]

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def e2b_server() -> Iterator[E2BServer]:
    data_dir = _integration.new_data_dir()
    port = _integration._free_port()
    handle = E2BServer(f"http://127.0.0.1:{port}", "", data_dir, data_dir / "nullspace.sock")
    handle.api_key = handle.create_key("e2b-tests")
    process = _integration.start_server(
        data_dir, "--host", "127.0.0.1", "--port", str(port), "--pool", "code-interpreter=1"
    )
    saved = {k: os.environ.get(k) for k in (*E2B_VARS, "NULLSPACE_HOME", "NULLSPACE_SOCKET", "NULLSPACE_API_URL", "NULLSPACE_API_KEY")}
    try:
        _integration.wait_healthy(handle.socket, process)
        for key in E2B_VARS:
            os.environ.pop(key, None)
        os.environ.update(E2B_API_URL=handle.url, E2B_SANDBOX_URL=handle.url, E2B_API_KEY=handle.api_key)
        # our own SDK talks to the same server (over its unix socket, as an admin)
        os.environ.update(NULLSPACE_HOME=str(data_dir), NULLSPACE_SOCKET=str(handle.socket))
        os.environ.pop("NULLSPACE_API_URL", None)
        os.environ.pop("NULLSPACE_API_KEY", None)
        yield handle
    finally:
        _integration.stop_server(process)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
