"""Servers the benchmarks measure: a nullspace server in its own data dir, and Jupyter Kernel Gateway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from nullspace.templates import share_builds

DEFAULT_HOME = Path("/var/lib/nullspace")


@contextmanager
def nullspace_server(pool: int | str, tcp_port: int | None = None, extra: tuple[str, ...] = ()) -> Iterator[Path]:
    """Start `nullspace serve` with a warm pool of `pool` (N or "MIN:MAX") and `extra` options;
    yields its data dir (env points the SDK at it). With `tcp_port`, it also listens on
    127.0.0.1:`tcp_port` (API keys: `nullspace keys create`)."""
    data_dir = Path(tempfile.mkdtemp(prefix="nsbench-", dir="/var/tmp"))
    os.chmod(data_dir, 0o711)
    share_builds(DEFAULT_HOME, data_dir)
    tcp = ["--host", "127.0.0.1", "--port", str(tcp_port)] if tcp_port else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "nullspace", "serve", "--data-dir", str(data_dir), "--pool", f"code-interpreter={pool}", *tcp,
         *extra],
        stdout=open(data_dir / "server.log", "wb"), stderr=subprocess.STDOUT,
    )
    saved = {k: os.environ.get(k) for k in ("NULLSPACE_SOCKET", "NULLSPACE_HOME")}
    os.environ["NULLSPACE_SOCKET"] = str(data_dir / "nullspace.sock")
    os.environ["NULLSPACE_HOME"] = str(data_dir)
    try:
        wait_pool(data_dir, 0, timeout=60)
        yield data_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pool_state(data_dir: Path) -> dict[str, int]:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(data_dir / "nullspace.sock")), base_url="http://n") as c:
        return c.get("/v1/pools").json().get("code-interpreter", {"ready": 0, "target": 0})


def wait_pool(data_dir: Path, ready: int, timeout: float = 600) -> None:
    """Wait until the server answers and its pool holds at least `ready` sandboxes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pool_state(data_dir)["ready"] >= ready:
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"pool did not reach {ready} ready sandboxes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KernelGateway:
    """Jupyter Kernel Gateway (the peer baseline): REST to start kernels, websocket to execute."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kernel_gateway", f"--KernelGatewayApp.port={self.port}",
             "--KernelGatewayApp.ip=127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/api", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("kernel gateway did not start")

    def start_kernel(self) -> str:
        return httpx.post(f"{self.url}/api/kernels", json={"name": "python3"}, timeout=60).json()["id"]

    def connect(self, kernel_id: str):  # noqa: ANN201
        import websocket

        return websocket.create_connection(f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels", timeout=60)

    @staticmethod
    def execute(ws, code: str) -> None:  # noqa: ANN001
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "", "session": "", "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        replied = idle = False
        while not (replied and idle):
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_reply":
                replied = True
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                idle = True

    def delete_kernel(self, kernel_id: str) -> None:
        httpx.delete(f"{self.url}/api/kernels/{kernel_id}", timeout=60)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


async def raw_kernel() -> tuple[AsyncKernelManager, AsyncKernelClient]:
    """The baselines' floor: an ipykernel on the host driven by jupyter_client (no isolation, no
    HTTP, no agent), started and answering. Stop it with `stop_raw_kernel`."""
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=60)
    return km, kc


async def stop_raw_kernel(km: AsyncKernelManager, kc: AsyncKernelClient) -> None:
    kc.stop_channels()
    await km.shutdown_kernel(now=True)


def mem_available() -> int:
    """The host's MemAvailable in bytes."""
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0
