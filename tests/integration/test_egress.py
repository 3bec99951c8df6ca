"""Egress end to end: sandboxes reach "the internet" (egress_net.py, built on this machine in a
network namespace of its own) only through the server's proxy, by name, as their policy says."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nullspace import InvalidArgumentError, Sandbox, Secret

from .conftest import ServerHandle, new_data_dir, start_server, stop_server, wait_healthy

_spec = importlib.util.spec_from_file_location("egress_net", Path(__file__).with_name("egress_net.py"))
assert _spec and _spec.loader
egress_net = importlib.util.module_from_spec(_spec)
sys.modules["egress_net"] = egress_net
_spec.loader.exec_module(egress_net)

SECRET_VALUE = "sk-live-0123456789abcdefXYZ"
FETCH = r'''
import json, os, urllib.request, urllib.error
def fetch(url, headers=None, data=None):
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with urllib.request.build_opener().open(req, timeout=20) as r:  # reads the proxy variables now
            return r.status, r.read().decode("latin-1")
    except urllib.error.HTTPError as e:
        return e.code, str(e.reason)
    except Exception as e:
        return 0, repr(e)
'''


@pytest.fixture(scope="module")
def internet() -> Iterator[egress_net.Internet]:
    if os.geteuid() != 0:
        pytest.skip("the test internet needs root (network namespaces)")
    with egress_net.internet() as net:
        yield net


@pytest.fixture(scope="module")
def server(internet: egress_net.Internet) -> Iterator[ServerHandle]:
    """A server whose proxy resolves with the test internet's DNS and trusts its CA."""
    data_dir = new_data_dir()
    config = internet.egress_config(data_dir / "egress.toml")
    process = start_server(data_dir, "--pool", "code-interpreter=1", "--egress-config", str(config))
    sock = data_dir / "nullspace.sock"
    saved = {k: os.environ.get(k) for k in ("NULLSPACE_HOME", "NULLSPACE_SOCKET", "NULLSPACE_API_URL")}
    try:
        wait_healthy(sock, process)
        os.environ.update(NULLSPACE_HOME=str(data_dir), NULLSPACE_SOCKET=str(sock))
        os.environ.pop("NULLSPACE_API_URL", None)
        yield ServerHandle(data_dir, sock, "", "", process)
    finally:
        stop_server(process)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


ALLOW = ["allowed.test", "pypi.test", "*.wild.test", "rebind.test",
         "private.test", "loopback.test", "metadata.test", "hostaddr.test"]


@pytest.fixture(scope="module")
def networked(server: ServerHandle) -> Iterator[Sandbox]:
    with Sandbox.create(timeout=600, network=ALLOW) as sandbox:
        sandbox.run_code(FETCH)
        yield sandbox


def fetch(sandbox: Sandbox, url: str, headers: dict[str, str] | None = None, data: str | None = None):
    code = f"fetch({url!r}, {headers!r}, {None if data is None else data.encode()!r})"
    execution = sandbox.run_code(code)
    assert execution.error is None, execution.error
    status, body = eval(execution.text)  # a tuple repr from our own snippet
    return status, body, execution


def test_allowed_names_over_http_and_https(networked: Sandbox, internet: egress_net.Internet) -> None:
    status, body, _ = fetch(networked, "http://allowed.test/echo?via=http")
    assert status == 200 and json.loads(body)["path"] == "/echo?via=http"
    status, body, _ = fetch(networked, "https://allowed.test/echo?via=https")
    assert status == 200 and json.loads(body)["headers"]["host"] == "allowed.test"
    status, body, _ = fetch(networked, "https://sub.wild.test/echo")  # *.wild.test
    assert status == 200
    paths = [(r["port"], r["path"]) for r in internet.requests()]
    assert (80, "/echo?via=http") in paths and (443, "/echo?via=https") in paths


def test_pip_installs_from_an_allowed_index(networked: Sandbox) -> None:
    result = networked.commands.run(
        "pip install --no-cache-dir -q --index-url https://pypi.test/simple egresstestpkg && "
        "python -c 'import egresstestpkg; print(egresstestpkg.VALUE)'",
        timeout=120, check=False,
    )
    assert result.stdout.strip() == "installed through the egress proxy", result.stderr


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://denied.test/", "not on this sandbox's allow-list"),
        ("https://denied.test/", "not on this sandbox's allow-list"),
        ("http://allowed.test:8080/", "port 8080 is not allowed for allowed.test"),
        ("https://private.test/", "private or reserved address"),
        ("https://loopback.test/", "loopback address"),
        ("http://metadata.test/latest/meta-data/", "cloud metadata address"),
        ("http://hostaddr.test/", "an address of the sandbox host"),
        ("http://nxdomain.test/", "not on this sandbox's allow-list"),
    ],
)
def test_refused_destinations_name_the_policy(networked: Sandbox, url: str, reason: str) -> None:
    status, message, execution = fetch(networked, url)
    assert status == 403 or "Tunnel connection failed: 403" in message, message
    assert "Refused by nullspace egress policy" in message and reason in message, message
    assert any(reason in r["reason"] for r in execution.network_refusals), execution.network_refusals
    info = networked.get_network()
    assert any(reason in r["reason"] for r in info.refusals)


def test_ip_literals_are_refused(networked: Sandbox, internet: egress_net.Internet) -> None:
    before = len(internet.requests())
    for url in (f"http://{internet.ip}/echo", f"https://{internet.ip}/echo"):
        status, message, execution = fetch(networked, url)
        assert status in (0, 403), message
        assert "is an IP address" in execution.network_refusals[0]["reason"]
    assert len(internet.requests()) == before


def test_code_that_ignores_the_proxy_has_no_route(networked: Sandbox, internet: egress_net.Internet) -> None:
    with socket.socket() as listener:  # a listener on the host's own address must see nothing
        listener.bind((internet.host_ip, 0))
        listener.listen(1)
        listener.settimeout(0.5)
        host_port = listener.getsockname()[1]
        probe = f"""
import socket, errno
out = {{}}
for name, family, kind, target in [
    ("tcp", socket.AF_INET, socket.SOCK_STREAM, ("{internet.ip}", 80)),
    ("host", socket.AF_INET, socket.SOCK_STREAM, ("{internet.host_ip}", {host_port})),
    ("metadata", socket.AF_INET, socket.SOCK_STREAM, ("169.254.169.254", 80)),
    ("dns_udp", socket.AF_INET, socket.SOCK_DGRAM, ("{internet.ip}", 53)),
    ("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("2001:db8::1", 443)),
]:
    s = socket.socket(family, kind)
    s.settimeout(3)
    try:
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"\\x00" * 12, target)
            s.recv(512)
        else:
            s.connect(target)
        out[name] = "connected"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
try:
    socket.getaddrinfo("allowed.test", 80)
    out["dns"] = "resolved"
except OSError:
    out["dns"] = "failed"
out
"""
        result = eval(networked.run_code(probe).text)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert result == {"tcp": "ENETUNREACH", "host": "ENETUNREACH", "metadata": "ENETUNREACH",
                      "dns_udp": "ENETUNREACH", "tcp6": "ENETUNREACH", "dns": "failed"}, result


def test_rebinding_name_is_refused_once_it_turns_private(networked: Sandbox) -> None:
    status, _, _ = fetch(networked, "http://rebind.test/echo")  # first answer: the public server
    assert status == 200
    status, _, execution = fetch(networked, "http://rebind.test/echo")  # next: 127.0.0.1
    assert status == 403
    assert "rebind.test resolves to 127.0.0.1 is a loopback address" in execution.network_refusals[0]["reason"]


def test_default_sandbox_has_no_network(server: ServerHandle, internet: egress_net.Internet) -> None:
    with Sandbox.create(timeout=120) as sandbox:
        assert sandbox.get_network().mode == "none"
        probe = f'''
import os, socket, errno
s = socket.socket(); s.settimeout(3)
try:
    s.connect(("{internet.ip}", 80)); tcp = "connected"
except OSError as e:
    tcp = errno.errorcode[e.errno]
p = socket.socket(); p.settimeout(3)
try:
    p.connect(("127.0.0.1", 3128)); fwd = "connected"
except OSError as e:
    fwd = errno.errorcode[e.errno]
u = socket.socket(socket.AF_UNIX); u.settimeout(3)
u.connect("/run/nullspace/egress.sock")
u.sendall(b"GET http://allowed.test/ HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n")
(tcp, fwd, "HTTPS_PROXY" in os.environ, u.recv(300).decode().splitlines()[0])
'''
        tcp, forwarder, proxy_env, answer = eval(sandbox.run_code(probe).text)
        assert (tcp, forwarder, proxy_env) == ("ENETUNREACH", "ECONNREFUSED", False)
        assert answer.startswith("HTTP/1.1 403 Refused by nullspace egress policy: this sandbox has no network")


def test_policy_changes_on_a_running_sandbox(server: ServerHandle) -> None:
    with Sandbox.create(timeout=120) as sandbox:
        sandbox.run_code(FETCH)
        assert fetch(sandbox, "http://allowed.test/echo")[0] == 0  # no proxy variables yet
        info = sandbox.set_network(["allowed.test"])
        assert (info.mode, info.allow) == ("allow", ["allowed.test"])
        assert fetch(sandbox, "https://allowed.test/echo")[:2][0] == 200
        assert sandbox.commands.run("python -c \"import urllib.request as u; "
                                    "print(u.urlopen('https://allowed.test/echo').status)\"").stdout.strip() == "200"
        sandbox.set_network("none")
        status, message, execution = fetch(sandbox, "https://allowed.test/echo")
        assert status != 200 and "no network access" in execution.network_refusals[0]["reason"]
        assert sandbox.get_network().stats["refusals"] >= 1


def test_cli_creates_shows_and_changes_a_policy(server: ServerHandle) -> None:
    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "nullspace", "sandbox", *args],
                              check=True, capture_output=True, text=True, env=os.environ).stdout

    sandbox_id = cli("create", "--allow", "allowed.test", "--allow", "*.wild.test:443").strip().splitlines()[-1]
    try:
        assert "policy: allow allowed.test, *.wild.test:443" in cli("network", sandbox_id)
        assert "policy: none" in cli("network", sandbox_id, "--network", "none")
    finally:
        cli("kill", sandbox_id)


def test_bad_policies_are_refused_before_anything_starts(server: ServerHandle) -> None:
    with pytest.raises(InvalidArgumentError, match="does not permit open internet"):
        Sandbox.create(network="open")
    with pytest.raises(InvalidArgumentError, match="IP addresses are not allowed"):
        Sandbox.create(network=["10.0.0.1"])
    with pytest.raises(InvalidArgumentError, match="must be 12-8192 bytes"):
        Sandbox.create(network=["allowed.test"], secrets={"K": Secret("short", hosts=["allowed.test"])})
    with pytest.raises(InvalidArgumentError, match="secrets need network access"):
        Sandbox.create(secrets={"K": Secret(SECRET_VALUE, hosts=["secret.test"])})


def test_secrets_reach_only_their_host(server: ServerHandle, internet: egress_net.Internet) -> None:
    secrets = {"API_TOKEN": Secret(SECRET_VALUE, hosts=["secret.test"])}
    with Sandbox.create(timeout=120, network=["secret.test", "other.test"], secrets=secrets) as sandbox:
        sandbox.run_code(FETCH)
        placeholder = sandbox.run_code("os.environ['API_TOKEN']").text.strip("'")
        assert placeholder != SECRET_VALUE and len(placeholder) == len(SECRET_VALUE)
        auth = {"Authorization": "Bearer " + placeholder}
        # to its host: the real value arrives (header, URL, body); the echo comes back as the placeholder
        status, body, _ = fetch(sandbox, f"https://secret.test/echo?key={placeholder}", auth, f"token={placeholder}")
        assert status == 200
        assert SECRET_VALUE not in body and body.count(placeholder) == 3
        arrived = [r for r in internet.requests() if r["headers"].get("host") == "secret.test"]
        assert arrived[-1]["headers"]["authorization"] == "Bearer " + SECRET_VALUE
        assert arrived[-1]["path"] == f"/echo?key={SECRET_VALUE}" and arrived[-1]["body"] == f"token={SECRET_VALUE}"
        # anywhere else: refused and logged, in a header or a body; never over plain HTTP
        for url, headers, data, reason in [
            ("https://other.test/echo", auth, None, "placeholder of secret API_TOKEN"),
            ("https://other.test/echo", None, "x" * 70000 + placeholder, "placeholder of secret API_TOKEN"),
            ("http://secret.test/echo", auth, None, "only sent over HTTPS"),
        ]:
            status, _, execution = fetch(sandbox, url, headers, data)
            assert status != 200
            assert reason in execution.network_refusals[0]["reason"]
        seen = json.dumps([r for r in internet.requests() if r["headers"].get("host") != "secret.test"])
        assert SECRET_VALUE not in seen and "Bearer " + placeholder not in seen
        info = sandbox.get_network()
        assert info.secrets == {"API_TOKEN": {"hosts": ["secret.test"]}}
        assert SECRET_VALUE not in json.dumps(info.refusals)
        assert SECRET_VALUE not in sandbox.commands.run("cat /proc/1/environ; env").stdout
    for path in (server.data_dir / "server.log", server.data_dir / "state.db"):
        assert SECRET_VALUE.encode() not in path.read_bytes()
    wal = server.data_dir / "state.db-wal"
    assert not wal.exists() or SECRET_VALUE.encode() not in wal.read_bytes()


def test_traffic_is_counted(networked: Sandbox) -> None:
    before = networked.get_network().stats
    status, body, _ = fetch(networked, "https://allowed.test/bytes/300000")
    assert status == 200 and len(body) == 300000
    after = networked.get_network().stats
    assert after["bytes_in"] - before["bytes_in"] >= 300000
    assert after["connections"] > before["connections"]
