"""The egress service: one proxy listener per sandbox, its policy, secrets, counters and limits.

Every sandbox gets an egress socket at start (runtime/local.py binds it into the sandbox at
`EGRESS_SOCKET_VIEW`); the service serves it from then on. With policy ``none`` every request on
it gets a 403 naming the policy, so a pooled sandbox can be given a policy when it is claimed, and
any sandbox's policy can change while it runs (open connections are closed when it does).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..runtime.policy import AGENT_RUNTIME_DIR, EGRESS_SOCKET_VIEW
from .ca import SandboxCA
from .proxy import ProxyConnection, Refused
from .resolver import Resolver
from .rules import NetworkPolicy, RuleError, check_ceiling
from .secrets import SecretSet
from .settings import EgressSettings

log = logging.getLogger(__name__)

PROXY_PORT = 3128
"""Where the agent's forwarder listens inside the sandbox (127.0.0.1, the sandbox's own netns)."""
CA_BUNDLE_VIEW = f"{AGENT_RUNTIME_DIR}/egress-ca.pem"
MAX_REFUSALS_KEPT = 256


def sandbox_envs() -> dict[str, str]:
    """What kernels and commands get once a sandbox has network: the proxy and the CA bundle."""
    proxy = f"http://127.0.0.1:{PROXY_PORT}"
    envs = {name: proxy for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    envs.update({"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1"})
    envs["PIP_NO_INDEX"] = "0"  # the template's pip.conf says no-index: it was written for no network
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS",
                 "GIT_SSL_CAINFO", "DENO_CERT"):
        envs[name] = CA_BUNDLE_VIEW
    return envs


@dataclass
class EgressStats:
    bytes_out: int = 0
    bytes_in: int = 0
    connections: int = 0
    active: int = 0
    refusals: int = 0


class TokenBucket:
    """Bytes per second with a one-second burst; `rate` 0 means unlimited."""

    def __init__(self, rate: int) -> None:
        self.rate, self.tokens, self.stamp = rate, float(rate), time.monotonic()

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens > 0:
                self.tokens -= n
                return
            await asyncio.sleep(-self.tokens / self.rate)


class SandboxEgress:
    def __init__(self, sandbox_id: str, service: EgressService) -> None:
        self.sandbox_id = sandbox_id
        self.service = service
        self.policy = NetworkPolicy()
        self.secrets = SecretSet()
        self.stats = EgressStats()
        self.bucket = TokenBucket(service.settings.rate_bytes)
        self.refusals: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_REFUSALS_KEPT)
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._ca: SandboxCA | None = None

    def ca(self) -> SandboxCA:
        if self._ca is None:
            self._ca = SandboxCA(self.sandbox_id, self.service.state_dir / self.sandbox_id)
        return self._ca

    def check_allowance(self, host: str, port: int) -> None:
        limits = self.service.settings
        if self.stats.bytes_in + self.stats.bytes_out >= limits.max_bytes:
            raise Refused(host, port, f"the sandbox used up its network allowance of {limits.max_bytes} bytes")
        if self.stats.active > limits.max_connections:
            raise Refused(host, port, f"the sandbox has {limits.max_connections} connections open, the most it may")

    async def account(self, n: int, *, inbound: bool) -> None:
        if inbound:
            self.stats.bytes_in += n
        else:
            self.stats.bytes_out += n
        if self.stats.bytes_in + self.stats.bytes_out > self.service.settings.max_bytes:
            raise ConnectionError("network allowance used up")
        await self.bucket.take(n)

    def refused(self, host: str, port: int, reason: str) -> None:
        self.stats.refusals += 1
        entry = {"seq": self.stats.refusals, "time": time.time(), "host": host, "port": port, "reason": reason}
        self.refusals.append(entry)
        log.warning("egress refused: sandbox %s -> %s:%s: %s", self.sandbox_id, host, port, reason)

    def refusals_since(self, seq: int) -> list[dict[str, Any]]:
        return [r for r in self.refusals if r["seq"] > seq]

    def close_connections(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def info(self) -> dict[str, Any]:
        return {
            **self.policy.to_dict(),
            "secrets": {s.name: {"hosts": [str(h) for h in s.hosts]} for s in self.secrets.items.values()},
            "stats": asdict(self.stats),
            "limits": {"rate_bytes": self.service.settings.rate_bytes, "max_bytes": self.service.settings.max_bytes,
                       "max_connections": self.service.settings.max_connections},
            "refusals": [{k: v for k, v in r.items() if k != "seq"} for r in self.refusals][-20:],
        }


class EgressService:
    def __init__(self, settings: EgressSettings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.resolver = Resolver(settings.dns)
        self.private_networks = settings.private_networks()
        self.ceiling = settings.ceiling_rules()
        self.upstream_tls = ssl.create_default_context()
        if settings.upstream_ca_file:
            self.upstream_tls.load_verify_locations(cafile=str(settings.upstream_ca_file))
        self.upstream_tls.set_alpn_protocols(["http/1.1"])
        self.sandboxes: dict[str, SandboxEgress] = {}

    def parse_policy(self, mode: str | None, allow: list[str] | None) -> NetworkPolicy:
        """The API's fields → a policy within the operator's ceiling (RuleError otherwise)."""
        policy = NetworkPolicy.parse(mode, allow)
        check_ceiling(policy, self.ceiling, self.settings.open)
        return policy

    async def attach(self, sandbox_id: str, listener: socket.socket) -> None:
        sb = SandboxEgress(sandbox_id, self)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            sb.tasks.add(task)
            sb.stats.active += 1
            try:
                await ProxyConnection(self, sb, reader, writer).run()
            except asyncio.CancelledError:
                writer.close()
            except Exception:
                log.exception("egress connection of sandbox %s failed", sandbox_id)
                writer.close()
            finally:
                sb.stats.active -= 1
                sb.tasks.discard(task)

        sb.server = await asyncio.start_unix_server(handle, sock=listener, limit=64 << 10)
        self.sandboxes[sandbox_id] = sb

    def get(self, sandbox_id: str) -> SandboxEgress | None:
        return self.sandboxes.get(sandbox_id)

    def configure(self, sandbox_id: str, policy: NetworkPolicy, secrets: SecretSet | None = None) -> dict[str, Any] | None:
        """Apply a policy (and, at create, secrets); returns the agent's setup if the sandbox
        now has network, else None. Open connections are closed: they were admitted under the
        old policy."""
        sb = self.sandboxes[sandbox_id]
        sb.policy = policy
        if secrets is not None:
            sb.secrets = secrets
        sb.close_connections()
        if policy.mode == "none":
            return None
        return {"socket": EGRESS_SOCKET_VIEW, "port": PROXY_PORT, "ca_pem": sb.ca().pem,
                "ca_path": CA_BUNDLE_VIEW, "envs": sandbox_envs()}

    async def detach(self, sandbox_id: str) -> None:
        sb = self.sandboxes.pop(sandbox_id, None)
        if sb is None:
            return
        if sb.server is not None:
            sb.server.close()
        sb.close_connections()
        key_dir = self.state_dir / sandbox_id
        if key_dir.exists():
            for path in key_dir.iterdir():
                path.unlink(missing_ok=True)
            key_dir.rmdir()


__all__ = ["EgressService", "RuleError", "SandboxEgress", "sandbox_envs"]
